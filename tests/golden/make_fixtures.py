#!/usr/bin/env python3
"""Golden values for the training objective, computed independently with PyTorch autograd (float64).

Each case fixes a small network's weights, a batch (target, corrupted input, missing-value mask,
reparameterisation noise) and records the forward pass (code, reconstruction), the loss split into
reconstruction and penalty, and the gradient of the total loss with respect to every parameter.
`tests/golden.rs` rebuilds the same network in autoenc and must match these to 1e-9.

The definitions mirror autoenc's documentation, written here from the math, not from its code:
  reconstruction  MSE: sum(M (o - t)^2) / sum(M);  BCE: -sum(M (t log p + (1-t) log(1-p))) / sum(M), p clamped
  l1              lambda * sum|h| / n
  kl              beta * sum_j KL(rho || mean_rows h_j)
  top-k           keep the k largest |h| per row, zero the rest
  contractive     lambda * mean_rows ||d h / d x||_F^2   (the Jacobian taken by autograd, not a closed form)
  variational     z = mu + exp(lv / 2) * eps, lv clamped to [-10, 10];
                  penalty = beta / (n d) * sum_rows -0.5 sum_j (1 + lv - mu^2 - exp(lv))

Weights are stored (inputs, outputs) and applied as x @ W + b.
Run: python tests/golden/make_fixtures.py > tests/golden/objective_fixtures.json
"""
import json

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
ACT = {
    "relu": torch.relu,
    "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01),
    "elu": torch.nn.functional.elu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": lambda z: z,
}


def layer_sizes(arch):
    enc = [arch["inputs"], *arch["encoder_hidden"]] + ([] if arch["variational"] else [arch["latent"]])
    dec = [arch["latent"], *arch["decoder_hidden"], arch["inputs"]]
    return enc, dec


def make_params(arch, rng):
    enc, dec = layer_sizes(arch)
    params = {}

    def dense(name, i, o):
        params[f"{name}.weight"] = torch.tensor(rng.normal(0, 1 / np.sqrt(i), (i, o)), requires_grad=True)
        params[f"{name}.bias"] = torch.tensor(rng.normal(0, 0.1, o), requires_grad=True)

    for k in range(len(enc) - 1):
        dense(f"encoder.{k}", enc[k], enc[k + 1])
    if arch["variational"]:
        width = enc[-1]
        dense("encoder.mean", width, arch["latent"])
        dense("encoder.log_var", width, arch["latent"])
    for k in range(len(dec) - 1):
        dense(f"decoder.{k}", dec[k], dec[k + 1])
    return params


def mlp(params, prefix, x, count, hidden, last):
    for k in range(count):
        x = x @ params[f"{prefix}.{k}.weight"] + params[f"{prefix}.{k}.bias"]
        x = ACT[last if k == count - 1 else hidden](x)
    return x


def objective(arch, variant, loss, params, target, inp, mask, noise):
    enc, dec = layer_sizes(arch)
    n, d = target.shape
    encoder_last = arch["activation"] if arch["variational"] else arch["code_activation"]
    encode = lambda x: mlp(params, "encoder", x, len(enc) - 1, arch["activation"], encoder_last)
    h = encode(inp)
    penalty = torch.zeros(())
    kind = variant["kind"]
    code_out = h
    if kind == "variational":
        mu = h @ params["encoder.mean.weight"] + params["encoder.mean.bias"]
        lv = torch.clamp(h @ params["encoder.log_var.weight"] + params["encoder.log_var.bias"], -10.0, 10.0)
        z = mu + torch.exp(0.5 * lv) * noise
        kl = -0.5 * (1 + lv - mu**2 - torch.exp(lv)).sum()
        penalty = penalty + variant["beta"] * kl / (n * d)
        code_out = mu
    elif kind == "sparse" and variant["sparsity"]["kind"] == "top_k":
        k = variant["sparsity"]["k"]
        idx = torch.topk(h.detach().abs(), k, dim=1).indices
        keep = torch.zeros_like(h).scatter(1, idx, 1.0)
        z = h * keep
        code_out = z
    else:
        z = h
    out = mlp(params, "decoder", z, len(dec) - 1, arch["activation"], arch["output_activation"])
    m = mask if mask is not None else torch.ones_like(target)
    if loss == "mse":
        recon = (m * (out - target) ** 2).sum() / m.sum()
    else:
        p = torch.clamp(out, 1e-7, 1 - 1e-7)
        recon = -(m * (target * torch.log(p) + (1 - target) * torch.log(1 - p))).sum() / m.sum()
    if kind == "sparse" and variant["sparsity"]["kind"] == "l1":
        penalty = penalty + variant["sparsity"]["lambda"] * h.abs().sum() / n
    if kind == "sparse" and variant["sparsity"]["kind"] == "kl":
        rho, beta = variant["sparsity"]["rho"], variant["sparsity"]["beta"]
        r = torch.clamp(h.mean(0), 1e-6, 1 - 1e-6)
        penalty = penalty + beta * (rho * torch.log(rho / r) + (1 - rho) * torch.log((1 - rho) / (1 - r))).sum()
    if kind == "contractive":
        total = torch.zeros(())
        for row in inp:
            jac = torch.autograd.functional.jacobian(lambda v: encode(v.unsqueeze(0)).squeeze(0), row, create_graph=True)
            total = total + (jac**2).sum()
        penalty = penalty + variant["lambda"] * total / n
    return recon, penalty, code_out, out


