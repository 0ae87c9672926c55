"""The ``ae`` expression namespace: ``pl.col("features").ae.score(model)``.

The expression is the first feature; more feature columns may follow (``pl.col("a").ae.score(model,
"b", "c")``). Each method is the function of the same name in :mod:`autoenc.polars`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from autoenc.polars import _functions as f

if TYPE_CHECKING:
    from autoenc.polars._functions import IntoExpr, ModelLike


@pl.api.register_expr_namespace("ae")
class AutoencNamespace:
    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def encode(self, model: ModelLike, *more: IntoExpr) -> pl.Expr:
        return f.encode(model, self._expr, *more)

    def decode(self, model: ModelLike, *more: IntoExpr) -> pl.Expr:
        return f.decode(model, self._expr, *more)

    def reconstruct(self, model: ModelLike, *more: IntoExpr) -> pl.Expr:
        return f.reconstruct(model, self._expr, *more)

    def score(self, model: ModelLike, *more: IntoExpr) -> pl.Expr:
        return f.score(model, self._expr, *more)

    def percentile(self, model: ModelLike, *more: IntoExpr) -> pl.Expr:
        return f.percentile(model, self._expr, *more)

    def is_anomaly(self, model: ModelLike, *more: IntoExpr, threshold: float | None = None) -> pl.Expr:
        return f.is_anomaly(model, self._expr, *more, threshold=threshold)

    def explain(self, model: ModelLike, *more: IntoExpr, k: int = 3) -> pl.Expr:
        return f.explain(model, self._expr, *more, k=k)
