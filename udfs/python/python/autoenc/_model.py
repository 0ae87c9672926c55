"""``Model``: a loaded model file, accepted by both doors (``autoenc.polars`` and ``autoenc.datafusion``)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from autoenc._internal import _Model

if TYPE_CHECKING:
    import polars as pl


class Model:
    """A trained autoencoder: the same file the CLI and the SQL functions read.

    Use it wherever a model path is accepted (``autoenc.polars.score(model, ...)``, ``models.add(name, model)`` in SQL); ``save`` writes the file.
    """

    def __init__(self, inner: _Model) -> None:
        self._inner = inner

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Model:
        """Reads and checks a model file (``FileNotFoundError`` if missing, ``ComputeError`` if damaged)."""
        return cls(_Model.load(os.fspath(path)))

    @classmethod
    def from_bytes(cls, data: bytes) -> Model:
        return cls(_Model.from_bytes(data))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the model file (atomically)."""
        self._inner.save(os.fspath(path))

    def to_bytes(self) -> bytes:
        """The model file's content."""
        return self._inner.to_bytes()

    def info(self) -> dict[str, Any]:
        """The file's metadata: params, architecture, feature names, threshold, training report, ..."""
        return json.loads(self._inner.metadata_json())

    @property
    def report(self) -> pl.DataFrame:
        """The training report, one row per epoch (like BigQuery ML's ``ML.TRAINING_INFO``)."""
        import polars as pl

        epochs = self.info()["report"]["epochs"]
        schema = {
            "epoch": pl.Int64,
            "loss": pl.Float64,
            "reconstruction_loss": pl.Float64,
            "validation_loss": pl.Float64,
            "learning_rate": pl.Float64,
            "rows": pl.Int64,
            "duration_ms": pl.Float64,
            "kind": pl.String,
        }
        return pl.DataFrame({k: [e.get(k) for e in epochs] for k in schema}, schema=schema)

    @property
    def n_features(self) -> int:
        return self._inner.n_features

    @property
    def latent_size(self) -> int:
        return self._inner.latent_size

    @property
    def feature_names(self) -> list[str]:
        return self._inner.feature_names

    @property
    def threshold(self) -> float:
        """Scores above this are anomalies."""
        return self._inner.threshold

    def __reduce__(self) -> tuple[Any, ...]:
        return (Model.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        variant = self.info()["params"]["variant"]["kind"]
        return (
            f"Model({variant}, {self.n_features} features -> {self.latent_size}, "
            f"threshold {self.threshold:.6g})"
        )
