"""Every scalar function through Python DataFusion gives the same values, bit for bit, as the
`autoenc-sql` shell on every row of ODDS cardio; models come from a directory, from Python objects and
from bytes."""

from __future__ import annotations

import struct

import pyarrow as pa

import autoenc
from cardio_sql import COLUMNS

# One query calling every scalar function, with the model named, given as the default and as bytes.
EVERY_FUNCTION = f"""
SELECT id,
       ae_encode('cardio', {COLUMNS}) AS code,
       ae_decode('cardio', ae_encode('cardio', {COLUMNS})) AS decoded,
       ae_reconstruct('cardio', {COLUMNS}) AS reconstructed,
       ae_score('cardio', {COLUMNS}) AS score,
       ae_percentile('cardio', {COLUMNS}) AS percentile,
       ae_is_anomaly('cardio', {COLUMNS}) AS flagged,
       ae_explain('cardio', {COLUMNS}, 3) AS explained,
       ae_model_info('cardio') AS info
FROM cardio ORDER BY id
"""


def bits(value):
    """A value with every float replaced by its IEEE bits, so that comparisons are exact (and NaN equals
    NaN)."""
    if isinstance(value, float):
        return struct.pack("<d", value)
    if isinstance(value, list):
        return [bits(v) for v in value]
    if isinstance(value, dict):
        return {k: bits(v) for k, v in value.items()}
    return value


def rows(table: pa.Table) -> list[dict]:
    return [bits(row) for row in table.to_pylist()]


def test_every_scalar_function_matches_the_shell_on_every_cardio_row(ctx, shell, models_dir):
    context, _ = ctx
    ours = context.sql(EVERY_FUNCTION).to_arrow_table()
    theirs = shell(EVERY_FUNCTION)
    assert ours.num_rows == theirs.num_rows == 1831
    assert ours.column_names == theirs.column_names
    for name in ours.column_names:
        assert rows(ours.select([name])) == rows(theirs.select([name])), name
    # The comparison is not vacuous: real scores, some flagged rows, codes of the model's width.
    scores = ours.column("score").to_pylist()
    assert all(s is not None and s > 0 for s in scores)
    assert 0 < sum(ours.column("flagged").to_pylist()) < 1831
    assert len(ours.column("code")[0].as_py()) == autoenc.Model.load(models_dir / "cardio.ae").latent_size


def test_a_python_model_and_model_bytes_are_usable_by_name(ctx, models_dir):
    context, models = ctx
    model = autoenc.Model.load(models_dir / "cardio.ae")
    models.add("from_object", model)
    models.add("from_bytes", model.to_bytes())
    query = f"""
        SELECT ae_score('cardio', {COLUMNS}) AS a, ae_score('from_object', {COLUMNS}) AS b,
               ae_score('from_bytes', {COLUMNS}) AS c
        FROM cardio ORDER BY id"""
    table = context.sql(query).to_arrow_table()
    a, b, c = (table.column(n).to_pylist() for n in "abc")
    assert a == b == c
    assert len(a) == 1831


def test_the_default_model_serves_calls_without_a_model(ctx, shell):
    context, models = ctx
    models.set_default("cardio")
    query = f"SELECT id, ae_score({COLUMNS}) AS score FROM cardio ORDER BY id"
    named = context.sql(f"SELECT id, ae_score('cardio', {COLUMNS}) AS score FROM cardio ORDER BY id")
    assert rows(context.sql(query).to_arrow_table()) == rows(named.to_arrow_table())


def test_register_with_a_default_model(cardio_csv, models_dir):
    from datafusion import SessionContext

    import autoenc.datafusion
    from cardio_sql import table_ddl

    context = SessionContext()
    autoenc.datafusion.register(context, models=models_dir, default="cardio")
    context.sql(table_ddl(cardio_csv)).collect()
    got = context.sql(f"SELECT count(*) AS n FROM cardio WHERE ae_is_anomaly({COLUMNS})").to_pylist()[0]["n"]
    assert 0 < got < 1831


def test_only_one_extension_module_serves_both_doors():
    import pathlib

    package = pathlib.Path(autoenc.__file__).parent
    libraries = sorted(p.name for p in package.rglob("*.so"))
    assert libraries == ["_internal.abi3.so"], libraries
    import autoenc.datafusion as door_sql
    import autoenc.polars as door_frames

    assert door_sql.Model is door_frames.Model is autoenc.Model
