"""Shared fixtures: a small trained model (in memory and as a file) and frames in both input forms.

The CLI comparisons need the `autoenc` binary: $AUTOENC_BIN, or $CARGO_TARGET_DIR/{release,debug}/autoenc.
"""

import polars as pl
import pytest

import autoenc.polars as pae

from frames import D, frame, rows


@pytest.fixture(scope="session")
def data() -> list[list[float]]:
    return rows(600, 0)


@pytest.fixture(scope="session")
def df(data) -> pl.DataFrame:
    return frame(data)


@pytest.fixture(scope="session")
def model(df) -> pae.Model:
    return pae.train(df, features=[f"f{j}" for j in range(D)], epochs=5, latent=2, seed=1, record_timings=False)


@pytest.fixture(scope="session")
def model_path(model, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("model") / "m.ae"
    model.save(path)
    return str(path)
