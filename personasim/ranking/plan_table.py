"""The plan and the prioritization table as one truth.

The table scores every campaign for every recipient; the plan (:mod:`personasim.ranking.plan`)
decides which of those sends happen, and when. This module turns the table into the plan's
matrices, writes the plan's decision back into the table (``action``, ``week``), derives the
per-persona calendar from the plan, phrases each message's reason, and rebuilds the greedy
"send every positive campaign now" reading of the table as a schedule for comparison.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from personasim.behaviour.transition import EventCalendar
from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.config.sections import DynamicsConfig, EventConfig
from personasim.core.types import CAMPAIGN_ID, CONSENT, NO_SEND_ID, PERSONA_ID, RECIPIENT_ID
from personasim.ranking.plan import PlanInputs
from personasim.ranking.plan_reasons import plan_reasons
from personasim.ranking.plan_values import response_values
from personasim.ranking.prioritization import PRIORITY_COLUMNS, SEND, SUPPRESS

#: The columns of ``plan.csv``, in order.
PLAN_FILE_COLUMNS: tuple[str, ...] = (
    RECIPIENT_ID, PERSONA_ID, "week", CAMPAIGN_ID, "channel", "p_response", "uplift",
    "expected_value", "cost", "priority", "evidence", "reason",
)
#: The columns of a run's ``prioritization.csv``: the ranking's, and the plan's first week.
PLANNED_TABLE_COLUMNS: tuple[str, ...] = (*PRIORITY_COLUMNS, "week", "evidence")
#: The columns of ``calendar.csv``, in order.
CALENDAR_COLUMNS: tuple[str, ...] = (
    PERSONA_ID, "week", CAMPAIGN_ID, "messages", "share", "spend",
)
_DECIMALS = 6


@dataclass(frozen=True)
class TableMatrices:
    """The prioritization table as ``(recipient, campaign)`` matrices.

    Attributes
    ----------
    recipient_ids : np.ndarray
        ``(n,)`` ids in audience order.
    campaigns : tuple[Campaign, ...]
        The sendable campaigns, in column order (ascending id, as the table ranks them).
    p_response : np.ndarray
        ``(n, K)`` posterior mean response probability.
    p_control : np.ndarray
        ``(n,)`` posterior mean control rate (zeros without a control).
    allowed : np.ndarray
        ``(n, K)`` bool: the pair is in the table and the recipient consented to the channel.
    uplift_low, uplift_high : np.ndarray
        ``(n, K)`` bounds of the uplift's credible interval.
    """

    recipient_ids: np.ndarray
    campaigns: tuple[Campaign, ...]
    p_response: np.ndarray
    p_control: np.ndarray
    allowed: np.ndarray
    uplift_low: np.ndarray
    uplift_high: np.ndarray


def channel_consent(recipients: pd.DataFrame, channels: Sequence[str]) -> np.ndarray:
    """``(n, len(channels))`` consent: ``consent`` and, where present, ``consent_<channel>``.

    A missing value counts as no consent; without a ``consent`` column everyone consents.
    """
    n = len(recipients)
    base = (recipients[CONSENT].fillna(False).astype(bool).to_numpy()
            if CONSENT in recipients else np.ones(n, dtype=bool))
    out = np.repeat(base[:, None], len(channels), axis=1)
    for j, channel in enumerate(channels):
        column = f"{CONSENT}_{channel}"
        if column in recipients:
            out[:, j] &= recipients[column].fillna(False).astype(bool).to_numpy()
    return out


def table_matrices(table: pd.DataFrame, recipients: pd.DataFrame,
                   campaigns: Sequence[Campaign]) -> TableMatrices:
    """The table's rates as matrices over the recipients (audience order) and campaigns.

    Parameters
    ----------
    table : pd.DataFrame
        The prioritization table (one row per recipient and ranked campaign).
    recipients : pd.DataFrame
        The audience's recipients (``recipient_id``, consent columns).
    campaigns : Sequence[Campaign]
        Every campaign of the run (the control is the baseline).

    Returns
    -------
    TableMatrices
        A pair missing from the table (``prioritization.top_n``) is not allowed.
    """
    sendable = tuple(sorted((c for c in campaigns if not c.control), key=lambda c: c.id))
    ids = recipients[RECIPIENT_ID].astype(str).to_numpy(dtype=object)
    n, n_k = len(ids), len(sendable)
    row = pd.Index(ids).get_indexer(table[RECIPIENT_ID].astype(str))
    col = pd.Index([c.id for c in sendable]).get_indexer(table[CAMPAIGN_ID].astype(str))
    known = (row >= 0) & (col >= 0)
    row, col = row[known], col[known]
    p = np.zeros((n, n_k))
    uplift = np.zeros((n, n_k))
    present = np.zeros((n, n_k), dtype=bool)
    p[row, col] = table["p_response"].to_numpy(dtype=float)[known]
    uplift[row, col] = table["uplift"].to_numpy(dtype=float)[known]
    present[row, col] = True
    value = np.array([c.value for c in sendable], dtype=float)
    cost = np.array([c.cost for c in sendable], dtype=float)
    low, high = np.zeros((n, n_k)), np.zeros((n, n_k))
    priority_low = table["priority_low"].to_numpy(dtype=float)[known]
    priority_high = table["priority_high"].to_numpy(dtype=float)[known]
    with np.errstate(divide="ignore", invalid="ignore"):
        low[row, col] = np.where(value[col] > 0, (priority_low + cost[col]) / value[col], 0.0)
        high[row, col] = np.where(value[col] > 0, (priority_high + cost[col]) / value[col],
                                  0.0)
    has_control = any(c.control for c in campaigns)
    control = np.zeros(n)
    if has_control:
        first = np.argmax(present, axis=1)
        control = np.where(present.any(axis=1),
                           (p - uplift)[np.arange(n), first], 0.0).clip(0.0, 1.0)
    consent = channel_consent(recipients, [c.channel for c in sendable])
    return TableMatrices(ids, sendable, p, control, present & consent, low, high)


def pair_evidence(recipients: pd.DataFrame, campaign_ids: Sequence[str],
                  evidence: pd.DataFrame | None) -> np.ndarray:
    """``(n, K)`` evidence class of each recipient's persona x campaign cell.

    Every cell is ``tested`` when no evidence table is given.
    """
    n = len(recipients)
    if evidence is None:
        return np.full((n, len(campaign_ids)), "tested", dtype=object)
    grid = evidence.pivot(index=PERSONA_ID, columns=CAMPAIGN_ID, values="evidence")
    grid = grid.reindex(columns=list(campaign_ids)).fillna("untested")
    rows = grid.reindex(recipients[PERSONA_ID].astype(str).to_numpy()).fillna("untested")
    return rows.to_numpy(dtype=object)


def risk_adjusted(matrices: TableMatrices, evidence: np.ndarray, rule: str) -> np.ndarray:
    """``(n, K)`` response probabilities the plan values sends at, under ``plan.send_rule``.

    ``lower_bound`` values every send at the lower bound of its uplift; ``mean`` does so only
    for untested cells; ``explore`` keeps every mean (untested campaigns are capped instead).
    """
    lower = np.clip(matrices.p_control[:, None] + matrices.uplift_low, 0.0, 1.0)
    if rule == "lower_bound":
        use_lower = np.ones(evidence.shape, dtype=bool)
    elif rule == "mean":
        use_lower = evidence == "untested"
    else:
        use_lower = np.zeros(evidence.shape, dtype=bool)
    return np.where(use_lower, np.minimum(lower, matrices.p_response), matrices.p_response)


def plan_inputs_from_table(table: pd.DataFrame, recipients: pd.DataFrame,
                           campaigns: Sequence[Campaign], personas: Sequence[Persona],
                           dynamics: DynamicsConfig, events: Sequence[EventConfig],
                           horizon: int, evidence: pd.DataFrame | None = None,
                           send_rule: str = "mean", hold_back: str = "mean") -> PlanInputs:
    """The allocator's inputs from the prioritization table and the run's dynamics.

    ``evidence`` (:func:`personasim.ranking.evidence.evidence_table`) and ``send_rule``
    (``plan.send_rule``) decide which estimates are valued at their lower bound.

    Raises
    ------
    ValueError
        A recipient's ``persona_id`` is not one of ``personas``.
    """
    return plan_inputs_from_matrices(table_matrices(table, recipients, campaigns), recipients,
                                     personas, dynamics, events, horizon, evidence, send_rule,
                                     hold_back)


def plan_inputs_from_matrices(matrices: TableMatrices, recipients: pd.DataFrame,
                              personas: Sequence[Persona], dynamics: DynamicsConfig,
                              events: Sequence[EventConfig], horizon: int,
                              evidence: pd.DataFrame | None = None,
                              send_rule: str = "mean", hold_back: str = "mean"
                              ) -> PlanInputs:
    """The allocator's inputs from scored matrices (see :func:`plan_inputs_from_table`)."""
    kinds = pair_evidence(recipients, [c.id for c in matrices.campaigns], evidence)
    doubt = benefit_of_doubt(matrices, kinds) if hold_back == "evidence" else None
    matrices = replace(matrices, p_response=risk_adjusted(matrices, kinds, send_rule))
    group = pd.Index([p.id for p in personas]).get_indexer(recipients[PERSONA_ID].astype(str))
    if np.any(group < 0):
        raise ValueError("the audience has recipients of personas the posterior lacks")
    values = response_values(matrices.p_response, matrices.p_control, group,
                             matrices.campaigns, personas, dynamics, events, horizon)
    return PlanInputs(matrices.recipient_ids, tuple(c.id for c in matrices.campaigns),
                      tuple(c.channel for c in matrices.campaigns), matrices.allowed, values,
                      doubt=doubt)


