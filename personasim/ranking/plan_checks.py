"""Checks of a message plan: every constraint it breaks, one sentence each.

The allocator (:mod:`personasim.ranking.plan`) is built never to break a constraint; these
checks are the independent second opinion the plan stage and the tests run on its output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from personasim.config.sections import PlanConfig
from personasim.core.types import CAMPAIGN_ID, RECIPIENT_ID
from personasim.ranking.plan import PLAN_COLUMNS, PlanInputs

#: Relative tolerance of the checks on sums of floats.
_TOL = 1e-9


def _example(ids: pd.Series, bad: np.ndarray) -> str:
    """How many rows are bad, and the first bad recipient."""
    return f"{int(bad.sum())} (e.g. recipient {ids[bad].iloc[0]!r})"


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
    cost = inputs.cost
    if np.any(plan["channel"].to_numpy() != np.asarray(inputs.channels, dtype=object)[ki]):
        errors.append("some messages name a channel other than their campaign's")
    if not np.allclose(plan["cost"].to_numpy(dtype=float), cost[ki], rtol=_TOL, atol=_TOL):
        errors.append("some messages have a cost other than their campaign's")
    if inputs.quota is not None:
        errors += _quota_errors(ri, week, ki, inputs)
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


def require_valid(plan: pd.DataFrame, inputs: PlanInputs, config: PlanConfig, budget: float,
                  holdout: np.ndarray) -> None:
    """Raise ``RuntimeError`` listing every constraint ``plan`` breaks (a bug, never input).

    The allocator is built never to break one; this is the independent check every plan
    written passes.
    """
    errors = check_plan(plan, inputs, config, budget, holdout)
    if errors:
        raise RuntimeError("the plan breaks a constraint: " + "; ".join(errors))


def _quota_errors(ri: np.ndarray, week: np.ndarray, ki: np.ndarray,
                  inputs: PlanInputs) -> list[str]:
    """Persona-week-campaign cells sent more often than the pacing allows."""
    assert inputs.quota is not None
    group = inputs.values.group[ri]
    cells = pd.DataFrame({"g": group, "w": week, "k": ki}).value_counts()
    g, w, k = (cells.index.get_level_values(i).to_numpy() for i in range(3))
    over = cells.to_numpy() > inputs.quota[g, w - 1, k]
    if over.any():
        return [f"{int(over.sum())} persona-week-campaign cells are sent more than their pacing"]
    return []


def _value_errors(plan: pd.DataFrame, ri: np.ndarray, ki: np.ndarray,
                  inputs: PlanInputs) -> list[str]:
    """Priorities that are not positive or not the marginal value replayed from the plan."""
    values = inputs.values
    priority = plan["priority"].to_numpy(dtype=float)
    errors: list[str] = []
    unpaid = priority <= 0
    if inputs.doubt is not None:  # a first message may go out on the benefit of the doubt
        first = (plan.groupby(RECIPIENT_ID, sort=False).cumcount() == 0).to_numpy()
        unpaid &= ~(first & inputs.doubt[ri, ki])
    if np.any(unpaid):
        errors.append(f"{int(unpaid.sum())} messages have a marginal value <= 0")
    week = plan["week"].to_numpy()
    n = len(inputs.recipient_ids)
    fatigue = np.zeros(n)
    expected = np.full(len(plan), np.nan)
    for w in range(1, inputs.horizon + 1):
        at = np.flatnonzero(week == w)
        if len(at):
            rows, inverse = np.unique(ri[at], return_inverse=True)
            marg = values.marginal(rows, w, fatigue)
            expected[at] = marg[inverse.ravel(), ki[at]]
        messaged = np.zeros(n, dtype=bool)
        messaged[ri[at]] = True
        values.next_fatigue(fatigue, messaged, w)
    bad = ~np.isclose(priority, expected, rtol=1e-6, atol=1e-9)
    if bad.any():
        errors.append(f"{int(bad.sum())} messages have a priority that is not their marginal "
                      "net value at that week and fatigue")
    return errors
