"""Transition dynamics: how recipients' state changes between weeks (RecSim's transition).

Three vectorized pieces: fatigue (builds with exposures, decays over time), word-of-mouth
influence (a sparse matrix product over the recipient graph) and an events calendar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from personasim.config import EventConfig


def update_fatigue(
    fatigue: np.ndarray,
    exposed: np.ndarray | bool,
    fatigue_rate: np.ndarray,
    recovery: float,
    multiplier: float = 1.0,
) -> None:
    """Decay fatigue by ``recovery`` and add ``fatigue_rate * multiplier`` where exposed.

    Updates ``fatigue`` in place (float32).
    """
    fatigue *= np.float32(1.0 - recovery)
    if np.isscalar(exposed) or np.ndim(exposed) == 0:
        if exposed:
            fatigue += np.float32(multiplier) * fatigue_rate
        return
    fatigue += np.float32(multiplier) * fatigue_rate * exposed


class InfluenceOperator:
    """Share of each recipient's neighbours who responded, as one sparse product.

    Parameters
    ----------
    adjacency
        ``(n, n)`` sparse adjacency over recipients in population order.
    """

    def __init__(self, adjacency: sparse.spmatrix) -> None:
        adjacency = sparse.csr_matrix(adjacency, dtype=np.float32)
        degree = np.asarray(adjacency.sum(axis=1)).ravel()
        inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        self.matrix = (sparse.diags(inverse.astype(np.float32)) @ adjacency).tocsr()
        self.n = adjacency.shape[0]

    def neighbour_share(self, responded: np.ndarray) -> np.ndarray:
        """Return ``(n,)`` float32: the mean of ``responded`` over each recipient's neighbours."""
        return (self.matrix @ responded.astype(np.float32, copy=False)).astype(np.float32)

    @property
    def n_edges(self) -> int:
        """Number of stored (directed) edges."""
        return int(self.matrix.nnz)


class EventCalendar:
    """External events by week, resolved to per-campaign effects for one persona.

    Parameters
    ----------
    events
        The calendar (from the config and/or a CSV feed).
    channels
        Channel of each campaign, in campaign index order.
    """

    def __init__(self, events: Sequence[EventConfig], channels: Sequence[str]) -> None:
        self.events = list(events)
        self.channels = list(channels)

    def effects(self, week: int, persona_id: str) -> tuple[np.ndarray, np.ndarray, float]:
        """Return ``(logit_shift, price_multiplier, fatigue_multiplier)`` for ``week``.

        The first two are ``(n_campaigns,)`` float32; effects of overlapping events add
        (shifts) or multiply (multipliers).
        """
        n = len(self.channels)
        shift = np.zeros(n, dtype=np.float32)
        price = np.ones(n, dtype=np.float32)
        fatigue = 1.0
        for event in self.events:
            if not event.start_week <= week <= event.end_week:
                continue
            if event.personas is not None and persona_id not in event.personas:
                continue
            mask = np.array(
                [event.channels is None or c in event.channels for c in self.channels], dtype=bool
            )
            shift[mask] += event.propensity_shift
            price[mask] *= event.price_sensitivity_multiplier
            fatigue *= event.fatigue_multiplier
        return shift, price, fatigue

    def active(self, week: int) -> list[str]:
        """Names of the events active in ``week``."""
        return [e.name for e in self.events if e.start_week <= week <= e.end_week]
