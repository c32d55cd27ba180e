"""Per-recipient campaign ranking from the posterior response probabilities.

Each recipient's response-probability draws for campaign ``k`` are the membership-weighted
mixture of the persona draws, ``P_i[s, k] = sum_j membership[i, j] * draws[s, j, k]``. When
the posterior has recipient-covariate slopes (a
:class:`~personasim.bayes.covariates.CovariatePosterior`) and the recipients have those columns,
each persona term is the recipient's own rate, ``sigmoid(eta[s, j, k] + x_i . gamma[s, k])``. The
priority of sending ``k`` is its expected incremental value minus its cost: with a control
campaign, ``(P(resp | k) - P(resp | control)) * value_k - cost_k``; without one,
``P(resp | k) * value_k - cost_k``. Statistics are computed per draw and then summarised
(see :mod:`personasim.ranking.scoring_stats`).

Recipients are processed in chunks, in ``recipient_id`` order, so memory stays bounded for
audiences of millions of recipients: :func:`prioritized_chunks` yields the table a chunk at a
time (for writers that stream), :func:`prioritize` returns it whole. Chunks are scored on a
few threads with BLAS limited to one thread each; every chunk is computed the same way
whatever the threading, so the output is the same. Output floats are rounded to 6 decimals
so the CSV export is byte-stable for the same inputs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from threadpoolctl import threadpool_limits

from personasim.config.campaign import Campaign
from personasim.config.sections import PrioritizationConfig
from personasim.core.types import (
    CAMPAIGN_ID,
    CONSENT,
    PERSONA_ID,
    RECIPIENT_ID,
    Audience,
    Posterior,
)
from personasim.ranking.scoring_select import interval
from personasim.ranking.scoring_stats import FLOAT_COLUMNS, ChunkScorer, Prepared, prepare

logger = logging.getLogger(__name__)

#: Golden output schema, in column order.
PRIORITY_COLUMNS: tuple[str, ...] = (
    RECIPIENT_ID,
    PERSONA_ID,
    CAMPAIGN_ID,
    "rank",
    *FLOAT_COLUMNS,
    "action",
)
SEND = "send"
SUPPRESS = "suppress"


TABLE_DRAWS = 400
"""Posterior draws the table is computed from (an evenly spaced subset, :func:`draw_subset`);
the report reads the same ones, so its numbers are the table's."""


def draw_subset(n_draws: int, max_draws: int) -> np.ndarray:
    """Evenly spaced, deterministic indices of at most ``max_draws`` of ``n_draws`` draws.

    Parameters
    ----------
    n_draws
        Number of draws available.
    max_draws
        Upper bound on the number kept.

    Returns
    -------
    numpy.ndarray
        Sorted unique integer indices.
    """
    if max_draws < 1:
        raise ValueError(f"max_draws must be >= 1, got {max_draws}")
    if n_draws <= max_draws:
        return np.arange(n_draws, dtype=np.intp)
    return np.unique(np.round(np.linspace(0, n_draws - 1, max_draws)).astype(np.intp))


