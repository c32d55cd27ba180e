"""A constrained, fatigue-aware message plan: who gets which campaign in which week.

The value of each possible send comes from :class:`~personasim.ranking.plan_values.ResponseValues`
(the posterior's recipient-level response, the week's events and the recipient's fatigue). The
plan never breaks a constraint: the budget (sum of costs), the per-recipient limits per week and
over the horizon, the gap between two weeks in which one recipient is messaged, each campaign's
capacity, quiet weeks, consent (``allowed``), the holdout and, when a pacing is given, the
number of sends per persona, week and campaign (``quota``).

The allocator runs week by week (quiet weeks skipped) in *passes*. One pass:

1. every candidate pair ``(i, k)`` still possible this week (recipient eligible, campaign not
   already sent to ``i`` this week, capacity and quota left, cost within the budget left,
   consented, positive marginal value) is scored ``value - dual_price * cost`` and sorted by
   decreasing score (stable: ties by recipient order, then campaign order); a candidate with a
   score <= 0 is not sent;
2. each recipient keeps only their first (best) candidate;
3. each campaign keeps only as many as its remaining capacity, and each (persona, campaign)
   only as many as its quota, in that order;
4. the budget keeps the longest prefix whose cumulative cost fits.

What is kept is sent and the next pass starts, until a pass sends nothing. The dual price on
the budget (:func:`choose_dual_price`) keeps early weeks from spending the budget on sends that
are worth less per dollar than later ones.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from personasim.config.sections import PlanConfig
from personasim.core.types import CAMPAIGN_ID, RECIPIENT_ID
from personasim.ranking.plan_values import ResponseValues

logger = logging.getLogger(__name__)

#: The allocator's columns, in order (``priority`` is the marginal net value of the send).
PLAN_COLUMNS: tuple[str, ...] = (
    RECIPIENT_ID, "week", CAMPAIGN_ID, "channel", "p_response", "uplift", "expected_value",
    "cost", "priority",
)

#: Within this relative distance of the budget, spend is summed exactly (``math.fsum``).
BUDGET_MARGIN = 1e-9
#: Recipients the dual price is searched on (a seeded subsample of larger audiences).
PRICE_SAMPLE = 20_000
#: Dual prices tried, as multiples of the median value per dollar of the first week's sends.
PRICE_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)


@dataclass(frozen=True)
class PlanInputs:
    """What the allocator plans from.

    Attributes
    ----------
    recipient_ids : np.ndarray
        Recipient ids, shape (n,).
    campaign_ids : tuple[str, ...]
        Sendable campaign ids, length K.
    channels : tuple[str, ...]
        The channel of each campaign, length K.
    allowed : np.ndarray
        Consent, shape (n, K) bool: False means the pair may never be sent.
    values : ResponseValues
        The value of each send given the week and the recipient's fatigue.
    quota : np.ndarray or None
        ``(G, H, K)`` most sends per persona group, week and campaign (``inf``: no limit), or
        None for no pacing.
    doubt : np.ndarray or None
        ``(n, K)`` bool: pairs whose estimated value is <= 0 but whose evidence does not show
        that they fail to pay (``plan.hold_back: evidence``); a recipient's first message may
        go to such a pair on a token worth (:func:`token_worth`). None: never.
    """

    recipient_ids: np.ndarray
    campaign_ids: tuple[str, ...]
    channels: tuple[str, ...]
    allowed: np.ndarray
    values: ResponseValues
    quota: np.ndarray | None = None
    doubt: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, k = len(self.recipient_ids), len(self.campaign_ids)
        if np.shape(self.values.logit) != (n, k):
            raise ValueError(f"values cover {np.shape(self.values.logit)}, expected {(n, k)}")
        if np.shape(self.allowed) != (n, k):
            raise ValueError(f"allowed has shape {np.shape(self.allowed)}, expected {(n, k)}")
        if len(self.channels) != k:
            raise ValueError(f"channels need one entry per campaign ({k})")
        if len(set(self.campaign_ids)) != k:
            raise ValueError("campaign_ids must be unique")
        if self.doubt is not None and np.shape(self.doubt) != (n, k):
            raise ValueError(f"doubt has shape {np.shape(self.doubt)}, expected {(n, k)}")
        if self.quota is not None and np.shape(self.quota) != np.shape(self.values.week_shift):
            raise ValueError(f"quota has shape {np.shape(self.quota)}, expected "
                             f"{np.shape(self.values.week_shift)}")

    @property
    def horizon(self) -> int:
        """Weeks planned (1-based weeks ``1..horizon``)."""
        return self.values.horizon

    @property
    def cost(self) -> np.ndarray:
        """``(K,)`` cost of one send of each campaign."""
        return np.asarray(self.values.cost, dtype=float)

    def subset(self, rows: np.ndarray, share: float) -> PlanInputs:
        """The inputs for recipients ``rows``; quotas scaled by ``share``."""
        quota = None if self.quota is None else np.floor(self.quota * share)
        doubt = None if self.doubt is None else self.doubt[rows]
        return PlanInputs(self.recipient_ids[rows], self.campaign_ids, self.channels,
                          self.allowed[rows], self.values.subset(rows), quota, doubt)


def holdout_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    """A seeded random holdout: exactly ``round(fraction * n)`` recipients never messaged.

    Parameters
    ----------
    n : int
        Number of recipients.
    fraction : float
        Share held out, in [0, 1).
    seed : int
        Seed of the draw.

    Returns
    -------
    np.ndarray
        Bool mask of shape (n,), True for a held-out recipient.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    size = int(round(fraction * n))
    mask = np.zeros(n, dtype=bool)
    if size:
        mask[np.random.default_rng(seed).choice(n, size=size, replace=False)] = True
    return mask


