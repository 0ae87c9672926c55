"""The expression functions: each registers one Rust plugin function with the model in its kwargs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import polars as pl
from polars.plugins import register_plugin_function

if TYPE_CHECKING:
    from autoenc._model import Model

    ModelLike = Union[str, "os.PathLike[str]", Model]
    IntoExpr = Union[str, pl.Expr]

# The `autoenc` package directory, which holds the compiled extension (`_internal`); Polars finds the
# shared library in it.
_LIB = Path(__file__).parent.parent


def _model_kwargs(model: ModelLike) -> dict[str, Any]:
    """A path travels as text (the plugin caches the loaded file); a Model as its file bytes, so a
    lazy query keeps working when it is serialised or outlives the Model object."""
    from autoenc._model import Model

    if isinstance(model, Model):
        return {"path": None, "bytes": model.to_bytes()}
    if isinstance(model, (str, os.PathLike)):
        return {"path": os.fspath(model), "bytes": None}
    raise TypeError(f"model must be a path or an autoenc.Model, got {type(model).__name__}")


def _features(features: tuple[IntoExpr, ...]) -> list[pl.Expr]:
    if not features:
        raise TypeError("pass the features: one Array/List column or several numeric columns")
    return [pl.col(f) if isinstance(f, str) else f for f in features]


def _call(name: str, model: ModelLike, features: tuple[IntoExpr, ...], **options: Any) -> pl.Expr:
    return register_plugin_function(
        plugin_path=_LIB,
        function_name=f"ae_{name}",
        args=_features(features),
        kwargs={**_model_kwargs(model), **options},
        is_elementwise=True,
    )


def encode(model: ModelLike, *features: IntoExpr) -> pl.Expr:
    """The code of each row: ``Array(Float32, latent)`` (for a variational model, the posterior mean)."""
    return _call("encode", model, features)


def decode(model: ModelLike, *codes: IntoExpr) -> pl.Expr:
    """Rows in original units from codes (one Array/List column or ``latent`` numeric columns):
    ``Array(Float32, features)``. Codes must be finite."""
    return _call("decode", model, codes)


def reconstruct(model: ModelLike, *features: IntoExpr) -> pl.Expr:
    """The reconstruction of each row in original units, missing values filled in:
    ``Array(Float32, features)``."""
    return _call("reconstruct", model, features)


def score(model: ModelLike, *features: IntoExpr) -> pl.Expr:
    """The anomaly score (``Float64``): mean squared reconstruction error over the row's observed
    features, in the model's scaled units. The same number as ``autoenc score`` and ``ae_score``."""
    return _call("score", model, features)


def percentile(model: ModelLike, *features: IntoExpr) -> pl.Expr:
    """The fraction of training rows that scored lower than the row (``Float64`` in [0, 1])."""
    return _call("percentile", model, features)


def is_anomaly(model: ModelLike, *features: IntoExpr, threshold: float | None = None) -> pl.Expr:
    """Whether the row's score is above the model's threshold, or ``threshold`` when given (``Boolean``)."""
    return _call("is_anomaly", model, features, threshold=None if threshold is None else float(threshold))


def explain(model: ModelLike, *features: IntoExpr, k: int = 3) -> pl.Expr:
    """The ``k`` features with the largest squared reconstruction error, largest first:
    ``List(Struct{feature: String, error: Float64})``. Missing features are never listed."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return _call("explain", model, features, k=k)