def benefit_of_doubt(matrices: TableMatrices, evidence: np.ndarray) -> np.ndarray:
    """``(n, K)``: tested pairs whose mean value is <= 0 but whose interval's top pays.

    Such a send is not shown to fail to pay: ``plan.hold_back: evidence`` does not hold the
    recipient back for it (see :func:`personasim.ranking.plan.token_worth`).
    """
    value = np.array([c.value for c in matrices.campaigns], dtype=float)
    cost = np.array([c.cost for c in matrices.campaigns], dtype=float)
    mean = (matrices.p_response - matrices.p_control[:, None]) * value - cost
    top = matrices.uplift_high * value - cost
    return (mean <= 0) & (top > 0) & (evidence != "untested") & matrices.allowed


def concat_matrices(parts: Sequence[TableMatrices]) -> TableMatrices:
    """Matrices of consecutive recipient chunks, stacked in order."""
    first = parts[0]
    return TableMatrices(
        np.concatenate([m.recipient_ids for m in parts]), first.campaigns,
        np.concatenate([m.p_response for m in parts]),
        np.concatenate([m.p_control for m in parts]),
        np.concatenate([m.allowed for m in parts]),
        np.concatenate([m.uplift_low for m in parts]),
        np.concatenate([m.uplift_high for m in parts]),
    )


