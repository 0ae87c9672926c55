"""Every expression function, both input forms, eager and lazy, in every context Polars offers."""

import math

import polars as pl
import pytest

import autoenc.polars as pae
from frames import D, FEATURES, assert_close


def column_form():
    return [pl.col(f) for f in FEATURES]


@pytest.mark.parametrize("lazy", [False, True])
def test_scores_agree_across_forms_model_kinds_and_the_namespace(df, model, model_path, lazy):
    frame = df.lazy() if lazy else df
    out = frame.select(
        by_columns=pae.score(model, *FEATURES),
        by_exprs=pae.score(model_path, *column_form()),
        by_array=pae.score(model_path, "x"),
        by_namespace=pl.col("x").ae.score(model),
        by_namespace_columns=pl.col("f0").ae.score(model_path, "f1", "f2", "f3"),
    )
    out = out.collect() if lazy else out
    assert out.schema["by_columns"] == pl.Float64
    base = out["by_columns"].to_list()
    assert all(s >= 0 for s in base) and len(set(base)) > 100
    for name in out.columns[1:]:
        for a, b in zip(out[name].to_list(), base):
            assert_close(a, b)


def test_list_column_equals_array_column(df, model):
    out = df.with_columns(l=pl.col("x").cast(pl.List(pl.Float64))).select(
        a=pae.score(model, "x"), l=pae.score(model, "l")
    )
    assert out["a"].to_list() == out["l"].to_list()


def test_integer_and_float32_columns_are_accepted(df, model):
    cast = df.select(pl.col("f0").cast(pl.Float32), pl.col("f1").round(0).cast(pl.Int8), "f2", "f3")
    out = cast.select(
        ints=pae.score(model, *FEATURES),
        floats=pae.score(model, *[pl.col(f).cast(pl.Float64) for f in FEATURES]),
    )
    assert out["ints"].to_list() == out["floats"].to_list()


def test_percentile_and_is_anomaly_follow_the_score(df, model):
    out = df.lazy().select(
        s=pae.score(model, "x"),
        p=pae.percentile(model, "x"),
        flag=pae.is_anomaly(model, "x"),
        above=pl.col("x").ae.is_anomaly(model, threshold=0.5),
    ).collect()
    assert out.schema["flag"] == pl.Boolean and out.schema["p"] == pl.Float64
    for s, p, flag, above in out.iter_rows():
        assert flag == (s > model.threshold)
        assert above == (s > 0.5)
        assert 0.0 <= p <= 1.0
    # The percentile is monotone in the score.
    ordered = out.sort("s")
    assert ordered["p"].to_list() == sorted(ordered["p"].to_list())
    # Training contamination is 0.1: about a tenth of the training rows are above the threshold.
    assert 0.03 < out["flag"].mean() < 0.2


def test_encode_decode_reconstruct_are_arrays(df, model, model_path):
    out = df.head(50).select(
        code=pae.encode(model, *FEATURES),
        code_ns=pl.col("x").ae.encode(model_path),
        recon=pae.reconstruct(model, "x"),
        back=pae.decode(model, pae.encode(model, "x")),
    )
    assert out.schema["code"] == pl.Array(pl.Float32, model.latent_size)
    assert out.schema["recon"] == pl.Array(pl.Float32, D)
    assert out.schema["back"] == pl.Array(pl.Float32, D)
    assert out["code"].to_list() == out["code_ns"].to_list()
    # Decoding the code of a complete row is its reconstruction.
    for r, b in zip(out["recon"].to_list(), out["back"].to_list()):
        for x, y in zip(r, b):
            assert math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-4)
    # Decode also takes the code as separate numeric columns.
    split = out.select(pl.col("code").arr.get(i).alias(f"c{i}") for i in range(model.latent_size))
    again = split.select(pae.decode(model, *[f"c{i}" for i in range(model.latent_size)]))
    assert again.to_series().to_list() == out["back"].to_list()


def test_explain_lists_k_features_largest_first(df, model):
    out = df.head(30).select(why=pae.explain(model, "x", k=2), all_=pl.col("x").ae.explain(model, k=D))
    assert out.schema["why"] == pl.List(pl.Struct({"feature": pl.String, "error": pl.Float64}))
    for why, everything in zip(out["why"].to_list(), out["all_"].to_list()):
        assert len(why) == 2 and len(everything) == D
        assert why == everything[:2]
        errors = [e["error"] for e in everything]
        assert errors == sorted(errors, reverse=True)
        assert {e["feature"] for e in everything} == set(FEATURES)


