"""Scoring 1 M rows through the Polars plugin vs the core directly, side by side in one process.

The reference network (64 -> 32 -> 8 -> 32 -> 64, ReLU, f32; docs/speed.md) scores 1,000,000 rows
held in a Polars frame, three ways:
- core: `Autoencoder::score_parallel` on a ready `Array2` (matrix building not timed);
- plugin, Array column: `pl.col("x").ae.score(model)` — one `Array(Float32, 64)` column;
- plugin, 64 columns: `pae.score(model, "f0", ..., "f63")` — the row-major matrix is assembled per call.
Median of `--repeats` runs each; the target is plugin <= 1.3x core.

    python udfs/python/benches/score_1m.py [--rows 1000000] [--repeats 7]
"""

import argparse
import os
import random
import statistics
import time

import polars as pl

import autoenc.polars as pae
from autoenc._internal import _time_core_score


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    d = 64
    rng = random.Random(0)
    # Rows of rank 8 plus noise, like the reference bench; a short fit gives the network its shape.
    basis = [[rng.gauss(0, 1) for _ in range(d)] for _ in range(8)]
    train = pl.DataFrame(
        [[sum(rng.gauss(0, 1) * b[j] for b in basis[:2]) + 0.1 * rng.gauss(0, 1) for j in range(d)] for _ in range(4096)],
        schema=[f"f{j}" for j in range(d)],
        orient="row",
    )
    model = pae.train(train, epochs=1, latent=8, hidden=[32], variant="plain", seed=0)
    values = pl.Series("v", [rng.gauss(0, 1) for _ in range(10_000 * d)], dtype=pl.Float32)
    # Tile 10 k random rows up to the requested count (generating 64 M Python floats would dominate).
    reps = -(-args.rows // 10_000)
    flat = pl.concat([values] * reps)[: args.rows * d]
    x = pl.DataFrame({"x": flat.reshape((args.rows, d))})
    wide = x.select(pl.col("x").arr.get(j).alias(f"f{j}") for j in range(d))
    features = [f"f{j}" for j in range(d)]

    def timed(run):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    core = statistics.median(_time_core_score(model._inner, x["x"], args.repeats))
    array = timed(lambda: x.select(pl.col("x").ae.score(model)))
    columns = timed(lambda: wide.select(pae.score(model, *features)))
    lazy = timed(lambda: x.lazy().select(pl.col("x").ae.score(model)).collect())
    check = x.head(5).select(pl.col("x").ae.score(model)).to_series().to_list()
    assert all(s >= 0 for s in check)

    print(f"polars {pl.__version__}, {args.rows} rows x {d} features, {os.cpu_count()} cpus, median of {args.repeats}")
    print(f"{'path':<32} {'seconds':>9} {'M rows/s':>9} {'x core':>7}")
    for name, t in [
        ("core (Array2, score_parallel)", core),
        ("plugin, Array column", array),
        ("plugin, Array column, lazy", lazy),
        ("plugin, 64 numeric columns", columns),
    ]:
        print(f"{name:<32} {t:>9.4f} {args.rows / t / 1e6:>9.2f} {t / core:>7.2f}")


if __name__ == "__main__":
    main()