def finish_plan(plan: pd.DataFrame, persona_of: pd.Series, campaigns: Sequence[Campaign],
                events: Sequence[EventConfig], horizon: int,
                outcome: str = "response", evidence: pd.DataFrame | None = None
                ) -> pd.DataFrame:
    """The plan file's columns: persona, numbers rounded to 6 decimals, a reason per message.

    ``persona_of`` maps recipient id to persona id.
    """
    plan = plan.assign(**{PERSONA_ID: plan[RECIPIENT_ID].map(persona_of).astype(str)})
    for column in ("p_response", "uplift", "expected_value", "priority"):
        plan[column] = np.round(plan[column].to_numpy(dtype=float), _DECIMALS) + 0.0
    calendar = EventCalendar(events, [c.channel for c in campaigns])
    names = {w: calendar.active(w) for w in range(1, horizon + 1)}
    on = {(pid, w): names[w] for pid in plan[PERSONA_ID].unique() for w in names}
    labels = {c.id: c.offer or c.id for c in campaigns}
    plan["evidence"] = _row_evidence(plan, evidence)
    plan["reason"] = pd.Series(pd.arrays.ArrowExtensionArray(
        plan_reasons(plan, labels, on, outcome)), index=plan.index)
    return plan[list(PLAN_FILE_COLUMNS)].reset_index(drop=True)


