"""Errors from the functions reach Python as exceptions carrying autoenc's message."""

from __future__ import annotations

import pytest
from datafusion import SessionContext

import autoenc.datafusion
from cardio_sql import COLUMNS


def fails(context, sql: str, *fragments: str) -> str:
    with pytest.raises(Exception) as caught:
        context.sql(sql).collect()
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_unknown_model_names_the_known_ones(ctx):
    context, _ = ctx
    fails(context, f"SELECT ae_score('nope', {COLUMNS}) FROM cardio", "unknown model 'nope'", "cardio", "vae")


def test_wrong_number_of_features(ctx):
    context, _ = ctx
    fails(context, "SELECT ae_score('cardio', f0, f1, f2) FROM cardio", "ae_score", "21", "3")


def test_no_default_model(ctx):
    context, _ = ctx
    fails(context, f"SELECT ae_score({COLUMNS}) FROM cardio", "no default model")


def test_invalid_model_name(ctx):
    context, _ = ctx
    fails(context, f"SELECT ae_score('../etc/passwd', {COLUMNS}) FROM cardio", "invalid model name")


def test_damaged_model_bytes(ctx):
    context, _ = ctx
    fails(context, f"SELECT ae_score(X'00010203', {COLUMNS}) FROM cardio", "ae_score")


def test_generate_from_a_model_that_is_not_variational(ctx):
    context, _ = ctx
    fails(context, "SELECT * FROM ae_generate('cardio', 10)", "ae_generate")


def test_generate_with_a_negative_count(ctx):
    context, _ = ctx
    fails(context, "SELECT * FROM ae_generate('vae', -1)", "ae_generate")


def test_ae_train_with_bad_options(ctx):
    context, _ = ctx
    fails(context, f"SELECT ae_train({COLUMNS}, '{{\"epochs\": 0}}') FROM cardio", "epochs")


def test_adding_something_that_is_not_a_model(tmp_path):
    models = autoenc.datafusion.register(SessionContext())
    with pytest.raises(TypeError, match="autoenc.Model or bytes"):
        models.add("x", 42)
    with pytest.raises(Exception, match="model"):
        models.add("x", b"not a model file")
