"""What the Polars tests share besides fixtures: where the repository is, the `autoenc` binary, and the
synthetic rows and frames. A module of its own, not `conftest`, because the DataFusion tests beside
these have a `conftest` too.
"""

import math
import os
import pathlib
import random

import polars as pl
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[4]
D = 4


def autoenc_binary() -> str:
    env = os.environ.get("AUTOENC_BIN")
    candidates = [pathlib.Path(env)] if env else []
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    candidates += [target / "release" / "autoenc", target / "debug" / "autoenc"]
    for c in candidates:
        if c.exists():
            return str(c)
    pytest.fail("autoenc binary not found: build it (cargo build) or set AUTOENC_BIN")


def rows(n: int, seed: int) -> list[list[float]]:
    """Correlated rows: three latent factors mixed into D features, plus noise."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        out.append([a + 0.1 * rng.gauss(0, 1), a - b, 2 * b + 0.1 * rng.gauss(0, 1), a + b + 3])
    return out


def frame(data: list[list[float]]) -> pl.DataFrame:
    """Columns f0..f3 (Float64) and the same rows as one Array(Float64, D) column `x`."""
    df = pl.DataFrame({f"f{j}": [r[j] for r in data] for j in range(D)})
    return df.with_columns(x=pl.concat_list([f"f{j}" for j in range(D)]).list.to_array(D))


FEATURES = [f"f{j}" for j in range(D)]


def assert_close(a, b, rel=1e-5):
    """f32 precision: a row's score may differ in the last bits between call sizes (the core's blocks)."""
    assert a is not None and b is not None, (a, b)
    assert math.isclose(a, b, rel_tol=rel, abs_tol=1e-7), (a, b)
