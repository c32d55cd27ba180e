"""Stage: held-out evaluation, when part of the customers was held out.

:func:`evaluate_heldout` scores the prioritization table on the held-out customers against
fixed arms, random and a T-learner (``offline_evaluation.csv``), draws the uplift curves
(``qini.csv``, ``qini.png``) and checks the calibrated simulation against the held-out rates
(``sim_to_real.csv``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.audience.profiles import default_features
from personasim.config.persona import Persona
from personasim.config.schema import ExperimentConfig
from personasim.core import run_layout as files
from personasim.core.csv_files import write_csv
from personasim.core.types import CAMPAIGN_ID, PERSONA_ID, RECIPIENT_ID, Posterior
from personasim.evaluation.budget_targeting import (
    BUDGET_SHARES,
    budget_policies,
    budget_rows,
    training_best_arm,
)
from personasim.evaluation.offline import (
    TABLE,
    HeldOut,
    best_arm,
    fixed_policies,
    one_hot,
    policy_values,
    qini_coefficient,
    t_learner,
    uplift_curve,
)
from personasim.evaluation.sim_to_real import SimulationSettings, sim_to_real
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import stage_seed
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.inputs import Inputs
from personasim.outputs.evaluation_plots import (
    plot_budget_targeting,
    plot_qini,
    plot_sim_to_real,
)
from personasim.ranking.plan import allocate, choose_dual_price
from personasim.ranking.plan_table import plan_inputs_from_table

logger = logging.getLogger(__name__)

STAGE = Stage("heldout_evaluation", "Held-out evaluation")

METRICS = {"visit": ("visit", False), "spend": ("spend", False), "net_value": ("value", True)}
"""Reported metric -> (held-out outcome, net of e-mail cost)."""
CURVE_METRICS = ("visit", "net_value")
RANK1_TO_ALL = "first_choice_for_all"
"""The policy that sends every customer the table's rank-1 campaign."""


@dataclass(frozen=True)
class HeldOutResult:
    """What the held-out evaluation produced."""

    evaluation: pd.DataFrame
    curves: pd.DataFrame
    sim_to_real: pd.DataFrame
    operating: dict[str, float]
    summary: dict[str, Any]
    budgets: pd.DataFrame


def _outcome(config: ExperimentConfig, value: float) -> tuple[str, float, bool]:
    """``(column, dollars per unit, binary?)`` of the config's outcome."""
    outcome = config.dataset.outcome if config.dataset is not None else "outcome"
    if outcome == "spend":
        return "spend", 1.0, False
    return outcome, value, True


