"""The model file from outside Rust: Python's `safetensors` opens it, and a numpy re-implementation of
the documented scoring (scale, encode, decode, mean squared error over features) reproduces the scores
`autoenc score` writes. Needs the `autoenc` binary: $AUTOENC_BIN, or target/{release,debug}/autoenc."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

ROOT = pathlib.Path(__file__).resolve().parents[2]


def binary():
    env = os.environ.get("AUTOENC_BIN")
    candidates = [pathlib.Path(env)] if env else []
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    candidates += [target / "release" / "autoenc", target / "debug" / "autoenc"]
    for c in candidates:
        if c.exists():
            return str(c)
    pytest.fail("autoenc binary not found: build it first (cargo build) or set AUTOENC_BIN")


def run(*args):
    subprocess.run([binary(), *args, "--quiet"], check=True, capture_output=True)


ACT = {
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "identity": lambda z: z,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 7))
    x = rng.normal(size=(500, 3)) @ basis + 0.1 * rng.normal(size=(500, 7)) + np.arange(7) * 5
    csv = tmp / "data.csv"
    header = ",".join(f"c{j}" for j in range(7))
    np.savetxt(csv, x, delimiter=",", header=header, comments="", fmt="%.6f")
    model = tmp / "model.ae"
    run("train", str(csv), "--out", str(model), "--epochs", "5", "--hidden", "6,4", "--activation", "tanh", "--latent", "3")
    scored = tmp / "scored.parquet"
    run("score", str(model), str(csv), "--out", str(scored))
    return model, np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float32), pq.read_table(scored)


def test_safetensors_opens_the_model_file(trained):
    model, _, _ = trained
    with safe_open(str(model), framework="numpy") as f:
        meta = json.loads(f.metadata()["autoenc"])
        names = set(f.keys())
    assert meta["format_version"] == 2
    assert meta["feature_names"] == [f"c{j}" for j in range(7)]
    assert meta["architecture"]["encoder_hidden"] == [6, 4]
    expected = {f"encoder.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    expected |= {f"decoder.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    expected |= {"scaler.offset", "scaler.scale", "sketch.points"}
    assert names == expected
    tensors = load_file(str(model))
    assert tensors["encoder.0.weight"].shape == (7, 6) and tensors["encoder.0.weight"].dtype == np.float32
    assert tensors["sketch.points"].dtype == np.float64
    assert len(meta["report"]["epochs"]) == 5


def test_numpy_reimplementation_reproduces_cli_scores(trained):
    model, x, scored = trained
    t = load_file(str(model))
    with safe_open(str(model), framework="numpy") as f:
        arch = json.loads(f.metadata()["autoenc"])["architecture"]
    h = (x - t["scaler.offset"]) * (np.float32(1) / t["scaler.scale"])
    scaled = h.copy()
    n_enc = len(arch["encoder_hidden"]) + 1
    for i in range(n_enc):
        act = arch["code_activation"] if i == n_enc - 1 else arch["activation"]
        h = ACT[act](h @ t[f"encoder.{i}.weight"] + t[f"encoder.{i}.bias"])
    code = h
    n_dec = len(arch["decoder_hidden"]) + 1
    for i in range(n_dec):
        act = arch["output_activation"] if i == n_dec - 1 else arch["activation"]
        h = ACT[act](h @ t[f"decoder.{i}.weight"] + t[f"decoder.{i}.bias"])
    scores = ((h - scaled) ** 2).mean(axis=1)
    cli = scored.column("score").to_numpy()
    np.testing.assert_allclose(scores, cli, rtol=1e-4, atol=1e-6)
    embedding = np.stack(scored.column("embedding").to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(code, embedding, rtol=1e-4, atol=1e-5)
    # The percentile is the share of training rows scoring lower (the same rows here).
    percentile = scored.column("percentile").to_numpy()
    ranks = np.searchsorted(np.sort(cli), cli, side="left") / len(cli)
    np.testing.assert_allclose(percentile, ranks, atol=1e-12)


def test_metadata_checksum_is_computable_outside_rust(trained):
    """The documented rule: CRC-32 of the stored metadata text with the checksum's digits zeroed."""
    import zlib

    model, _, _ = trained
    with safe_open(str(model), framework="numpy") as f:
        text = f.metadata()["autoenc"]
    assert text.endswith('"}') and json.loads(text)["metadata_crc32"] == text[-10:-2]
    zeroed = text[:-10] + '00000000"}'
    assert "%08x" % zlib.crc32(zeroed.encode()) == text[-10:-2]
