"""The aggregate `ae_train` (with GROUP BY) and the table function `ae_generate` through Python
DataFusion, compared with the `autoenc-sql` shell."""

from __future__ import annotations

import autoenc
from cardio_sql import COLUMNS, FEATURES
# No timings in the training report, so two trainings on the same rows give the same file.
OPTIONS = '{"epochs": 4, "seed": 5, "record_timings": false}'
TRAIN_BY_LABEL = f"SELECT label, ae_train({COLUMNS}, '{OPTIONS}') AS model FROM cardio GROUP BY label ORDER BY label"


def test_ae_train_group_by_gives_the_shells_models(ctx, shell):
    context, _ = ctx
    ours = context.sql(TRAIN_BY_LABEL).to_pylist()
    theirs = shell(TRAIN_BY_LABEL).to_pylist()
    assert [r["label"] for r in ours] == [0, 1]
    assert [r["model"] for r in ours] == [r["model"] for r in theirs]
    for row, rows_in_group in zip(ours, (1655, 176)):
        model = autoenc.Model.from_bytes(row["model"])
        assert model.n_features == 21
        assert model.feature_names == FEATURES
        assert model.info()["extra"]["rows_seen"] == rows_in_group


def test_a_model_trained_in_sql_scores_by_name_and_as_bytes(ctx):
    context, models = ctx
    trained = context.sql(f"SELECT ae_train({COLUMNS}, '{OPTIONS}') AS model FROM cardio").to_pylist()[0]["model"]
    models.add("trained", trained)
    by_name = context.sql(f"SELECT ae_score('trained', {COLUMNS}) AS s FROM cardio ORDER BY id").to_pylist()
    direct = autoenc.Model.from_bytes(trained)
    assert direct.n_features == 21
    # The same model as a binary argument, from a subquery.
    as_bytes = context.sql(
        f"SELECT ae_score(m.model, {COLUMNS}) AS s FROM cardio, "
        f"(SELECT ae_train({COLUMNS}, '{OPTIONS}') AS model FROM cardio) m ORDER BY id"
    ).to_pylist()
    assert by_name == as_bytes
    assert len(by_name) == 1831 and all(r["s"] > 0 for r in by_name)


def test_ae_generate_gives_the_shells_rows(ctx, shell):
    context, _ = ctx
    query = "SELECT * FROM ae_generate('vae', 500, 11)"
    ours = context.sql(query).to_arrow_table()
    theirs = shell(query)
    assert ours.num_rows == 500
    assert ours.column_names == FEATURES
    assert ours.to_pylist() == theirs.to_pylist()
    again = context.sql("SELECT * FROM ae_generate('vae', 500, 12)").to_arrow_table()
    assert again.to_pylist() != ours.to_pylist()
