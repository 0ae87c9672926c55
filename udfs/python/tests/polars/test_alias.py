"""The former package name, ``polars_autoenc``, is the same module as ``autoenc.polars``."""

import polars as pl

import autoenc
import autoenc.polars
import polars_autoenc


def test_the_alias_exports_the_same_objects():
    assert polars_autoenc.__all__ == autoenc.polars.__all__
    for name in autoenc.polars.__all__:
        assert getattr(polars_autoenc, name) is getattr(autoenc.polars, name), name


def test_the_alias_scores_like_the_new_name(model, df):
    features = [f"f{j}" for j in range(4)]
    old = df.select(s=polars_autoenc.score(model, *features))["s"]
    new = df.select(s=autoenc.polars.score(model, *features))["s"]
    assert old.to_list() == new.to_list()
    assert old.null_count() == 0 and old.len() == df.height


def test_the_model_class_is_the_top_level_one(model):
    assert isinstance(model, autoenc.Model)
    assert autoenc.polars.Model is autoenc.Model
    assert isinstance(model.report, pl.DataFrame)