def _table_policy(table: pd.DataFrame, ids: np.ndarray, campaign_ids: tuple[str, ...],
                  control: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The table as a policy on ``ids``: chosen arm, rank-1 arm and its priority.

    The chosen arm is the campaign of the customer's first planned message (the table's
    ``send`` row with the earliest ``week``), or the control when the plan sends nothing.
    """
    top = table[table["rank"] == 1].set_index(RECIPIENT_ID).reindex(ids)
    if top[CAMPAIGN_ID].isna().any():
        raise ValueError("the prioritization table lacks some held-out customers")
    index = {c: k for k, c in enumerate(campaign_ids)}
    rank1 = top[CAMPAIGN_ID].map(index).to_numpy(np.int64)
    sends = table[table["action"] == "send"]
    if "week" in sends:
        sends = sends.sort_values(["week", "rank"], kind="stable")
    first = sends.drop_duplicates(RECIPIENT_ID).set_index(RECIPIENT_ID)[CAMPAIGN_ID]
    planned = first.reindex(ids).map(index)
    chosen = np.where(planned.notna(), planned.fillna(control), control).astype(np.int64)
    return chosen, rank1, top["priority"].to_numpy(np.float64)


def plan_choices(config: ExperimentConfig, inputs: Inputs, personas: list[Persona],
                 table: pd.DataFrame, data: HeldOut, seed: int) -> dict[float, np.ndarray]:
    """The plan's arm for each held-out customer at each budget of :data:`BUDGET_SHARES`.

    The plan is allocated over the held-out customers alone, one e-mail each at most, with a
    budget of the share times their number times the cheapest send.
    """
    assert inputs.recipients is not None
    ids = pd.Index(data.recipient_ids)
    recipients = inputs.recipients.set_index(RECIPIENT_ID).loc[ids].reset_index()
    rows = table[table[RECIPIENT_ID].isin(ids)]
    plan_inputs = plan_inputs_from_table(rows, recipients, inputs.campaigns, personas,
                                         config.dynamics, inputs.events,
                                         config.simulation.horizon)
    constraints = config.plan.model_copy(update={"max_per_horizon": 1, "max_per_week": 1,
                                                 "holdout_fraction": 0.0})
    unit = float(plan_inputs.cost.min())
    index = {c: k for k, c in enumerate(data.campaign_ids)}
    held = np.zeros(data.n, dtype=bool)
    out = {}
    for share in BUDGET_SHARES:
        budget = share * data.n * unit if unit > 0 else 0.0
        price = choose_dual_price(plan_inputs, constraints, budget, held, seed)
        plan = allocate(plan_inputs, constraints, budget, held, price, warn_empty=False)
        chosen = pd.Series(data.control, index=ids, dtype=np.int64)
        first = plan.drop_duplicates(RECIPIENT_ID)
        chosen[first[RECIPIENT_ID].to_numpy()] = first[CAMPAIGN_ID].map(index).to_numpy()
        out[share] = chosen.to_numpy(np.int64)
    return out


def evaluate_heldout(config: ExperimentConfig, inputs: Inputs, posterior: Posterior,
                     table: pd.DataFrame, seed: int, replications: int = 200,
                     personas: list[Persona] | None = None,
                     exclude: set[str] | None = None) -> HeldOutResult:
    """Score the table and the baselines on ``inputs.holdout`` and run the sim-to-real check.

    Customers in ``exclude`` (the plan's own holdout, who never get a message so that lift
    can be measured after launch) are left out of the policy comparison, for every policy
    alike; the sim-to-real check keeps them.
    """
    assert inputs.holdout is not None and inputs.recipients is not None
    campaign_ids = tuple(c.id for c in inputs.campaigns)
    control_id = next(c.id for c in inputs.campaigns if c.control)
    sendable = [c for c in inputs.campaigns if not c.control]
    column, unit, binary = _outcome(config, sendable[0].value)
    costs = {c.id: c.cost for c in sendable}
    outcomes = {"visit": "visit", "spend": "spend", "value": (column, unit)}
    rows = inputs.holdout
    if exclude:  # the plan's own holdout never gets a message by design: judge the others
        rows = rows[~rows[RECIPIENT_ID].astype(str).isin(exclude)]
    data = HeldOut.from_table(rows, campaign_ids, control_id, costs, outcomes)
    k = len(campaign_ids)
    rngs = np.random.SeedSequence(seed).spawn(3)

    policies = {}
    chosen, rank1, priority = _table_policy(table, data.recipient_ids, campaign_ids,
                                            data.control)
    policies[TABLE] = one_hot(chosen, k)
    policies[RANK1_TO_ALL] = one_hot(rank1, k)  # the first-ranked e-mail, held back from no one
    attributes = inputs.recipients.set_index(RECIPIENT_ID)
    features = [f for f in (config.synthesis.features or default_features(inputs.recipients))
                if f != PERSONA_ID]
    train = inputs.ab_table
    assert train is not None
    expected = t_learner(
        attributes.loc[train[RECIPIENT_ID], features].reset_index(drop=True),
        train[CAMPAIGN_ID].map({c: a for a, c in enumerate(campaign_ids)}).to_numpy(),
        train[column].to_numpy(np.float64),
        attributes.loc[data.recipient_ids, features].reset_index(drop=True), k,
        int(rngs[0].generate_state(1)[0] % 2**31), binary,
    )
    cost_vector = data.costs
    t_choice, t_best, t_gain = best_arm(expected, unit, cost_vector, data.control)
    policies["t_learner"] = one_hot(t_choice, k)
    policies |= fixed_policies(data, int(rngs[1].generate_state(1)[0]))
    evaluation = policy_values(policies, data, METRICS)
    best = training_best_arm(
        train[CAMPAIGN_ID].map({c: a for a, c in enumerate(campaign_ids)}).to_numpy(),
        train[column].to_numpy(np.float64), data.costs, unit, data.control)
    budgets = pd.concat([budget_rows(share, budget_policies(choice, t_gain, t_best, best, data),
                                     data, {m: METRICS[m] for m in CURVE_METRICS})
                         for share, choice in plan_choices(
                             config, inputs, personas or inputs.personas, table, data,
                             int(rngs[1].generate_state(2)[1])).items()],
                        ignore_index=True)

    curves = []
    for metric in CURVE_METRICS:
        outcome, net = METRICS[metric]
        for name, score, rec in ((TABLE, priority, rank1), ("t_learner", t_gain, t_best)):
            curve = uplift_curve(score, rec, data, outcome, net)
            curves.append(curve.assign(policy=name, metric=metric))
    curves_frame = pd.concat(curves, ignore_index=True)[
        ["policy", "metric", "share_targeted", "gain"]]
    operating = {TABLE: float((chosen != data.control).mean()),
                 "t_learner": float((t_choice != data.control).mean())}

    settings = SimulationSettings(config.simulation.engine, config.simulation.response_model,
                                  config.dynamics, inputs.events)
    sim = sim_to_real(inputs.personas, posterior, inputs.campaigns, inputs.holdout, settings,
                      int(rngs[2].generate_state(1)[0]), replications)
    summary = _summary(evaluation, curves_frame, sim, data.n)
    summary["plan_holdout_left_out"] = int(len(inputs.holdout) - data.n)
    summary["budget_targeting"] = budgets.round(6).to_dict(orient="records")
    return HeldOutResult(evaluation, curves_frame, sim, operating, summary, budgets)


def _summary(evaluation: pd.DataFrame, curves: pd.DataFrame, sim: pd.DataFrame,
             n: int) -> dict[str, Any]:
    """The headline numbers, for the manifest."""
    out: dict[str, Any] = {"customers": n, "sim_to_real_inside_share":
                           round(float(sim["inside"].mean()), 4), "cells": len(sim)}
    arms = evaluation[evaluation["policy"].str.endswith("_to_all")
                      | (evaluation["policy"] == "nothing")]
    for metric, rows in evaluation.groupby("metric", sort=False):
        by = rows.set_index("policy")
        best = arms[arms["metric"] == metric].sort_values("value").iloc[-1]["policy"]
        out[str(metric)] = {
            "table": [round(float(by.loc[TABLE, c]), 5) for c in ("value", "ci_low", "ci_high")],
            "best_single_arm": best,
            "table_minus_best_arm": [round(float(by.loc[best, c]), 5) for c in
                                     ("table_advantage", "advantage_low", "advantage_high")],
            "table_minus_t_learner": [round(float(by.loc["t_learner", c]), 5) for c in
                                      ("table_advantage", "advantage_low", "advantage_high")],
            "first_choice_for_all": [round(float(by.loc[RANK1_TO_ALL, c]), 5)
                                    for c in ("value", "ci_low", "ci_high")],
        }
    for (policy, metric), curve in curves.groupby(["policy", "metric"], sort=False):
        out.setdefault("qini_coefficient", {})[f"{policy}/{metric}"] = round(
            qini_coefficient(curve), 6)
    return out


def write_heldout(out: Path, result: HeldOutResult, plots: bool) -> None:
    """Write the evaluation tables (and plots) into the run directory."""
    write_csv(result.evaluation, files.OFFLINE_EVALUATION.path(out))
    write_csv(result.curves, files.QINI.path(out))
    write_csv(result.sim_to_real, files.SIM_TO_REAL.path(out))
    write_csv(result.budgets.round(6), files.BUDGET_TARGETING.path(out))
    if plots:
        plot_budget_targeting(result.budgets, files.BUDGET_TARGETING_PLOT.path(out))
        plot_qini(result.curves, files.QINI_PLOT.path(out), result.operating)
        plot_sim_to_real(result.sim_to_real, files.SIM_TO_REAL_PLOT.path(out))


def run(ctx: RunContext, advance: Advance, inputs: Inputs, posterior: Posterior,
        table: pd.DataFrame, personas: list[Persona] | None = None,
        exclude: set[str] | None = None) -> HeldOutResult:
    """Score the table on the held-out customers and write the evaluation files."""
    result = evaluate_heldout(ctx.config, inputs, posterior, table,
                              stage_seed(ctx.config.seed, "heldout"), personas=personas,
                              exclude=exclude)
    write_heldout(ctx.out, result, ctx.config.output.plots)
    return result
