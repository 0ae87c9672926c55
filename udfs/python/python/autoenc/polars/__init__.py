"""autoenc models as Polars expressions.

Every function takes the model first (a model file path or a loaded :class:`Model`), then the
features -- one Array/List column of numbers or several numeric columns, in the model's feature
order -- as column names or expressions::

    import polars as pl
    import autoenc.polars as pae

    model = pae.train(df, features=["a", "b", "c"], epochs=20, seed=0)
    df.with_columns(
        score=pae.score(model, "a", "b", "c"),
        flagged=pae.is_anomaly("model.ae", "a", "b", "c"),
        code=pl.col("features").ae.encode(model),
    )

A null row gives a null result; a null or NaN inside a row is a missing value, filled in by the
model. Wrong dimensions and non-numeric inputs raise ``polars.exceptions.ComputeError`` (at planning
for lazy frames). The work runs in Rust without the GIL.
"""

from autoenc.polars._functions import decode, encode, explain, is_anomaly, percentile, reconstruct, score
from autoenc._internal import __version__
from autoenc._model import Model
from autoenc.polars._train import train
from autoenc.polars import _namespace  # noqa: F401  (registers the `ae` expression namespace)

__all__ = [
    "Model",
    "__version__",
    "decode",
    "encode",
    "explain",
    "is_anomaly",
    "percentile",
    "reconstruct",
    "score",
    "train",
]
