"""Fixtures for the DataFusion door: models trained by the `autoenc` CLI on ODDS cardio (the copy the
repository ships in tests/data/odds), the same rows with an `id` column, and a runner for the
`autoenc-sql` shell, whose answers the Python results are compared with.

Binaries: $AUTOENC_BIN (autoenc-sql beside it, or $AUTOENC_SQL_BIN), else $CARGO_TARGET_DIR/debug/.
"""

from __future__ import annotations

import csv
import os
import pathlib
import subprocess

import pyarrow.parquet as pq
import pytest
from datafusion import SessionConfig, SessionContext

import autoenc.datafusion

from cardio_sql import CARDIO, ROOT, table_ddl


def _binary(variable: str, name: str) -> str:
    env = os.environ.get(variable)
    if env:
        return env
    beside = os.environ.get("AUTOENC_BIN")
    if beside and (pathlib.Path(beside).parent / name).exists():
        return str(pathlib.Path(beside).parent / name)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for profile in ("debug", "release"):
        if (target / profile / name).exists():
            return str(target / profile / name)
    pytest.fail(f"{name} not found: build it (cargo build --workspace --bins) or set {variable}")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("datafusion")


@pytest.fixture(scope="session")
def cardio_csv(workdir) -> pathlib.Path:
    """ODDS cardio with a leading `id` column (row number), so results can be ordered."""
    out = workdir / "cardio.csv"
    with open(CARDIO, newline="") as src, open(out, "w", newline="") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        writer.writerow(["id", *next(reader)])
        for i, row in enumerate(reader):
            writer.writerow([i, *row])
    return out


@pytest.fixture(scope="session")
def models_dir(workdir) -> pathlib.Path:
    """`cardio.ae` (the default denoising model) and `vae.ae` (variational), trained by the CLI."""
    directory = workdir / "models"
    directory.mkdir()
    cli = _binary("AUTOENC_BIN", "autoenc")
    common = ["--exclude", "label", "--epochs", "8", "--seed", "3", "--quiet"]
    subprocess.run([cli, "train", str(CARDIO), "-o", str(directory / "cardio.ae"), *common], check=True)
    subprocess.run(
        [cli, "train", str(CARDIO), "-o", str(directory / "vae.ae"), "--variant", "variational", *common],
        check=True,
    )
    return directory


@pytest.fixture()
def ctx(cardio_csv, models_dir) -> tuple[SessionContext, autoenc.datafusion.Models]:
    """A fresh Python DataFusion session with the functions registered and `cardio` as a table. One
    partition, like the shell runs below, so that `ae_train` sees the rows in file order."""
    context = SessionContext(SessionConfig().with_target_partitions(1))
    models = autoenc.datafusion.register(context, models=models_dir)
    context.sql(table_ddl(cardio_csv)).collect()
    return context, models


@pytest.fixture(scope="session")
def shell(cardio_csv, models_dir, workdir):
    """Runs a SELECT in `autoenc-sql` (same table, same models) and returns its rows as an Arrow table,
    read back from the Parquet file its `COPY ... TO` wrote."""
    binary = _binary("AUTOENC_SQL_BIN", "autoenc-sql")
    counter = iter(range(1_000_000))

    def run(select: str):
        out = workdir / f"shell-{next(counter)}.parquet"
        script = (
            "SET datafusion.execution.target_partitions = 1;\n"
            f"{table_ddl(cardio_csv)};\n"
            f"COPY ({select}) TO '{out}' STORED AS PARQUET;\n"
        )
        subprocess.run([binary, "--models", str(models_dir), "-c", script], check=True, capture_output=True)
        return pq.read_table(out)

    return run
