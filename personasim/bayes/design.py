"""Recipient attributes as model columns: numbers, flags, categories, bins and interactions.

:class:`Design` learns from the A/B recipients how to turn each attribute into columns, and
applies the same coding to any recipients file later (``personasim rank``):

- a number: its standardized value, plus one column per quantile bin (so a threshold or a
  curve can be learned, not only a slope);
- a flag (boolean or two-valued): one column;
- a category (text, or an integer with few values): one column per level, centred on the
  level's share. A level seen fewer than ``min_level_count`` times is pooled into ``other``; a level
  never seen in the A/B data gets the pooled (average) effect, with a warning;
- interactions: the product of two attributes' columns, for every pair of attributes.

Every column is centred on its A/B mean, so a zero row is the average recipient and the
model's shrinkage pulls effects towards "no difference from average".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.errors import DataError

logger = logging.getLogger(__name__)

OTHER = "other"
"""The pooled level of a category's rare values."""
MAX_INTEGER_LEVELS = 6
"""An integer attribute with at most this many values is a category."""


@dataclass(frozen=True)
class Coding:
    """How one attribute becomes columns.

    Attributes
    ----------
    name
        The recipient column.
    kind
        ``number``, ``flag`` or ``category``.
    levels
        A category's levels (``other`` pools the rare ones); a flag's value coded 1.
    centers
        Mean of each of the attribute's columns over the A/B recipients.
    mean, std
        A number's standardization.
    edges
        A number's inner quantile-bin edges.
    """

    name: str
    kind: str
    levels: tuple[str, ...] = ()
    centers: tuple[float, ...] = ()
    mean: float = 0.0
    std: float = 1.0
    edges: tuple[float, ...] = ()

    def labels(self) -> list[str]:
        """Names of this attribute's columns."""
        if self.kind == "number":
            return [self.name] + [f"{self.name}[bin {b}]" for b in range(len(self.edges) + 1)]
        if self.kind == "flag":
            return [f"{self.name}={self.levels[0]}"]
        return [f"{self.name}={level}" for level in self.levels]

    def raw(self, values: pd.Series, source: str) -> np.ndarray:
        """Uncentred columns ``(n, n_columns)`` for ``values``."""
        if self.kind == "number":
            x = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
            if np.isnan(x).any():
                row = int(np.flatnonzero(np.isnan(x))[0]) + 1
                raise DataError(source, f"row {row}, column {self.name!r}", "expected a number")
            bins = np.searchsorted(np.asarray(self.edges), x, side="right")
            onehot = np.eye(len(self.edges) + 1)[bins]
            return np.column_stack([(x - self.mean) / self.std, onehot])
        text = values.astype(str).to_numpy()
        if self.kind == "flag":
            return (text == self.levels[0]).astype(np.float64)[:, None]
        index = {level: i for i, level in enumerate(self.levels)}
        codes = np.array([index.get(t, index.get(OTHER, -1)) for t in text])
        unseen = codes < 0
        if unseen.any():
            logger.warning("%s: column %r has %d recipient(s) with a value the A/B test never "
                           "saw (e.g. %r); they get the pooled effect", source, self.name,
                           int(unseen.sum()), text[unseen][0])
        out = np.zeros((len(text), len(self.levels)))
        seen = np.flatnonzero(~unseen)
        out[seen, codes[seen]] = 1.0
        return out

    def columns(self, values: pd.Series, source: str) -> np.ndarray:
        """Centred columns; a category level never seen gets all zeros (the pooled effect)."""
        raw = self.raw(values, source)
        centred = raw - np.asarray(self.centers)
        if self.kind == "category":
            centred[raw.sum(axis=1) == 0] = 0.0
        return centred


def _coding(name: str, values: pd.Series, n_bins: int, min_level_count: int) -> Coding:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    distinct = values.astype(str).unique()
    if numeric and values.nunique() > MAX_INTEGER_LEVELS:
        x = values.to_numpy(np.float64)
        edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
        std = float(x.std()) or 1.0
        return Coding(name, "number", mean=float(x.mean()), std=std, edges=tuple(edges))
    if len(distinct) == 2:
        level = "True" if "True" in distinct else sorted(distinct)[-1]
        return Coding(name, "flag", levels=(str(level),))
    counts = values.astype(str).value_counts()
    kept = sorted(str(v) for v, n in counts.items() if n >= min_level_count)
    levels = tuple(kept + ([OTHER] if len(kept) < len(counts) else []))
    return Coding(name, "category", levels=levels)


