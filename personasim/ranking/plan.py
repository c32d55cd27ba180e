"""A constrained, fatigue-aware message plan built from estimated net values.

The input is, per recipient ``i`` and campaign ``k``, the estimated net value of one send
(``value x uplift - cost``). The plan says who gets which campaign in which week, and it never
breaks a constraint: the budget (sum of costs), the per-recipient limits per week and over the
horizon, the gap between two weeks in which one recipient is messaged, each campaign's
capacity, quiet weeks, consent (``allowed``) and the holdout.

Fatigue: each earlier send to a recipient takes the same share of the value part of the next
one, so the marginal net value of a send after ``s`` earlier sends to the same recipient is
``(net_value + cost) * (1 - fatigue) ** s - cost``. Only sends with a positive marginal value
are made.

The allocator is a greedy, week by week (quiet weeks skipped), in *passes*. One pass:

1. every candidate pair ``(i, k)`` still possible this week (recipient eligible, campaign not
   already sent to ``i`` this week, capacity left, cost within the budget left, consented,
   positive marginal value) is listed with NumPy and sorted by decreasing marginal value
   (stable: ties by recipient order, then campaign order);
2. each recipient keeps only their first (best) candidate;
3. each campaign keeps only as many as its remaining capacity, in that order (rank within the
   campaign by a stable sort);
4. the budget keeps the longest prefix whose cumulative cost fits.

What is kept is sent and the next pass starts, until a pass sends nothing. A pass sends at
least the best candidate; one cut short by a capacity or the budget removes that campaign or
cost level from the week, so a week takes about ``max_per_week + 2K`` passes, each one sort of
at most ``n x K`` candidates. A recipient's second message in a week competes after every
recipient's first (greedy by rounds). The budget is spent from the first week on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from personasim.config.sections import PlanConfig
from personasim.core.types import CAMPAIGN_ID, RECIPIENT_ID

logger = logging.getLogger(__name__)

#: The plan's columns, in order.
PLAN_COLUMNS: tuple[str, ...] = (RECIPIENT_ID, "week", CAMPAIGN_ID, "channel", "cost", "value")

#: Relative tolerance of the checks on sums of floats.
_TOL = 1e-9


@dataclass(frozen=True)
class PlanInputs:
    """What the allocator plans from.

    Attributes
    ----------
    recipient_ids : np.ndarray
        Recipient ids, shape (n,).
    net_value : np.ndarray
        Estimated net value of one send of campaign ``k`` to recipient ``i`` (value x uplift -
        cost), shape (n, K).
    cost : np.ndarray
        Cost of one send of each campaign, shape (K,), non-negative.
    campaign_ids : tuple[str, ...]
        Campaign ids, length K.
    channels : tuple[str, ...]
        The channel of each campaign, length K.
    allowed : np.ndarray
        Consent, shape (n, K) bool: False means the pair may never be sent.
    horizon : int
        Weeks planned (1-based weeks ``1..horizon``).
    fatigue : float
        Share of a send's value part lost for each earlier send to the same recipient, in
        [0, 1).
    """

    recipient_ids: np.ndarray
    net_value: np.ndarray
    cost: np.ndarray
    campaign_ids: tuple[str, ...]
    channels: tuple[str, ...]
    allowed: np.ndarray
    horizon: int
    fatigue: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.recipient_ids)
        k = len(self.campaign_ids)
        if np.shape(self.net_value) != (n, k):
            raise ValueError(f"net_value has shape {np.shape(self.net_value)}, expected {(n, k)}")
        if np.shape(self.allowed) != (n, k):
            raise ValueError(f"allowed has shape {np.shape(self.allowed)}, expected {(n, k)}")
        if np.shape(self.cost) != (k,) or len(self.channels) != k:
            raise ValueError(f"cost and channels need one entry per campaign ({k})")
        if not np.all(np.isfinite(self.net_value)) or not np.all(np.isfinite(self.cost)):
            raise ValueError("net_value and cost must be finite")
        if np.any(np.asarray(self.cost) < 0):
            raise ValueError("cost must be >= 0")
        if len(set(self.campaign_ids)) != k:
            raise ValueError("campaign_ids must be unique")
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if not 0.0 <= self.fatigue < 1.0:
            raise ValueError(f"fatigue must be in [0, 1), got {self.fatigue}")


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


def _empty_plan() -> pd.DataFrame:
    return pd.DataFrame(
        {
            RECIPIENT_ID: pd.Series([], dtype=object),
            "week": pd.Series([], dtype=np.int64),
            CAMPAIGN_ID: pd.Series([], dtype=object),
            "channel": pd.Series([], dtype=object),
            "cost": pd.Series([], dtype=float),
            "value": pd.Series([], dtype=float),
        },
        columns=list(PLAN_COLUMNS),
    )


def _capacity_left(inputs: PlanInputs, config: PlanConfig) -> np.ndarray:
    return np.array([float(config.capacity.get(c, np.inf)) for c in inputs.campaign_ids])


def _one_pass(
    marg: np.ndarray, cand: np.ndarray, cost: np.ndarray, cap_left: np.ndarray,
    budget_left: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One greedy pass: the (recipient, campaign, value) sends kept, in decreasing value."""
    ri, ki = np.nonzero(cand)  # row-major: recipient order, then campaign order
    v = marg[ri, ki]
    order = np.argsort(-v, kind="stable")
    ri, ki, v = ri[order], ki[order], v[order]
    # One send per recipient per pass: their first (best) candidate.
    first = np.zeros(len(ri), dtype=bool)
    first[np.unique(ri, return_index=True)[1]] = True
    ri, ki, v = ri[first], ki[first], v[first]
    # Capacity: the rank of each send within its campaign, in value order.
    by_campaign = np.argsort(ki, kind="stable")
    sorted_k = ki[by_campaign]
    starts = np.searchsorted(sorted_k, sorted_k, side="left")
    rank = np.empty(len(ki), dtype=np.int64)
    rank[by_campaign] = np.arange(len(ki)) - starts
    keep = rank < cap_left[ki]
    ri, ki, v = ri[keep], ki[keep], v[keep]
    # Budget: the longest prefix that fits.
    fits = np.cumsum(cost[ki]) <= budget_left
    n_fit = int(np.argmin(fits)) if not fits.all() else len(fits)
    return ri[:n_fit], ki[:n_fit], v[:n_fit]


