"""The former name of :mod:`autoenc.polars`, kept so that existing code keeps working::

    import polars_autoenc as pae   # same as: import autoenc.polars as pae
"""

from autoenc.polars import *  # noqa: F403
from autoenc.polars import __all__  # noqa: F401