@dataclass(frozen=True)
class Design:
    """The coding of every attribute the model reads, and the interactions between them.

    Attributes
    ----------
    codings
        One per attribute, in model order.
    interactions
        Pairs of attribute positions whose columns are multiplied.
    pair_centers
        Mean of each interaction column over the A/B recipients.
    """

    codings: tuple[Coding, ...]
    interactions: tuple[tuple[int, int], ...] = ()
    pair_centers: tuple[float, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        """The recipient columns the design reads."""
        return tuple(c.name for c in self.codings)

    @property
    def n_columns(self) -> int:
        """Columns of :meth:`transform`'s result."""
        return len(self.labels())

    def labels(self) -> list[str]:
        """Every model column's name."""
        labels = [label for c in self.codings for label in c.labels()]
        for a, b in self.interactions:
            labels += [f"{x} x {y}" for x in self._pair_labels(a) for y in self._pair_labels(b)]
        return labels

    def groups(self) -> np.ndarray:
        """Each column's group: one per attribute, then one per interaction pair."""
        sizes = [len(c.labels()) for c in self.codings]
        sizes += [len(self._pair_labels(a)) * len(self._pair_labels(b))
                  for a, b in self.interactions]
        return np.repeat(np.arange(len(sizes)), sizes)

    def _pair_labels(self, i: int) -> list[str]:
        labels = self.codings[i].labels()
        return labels[1:] if self.codings[i].kind == "number" else labels

    def transform(self, frame: pd.DataFrame, source: str = "recipients") -> np.ndarray:
        """The ``(n, n_columns)`` design of ``frame``'s recipients (float64, centred).

        Raises
        ------
        DataError
            An attribute column is missing or a number column holds text.
        """
        for name in self.names:
            if name not in frame.columns:
                raise DataError(source, f"column {name!r}", "attribute column is missing")
        parts = [c.columns(frame[c.name], source) for c in self.codings]
        pairs = self._pairs(parts, len(frame))
        if pairs.shape[1]:
            pairs = pairs - np.asarray(self.pair_centers)
        return np.column_stack([*parts, pairs]) if parts else np.zeros((len(frame), 0))

    def _pairs(self, parts: list[np.ndarray], n: int) -> np.ndarray:
        """The interaction columns, from each attribute's centred columns (numbers: bins)."""
        blocks = []
        for a, b in self.interactions:
            xa, xb = self._for_pairs(a, parts[a]), self._for_pairs(b, parts[b])
            blocks.append((xa[:, :, None] * xb[:, None, :]).reshape(n, -1))
        return np.column_stack(blocks) if blocks else np.zeros((n, 0))

    def _for_pairs(self, i: int, columns: np.ndarray) -> np.ndarray:
        return columns[:, 1:] if self.codings[i].kind == "number" else columns

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str], *, n_bins: int = 4,
            min_level_count: int = 25, interactions: bool = True) -> Design:
        """Learn the coding of ``columns`` from the A/B recipients in ``frame``."""
        codings = [_coding(c, frame[c], n_bins, min_level_count) for c in columns]
        filled = [Coding(**{**c.__dict__, "centers": tuple(c.raw(frame[c.name], "A/B")
                                                             .mean(axis=0))})
                  for c in codings]
        pairs = tuple(combinations(range(len(filled)), 2)) if interactions else ()
        design = cls(tuple(filled), pairs)
        parts = [c.columns(frame[c.name], "A/B") for c in filled]
        centers = design._pairs(parts, len(frame)).mean(axis=0)
        return cls(tuple(filled), pairs, tuple(float(v) for v in centers))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        return {"codings": [dict(c.__dict__) for c in self.codings],
                "interactions": [list(p) for p in self.interactions],
                "pair_centers": list(self.pair_centers)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Design:
        """Inverse of :meth:`to_dict`."""
        codings = tuple(Coding(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in c.items()}) for c in d["codings"])
        return cls(codings, tuple(tuple(p) for p in d["interactions"]),
                   tuple(d["pair_centers"]))
