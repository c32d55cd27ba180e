"""Per-recipient summary statistics of the campaign scores, a chunk of recipients at a time.

:func:`prepare` aligns the posterior draws to the audience's personas and the sendable
campaigns; a :class:`ChunkScorer` turns a chunk's membership rows (and covariates) into the
eight rounded statistics of :data:`FLOAT_COLUMNS` per recipient x campaign.

The arithmetic is the one the ranking has always done, value for value, so the outputs do
not change; only repeated and wasted work is gone:

* recipients whose inputs (membership row and covariates) are identical get identical
  statistics, so each distinct input row of a chunk is scored once (hard persona
  membership without covariates leaves at most one row per persona);
* a recipient with one-hot membership needs one sigmoid per draw, not one per persona (the
  other personas' terms are ``+0.0``); distinct rows are grouped by persona so that each
  group is one run of rows;
* BLAS runs on one thread per scorer (the caller limits it), as the products are small;
* working arrays are allocated once per scorer and reused, in blocks of rows small enough
  to stay in cache;
* interval bounds come from :func:`~personasim.ranking.scoring_select.interval`, exact
  order statistics without a full float64 sort.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from personasim.config.campaign import Campaign
from personasim.core.types import Audience, Posterior
from personasim.ranking.scoring_select import interval

logger = logging.getLogger(__name__)

#: The statistics, in output column order.
FLOAT_COLUMNS: tuple[str, ...] = (
    "p_response",
    "p_low",
    "p_high",
    "uplift",
    "expected_value",
    "priority",
    "priority_low",
    "priority_high",
)
DECIMALS = 6
#: Distinct input rows scored together (bounds the working arrays: rows x draws x 8 bytes).
BLOCK_ROWS = 1024


@dataclass(frozen=True)
class Prepared:
    """Posterior draws aligned to the audience's personas and the campaigns."""

    draws: np.ndarray  # (n_sendable, n_personas_audience, n_draws) float64
    control: np.ndarray | None  # (n_personas_audience, n_draws) float64
    ids: tuple[str, ...]  # sendable campaign ids, ascending
    value: np.ndarray  # (n_sendable,) float64
    cost: np.ndarray  # (n_sendable,) float64
    # with recipient covariates: cell logits instead of rates in draws/control, and slopes
    gamma: np.ndarray | None = None  # (n_sendable, n_draws, n_covariates) float64
    control_gamma: np.ndarray | None = None  # (n_draws, n_covariates) float64

    @property
    def n_draws(self) -> int:
        """Draws per statistic."""
        return int(self.draws.shape[2])


def _index_of(wanted: tuple[str, ...] | list[str], known: tuple[str, ...], what: str) -> np.ndarray:
    """Positions of ``wanted`` ids in ``known``; raise ``ValueError`` naming a missing id."""
    position = {name: i for i, name in enumerate(known)}
    missing = [name for name in wanted if name not in position]
    if missing:
        raise ValueError(
            f"{what} id {missing[0]!r} is not in the posterior; known: {', '.join(known)}"
        )
    return np.array([position[name] for name in wanted], dtype=np.intp)


def uses_covariates(audience: Audience, posterior: Posterior) -> bool:
    """True when the posterior has covariate slopes and the audience has their columns."""
    spec = getattr(posterior, "spec", None)
    if spec is None or not spec.names:
        return False
    missing = [n for n in spec.names if n not in audience.recipients.columns]
    if missing:
        logger.info("recipients lack covariate column(s) %s: ranking by persona rates only",
                    ", ".join(missing))
        return False
    return True