def test_with_columns_filter_and_group_by(df, model):
    scored = df.with_columns(s=pae.score(model, "x"), device=pl.int_range(pl.len()) % 3)
    flagged = scored.filter(pae.is_anomaly(model, "x"))
    assert flagged.height == scored.filter(pl.col("s") > model.threshold).height > 0
    shares = (
        scored.lazy()
        .group_by("device")
        .agg(share=pae.is_anomaly(model, *FEATURES).mean(), worst=pae.score(model, "x").max())
        .sort("device")
        .collect()
    )
    expected = (
        scored.group_by("device")
        .agg(share=(pl.col("s") > model.threshold).mean(), worst=pl.col("s").max())
        .sort("device")
    )
    assert shares["share"].to_list() == expected["share"].to_list()
    for a, b in zip(shares["worst"].to_list(), expected["worst"].to_list()):
        assert_close(a, b)


def test_null_rows_give_null_and_nan_is_missing(df, model):
    head = df.head(4)
    nulls = head.with_columns(
        [pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col(f)).alias(f) for f in FEATURES]
    ).with_columns(f2=pl.when(pl.int_range(pl.len()) == 1).then(None).otherwise(pl.col("f2")))
    nans = head.with_columns(f2=pl.when(pl.int_range(pl.len()) == 1).then(float("nan")).otherwise(pl.col("f2")))
    null_array = head.with_columns(x=pl.when(pl.int_range(pl.len()) == 0).then(None).otherwise(pl.col("x")))
    out_nulls = nulls.select(s=pae.score(model, *FEATURES), e=pae.encode(model, *FEATURES))
    out_nans = nans.select(s=pae.score(model, *FEATURES))
    out_array = null_array.select(s=pae.score(model, "x"), flag=pae.is_anomaly(model, "x"))
    complete = head.select(s=pae.score(model, *FEATURES))
    assert out_nulls["s"][0] is None and out_nulls["e"][0] is None and out_array["flag"][0] is None
    assert out_array["s"][0] is None
    # A null inside a row and NaN are the same missing value; the score changes from the full row's.
    assert_close(out_nulls["s"][1], out_nans["s"][1])
    assert out_nans["s"][1] != complete["s"][1]
    for i in (2, 3):
        assert_close(out_nulls["s"][i], complete["s"][i])
        assert_close(out_array["s"][i], complete["s"][i])


def test_errors_are_compute_errors(df, model, tmp_path):
    with pytest.raises(pl.exceptions.ComputeError, match="expected 4 features, got 3"):
        df.select(pae.score(model, "f0", "f1", "f2"))
    with pytest.raises(pl.exceptions.ComputeError, match="expected 4 features, got 3"):
        df.lazy().select(pae.score(model, pl.concat_list("f0", "f1", "f2").list.to_array(3))).collect()
    short = df.head(3).with_columns(l=pl.concat_list("f0", "f1", "f2"))
    with pytest.raises(pl.exceptions.ComputeError, match="row 0: expected 4 features, got 3"):
        short.select(pae.score(model, "l"))
    text = df.head(3).with_columns(t=pl.lit("a"))
    with pytest.raises(pl.exceptions.ComputeError, match="'t' has type"):
        text.select(pae.score(model, "f0", "f1", "f2", "t"))
    missing = tmp_path / "nope.ae"
    with pytest.raises(pl.exceptions.ComputeError, match="nope.ae"):
        df.select(pae.score(str(missing), "x"))
    damaged = tmp_path / "damaged.ae"
    damaged.write_bytes(model.to_bytes()[:-10])
    with pytest.raises(pl.exceptions.ComputeError, match="damaged.ae"):
        df.select(pae.score(damaged, "x"))
    nan_code = pl.DataFrame({"c": [[float("nan")] * model.latent_size]}).with_columns(
        pl.col("c").list.to_array(model.latent_size)
    )
    with pytest.raises(pl.exceptions.ComputeError, match="not finite"):
        nan_code.select(pae.decode(model, "c"))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        pae.explain(model, "x", k=0)
    with pytest.raises(TypeError, match="model must be a path"):
        pae.score(42, "x")
    with pytest.raises(TypeError, match="pass the features"):
        pae.score(model)
