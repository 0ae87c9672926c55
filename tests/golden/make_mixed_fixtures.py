#!/usr/bin/env python3
"""Golden values for the mixed-type training objective (numeric and categorical features), computed
independently with PyTorch autograd (float64). `tests/golden.rs` rebuilds each network in autoenc and must
match the loss parts and every parameter gradient to 1e-9.

The definitions, written here from autoenc's documentation (src/model/features.rs, mixed_loss.rs), not
from its code:
  network columns   a numeric feature is one column; a categorical feature with n vocabulary values is a
                    block of n + 2 columns (values, other, NULL), one-hot in the input and the target
  reconstruction    [sum_rows sum_numeric m (o - t)^2 + sum_rows sum_blocks m_b s_b CE_b] / (sum of the
                    numeric m + sum of the m_b), where CE_b = logsumexp(o_b) - sum_k t_k o_k, the block's
                    mask m_b is its first column's, and s_b = 1 / ln(max(2, n))
  variational       as in make_fixtures.py, with the KL divided by n * F, F the number of features (a
                    block counts once)
The network and the other penalties are those of make_fixtures.py (imported from it).
Run: python tests/golden/make_mixed_fixtures.py > tests/golden/mixed_fixtures.json
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from make_fixtures import arch, as_tensor, grads_of, layer_sizes, make_params, mlp, rows, tensors_of  # noqa: E402

torch.set_default_dtype(torch.float64)


def columns(features):
    """(numeric columns, blocks as (start, width, scale)) in the network's column order."""
    numeric, blocks, start = [], [], 0
    for f in features:
        if f["kind"] == "numeric":
            numeric.append(start)
            start += 1
        else:
            n = f["values"]
            blocks.append((start, n + 2, 1.0 / math.log(max(2, n))))
            start += n + 2
    return numeric, blocks, start


def reconstruction(features, out, target, mask):
    numeric, blocks, _ = columns(features)
    m = mask if mask is not None else torch.ones_like(target)
    total = torch.zeros(())
    count = torch.zeros(())
    for c in numeric:
        total = total + (m[:, c] * (out[:, c] - target[:, c]) ** 2).sum()
        count = count + m[:, c].sum()
    for start, width, scale in blocks:
        logits = out[:, start : start + width]
        ce = torch.logsumexp(logits, dim=1) - (target[:, start : start + width] * logits).sum(dim=1)
        total = total + scale * (m[:, start] * ce).sum()
        count = count + m[:, start].sum()
    return total / count


def objective(a, variant, features, params, target, inp, mask, noise):
    enc, dec = layer_sizes(a)
    n = target.shape[0]
    encoder_last = a["activation"] if a["variational"] else a["code_activation"]
    h = mlp(params, "encoder", inp, len(enc) - 1, a["activation"], encoder_last)
    penalty = torch.zeros(())
    if variant["kind"] == "variational":
        mu = h @ params["encoder.mean.weight"] + params["encoder.mean.bias"]
        lv = torch.clamp(h @ params["encoder.log_var.weight"] + params["encoder.log_var.bias"], -10.0, 10.0)
        z = mu + torch.exp(0.5 * lv) * noise
        kl = -0.5 * (1 + lv - mu**2 - torch.exp(lv)).sum()
        penalty = penalty + variant["beta"] * kl / (n * len(features))
    else:
        z = h
    out = mlp(params, "decoder", z, len(dec) - 1, a["activation"], a["output_activation"])
    return reconstruction(features, out, target, mask), penalty


def rows_of(features, n, rng, swap=0.0):
    """(target, input) in network columns: numeric N(0, 1), codes uniform; the input swaps a code with
    probability `swap` (the denoising corruption) and adds nothing to numeric columns."""
    _, blocks, width = columns(features)
    target = np.zeros((n, width))
    numeric, _, _ = columns(features)
    for c in numeric:
        target[:, c] = rng.normal(0, 1, n)
    inp = target.copy()
    for start, w, _ in blocks:
        codes = rng.integers(0, w, n)
        target[np.arange(n), start + codes] = 1.0
        inp[np.arange(n), start + codes] = 1.0
        for i in range(n):
            if rng.uniform() < swap:
                inp[i, start : start + w] = 0.0
                inp[i, start + rng.integers(0, w)] = 1.0
    return target, inp


def case(name, features, variant, hidden=(4,), latent=3, masked=False, swap=0.0, seed=0):
    rng = np.random.default_rng(seed)
    n = 6
    numeric, blocks, width = columns(features)
    a = arch(hidden=hidden, latent=latent, variational=variant["kind"] == "variational", inputs=width)
    params = make_params(a, rng)
    target, inp = rows_of(features, n, rng, swap)
    mask = None
    if masked:
        mask = np.ones_like(target)
        for c in numeric:
            mask[:, c] = (rng.uniform(size=n) > 0.3).astype(float)
    noise = rng.normal(0, 1, (n, latent)) if a["variational"] else None
    t = as_tensor
    recon, penalty = objective(a, variant, features, params, t(target), t(inp), t(mask), t(noise))
    grads = torch.autograd.grad(recon + penalty, list(params.values()))
    return {
        "name": name,
        "features": features,
        "architecture": a,
        "variant": variant,
        "tensors": tensors_of(params),
        "target": rows(target),
        "input": rows(inp),
        "mask": rows(mask),
        "noise": rows(noise),
        "expected": {
            "reconstruction_loss": recon.item(),
            "penalty": penalty.item(),
            "grads": grads_of(params, grads),
        },
    }


NUM = {"kind": "numeric"}


def cat(values):
    return {"kind": "categorical", "values": values}


CASES = [
    case("mixed_plain", [NUM, cat(3), NUM, cat(1)], {"kind": "plain"}),
    case("mixed_masked", [cat(4), NUM, NUM, NUM], {"kind": "plain"}, masked=True, seed=1),
    case("mixed_wide_block", [NUM, cat(12)], {"kind": "plain"}, hidden=(5,), seed=2),
    case("mixed_denoising", [cat(2), NUM, cat(5)], {"kind": "denoising", "noise": {"kind": "masking", "fraction": 0.3}}, swap=0.5, seed=3),
    case("mixed_categories_only", [cat(3), cat(2)], {"kind": "plain"}, seed=4),
    case("mixed_variational", [NUM, cat(3), NUM], {"kind": "variational", "beta": 0.7}, latent=2, masked=True, seed=5),
]

if __name__ == "__main__":
    print(json.dumps({"generator": f"torch {torch.__version__}, float64 autograd", "cases": CASES}))