def prepare(
    audience: Audience, posterior: Posterior, campaigns: list[Campaign], draws: np.ndarray
) -> Prepared:
    """Validate the inputs and align the posterior draws ``draws`` (indices) to the audience.

    Raises
    ------
    ValueError
        No campaigns, a duplicate campaign id, more than one control, draws that are not
        ``(n_draws>0, P, C)``, a membership matrix that does not fit the audience, or an id
        missing from the posterior.
    """
    if not campaigns:
        raise ValueError("no campaigns to prioritize")
    ids = [c.id for c in campaigns]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"duplicate campaign id {dup!r}")
    controls = [c for c in campaigns if c.control]
    if len(controls) > 1:
        raise ValueError(f"at most one control campaign, got {[c.id for c in controls]}")
    if posterior.draws.ndim != 3 or posterior.draws.shape[0] == 0:
        raise ValueError(f"posterior draws must be (n_draws>0, P, C), got {posterior.draws.shape}")
    n = len(audience.recipients)
    if audience.membership.shape != (n, len(audience.persona_ids)):
        raise ValueError(
            f"membership shape {audience.membership.shape} does not match "
            f"{n} recipients x {len(audience.persona_ids)} personas"
        )

    p_idx = _index_of(audience.persona_ids, posterior.persona_ids, "persona")
    sendable = sorted((c for c in campaigns if not c.control), key=lambda c: c.id)
    c_idx = _index_of([c.id for c in sendable], posterior.campaign_ids, "campaign")
    s_idx = draws

    covariate = uses_covariates(audience, posterior)
    source = posterior.eta if covariate else posterior.draws  # type: ignore[attr-defined]
    sub = np.asarray(source, dtype=np.float64)[s_idx][:, p_idx]  # (S, J, C_all)
    aligned = np.ascontiguousarray(sub[:, :, c_idx].transpose(2, 1, 0))  # (K, J, S)
    control = gamma = control_gamma = None
    if covariate:
        slopes = np.asarray(posterior.gamma, dtype=np.float64)[s_idx]  # type: ignore[attr-defined]
        gamma = np.ascontiguousarray(slopes[:, c_idx].transpose(1, 0, 2))  # (K, S, D)
    if controls:
        k0 = _index_of([controls[0].id], posterior.campaign_ids, "campaign")[0]
        control = np.ascontiguousarray(sub[:, :, k0].T)  # (J, S)
        if covariate:
            control_gamma = np.ascontiguousarray(slopes[:, k0])  # (S, D)
    logger.debug(
        "prioritizing %d recipients x %d campaigns over %d draws (control: %s)",
        n, len(sendable), len(s_idx), controls[0].id if controls else None,
    )
    return Prepared(
        draws=aligned,
        control=control,
        ids=tuple(c.id for c in sendable),
        value=np.array([c.value for c in sendable], dtype=np.float64),
        cost=np.array([c.cost for c in sendable], dtype=np.float64),
        gamma=gamma,
        control_gamma=control_gamma,
    )


