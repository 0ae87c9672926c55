"""Mixed tables (text columns as categorical features) through Python DataFusion: `ae_train` over the
penguins table's text and number columns gives the shell's model file, and scoring with it gives the
shell's scores, NULL sexes and an island never seen included."""

from __future__ import annotations

import subprocess

import pyarrow.parquet as pq
from datafusion import SessionConfig, SessionContext

import autoenc
from cardio_sql import ROOT
from conftest import _binary

PENGUINS = ROOT / "tests" / "data" / "mixed" / "penguins.csv"
FEATURES = "island, sex, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g"
OPTIONS = '{"epochs": 60, "seed": 2, "record_timings": false}'
DDL = (
    f"CREATE EXTERNAL TABLE penguins STORED AS CSV LOCATION '{PENGUINS}' OPTIONS ('format.has_header' 'true')"
)
TRAIN = f"SELECT ae_train({FEATURES}, '{OPTIONS}') AS model FROM penguins"
# An island the model never saw, in every row: scored as "other", never an error.
SCORE = (
    f"SELECT ae_score(m.model, {FEATURES}) AS s, "
    f"ae_score(m.model, 'Atlantis', sex, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g) AS unseen "
    f"FROM penguins, ({TRAIN}) m"
)


def shell_rows(workdir, select: str) -> list[dict]:
    out = workdir / "mixed.parquet"
    script = f"SET datafusion.execution.target_partitions = 1;\n{DDL};\nCOPY ({select}) TO '{out}' STORED AS PARQUET;\n"
    subprocess.run([_binary("AUTOENC_SQL_BIN", "autoenc-sql"), "-c", script], check=True, capture_output=True)
    return pq.read_table(out).to_pylist()


def python_context() -> SessionContext:
    context = SessionContext(SessionConfig().with_target_partitions(1))
    autoenc.datafusion.register(context)
    context.sql(DDL).collect()
    return context


def test_ae_train_on_text_columns_gives_the_shells_model_and_scores(workdir):
    context = python_context()
    ours = context.sql(TRAIN).to_pylist()[0]["model"]
    assert ours == shell_rows(workdir, TRAIN)[0]["model"]
    model = autoenc.Model.from_bytes(ours)
    assert model.feature_names[:2] == ["island", "sex"]

    scores = context.sql(SCORE).to_pylist()
    theirs = shell_rows(workdir, SCORE)
    assert len(scores) == 344
    assert scores == theirs
    assert all(r["s"] is not None and r["s"] > 0 for r in scores), "rows with a NULL sex score too"
    mean = lambda key: sum(r[key] for r in scores) / len(scores)  # noqa: E731
    assert mean("unseen") > mean("s"), "an island never seen costs, on the whole"