def apply_plan(table: pd.DataFrame, plan: pd.DataFrame,
               evidence: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table with ``action`` set by the plan, ``week`` (first planned send) and ``evidence``.

    ``action`` is ``send`` exactly when the plan sends that campaign to that recipient;
    ``evidence`` is the class of the row's persona x campaign cell (``tested`` without an
    evidence table).
    """
    first = (plan.groupby([RECIPIENT_ID, CAMPAIGN_ID], sort=False)["week"].min()
             .rename("week").reset_index())
    merged = table.drop(columns=["week"], errors="ignore").merge(
        first, on=[RECIPIENT_ID, CAMPAIGN_ID], how="left", sort=False)
    merged["week"] = merged["week"].astype("Int64")
    action = np.where(merged["week"].notna().to_numpy(), SEND, SUPPRESS).astype(object)
    merged["action"] = pd.array(action, dtype=str)
    merged["evidence"] = _row_evidence(merged, evidence)
    return merged


def _row_evidence(rows: pd.DataFrame, evidence: pd.DataFrame | None) -> pd.Series:
    """Each row's persona x campaign evidence class."""
    if evidence is None:
        return pd.Series("tested", index=rows.index, dtype=str)
    kind = evidence.set_index([PERSONA_ID, CAMPAIGN_ID])["evidence"]
    keys = pd.MultiIndex.from_arrays([rows[PERSONA_ID].astype(str), rows[CAMPAIGN_ID]])
    return pd.Series(kind.reindex(keys).fillna("untested").to_numpy(), index=rows.index,
                     dtype=str)


def plan_calendar(plan: pd.DataFrame, sizes: Mapping[str, int], campaign_ids: Sequence[str],
                  horizon: int) -> pd.DataFrame:
    """``calendar.csv``: per persona, week and campaign, the messages, the share and the spend.

    Every persona in ``sizes`` (in that order) has one row per week for each campaign and
    one ``no_send`` row for the share messaged nothing that week.
    """
    counts = (plan.groupby([PERSONA_ID, "week", CAMPAIGN_ID]).agg(
        messages=("cost", "size"), spend=("cost", "sum")))
    messaged = plan.drop_duplicates([RECIPIENT_ID, "week"]).groupby([PERSONA_ID, "week"]).size()
    rows = []
    for persona_id, size in sizes.items():
        for week in range(1, horizon + 1):
            for cid in campaign_ids:
                key = (persona_id, week, cid)
                messages = int(counts["messages"].get(key, 0))
                rows.append((persona_id, week, cid, messages, messages / size if size else 0.0,
                             float(counts["spend"].get(key, 0.0))))
            reached = int(messaged.get((persona_id, week), 0))
            rows.append((persona_id, week, NO_SEND_ID, size - reached,
                         (size - reached) / size if size else 0.0, 0.0))
    frame = pd.DataFrame(rows, columns=list(CALENDAR_COLUMNS))
    frame["share"] = frame["share"].round(_DECIMALS)
    frame["spend"] = frame["spend"].round(_DECIMALS)
    return frame


def greedy_schedule(table: pd.DataFrame, costs: Mapping[str, float], budget: float,
                    horizon: int) -> pd.DataFrame:
    """Today's greedy reading of the table, as a schedule one message per recipient a week.

    Every row with ``priority > 0`` (and consent, as the table marks ``send``) is sent: a
    recipient's best campaign in week 1, the next in week 2, and so on; within a week the
    sends go out in decreasing priority until the budget is spent.

    Returns
    -------
    pd.DataFrame
        ``recipient_id, week, campaign_id, cost`` rows within the budget.
    """
    sends = table[(table["action"] == SEND) & (table["priority"] > 0)]
    sends = sends.sort_values([RECIPIENT_ID, "rank"], kind="stable")
    week = sends.groupby(RECIPIENT_ID, sort=False).cumcount().to_numpy() + 1
    cost = sends[CAMPAIGN_ID].map(costs).to_numpy(dtype=float)
    frame = pd.DataFrame({RECIPIENT_ID: sends[RECIPIENT_ID].to_numpy(), "week": week,
                          CAMPAIGN_ID: sends[CAMPAIGN_ID].to_numpy(), "cost": cost,
                          "priority": sends["priority"].to_numpy(dtype=float)})
    frame = frame[frame["week"] <= horizon]
    frame = frame.sort_values(["week", "priority"], ascending=[True, False], kind="stable")
    within = np.cumsum(frame["cost"].to_numpy()) <= budget + 1e-9
    return frame[within].drop(columns="priority").reset_index(drop=True)
