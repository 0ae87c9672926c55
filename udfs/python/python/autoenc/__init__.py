"""autoenc: autoencoders for tabular data, from Python.

Two doors onto one Rust core, in one extension module:

- :mod:`autoenc.polars` -- expressions for Polars frames (``autoenc.polars.score(model, "a", "b")``,
  ``pl.col("x").ae.encode(model)``) and ``autoenc.polars.train`` on a frame;
- :mod:`autoenc.datafusion` -- every ``ae_*`` SQL function in a Python DataFusion ``SessionContext``::

      from datafusion import SessionContext
      import autoenc.datafusion

      ctx = SessionContext()
      models = autoenc.datafusion.register(ctx, models="models/")
      ctx.sql("SELECT ae_score('sensors', s0, s1) FROM readings")

:class:`Model` is a trained model (a model file), accepted by both. Neither door imports the other's
library: install ``polars`` or ``datafusion`` (or both) beside this package.
"""

from autoenc._internal import __version__
from autoenc._model import Model

__all__ = ["Model", "__version__"]
