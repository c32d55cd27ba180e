"""Persona profiles: a fitted feature transform and one centroid per persona.

Numeric (and bool) columns are standardized and categorical columns one-hot encoded, so any
recipients file can be given a soft membership over personas, at run time or later with
``personasim rank``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.errors import DataError
from personasim.core.types import CONSENT, PERSONA_ID, RECIPIENT_ID, is_consent_column

logger = logging.getLogger(__name__)

MAX_LEVELS = 50
_NON_FEATURES = (RECIPIENT_ID, CONSENT, PERSONA_ID)
_PROFILE_KEYS = ("features", "means", "stds", "levels", "persona_ids")


def default_features(recipients: pd.DataFrame) -> list[str]:
    """Return every column except ``recipient_id``, ``consent`` and ``persona_id``."""
    return [str(c) for c in recipients.columns if c not in _NON_FEATURES
            and not is_consent_column(c)]


def is_numeric(series: pd.Series) -> bool:
    """Whether a column is numeric or boolean (clustered as numbers)."""
    return bool(pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``(n_rows, n_centroids)`` squared Euclidean distances, without an n x k x d array."""
    d2 = (x * x).sum(axis=1)[:, None] - 2.0 * x @ centroids.T + (centroids**2).sum(axis=1)
    return np.maximum(d2, 0.0)


@dataclass(eq=False)
class PersonaProfiles:
    """A fitted feature transform plus one centroid per persona.

    Attributes
    ----------
    features
        Feature columns, in order.
    means, stds
        Standardization of each numeric (or bool) feature; keys are the numeric features.
    levels
        One-hot levels of each categorical feature (an unseen level encodes as all zeros).
    persona_ids
        Persona ids, in centroid order.
    centroids
        ``(n_personas, n_dims)`` float64 centroids in the transformed space.
    """

    features: list[str]
    means: dict[str, float]
    stds: dict[str, float]
    levels: dict[str, list[str]]
    persona_ids: list[str] = field(default_factory=list)
    centroids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def __post_init__(self) -> None:
        shape = (len(self.persona_ids), self.n_dims)
        self.centroids = np.asarray(self.centroids, dtype=np.float64)
        if self.centroids.size == 0 and shape[0] == 0:
            self.centroids = np.zeros(shape)
        if self.centroids.shape != shape:
            raise ValueError(f"centroids have shape {self.centroids.shape}, expected {shape}")

    @property
    def n_dims(self) -> int:
        """Width of the transformed matrix."""
        return sum(1 if f in self.means else len(self.levels[f]) for f in self.features)

    @classmethod
    def encoder(cls, df: pd.DataFrame, features: list[str] | None = None) -> PersonaProfiles:
        """Fit only the feature transform (no personas yet)."""
        features = default_features(df) if features is None else list(features)
        if not features:
            raise ValueError("no feature columns to cluster on")
        means: dict[str, float] = {}
        stds: dict[str, float] = {}
        levels: dict[str, list[str]] = {}
        for f in features:
            if f not in df.columns:
                raise DataError("recipients", f"column {f!r}", "feature column is missing")
            col = df[f]
            if is_numeric(col):
                values = col.to_numpy(dtype=np.float64)
                means[f], std = float(np.nanmean(values)), float(np.nanstd(values))
                stds[f] = std if std > 1e-12 else 1.0
            else:
                counts = col.astype(str).value_counts()
                if len(counts) > MAX_LEVELS:
                    logger.warning(
                        "feature %r: keeping %d of %d levels", f, MAX_LEVELS, len(counts)
                    )
                    counts = counts.iloc[:MAX_LEVELS]
                levels[f] = sorted(str(v) for v in counts.index)
        return cls(features, means, stds, levels)

    @classmethod
    def fit(
        cls,
        recipients: pd.DataFrame,
        labels: np.ndarray,
        persona_ids: list[str],
        features: list[str] | None = None,
    ) -> PersonaProfiles:
        """Fit the transform on ``recipients`` and one centroid per label.

        ``labels[i]`` is the index into ``persona_ids`` of row ``i``'s persona.
        """
        enc = cls.encoder(recipients, features)
        return enc.with_centroids(enc.transform(recipients), labels, persona_ids)

    def with_centroids(
        self, x: np.ndarray, labels: np.ndarray, persona_ids: list[str]
    ) -> PersonaProfiles:
        """Return a copy whose centroids are the label means of transformed rows ``x``."""
        labels = np.asarray(labels, dtype=np.int64)
        p = len(persona_ids)
        counts = np.bincount(labels, minlength=p)
        if len(counts) > p or labels.min(initial=0) < 0 or (counts == 0).any():
            raise ValueError("every persona needs at least one row and labels must be < n_personas")
        sums = np.zeros((p, x.shape[1]))
        np.add.at(sums, labels, x)
        return PersonaProfiles(
            self.features, self.means, self.stds, self.levels, persona_ids, sums / counts[:, None]
        )

    def transform(self, df: pd.DataFrame, source: str = "recipients") -> np.ndarray:
        """Encode ``df`` as a float64 ``(n_rows, n_dims)`` matrix.

        Raises
        ------
        DataError
            A feature column is missing, or a numeric feature holds a missing or non-number.
        """
        blocks: list[np.ndarray] = []
        for f in self.features:
            if f not in df.columns:
                raise DataError(source, f"column {f!r}", "feature column is missing")
            col = df[f]
            if f in self.means:
                if pd.api.types.is_bool_dtype(col):
                    col = col.astype(np.float64)
                values = pd.to_numeric(col, errors="coerce").to_numpy(np.float64)
                if np.isnan(values).any():
                    row = int(np.flatnonzero(np.isnan(values))[0]) + 1
                    raise DataError(source, f"row {row}, column {f!r}", "expected a number")
                blocks.append(((values - self.means[f]) / self.stds[f])[:, None])
            else:
                text = col.astype(str).to_numpy()
                levels = np.asarray(self.levels[f], dtype=object)
                blocks.append((text[:, None] == levels[None, :]).astype(np.float64))
        return np.hstack(blocks) if blocks else np.zeros((len(df), 0))

    def membership(
        self, df: pd.DataFrame, temperature: float = 1.0, source: str = "recipients"
    ) -> np.ndarray:
        """Soft membership: ``softmax(-d^2 / (temperature * n_dims))`` over personas.

        Returns
        -------
        numpy.ndarray
            ``(n_rows, n_personas)`` float32; rows sum to 1.
        """
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        logits = -squared_distances(self.transform(df, source), self.centroids) / (
            temperature * max(self.n_dims, 1)
        )
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        weights /= weights.sum(axis=1, keepdims=True)
        return weights.astype(np.float32)

    def hard_labels(self, df: pd.DataFrame, source: str = "recipients") -> np.ndarray:
        """Index of the nearest centroid for each row."""
        return np.argmin(squared_distances(self.transform(df, source), self.centroids), axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict (floats round-trip exactly)."""
        d = {k: copy.deepcopy(getattr(self, k)) for k in _PROFILE_KEYS}
        return {**d, "centroids": self.centroids.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PersonaProfiles:
        """Rebuild profiles written by :meth:`to_dict`."""
        missing = [k for k in (*_PROFILE_KEYS, "centroids") if k not in d]
        if missing:
            raise ValueError(f"not a persona profiles dict: missing {', '.join(missing)}")
        return cls(**{k: copy.deepcopy(d[k]) for k in _PROFILE_KEYS}, centroids=d["centroids"])
