"""The same model file gives the same numbers through the plugin as through `autoenc score` and through the
SQL door (`autoenc-sql`, DataFusion), for every row of an ODDS set."""

import os
import pathlib
import shutil
import subprocess

import polars as pl
import pytest

import autoenc.polars as pae
from frames import ROOT, autoenc_binary

ODDS = pathlib.Path(ROOT) / "tests" / "data" / "odds"


@pytest.fixture(scope="module")
def cardio(tmp_path_factory):
    source = ODDS / "cardio.csv"
    assert source.exists(), f"{source} is missing (a copy of two ODDS sets lives in tests/data/odds)"
    tmp = tmp_path_factory.mktemp("odds")
    data = tmp / "cardio.csv"
    shutil.copy(source, data)
    model = tmp / "cardio.ae"
    scored = tmp / "scored.parquet"
    bin_ = autoenc_binary()
    subprocess.run(
        [bin_, "train", str(data), "--exclude", "label", "--epochs", "10", "--seed", "0", "--out", str(model), "--quiet"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [bin_, "score", str(model), str(data), "--out", str(scored), "--explain", "2", "--quiet"],
        check=True,
        capture_output=True,
    )
    return pl.read_csv(data), str(model), pl.read_parquet(scored)


def test_every_row_scores_as_the_cli_scores(cardio):
    df, model, cli = cardio
    features = [c for c in df.columns if c != "label"]
    assert cli.height == df.height == 1831
    ours = df.select(
        score=pae.score(model, *features),
        percentile=pae.percentile(model, *features),
        is_anomaly=pae.is_anomaly(model, *features),
        embedding=pae.encode(model, *features),
    )
    # The same rows in the same 8192-row blocks: bit-identical, not merely close.
    assert ours["score"].to_list() == cli["score"].to_list()
    assert ours["percentile"].to_list() == cli["percentile"].to_list()
    assert ours["is_anomaly"].to_list() == cli["is_anomaly"].to_list()
    # Codes: the CLI takes them from its scoring pass, `encode` from its own; equal to f32 precision.
    for a, b in zip(ours["embedding"].to_list(), cli["embedding"].to_list()):
        assert all(abs(x - y) <= 1e-5 * max(1.0, abs(y)) for x, y in zip(a, b)), (a, b)
    assert ours["is_anomaly"].sum() > 0


def sql_binary() -> str:
    """`autoenc-sql`: $AUTOENC_SQL_BIN, or beside the `autoenc` binary (`cargo build --workspace --bins`)."""
    env = os.environ.get("AUTOENC_SQL_BIN")
    path = pathlib.Path(env) if env else pathlib.Path(autoenc_binary()).with_name("autoenc-sql")
    if not path.exists():
        pytest.fail(f"autoenc-sql not found at {path}: cargo build --workspace --bins, or set AUTOENC_SQL_BIN")
    return str(path)


def test_every_row_scores_as_the_sql_door_scores(cardio, tmp_path):
    df, model, cli = cardio
    features = [c for c in df.columns if c != "label"]
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(model, models / "cardio.ae")
    rows = tmp_path / "rows.parquet"
    df.with_row_index("i").write_parquet(rows)
    out = tmp_path / "sql.parquet"
    args = ", ".join(features)
    query = (
        f"COPY (SELECT i, ae_score('cardio', {args}) AS score, ae_percentile('cardio', {args}) AS percentile, "
        f"ae_is_anomaly('cardio', {args}) AS is_anomaly FROM '{rows}') TO '{out}' STORED AS PARQUET"
    )
    done = subprocess.run([sql_binary(), "--models", str(models), "-c", query], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    sql = pl.read_parquet(out).sort("i")
    ours = df.select(score=pae.score(model, *features), is_anomaly=pae.is_anomaly(model, *features))
    assert sql.height == ours.height == cli.height == 1831
    # One batch of 1831 rows through each door: the same blocks, so the same bits.
    assert sql["score"].to_list() == ours["score"].to_list() == cli["score"].to_list()
    assert sql["percentile"].to_list() == cli["percentile"].to_list()
    assert sql["is_anomaly"].to_list() == ours["is_anomaly"].to_list()
    assert 0 < sql["is_anomaly"].sum() < sql.height


def test_array_form_and_lazy_frames_agree_with_the_cli(cardio):
    df, model, cli = cardio
    features = [c for c in df.columns if c != "label"]
    lazy = (
        df.lazy()
        .with_columns(x=pl.concat_list(features).list.to_array(len(features)))
        .select(score=pl.col("x").ae.score(pae.Model.load(model)))
        .collect()
    )
    assert lazy["score"].to_list() == cli["score"].to_list()


def test_explanations_name_the_cli_features(cardio):
    df, model, cli = cardio
    features = [c for c in df.columns if c != "label"]
    ours = df.select(why=pae.explain(model, *features, k=2))["why"].to_list()
    # The CLI writes "feature:error;feature:error" (errors to 4 decimals).
    theirs = [[part.split(":") for part in text.split(";")] for text in cli["explanation"].to_list()]
    for a, b in zip(ours, theirs):
        assert [e["feature"] for e in a] == [name for name, _ in b]
        for entry, (_, error) in zip(a, b):
            assert abs(entry["error"] - float(error)) <= 5e-5