def as_tensor(a):
    return None if a is None else torch.tensor(a)


def rows(a):
    return None if a is None else np.asarray(a).tolist()


def tensors_of(params):
    return {k: {"shape": list(v.shape), "values": v.detach().numpy().ravel().tolist()} for k, v in params.items()}


def grads_of(params, grads):
    return {k: g.numpy().ravel().tolist() for k, g in zip(params, grads)}


def case(name, arch, variant, loss="mse", corrupted=False, masked=False, unit=False, seed=0):
    rng = np.random.default_rng(seed)
    n, d = 5, arch["inputs"]
    params = make_params(arch, rng)
    target = rng.normal(0, 1, (n, d))
    if unit:
        target = 1 / (1 + np.exp(-target))
    inp = target + rng.normal(0, 0.3, (n, d)) if corrupted else target.copy()
    mask = (rng.uniform(size=(n, d)) > 0.2).astype(float) if masked else None
    noise = rng.normal(0, 1, (n, arch["latent"])) if arch["variational"] else None
    t = as_tensor
    recon, penalty, code, out = objective(arch, variant, loss, params, t(target), t(inp), t(mask), t(noise))
    total = recon + penalty
    grads = torch.autograd.grad(total, list(params.values()))
    return {
        "name": name,
        "architecture": arch,
        "variant": variant,
        "loss": loss,
        "tensors": tensors_of(params),
        "target": rows(target),
        "input": rows(inp),
        "mask": rows(mask),
        "noise": rows(noise),
        "expected": {
            "reconstruction_loss": recon.item(),
            "penalty": penalty.item(),
            "code": code.detach().numpy().tolist(),
            "reconstruction": out.detach().numpy().tolist(),
            "grads": grads_of(params, grads),
        },
    }


def arch(hidden=(4,), latent=3, act="tanh", code="identity", out="identity", variational=False, inputs=6):
    return {
        "inputs": inputs, "latent": latent, "encoder_hidden": list(hidden), "decoder_hidden": list(reversed(hidden)),
        "activation": act, "code_activation": code, "output_activation": out, "variational": variational,
    }


CASES = [
    case("plain_tanh", arch(), {"kind": "plain"}),
    case("plain_relu_masked", arch(act="relu"), {"kind": "plain"}, masked=True, seed=1),
    case("plain_elu_two_hidden", arch(hidden=(5, 4), act="elu"), {"kind": "plain"}, seed=2),
    case("denoising", arch(act="leaky_relu"), {"kind": "denoising", "noise": {"kind": "gaussian", "std": 0.3}}, corrupted=True, seed=3),
    case("bce_sigmoid", arch(out="sigmoid"), {"kind": "plain"}, loss="bce", unit=True, masked=True, seed=4),
    case("sparse_l1", arch(), {"kind": "sparse", "sparsity": {"kind": "l1", "lambda": 0.05}}, seed=5),
    case("sparse_kl", arch(code="sigmoid"), {"kind": "sparse", "sparsity": {"kind": "kl", "rho": 0.1, "beta": 0.5}}, seed=6),
    case("sparse_top_k", arch(latent=4), {"kind": "sparse", "sparsity": {"kind": "top_k", "k": 2}}, seed=7),
    case("contractive_tanh", arch(hidden=(), code="tanh"), {"kind": "contractive", "lambda": 0.2}, seed=8),
    case("contractive_sigmoid", arch(hidden=(), code="sigmoid"), {"kind": "contractive", "lambda": 0.5}, seed=9),
    case("variational", arch(latent=2, variational=True), {"kind": "variational", "beta": 0.7}, seed=10),
    case("variational_no_hidden", arch(hidden=(), latent=2, variational=True), {"kind": "variational", "beta": 1.0}, masked=True, seed=11),
]

if __name__ == "__main__":
    print(json.dumps({"generator": f"torch {torch.__version__}, float64 autograd", "cases": CASES}))