TOKEN_VALUE = 1e-9
"""The worth a send gets on the benefit of the doubt: positive, below any paying send."""


def token_worth(marg: np.ndarray, doubt: np.ndarray) -> np.ndarray:
    """``marg`` with the pairs in ``doubt`` whose value is <= 0 given a token worth.

    The token is :data:`TOKEN_VALUE` scaled down by how far below zero the estimate is, so
    such sends go out after every paying one, the least bad first, and never against a
    positive dual price on the budget.
    """
    token = doubt & (marg <= 0)
    return np.where(token, TOKEN_VALUE / (1.0 + np.abs(marg)), marg)


def _rank_within(key: np.ndarray) -> np.ndarray:
    """Each element's rank among the elements with the same key, in the given order."""
    by_key = np.argsort(key, kind="stable")
    sorted_key = key[by_key]
    starts = np.searchsorted(sorted_key, sorted_key, side="left")
    rank = np.empty(len(key), dtype=np.int64)
    rank[by_key] = np.arange(len(key)) - starts
    return rank


@dataclass
class _Week:
    """The allocator's state within one week."""

    cap_left: np.ndarray  # (K,)
    quota_left: np.ndarray | None  # (G, K)
    budget_left: float
    budget: float
    spent: list[np.ndarray]  # the costs of every send so far

    def within_budget(self, ri: np.ndarray, ki: np.ndarray, cost: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Trim a pass so that the exactly rounded sum of all costs stays within the budget.

        The pass was cut by a float prefix sum; only near the budget can rounding matter, so
        only there is the exact sum taken.
        """
        if self.budget_left - float(cost[ki].sum()) > BUDGET_MARGIN * max(1.0, self.budget):
            return ri, ki
        while len(ki) and math.fsum(np.concatenate([*self.spent, cost[ki]])) > self.budget:
            ri, ki = ri[:-1], ki[:-1]
        return ri, ki


def _one_pass(score: np.ndarray, cand: np.ndarray, group: np.ndarray, cost: np.ndarray,
              state: _Week) -> tuple[np.ndarray, np.ndarray]:
    """One greedy pass: the (row, campaign) sends kept, in decreasing score."""
    ri, ki = np.nonzero(cand)  # row-major: recipient order, then campaign order
    order = np.argsort(-score[ri, ki], kind="stable")
    ri, ki = ri[order], ki[order]
    first = np.zeros(len(ri), dtype=bool)
    first[np.unique(ri, return_index=True)[1]] = True
    ri, ki = ri[first], ki[first]
    keep = _rank_within(ki) < state.cap_left[ki]
    if state.quota_left is not None:
        g = group[ri]
        n_k = len(cost)
        keep &= _rank_within(g * n_k + ki) < state.quota_left[g, ki]
    ri, ki = ri[keep], ki[keep]
    fits = np.cumsum(cost[ki]) <= state.budget_left
    n_fit = int(np.argmin(fits)) if not fits.all() else len(fits)
    return ri[:n_fit], ki[:n_fit]


def allocate(inputs: PlanInputs, config: PlanConfig, budget: float, holdout: np.ndarray,
             dual_price: float = 0.0, warn_empty: bool = True) -> pd.DataFrame:
    """The message plan: a greedy, week by week, that never breaks a constraint.

    Parameters
    ----------
    inputs : PlanInputs
        Values, consent and pacing.
    config : PlanConfig
        The constraints (its ``budget`` and ``holdout_fraction`` are resolved by the caller).
    budget : float
        Most total cost of the plan, >= 0.
    holdout : np.ndarray
        Bool mask (n,): recipients who never get a message.
    dual_price : float
        Value a dollar of budget must earn: a send is made only when its value exceeds
        ``dual_price`` times its cost.
    warn_empty : bool
        Log a warning when nothing can be sent.

    Returns
    -------
    pd.DataFrame
        One row per message, columns :data:`PLAN_COLUMNS`, sorted by week then recipient order
        (a recipient's messages within a week in the order they were chosen). Empty (with a
        warning) when nothing is sent.
    """
    values = inputs.values
    n, n_k = np.shape(values.logit)
    holdout = np.asarray(holdout, dtype=bool)
    if holdout.shape != (n,):
        raise ValueError(f"holdout has shape {holdout.shape}, expected {(n,)}")
    if not budget >= 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if not dual_price >= 0:
        raise ValueError(f"dual_price must be >= 0, got {dual_price}")
    allowed = np.asarray(inputs.allowed, dtype=bool) & ~holdout[:, None]
    max_h = config.max_per_horizon if config.max_per_horizon is not None else np.iinfo(np.int64).max
    cap = np.array([float(config.capacity.get(c, np.inf)) for c in inputs.campaign_ids])
    quiet = set(config.quiet_weeks)
    sent_total = np.zeros(n, dtype=np.int64)
    last_week = np.full(n, -(10**9), dtype=np.int64)
    fatigue = np.zeros(n)
    budget_left = float(budget)
    spent: list[np.ndarray] = []
    parts: list[tuple[np.ndarray, ...]] = []

    for week in range(1, inputs.horizon + 1):
        messaged = np.zeros(n, dtype=bool)
        if week not in quiet:
            quota = None if inputs.quota is None else np.array(inputs.quota[:, week - 1])
            state = _Week(cap, quota, budget_left, float(budget), spent)
            sent = _plan_week(inputs, config, week, allowed, sent_total, last_week, max_h,
                              fatigue, dual_price, state, parts)
            cap, budget_left = state.cap_left, state.budget_left
            messaged[sent] = True
        values.next_fatigue(fatigue, messaged, week)

    if not parts and warn_empty:
        logger.warning(
            "The plan is empty: nothing can be sent (budget %.6g, %d quiet weeks of %d, "
            "%d of %d recipients held out).",
            budget, len(quiet & set(range(1, inputs.horizon + 1))), inputs.horizon,
            int(holdout.sum()), n,
        )
    return _frame(inputs, parts)


def _plan_week(inputs: PlanInputs, config: PlanConfig, week: int, allowed: np.ndarray,
               sent_total: np.ndarray, last_week: np.ndarray, max_h: int,
               fatigue: np.ndarray, dual_price: float, state: _Week,
               parts: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """Plan one week in passes (appending to ``parts``); the rows messaged this week."""
    values, cost = inputs.values, inputs.cost
    n, n_k = allowed.shape
    open_r = (week - last_week > config.min_gap_weeks) & allowed.any(axis=1)
    sent_week = np.zeros((n, n_k), dtype=bool)
    count_week = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(open_r & (sent_total < max_h))
    if not len(rows):
        return rows
    marg = values.marginal(rows, week, fatigue)  # the one (rows, K) array a week keeps
    local = np.full(n, -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    while True:
        live = rows[(count_week[rows] < config.max_per_week) & (sent_total[rows] < max_h)]
        if not len(live):
            break
        at = local[live]
        worth = marg[at]
        if inputs.doubt is not None:
            worth = token_worth(worth, inputs.doubt[live] & (sent_total[live] == 0)[:, None])
        live_score = worth - dual_price * cost[None, :]
        cand = allowed[live] & ~sent_week[live] & (worth > 0) & (live_score > 0)
        cand &= (state.cap_left > 0)[None, :] & (cost <= state.budget_left)[None, :]
        if state.quota_left is not None:
            cand &= state.quota_left[values.group[live]] > 0
        if not cand.any():
            break
        ri, ki = state.within_budget(*_one_pass(live_score, cand, values.group[live], cost,
                                                 state), cost)
        if not len(ri):
            break
        r = live[ri]
        sent_week[r, ki] = True
        count_week[r] += 1
        sent_total[r] += 1
        last_week[r] = week
        np.subtract.at(state.cap_left, ki, 1.0)
        if state.quota_left is not None:
            np.subtract.at(state.quota_left, (values.group[r], ki), 1.0)
        state.budget_left -= float(cost[ki].sum())
        state.spent.append(cost[ki])
        chosen_p = values.response(r, week, fatigue)[np.arange(len(r)), ki]
        parts.append((r, np.full(len(r), week, dtype=np.int64), ki, chosen_p,
                      chosen_p - values.p_control[r], marg[local[r], ki]))
    return np.flatnonzero(count_week)


def _frame(inputs: PlanInputs, parts: list[tuple[np.ndarray, ...]]) -> pd.DataFrame:
    """The plan's rows from the allocator's parts, sorted by week then recipient order."""
    if parts:
        r, w, k, p, uplift, marg = (np.concatenate(c) for c in zip(*parts, strict=True))
    else:
        r, w, k = (np.zeros(0, dtype=np.int64) for _ in range(3))
        p, uplift, marg = (np.zeros(0) for _ in range(3))
    order = np.lexsort((r, w))  # stable: within (week, recipient) the order of choice
    r, w, k, p, uplift, marg = r[order], w[order], k[order], p[order], uplift[order], marg[order]
    value = np.asarray(inputs.values.value, dtype=float)[k]
    return pd.DataFrame(
        {
            RECIPIENT_ID: np.asarray(inputs.recipient_ids, dtype=object)[r],
            "week": w.astype(np.int64),
            CAMPAIGN_ID: np.asarray(inputs.campaign_ids, dtype=object)[k],
            "channel": np.asarray(inputs.channels, dtype=object)[k],
            "p_response": p,
            "uplift": uplift,
            "expected_value": uplift * value,
            "cost": inputs.cost[k],
            "priority": marg,
        },
        columns=list(PLAN_COLUMNS),
    )


def choose_dual_price(inputs: PlanInputs, config: PlanConfig, budget: float,
                      holdout: np.ndarray, seed: int) -> float:
    """The dual price on the budget that gives the most planned value.

    Tried on a seeded subsample of at most :data:`PRICE_SAMPLE` recipients (budget, capacities
    and quotas scaled to its share): each price in :data:`PRICE_GRID` times the median value per
    dollar of the unconstrained first week's sends. Zero when the budget does not bind.

    Returns
    -------
    float
        The dual price (dollars of value per dollar of cost).
    """
    n = len(inputs.recipient_ids)
    rows = np.arange(n)
    if n > PRICE_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(n, PRICE_SAMPLE, replace=False))
    share = len(rows) / n if n else 1.0
    sample = inputs.subset(rows, share)
    scaled = config.model_copy(update={
        "capacity": {c: int(np.floor(v * share)) for c, v in config.capacity.items()}})
    held = np.asarray(holdout, dtype=bool)[rows]
    free = allocate(sample, scaled, np.inf, held, warn_empty=False)
    if free.empty or float(free["cost"].sum()) <= budget * share:
        return 0.0
    paid = free[(free["cost"] > 0) & (free["priority"] > 0)]
    unit = float(np.median(paid["priority"] / paid["cost"])) if len(paid) else 0.0
    best, best_value = 0.0, -np.inf
    for multiple in PRICE_GRID:
        price = multiple * unit
        planned = float(allocate(sample, scaled, budget * share, held, price,
                                 warn_empty=False)["priority"].sum())
        logger.debug("dual price %.4g: planned value %.6g", price, planned)
        if planned > best_value + 1e-9:
            best, best_value = price, planned
    logger.info("dual price on the budget: %.4g dollars of value per dollar", best)
    return best
