"""`autoenc export --onnx` checked by ONNX Runtime itself: for every variant, a model trained by the CLI on
an ODDS set is exported, run by onnxruntime, and its embeddings, reconstructions, scores and flags are
compared with what `autoenc encode / reconstruct / score` write for the same rows.
Needs the `autoenc` binary: $AUTOENC_BIN, or target/{release,debug}/autoenc."""
import pathlib
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

from test_model_file import ROOT, binary

import onnxruntime  # noqa: E402  (a missing package fails the run, it does not skip tests)

ODDS = ROOT / "tests" / "data" / "odds"

# One model per variant, with the settings that change the exported graph (top-k step, variational
# mean head, sigmoid code, several hidden activations).
VARIANTS = {
    "plain": ["--variant", "plain", "--hidden", "12", "--activation", "elu"],
    "denoising": ["--variant", "denoising", "--noise", "gaussian:0.1", "--activation", "leaky_relu"],
    "sparse_topk": ["--variant", "sparse", "--sparsity", "topk:3", "--latent", "6", "--activation", "tanh"],
    # One layer to the code: the mask sits between the first layer and the decoder.
    "sparse_topk_one_layer": ["--variant", "sparse", "--sparsity", "topk:3", "--latent", "6", "--hidden", "none"],
    "sparse_l1": ["--variant", "sparse", "--sparsity", "l1:0.001", "--latent", "6"],
    "sparse_kl": ["--variant", "sparse", "--sparsity", "kl:0.05:0.1", "--latent", "6", "--activation", "sigmoid"],
    "contractive": ["--variant", "contractive", "--hidden", "none", "--latent", "5"],
    "variational": ["--variant", "variational", "--hidden", "10", "--latent", "4", "--scaling", "minmax"],
}


def run(*args):
    done = subprocess.run([binary(), *args, "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def cardio():
    data = ODDS / "cardio.csv"
    assert data.exists(), f"{data} is missing (a copy of two ODDS sets lives in tests/data/odds)"
    table = np.loadtxt(data, delimiter=",", skiprows=1, dtype=np.float64)
    return data, table[:, :-1].astype(np.float32)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def exported(request, cardio, tmp_path_factory):
    data, features = cardio
    tmp = tmp_path_factory.mktemp(request.param)
    model, onnx = tmp / "model.ae", tmp / "model.onnx"
    run("train", str(data), "--exclude", "label", "--epochs", "5", "--seed", "3", "--out", str(model),
        *VARIANTS[request.param])
    run("export", str(model), "--onnx", str(onnx))
    run("score", str(model), str(data), "--out", str(tmp / "scored.parquet"))
    run("encode", str(model), str(data), "--out", str(tmp / "encoded.parquet"))
    run("reconstruct", str(model), str(data), "--out", str(tmp / "reconstructed.parquet"))
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, {"features": features})))
    return request.param, tmp, outputs, session


def column(path, name):
    return pq.read_table(path).column(name).to_numpy(zero_copy_only=False)


def test_scores_match_the_cli_to_f32_precision(exported):
    variant, tmp, outputs, _ = exported
    expected = column(tmp / "scored.parquet", "score")
    assert outputs["score"].dtype == np.float64
    np.testing.assert_allclose(outputs["score"], expected, rtol=2e-4, atol=1e-6, err_msg=variant)
    # A real model: scores spread out, not constant.
    assert np.std(expected) > 1e-3


def test_flags_match_the_cli_away_from_the_threshold(exported):
    variant, tmp, outputs, session = exported
    threshold = float(session.get_modelmeta().custom_metadata_map["threshold"])
    expected = column(tmp / "scored.parquet", "is_anomaly").astype(bool)
    scores = column(tmp / "scored.parquet", "score")
    # Rows within f32 noise of the threshold may fall either way; every other row must agree.
    clear = np.abs(scores - threshold) > 1e-4 * max(threshold, 1e-6)
    assert clear.sum() > 0.99 * len(scores)
    np.testing.assert_array_equal(outputs["is_anomaly"][clear], expected[clear], err_msg=variant)
    assert 0 < expected.sum() < len(expected)


def test_embeddings_match_the_cli(exported):
    variant, tmp, outputs, _ = exported
    expected = np.stack(column(tmp / "encoded.parquet", "embedding"))
    assert outputs["embedding"].shape == expected.shape
    np.testing.assert_allclose(outputs["embedding"], expected, rtol=1e-3, atol=2e-5, err_msg=variant)
    if variant.startswith("sparse_topk"):
        assert (np.count_nonzero(outputs["embedding"], axis=1) <= 3).all()


def test_reconstructions_match_the_cli(exported):
    variant, tmp, outputs, _ = exported
    expected = np.stack(column(tmp / "reconstructed.parquet", "reconstruction"))
    np.testing.assert_allclose(outputs["reconstruction"], expected, rtol=1e-3, atol=1e-4, err_msg=variant)


def test_the_graph_runs_any_batch_size(exported, cardio):
    variant, _, outputs, session = exported
    _, features = cardio
    for rows in (features[:1], features[5:8]):
        got = session.run(["score"], {"features": rows})[0]
        assert got.shape == (len(rows),)
        start = 0 if len(rows) == 1 else 5
        np.testing.assert_allclose(got, outputs["score"][start:start + len(rows)], rtol=1e-5, err_msg=variant)


def test_export_of_a_missing_model_fails_clearly(tmp_path):
    done = subprocess.run([binary(), "export", str(tmp_path / "absent.ae"), "--onnx", str(tmp_path / "m.onnx")],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert "absent.ae" in done.stderr or "cannot read model" in done.stderr
    assert not (tmp_path / "m.onnx").exists()