def allocate(
    inputs: PlanInputs, config: PlanConfig, budget: float, holdout: np.ndarray
) -> pd.DataFrame:
    """The message plan: a greedy, week by week, that never breaks a constraint.

    Parameters
    ----------
    inputs : PlanInputs
        Net values, costs, consent, horizon and fatigue.
    config : PlanConfig
        The constraints (its ``budget`` and ``holdout_fraction`` are resolved by the caller).
    budget : float
        Most total cost of the plan, >= 0.
    holdout : np.ndarray
        Bool mask (n,): recipients who never get a message.

    Returns
    -------
    pd.DataFrame
        One row per message, columns :data:`PLAN_COLUMNS`, sorted by week then recipient order
        (a recipient's messages within a week in the order they were chosen); ``value`` is the
        marginal net value counted for the send. Empty (with a warning) when nothing is sent.
    """
    n, n_k = np.shape(inputs.net_value)
    holdout = np.asarray(holdout, dtype=bool)
    if holdout.shape != (n,):
        raise ValueError(f"holdout has shape {holdout.shape}, expected {(n,)}")
    if not budget >= 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    cost = np.asarray(inputs.cost, dtype=float)
    gain = np.asarray(inputs.net_value, dtype=float) + cost  # the value part of a send
    allowed = np.asarray(inputs.allowed, dtype=bool) & ~holdout[:, None]
    max_h = config.max_per_horizon if config.max_per_horizon is not None else np.iinfo(np.int64).max
    cap_left = _capacity_left(inputs, config)
    quiet = set(config.quiet_weeks)
    sent_total = np.zeros(n, dtype=np.int64)
    last_week = np.full(n, -(10**9), dtype=np.int64)
    budget_left = float(budget)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    for week in range(1, inputs.horizon + 1):
        if week in quiet:
            continue
        open_r = (sent_total < max_h) & (week - last_week > config.min_gap_weeks)
        open_r &= allowed.any(axis=1)
        sent_week = np.zeros((n, n_k), dtype=bool)
        count_week = np.zeros(n, dtype=np.int64)
        while True:
            rows = np.flatnonzero(
                open_r & (count_week < config.max_per_week) & (sent_total < max_h)
            )
            if not len(rows):
                break
            decay = (1.0 - inputs.fatigue) ** sent_total[rows]
            marg = gain[rows] * decay[:, None] - cost[None, :]
            cand = allowed[rows] & ~sent_week[rows] & (marg > 0)
            cand &= (cap_left > 0)[None, :] & (cost <= budget_left)[None, :]
            if not cand.any():
                break
            ri, ki, v = _one_pass(marg, cand, cost, cap_left, budget_left)
            if not len(ri):
                break
            r = rows[ri]
            sent_week[r, ki] = True
            count_week[r] += 1
            sent_total[r] += 1
            last_week[r] = week
            np.subtract.at(cap_left, ki, 1.0)
            budget_left -= float(cost[ki].sum())
            parts.append((r, np.full(len(r), week, dtype=np.int64), ki, v))

    if not parts:
        logger.warning(
            "The plan is empty: nothing can be sent (budget %.6g, %d quiet weeks of %d, "
            "%d of %d recipients held out).",
            budget, len(quiet & set(range(1, inputs.horizon + 1))), inputs.horizon,
            int(holdout.sum()), n,
        )
        return _empty_plan()
    r, w, ki, v = (np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.lexsort((r, w))  # stable: within (week, recipient) the order of choice
    r, w, ki, v = r[order], w[order], ki[order], v[order]
    campaign_ids = np.asarray(inputs.campaign_ids, dtype=object)
    channels = np.asarray(inputs.channels, dtype=object)
    return pd.DataFrame(
        {
            RECIPIENT_ID: np.asarray(inputs.recipient_ids)[r],
            "week": w,
            CAMPAIGN_ID: campaign_ids[ki],
            "channel": channels[ki],
            "cost": cost[ki],
            "value": v,
        },
        columns=list(PLAN_COLUMNS),
    )


def _example(ids: pd.Series, bad: np.ndarray) -> str:
    """How many rows are bad, and the first bad recipient."""
    return f"{int(bad.sum())} (e.g. recipient {ids[bad].iloc[0]!r})"


def _value_errors(plan: pd.DataFrame, ri: np.ndarray, ki: np.ndarray,
                  inputs: PlanInputs) -> list[str]:
    """Values that are not positive or not the fatigue-decayed marginal net value."""
    errors: list[str] = []
    value = plan["value"].to_numpy(dtype=float)
    if np.any(value <= 0):
        errors.append(f"{int((value <= 0).sum())} messages have a marginal value <= 0")
    frame = pd.DataFrame({"r": ri, "w": plan["week"].to_numpy(), "k": ki, "v": value})
    frame = frame.sort_values(["r", "w"], kind="stable")
    before = frame.groupby("r").cumcount().to_numpy()
    group = frame.groupby(["r", "w"], sort=False)
    start = before - group.cumcount().to_numpy()  # sends before the recipient's week
    size = group["r"].transform("size").to_numpy()
    r, k, v = frame["r"].to_numpy(), frame["k"].to_numpy(), frame["v"].to_numpy()
    cost = np.asarray(inputs.cost, dtype=float)[k]
    gain = np.asarray(inputs.net_value, dtype=float)[r, k] + cost
    ok = np.zeros(len(frame), dtype=bool)
    for offset in range(int(size.max(initial=0))):
        expected = gain * (1.0 - inputs.fatigue) ** (start + offset) - cost
        ok |= (offset < size) & np.isclose(v, expected, rtol=_TOL, atol=_TOL)
    if not ok.all():
        errors.append(
            f"{int((~ok).sum())} messages have a value that is not their fatigue-decayed "
            "marginal net value"
        )
    return errors


def check_plan(
    plan: pd.DataFrame, inputs: PlanInputs, config: PlanConfig, budget: float,
    holdout: np.ndarray,
) -> list[str]:
    """Every constraint the plan breaks, one sentence each.

    Parameters
    ----------
    plan : pd.DataFrame
        A plan with the columns :data:`PLAN_COLUMNS` (any row order).
    inputs : PlanInputs
        What the plan was built from.
    config : PlanConfig
        The constraints.
    budget : float
        The budget the plan must fit.
    holdout : np.ndarray
        Bool mask (n,) of the held-out recipients.

    Returns
    -------
    list[str]
        The violations; empty when the plan is valid.
    """
    missing = [c for c in PLAN_COLUMNS if c not in plan.columns]
    if missing:
        return [f"the plan lacks the columns {missing}"]
    if plan.empty:
        return []
    errors: list[str] = []
    ids = plan[RECIPIENT_ID].reset_index(drop=True)
    ri = pd.Index(inputs.recipient_ids).get_indexer(ids)
    ki = pd.Index(list(inputs.campaign_ids)).get_indexer(plan[CAMPAIGN_ID])
    if np.any(ri < 0):
        errors.append(f"{_example(ids, ri < 0)} messages go to unknown recipients")
    if np.any(ki < 0):
        errors.append(f"{int((ki < 0).sum())} messages name an unknown campaign")
    if errors:
        return errors
    week = plan["week"].to_numpy()
    cost = np.asarray(inputs.cost, dtype=float)
    if np.any(plan["channel"].to_numpy() != np.asarray(inputs.channels, dtype=object)[ki]):
        errors.append("some messages name a channel other than their campaign's")
    if not np.allclose(plan["cost"].to_numpy(dtype=float), cost[ki], rtol=_TOL, atol=_TOL):
        errors.append("some messages have a cost other than their campaign's")
    bad = (week < 1) | (week > inputs.horizon)
    if bad.any():
        errors.append(f"{_example(ids, bad)} messages fall outside weeks 1..{inputs.horizon}")
    bad = np.isin(week, list(config.quiet_weeks))
    if bad.any():
        errors.append(f"{_example(ids, bad)} messages fall in quiet weeks")
    bad = np.asarray(holdout, dtype=bool)[ri]
    if bad.any():
        errors.append(f"{_example(ids, bad)} messages go to held-out recipients")
    bad = ~np.asarray(inputs.allowed, dtype=bool)[ri, ki]
    if bad.any():
        errors.append(f"{_example(ids, bad)} messages go where consent is missing")
    keys = pd.DataFrame({"r": ri, "w": week, "k": ki})
    if keys.duplicated().any():
        errors.append(f"{int(keys.duplicated().sum())} messages repeat a campaign in one week")
    per_week = keys.groupby(["r", "w"]).size()
    if (per_week > config.max_per_week).any():
        errors.append(
            f"{int((per_week > config.max_per_week).sum())} recipient-weeks have more than "
            f"plan.max_per_week ({config.max_per_week}) messages"
        )
    per_recipient = keys.groupby("r").size()
    if config.max_per_horizon is not None and (per_recipient > config.max_per_horizon).any():
        errors.append(
            f"{int((per_recipient > config.max_per_horizon).sum())} recipients have more than "
            f"plan.max_per_horizon ({config.max_per_horizon}) messages"
        )
    weeks = per_week.reset_index()[["r", "w"]].sort_values(["r", "w"])
    gap = weeks["w"].diff().to_numpy()
    same = (weeks["r"].diff() == 0).to_numpy()
    bad_gap = same & (gap <= config.min_gap_weeks)
    if bad_gap.any():
        errors.append(
            f"{int(bad_gap.sum())} pairs of message weeks are closer than "
            f"plan.min_gap_weeks ({config.min_gap_weeks}) weeks apart"
        )
    sends = keys["k"].value_counts()
    for cid, limit in config.capacity.items():
        if cid in inputs.campaign_ids:
            used = int(sends.get(inputs.campaign_ids.index(cid), 0))
            if used > limit:
                errors.append(f"campaign {cid!r} is sent {used} times, above its capacity {limit}")
    total = float(plan["cost"].sum())
    if total > budget + _TOL * max(1.0, abs(budget)):
        errors.append(f"the plan costs {total:.6g}, above the budget {budget:.6g}")
    return errors + _value_errors(plan, ri, ki, inputs)
