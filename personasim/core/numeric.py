"""The logistic link, in the two precisions the project uses.

Inference and ranking work in float64; the simulation keeps its per-recipient state in
float32 (:mod:`personasim.behaviour.population`), where ``logit32``/``sigmoid32`` keep the
arithmetic in that precision so that same seed gives the same bytes.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6
"""Default clip distance from 0 and 1 before taking log-odds."""


def logit(p: np.ndarray | float, eps: float = EPS) -> np.ndarray:
    """Log-odds of ``p`` in float64, clipped to ``[eps, 1 - eps]``."""
    x = np.clip(np.asarray(p, dtype=np.float64), eps, 1 - eps)
    return np.log(x) - np.log1p(-x)


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    """Logistic function in float64."""
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def logit32(p: np.ndarray | float, eps: float = EPS) -> np.ndarray:
    """Log-odds of ``p`` in float32, clipped to ``[eps, 1 - eps]``."""
    x = np.clip(np.asarray(p, dtype=np.float32), eps, 1 - eps)
    return np.log(x / (1 - x)).astype(np.float32)


def sigmoid32(x: np.ndarray | float) -> np.ndarray:
    """Logistic function in float32."""
    return (1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float32)))).astype(np.float32)
