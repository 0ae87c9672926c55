"""Text columns as categorical features in frames: a model trained by `autoenc train` on the penguins
table scores the frame's String columns as the CLI scores the CSV, NULL sexes included, and
`autoenc.polars.train` learns the same vocabularies as the CLI."""

import pathlib
import subprocess

import polars as pl
import pytest

import autoenc.polars as pae
from frames import ROOT, autoenc_binary

PENGUINS = pathlib.Path(ROOT) / "tests" / "data" / "mixed" / "penguins.csv"
FEATURES = ["island", "sex", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    model, scored = tmp / "penguins.ae", tmp / "scored.parquet"
    bin_ = autoenc_binary()
    common = ["--epochs", "30", "--seed", "1", "--quiet"]
    features = ["--features", ",".join(FEATURES)]
    subprocess.run([bin_, "train", str(PENGUINS), *features, "--out", str(model), *common], check=True)
    subprocess.run([bin_, "score", str(model), str(PENGUINS), "--out", str(scored), "--quiet"], check=True)
    return pl.read_csv(PENGUINS), str(model), pl.read_parquet(scored)


def test_string_columns_score_as_the_cli_scores(penguins):
    df, model, cli = penguins
    assert df["sex"].null_count() > 0, "the data has NULL sexes, a category of their own"
    ours = df.select(score=pae.score(model, *FEATURES), flag=pae.is_anomaly(model, *FEATURES))
    assert ours["score"].to_list() == cli["score"].to_list()
    assert ours["flag"].to_list() == cli["is_anomaly"].to_list()
    # Polars' own categories (Categorical, Enum) are categorical features as their text.
    as_categories = df.with_columns(
        pl.col("island").cast(pl.Categorical), pl.col("sex").cast(pl.Enum(["female", "male"]))
    )
    assert as_categories.select(s=pae.score(model, *FEATURES))["s"].to_list() == ours["score"].to_list()
    # An island never seen scores as "other", never an error.
    unseen = df.with_columns(island=pl.lit("Atlantis")).select(s=pae.score(model, *FEATURES))
    assert unseen["s"].null_count() == 0


def test_train_learns_the_clis_vocabularies(penguins):
    df, model, _ = penguins
    ours = pae.train(df, FEATURES, epochs=30, seed=1)
    assert ours.info()["feature_kinds"] == pae.Model.load(model).info()["feature_kinds"]
    # Polars' own categories train as their text.
    as_categories = df.with_columns(pl.col("island").cast(pl.Categorical), pl.col("sex").cast(pl.Categorical))
    again = pae.train(as_categories, FEATURES, epochs=30, seed=1)
    assert again.info()["feature_kinds"] == ours.info()["feature_kinds"]


def test_a_number_where_a_category_belongs_is_an_error(penguins):
    df, model, _ = penguins
    with pytest.raises(pl.exceptions.ComputeError, match="column 'bill_length_mm' is f64, but its feature is categorical"):
        df.select(pae.score(model, "bill_length_mm", *FEATURES[1:]))


def test_a_categorical_column_for_a_numeric_model_is_an_error_not_a_panic(penguins):
    df, _, _ = penguins
    numeric = pae.train(df.drop_nulls(FEATURES[2:]), FEATURES[2:], epochs=2, seed=0)
    categories = df.with_columns(pl.col("island").cast(pl.Categorical))
    with pytest.raises(pl.exceptions.ComputeError, match="'island' has type"):
        categories.select(pae.score(numeric, "island", *FEATURES[3:]))
