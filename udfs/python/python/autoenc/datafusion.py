"""Every autoenc SQL function in a Python DataFusion ``SessionContext`` (``pip install datafusion``).

::

    from datafusion import SessionContext
    import autoenc
    import autoenc.datafusion

    ctx = SessionContext()
    models = autoenc.datafusion.register(ctx, models="models/", default="sensors")
    models.add("fresh", autoenc.Model.load("fresh.ae"))
    ctx.sql("SELECT ae_score('sensors', s0, s1, s2) AS score FROM readings").to_pandas()

The functions are the ones the Rust door and the ``autoenc-sql`` shell register -- the scalar
functions ``ae_encode``, ``ae_decode``, ``ae_score``, ``ae_percentile``, ``ae_is_anomaly``,
``ae_explain``, ``ae_reconstruct``, ``ae_model_info``, the training aggregate ``ae_train`` and the
table function ``ae_generate`` -- handed over through DataFusion's foreign function interface, so they
give the same bits as ``autoenc-sql`` for the same model and rows. Errors (an unknown model, a wrong
number of features, ...) raise DataFusion's exception with autoenc's message.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

from autoenc._internal import _SqlModels
from autoenc._model import Model

if TYPE_CHECKING:
    from datafusion import SessionContext

__all__ = ["Models", "register"]


class Models:
    """The models the functions of one :func:`register` call find by name.

    A name is looked up among the models added here first, then as ``<models>/<name>.ae`` in the
    directory given to :func:`register` (loaded on first use).
    """

    def __init__(self, inner: _SqlModels) -> None:
        self._inner = inner

    def add(self, name: str, model: Union[Model, bytes]) -> None:
        """Makes ``model`` (a :class:`autoenc.Model`, or model-file bytes such as ``ae_train``
        returns) usable as ``ae_score('name', ...)``; replaces a model of the same name."""
        if isinstance(model, Model):
            self._inner.add(name, model._inner)
        elif isinstance(model, (bytes, bytearray, memoryview)):
            self._inner.add(name, bytes(model))
        else:
            raise TypeError(f"model must be an autoenc.Model or bytes, got {type(model).__name__}")

    def set_default(self, name: str) -> None:
        """Makes ``name`` the model that calls without a model argument use."""
        self._inner.set_default(name)


def register(
    ctx: SessionContext,
    models: Union[str, os.PathLike[str], None] = None,
    default: str | None = None,
) -> Models:
    """Registers every ``ae_*`` function in ``ctx`` and returns their :class:`Models`.

    ``models`` is a directory of model files (``<name>.ae``) that the nodes can read, or ``None`` for
    models added from Python only; ``default`` names the model used when a call names none
    (``SELECT ae_score(features) FROM t``).
    """
    from datafusion import AggregateUDF, ScalarUDF
    from datafusion.user_defined import TableFunction

    directory = os.fspath(models) if models is not None else None
    inner = _SqlModels(directory, default)
    for function in inner.scalar_functions():
        ctx.register_udf(ScalarUDF.from_pycapsule(function))
    for function in inner.aggregate_functions():
        ctx.register_udaf(AggregateUDF.from_pycapsule(function))
    for function in inner.table_functions():
        ctx.register_udtf(TableFunction(function.name, function, ctx))
    return Models(inner)