def distinct_rows(membership: np.ndarray, x: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """First row of each distinct input and, per row, the position of its input among them.

    Rows are compared byte for byte (membership and covariates together).
    """
    parts = [np.ascontiguousarray(membership).view(np.uint8).reshape(len(membership), -1)]
    if x is not None and x.shape[1]:
        parts.append(np.ascontiguousarray(x).view(np.uint8).reshape(len(x), -1))
    raw = np.ascontiguousarray(np.hstack(parts) if len(parts) > 1 else parts[0])
    keys = raw.view(np.dtype((np.void, raw.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return first, inverse.ravel()


def _persona_group(weights: np.ndarray) -> np.ndarray:
    """Each row's persona when its membership is one-hot (exactly 1.0), else the persona count."""
    hard = ((weights == 1.0).sum(axis=1) == 1) & ((weights != 0.0).sum(axis=1) == 1)
    return np.where(hard, weights.argmax(axis=1), weights.shape[1])


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = a @ b``, always as a matrix-matrix product.

    NumPy hands a one-row product to a matrix-vector routine, which may add in another
    order; a second (copied) row keeps every row's result the same whatever the block size.
    """
    if len(a) == 1:
        out[...] = np.matmul(np.vstack([a, a]), b)[:1]
    else:
        np.matmul(a, b, out=out)


def _round(values: np.ndarray) -> np.ndarray:
    """Round to the output precision, normalising ``-0.0`` to ``0.0``."""
    return np.round(values, DECIMALS) + 0.0


class ChunkScorer:
    """Statistics for chunks of recipients, with working arrays reused between chunks.

    Not thread-safe: use one scorer per thread.

    Parameters
    ----------
    prep
        The aligned posterior.
    level
        Credible interval mass in (0, 1).
    block_rows
        Distinct input rows scored together.
    """

    def __init__(self, prep: Prepared, level: float, block_rows: int = BLOCK_ROWS) -> None:
        self.prep = prep
        self.level = level
        self.block_rows = block_rows
        shape = (block_rows, prep.n_draws)
        self._p = np.empty(shape)
        self._diff = np.empty(shape)
        self._control = np.empty(shape)
        self._shift = np.empty(shape) if prep.gamma is not None else None
        self._term = np.empty(shape) if prep.gamma is not None else None
        self._scratch = (np.empty(block_rows * prep.n_draws, dtype=np.float32),
                         np.empty(block_rows * prep.n_draws, dtype=np.uint32))

    def score(self, membership: np.ndarray, x: np.ndarray | None = None
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Rounded statistics of each distinct input row of a chunk.

        Parameters
        ----------
        membership
            ``(n, n_personas)`` membership rows.
        x
            ``(n, n_covariates)`` standardized covariates, with a covariate posterior.

        Returns
        -------
        tuple
            ``stats`` (name -> ``(n_distinct, n_sendable)``) and ``inverse`` (``(n,)``: the
            row of ``stats`` that holds each input row).
        """
        if self.prep.gamma is None:
            x = None
        first, inverse = distinct_rows(membership, x)
        weights = membership[first].astype(np.float64)
        # persona groups of one-hot rows first, mixed rows last, so blocks hold runs
        group = _persona_group(weights)
        order = np.argsort(group, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        first, weights, group = first[order], weights[order], group[order]
        inverse = position[inverse]
        xs = None if x is None else np.ascontiguousarray(x[first], dtype=np.float64)
        n_u, n_k = len(first), len(self.prep.ids)
        stats = {name: np.empty((n_u, n_k)) for name in FLOAT_COLUMNS}
        for start in range(0, n_u, self.block_rows):
            block = slice(start, min(start + self.block_rows, n_u))
            self._block(weights[block], None if xs is None else xs[block], group[block],
                        stats, block)
        return {name: _round(values) for name, values in stats.items()}, inverse

    def _mixture(self, weights: np.ndarray, rates: np.ndarray, gamma: np.ndarray | None,
                 x: np.ndarray | None, group: np.ndarray, out: np.ndarray) -> None:
        """Each row's response-probability draws into ``out`` ``(n, S)``.

        Without covariates: the membership-weighted mixture ``weights @ rates``. With them,
        each persona's term is ``sigmoid(logit + x . gamma)``; a one-hot row's only term is
        computed alone (the others add ``+0.0``), a mixed row sums its personas' terms.
        ``group`` (ascending) is each row's persona when one-hot, else the persona count.
        """
        if gamma is None or x is None:
            _matmul(weights, rates, out)
            return
        shift = self._shift[: len(weights)]  # type: ignore[index]
        _matmul(x, gamma.T, shift)
        n_personas = weights.shape[1]
        bounds = np.searchsorted(group, np.arange(n_personas + 1))
        for j in range(n_personas):
            rows = slice(bounds[j], bounds[j + 1])
            if rows.start == rows.stop:
                continue
            term = out[rows]  # the same operations as for a mixed row, in place
            np.add(rates[j][None, :], shift[rows], out=term)
            np.negative(term, out=term)
            np.exp(term, out=term)
            np.add(1.0, term, out=term)
            np.divide(1.0, term, out=term)
        mixed = slice(bounds[n_personas], len(weights))
        if mixed.start < mixed.stop:
            w, sh, acc = weights[mixed], shift[mixed], out[mixed]
            term = self._term[: mixed.stop - mixed.start]  # type: ignore[index]
            acc[...] = 0.0
            for j in np.flatnonzero(w.max(axis=0) > 0):
                # acc += w_j / (1 + exp(-(rate_j + shift))), operation by operation
                np.add(rates[j][None, :], sh, out=term)
                np.negative(term, out=term)
                np.exp(term, out=term)
                np.add(1.0, term, out=term)
                np.divide(w[:, j : j + 1], term, out=term)
                acc += term

    def _block(self, weights: np.ndarray, x: np.ndarray | None, group: np.ndarray,
               stats: dict[str, np.ndarray], rows: slice) -> None:
        """Fill ``stats[...][rows]`` for one block of distinct input rows."""
        prep, n = self.prep, len(weights)
        p, diff = self._p[:n], self._diff[:n]
        p_control = None
        if prep.control is not None:
            p_control = self._control[:n]
            self._mixture(weights, prep.control, prep.control_gamma, x, group, p_control)
        for k in range(len(prep.ids)):
            self._mixture(weights, prep.draws[k], None if prep.gamma is None else prep.gamma[k],
                          x, group, p)
            p_mean = p.mean(axis=1)
            if p_control is not None:
                np.subtract(p, p_control, out=diff)
                d_mean = diff.mean(axis=1)
                d_low, d_high = interval(diff, self.level, overwrite=True,
                                         scratch=self._scratch)
            p_low, p_high = interval(p, self.level, overwrite=True, scratch=self._scratch)
            if p_control is None:
                d_mean, d_low, d_high = p_mean, p_low, p_high
                stats["uplift"][rows, k] = 0.0
            else:
                stats["uplift"][rows, k] = d_mean
            value, cost = prep.value[k], prep.cost[k]
            stats["p_response"][rows, k] = p_mean
            stats["p_low"][rows, k] = p_low
            stats["p_high"][rows, k] = p_high
            stats["expected_value"][rows, k] = d_mean * value
            stats["priority"][rows, k] = d_mean * value - cost
            # value >= 0, so the per-draw priority is a monotone affine map of the per-draw
            # incremental probability and its quantiles are the mapped quantiles.
            stats["priority_low"][rows, k] = d_low * value - cost
            stats["priority_high"][rows, k] = d_high * value - cost