def equal_tailed(
    x: np.ndarray, level: float, overwrite: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed interval of each row of ``x`` (linear interpolation, as ``np.quantile``).

    The two order statistics each side of both quantiles are found exactly without a full
    float64 sort (see :func:`personasim.ranking.scoring_select.order_statistics`).

    Parameters
    ----------
    x
        ``(n_rows, n_draws)`` samples.
    level
        Interval mass in (0, 1).
    overwrite
        ``x`` may be reordered in place (saves memory and time).

    Returns
    -------
    tuple of numpy.ndarray
        Lower and upper bounds, each ``(n_rows,)``.
    """
    return interval(np.ascontiguousarray(x, dtype=np.float64), level, overwrite=overwrite)


def empty_frame() -> pd.DataFrame:
    """A zero-row frame with the golden schema and dtypes."""
    data: dict[str, pd.Series] = {}
    for name in PRIORITY_COLUMNS:
        if name == "rank":
            data[name] = pd.Series([], dtype=np.int32)
        elif name in FLOAT_COLUMNS:
            data[name] = pd.Series([], dtype=np.float64)
        else:
            data[name] = pd.Series([], dtype=str)
    return pd.DataFrame(data, columns=list(PRIORITY_COLUMNS))


def _text(values: pd.Series) -> pa.Array:
    """A column as a pyarrow string array, as ``astype(str)`` would give it."""
    values = values.astype(str)
    try:
        array = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError):  # e.g. lone surrogates
        array = None
    if isinstance(array, pa.ChunkedArray):  # pyarrow-backed pandas columns may be chunked
        array = array.combine_chunks()
    text = array is not None and (pa.types.is_string(array.type)
                                  or pa.types.is_large_string(array.type))
    if array is None or not text or array.null_count:
        array = pa.array([str(v) for v in values.to_numpy(dtype=object)],
                         type=pa.large_string())
    return array.cast(pa.string())


def _worker_count(n_chunks: int) -> int:
    """Scoring threads: one per available core (at most 4), never more than chunks."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4, n_chunks))


class _Chunks:
    """Everything the chunks share: inputs in ``recipient_id`` order and the aligned draws."""

    def __init__(self, audience: Audience, posterior: Posterior, prep: Prepared,
                 config: PrioritizationConfig) -> None:
        recipients = audience.recipients
        n = len(recipients)
        rid = _text(recipients[RECIPIENT_ID])
        # a stable sort of the UTF-8 bytes is a stable sort of the code points
        self.order = pc.sort_indices(rid).to_numpy(zero_copy_only=False)
        self.rid = rid.take(pa.array(self.order))
        personas = _text(recipients[PERSONA_ID]).dictionary_encode()
        self.pid_codes = personas.indices.to_numpy(zero_copy_only=False).astype(
            np.int32)[self.order]
        self.pid_labels = personas.dictionary
        if CONSENT in recipients.columns:
            raw_consent = recipients[CONSENT]
            if raw_consent.isna().any():
                logger.warning("%d recipients have no consent value; treated as no consent",
                               int(raw_consent.isna().sum()))
            consent = raw_consent.fillna(False).astype(bool).to_numpy(dtype=bool)
        else:
            logger.warning("audience has no %r column; treating every recipient as consenting",
                           CONSENT)
            consent = np.ones(n, dtype=bool)
        self.consent = consent[self.order]
        self.membership = audience.membership
        self.covariates = None
        if prep.gamma is not None:
            self.covariates = posterior.spec.transform(recipients)  # type: ignore[attr-defined]
        self.prep = prep
        self.level = config.credible_interval
        n_k = len(prep.ids)
        self.n_keep = n_k if config.top_n is None else min(config.top_n, n_k)
        self.campaign_labels = pa.array(list(prep.ids), type=pa.string())
        self.action_labels = pa.array([SEND, SUPPRESS], type=pa.string())
        self._local = threading.local()

    def table(self, start: int, stop: int) -> pa.Table:
        """The ranked rows of recipients ``start:stop`` (in ``recipient_id`` order)."""
        scorer = getattr(self._local, "scorer", None)
        if scorer is None:
            scorer = self._local.scorer = ChunkScorer(self.prep, self.level)
        rows = self.order[start:stop]
        x = None if self.covariates is None else self.covariates[rows]
        stats, inverse = scorer.score(self.membership[rows], x)
        n_c, n_keep = stop - start, self.n_keep
        # Campaigns are in ascending id order, so a stable sort breaks ties by id.
        ranked = np.argsort(-stats["priority"], axis=1, kind="stable")[:, :n_keep]
        columns: dict[str, pa.Array] = {}
        who = np.repeat(np.arange(n_c, dtype=np.int32), n_keep)
        columns[RECIPIENT_ID] = pa.DictionaryArray.from_arrays(
            pa.array(who), self.rid.slice(start, n_c))
        columns[PERSONA_ID] = pa.DictionaryArray.from_arrays(
            pa.array(np.repeat(self.pid_codes[start:stop], n_keep)), self.pid_labels)
        columns[CAMPAIGN_ID] = pa.DictionaryArray.from_arrays(
            pa.array(ranked[inverse].ravel().astype(np.int32)), self.campaign_labels)
        ranks = np.arange(1, n_keep + 1, dtype=np.int32)
        columns["rank"] = pa.DictionaryArray.from_arrays(
            pa.array(np.tile(np.arange(n_keep, dtype=np.int32), n_c)), pa.array(ranks))
        # each row's values are those of its distinct input: a dictionary when they repeat
        cell = (inverse[:, None] * n_keep + np.arange(n_keep)).ravel().astype(np.int32)
        repeated = len(ranked) * 4 <= n_c
        for name in FLOAT_COLUMNS:
            distinct = np.take_along_axis(stats[name], ranked, axis=1)
            columns[name] = (pa.DictionaryArray.from_arrays(pa.array(cell),
                                                            pa.array(distinct.ravel()))
                             if repeated else pa.array(distinct[inverse].ravel()))
        priority = np.take_along_axis(stats["priority"], ranked, axis=1).ravel()[cell]
        send = (priority > 0) & np.repeat(self.consent[start:stop], n_keep)
        columns["action"] = pa.DictionaryArray.from_arrays(
            pa.array(np.where(send, 0, 1).astype(np.int8)), self.action_labels)
        return pa.table(columns)


def prioritized_chunks(
    audience: Audience,
    posterior: Posterior,
    campaigns: list[Campaign],
    config: PrioritizationConfig,
    max_draws: int = TABLE_DRAWS,
    chunk_size: int = 20_000,
    workers: int | None = None,
) -> Iterator[pa.Table]:
    """The ranking table of :func:`prioritize`, a chunk of recipients at a time.

    Parameters
    ----------
    audience, posterior, campaigns, config, max_draws, chunk_size
        As for :func:`prioritize`.
    workers
        Scoring threads (default: one per available core, at most 4). The output does not
        depend on it.

    Yields
    ------
    pyarrow.Table
        Consecutive rows of the table (columns :data:`PRIORITY_COLUMNS`), ``chunk_size``
        recipients each. Text columns, ``rank``, and the statistics when recipients share
        inputs, are dictionary-encoded (:func:`plain_table` decodes them).

    Raises
    ------
    ValueError
        As :func:`prioritize`, before the first chunk.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    prep = prepare(audience, posterior, campaigns,
                   draw_subset(posterior.draws.shape[0], max_draws))
    n, n_k = len(audience.recipients), len(prep.ids)
    if n_k == 0:
        logger.warning("no sendable campaigns (only a control); nothing to rank")
    if n == 0 or n_k == 0:
        return iter(())
    return _generate(_Chunks(audience, posterior, prep, config), n, chunk_size, workers)


def _generate(chunks: _Chunks, n: int, chunk_size: int, workers: int | None
              ) -> Iterator[pa.Table]:
    """Score the chunks on ``workers`` threads, yielding them in order."""
    starts = list(range(0, n, chunk_size))
    n_workers = _worker_count(len(starts)) if workers is None else max(1, workers)
    sends = 0
    with threadpool_limits(limits=1, user_api="blas"):
        if n_workers == 1:
            for start in starts:
                table = chunks.table(start, min(start + chunk_size, n))
                sends += _sends(table)
                yield table
        else:
            with ThreadPoolExecutor(max_workers=n_workers,
                                    thread_name_prefix="personasim-rank") as pool:
                pending: deque[Future[pa.Table]] = deque()
                queue = iter(starts)
                for start in queue:
                    pending.append(pool.submit(chunks.table, start, min(start + chunk_size, n)))
                    if len(pending) > n_workers:
                        table = pending.popleft().result()
                        sends += _sends(table)
                        yield table
                while pending:
                    table = pending.popleft().result()
                    sends += _sends(table)
                    yield table
    logger.info("prioritized %d recipients x %d campaigns: %d sends", n, chunks.n_keep, sends)


def _sends(table: pa.Table) -> int:
    """Rows of a chunk whose action is ``send``."""
    return int(np.count_nonzero(table.column("action").combine_chunks().indices
                                .to_numpy() == 0))


def plain_table(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary-encoded columns decoded."""
    columns = [
        column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column
        for column in table.columns
    ]
    return pa.table(columns, names=table.column_names)


def prioritize(
    audience: Audience,
    posterior: Posterior,
    campaigns: list[Campaign],
    config: PrioritizationConfig,
    max_draws: int = TABLE_DRAWS,
    chunk_size: int = 20_000,
) -> pd.DataFrame:
    """Rank the sendable campaigns for every recipient by expected incremental value.

    Parameters
    ----------
    audience
        Recipients (``recipient_id``, ``persona_id``, ``consent``) and soft membership.
    posterior
        Persona x campaign response-probability draws; ids are matched by name.
    campaigns
        The campaigns; the control (if any) is the baseline and is never ranked.
    config
        ``top_n`` (campaigns kept per recipient) and ``credible_interval``.
    max_draws
        At most this many posterior draws are used (an evenly spaced subset).
    chunk_size
        Recipients processed per chunk (bounds memory).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PRIORITY_COLUMNS`, sorted by ``recipient_id`` then ``rank``.
        ``uplift`` is the mean of ``P - P_control`` and is ``0.0`` when there is no control.
        ``action`` is ``"send"`` only when ``priority > 0`` and the recipient consented
        (missing consent counts as no consent).

    Raises
    ------
    ValueError
        On a persona or campaign id missing from the posterior, a membership matrix that
        does not fit the audience, or bad ``max_draws``/``chunk_size``.
    """
    tables = [plain_table(t) for t in prioritized_chunks(
        audience, posterior, campaigns, config, max_draws, chunk_size)]
    if not tables:
        return empty_frame()
    return pa.concat_tables(tables).to_pandas()
