"""Transition dynamics: how recipients' state changes between weeks (RecSim's transition).

Three vectorized pieces: fatigue (builds with exposures, decays over time), word-of-mouth
influence (a sparse matrix product over the recipient graph) and an events calendar.

They are not a plug-in kind picked by name: every engine applies all three, and the config's
``dynamics`` section switches and weighs them (``fatigue.enabled``/``weight``/``recovery``,
``influence.enabled``/``weight``, ``events``). The named extension points around them are the
response model (:data:`~personasim.behaviour.response.RESPONSE_MODELS`), which receives the
fatigue, influence and event effects and may ignore them (as ``static`` does), and the graph
generator (:data:`~personasim.behaviour.network.GRAPH_GENERATORS`) that influence runs on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from personasim.config.sections import EventConfig


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
    gain = np.multiply(fatigue_rate, exposed, dtype=np.float32)
    if multiplier != 1.0:
        gain *= np.float32(multiplier)
    fatigue += gain


class InfluenceOperator:
    """Share of each recipient's neighbours who responded, as one sparse product.

    The adjacency is kept as given (no normalized copy): the share is
    ``inverse_degree * (adjacency @ responded)``, so a graph shared by many episodes is
    stored once.

    Parameters
    ----------
    adjacency
        ``(n, n)`` sparse adjacency over recipients in population order (edge weights allowed).
    """

    def __init__(self, adjacency: sparse.spmatrix | sparse.sparray) -> None:
        self.adjacency = sparse.csr_matrix(adjacency, dtype=np.float32)  # no copy if CSR float32
        degree = np.asarray(self.adjacency.sum(axis=1), dtype=np.float32).ravel()
        self.inverse_degree = np.divide(
            np.float32(1.0), degree, out=np.zeros_like(degree), where=degree > 0
        )
        self.n = int(self.adjacency.shape[0])
        self._responded = np.zeros(self.n, dtype=np.float32)

    @property
    def matrix(self) -> sparse.csr_matrix:
        """The row-normalized adjacency (built on demand; the product does not need it)."""
        return (sparse.diags(self.inverse_degree) @ self.adjacency).tocsr()

    def neighbour_share(self, responded: np.ndarray) -> np.ndarray:
        """Return ``(n,)`` float32: the mean of ``responded`` over each recipient's neighbours."""
        np.copyto(self._responded, responded, casting="unsafe")
        share = np.asarray(self.adjacency @ self._responded, dtype=np.float32)
        share *= self.inverse_degree
        return share

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Recipient ``i``'s neighbours and their normalized weights (they sum to 1)."""
        start, stop = self.adjacency.indptr[i], self.adjacency.indptr[i + 1]
        weights = self.adjacency.data[start:stop] * self.inverse_degree[i]
        return self.adjacency.indices[start:stop], weights

    @property
    def n_edges(self) -> int:
        """Number of stored (directed) edges."""
        return int(self.adjacency.nnz)

    @property
    def nbytes(self) -> int:
        """Memory held by the graph arrays and the operator's buffers."""
        a = self.adjacency
        return int(a.data.nbytes + a.indices.nbytes + a.indptr.nbytes
                   + self.inverse_degree.nbytes + self._responded.nbytes)


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
        self._cache: dict[tuple[int, str], tuple[np.ndarray, np.ndarray, float]] = {}

    def effects(self, week: int, persona_id: str) -> tuple[np.ndarray, np.ndarray, float]:
        """Return ``(logit_shift, price_multiplier, fatigue_multiplier)`` for ``week``.

        The first two are read-only ``(n_campaigns,)`` float32; effects of overlapping events
        add (shifts) or multiply (multipliers). Results are cached per week and persona, so
        asking once per recipient costs a dictionary look-up.
        """
        key = (int(week), persona_id)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._resolve(*key)
        return cached

    def _resolve(self, week: int, persona_id: str) -> tuple[np.ndarray, np.ndarray, float]:
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
        shift.setflags(write=False)
        price.setflags(write=False)
        return shift, price, fatigue

    def active(self, week: int) -> list[str]:
        """Names of the events active in ``week``."""
        return [e.name for e in self.events if e.start_week <= week <= e.end_week]
