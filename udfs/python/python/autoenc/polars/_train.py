"""``train``: fit a model on a frame's columns."""

from __future__ import annotations

import json
from typing import Any, Sequence, Union

import polars as pl

from autoenc._internal import train as _train
from autoenc._model import Model


def _is_vector(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.Array, pl.List)) and dtype.inner.is_numeric()  # type: ignore[union-attr]


def _is_category(dtype: pl.DataType) -> bool:
    """A categorical feature: text, booleans, or Polars' own categories (which reach Rust as text)."""
    return dtype == pl.String or dtype == pl.Boolean or isinstance(dtype, (pl.Categorical, pl.Enum))


def _cast(name: str, dtype: pl.DataType) -> pl.Expr:
    """Numbers reach Rust as Float32 (the model's type) and categories as String or Boolean, so the
    Rust side reads few dtypes."""
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        return pl.col(name).cast(pl.String)
    if _is_category(dtype):
        return pl.col(name)
    if isinstance(dtype, pl.Array):
        return pl.col(name).cast(pl.Array(pl.Float32, dtype.size))
    if isinstance(dtype, pl.List):
        return pl.col(name).cast(pl.List(pl.Float32))
    return pl.col(name).cast(pl.Float32)


def _param(name: str, value: Any) -> Any:
    """Shorthands for the nested params: ``variant="plain"``, ``latent=4`` or ``latent=0.9``."""
    if name == "variant" and isinstance(value, str):
        return {"kind": value}
    if name == "latent" and isinstance(value, int) and not isinstance(value, bool):
        return {"fixed": value}
    if name == "latent" and isinstance(value, float):
        return {"auto": {"explained_variance": value}}
    return value


def train(
    data: Union[pl.DataFrame, pl.LazyFrame],
    features: Sequence[str] | None = None,
    *,
    progress: bool = False,
    **params: Any,
) -> Model:
    """Fits a model on ``features`` of ``data`` (a DataFrame or LazyFrame).

    ``features`` are column names, or one Array/List column; by default every numeric and
    categorical column. String, Boolean, Categorical and Enum columns are categorical features: the
    model learns their vocabularies (docs/model.md, "Categorical features"). ``params`` are the model's settings (the same names as the SQL ``ae_train`` options and
    ``AutoencoderValidParams``): ``epochs``, ``latent`` (an int, or a float explained-variance target),
    ``hidden``, ``variant`` (``"plain"`` or a dict such as ``{"kind": "sparse", "sparsity": {"kind":
    "top_k", "k": 2}}``), ``contamination``, ``seed``, ``trim_fraction``, ``learning_rate``, ... The
    columns go to Rust as Polars buffers (no Python object per value) and training runs without the
    GIL; ``progress=True`` prints one line per epoch to stderr.
    """
    if isinstance(data, pl.LazyFrame):
        schema = data.collect_schema()
    elif isinstance(data, pl.DataFrame):
        schema = data.schema
    else:
        raise TypeError(f"data must be a polars DataFrame or LazyFrame, got {type(data).__name__}")
    if features is None:
        features = [n for n, d in schema.items() if d.is_numeric() or _is_category(d)]
        if not features:
            raise pl.exceptions.ComputeError("train: the frame has no numeric or categorical columns")
    elif isinstance(features, str):
        features = [features]
    features = list(features)
    if not features:
        raise pl.exceptions.ComputeError("train: no features given")
    for name in features:
        if name not in schema:
            raise pl.exceptions.ColumnNotFoundError(f"train: no column '{name}'")
        dtype = schema[name]
        vector_ok = len(features) == 1 and _is_vector(dtype)
        if not (dtype.is_numeric() or _is_category(dtype) or vector_ok):
            raise pl.exceptions.ComputeError(
                f"train: feature column '{name}' has type {dtype}; features must be numeric or categorical "
                "(String, Boolean, Categorical, Enum) columns, or one Array/List column of numbers"
            )
    selected = data.select(_cast(n, schema[n]) for n in features)
    frame = selected.collect() if isinstance(selected, pl.LazyFrame) else selected
    options = json.dumps({k: _param(k, v) for k, v in params.items()})
    return Model(_train(frame, features, options, progress))
