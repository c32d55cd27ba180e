"""Stage: the message plan, the one answer to "whom do we contact, with what, and when".

The plan is built from what the run learned: the posterior's recipient-level response (the
prioritization table), the fatigue and events of the dynamics, and the trained policy (whose
calendar can set the pacing, see ``plan.pacing``). It writes ``plan.csv``/``plan.parquet``,
``holdout.csv``, the plan's ``calendar.csv`` and, when the audience is simulated,
``plan_evaluation.csv`` (the plan played in the simulation beside the alternatives). The
prioritization table it returns has the plan's ``action`` and ``week``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from personasim.config.schema import ExperimentConfig
from personasim.core import run_layout as files
from personasim.core.csv_files import write_csv
from personasim.core.types import CAMPAIGN_ID, PERSONA_ID, RECIPIENT_ID, ABResults
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import evaluation_seeds, stage_seed, validation_seeds
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.evaluation import PolicyEvaluation
from personasim.experiments.stages.inference import InferenceResult
from personasim.experiments.stages.inputs import Inputs
from personasim.experiments.stages.plan_evaluation import (
    evaluation_table,
    play_schedules,
    policy_episodes,
)
from personasim.experiments.stages.policy import deployed_policy
from personasim.experiments.stages.ranking import Ranking
from personasim.experiments.stages.training import EnvFactory
from personasim.outputs.plan_plots import plot_plan, plot_plan_evaluation
from personasim.outputs.writers import export_table
from personasim.policies.calendar import campaign_calendar
from personasim.policies.comparison import TrainedPolicies
from personasim.ranking.evidence import evidence_table, evidence_warnings
from personasim.ranking.plan import PlanInputs, allocate, choose_dual_price, holdout_mask
from personasim.ranking.plan_checks import require_valid
from personasim.ranking.plan_table import (
    apply_plan,
    finish_plan,
    greedy_schedule,
    plan_calendar,
    plan_inputs_from_table,
)

logger = logging.getLogger(__name__)

STAGE = Stage("plan", "Planning messages")
_DECIMALS = 6


@dataclass(frozen=True)
class PlanResult:
    """The plan, the table that follows it, and what the manifest and report say of it."""

    plan: pd.DataFrame
    table: pd.DataFrame
    calendar: pd.DataFrame
    evaluation: pd.DataFrame | None
    summary: dict[str, Any]
    holdout: pd.DataFrame


def _policy_quota(ctx: RunContext, make_env: EnvFactory, trained: TrainedPolicies,
                  evaluated: PolicyEvaluation, inputs: PlanInputs,
                  persona_ids: list[str]) -> np.ndarray | None:
    """The deployed policy's sends per persona, week and campaign (validation episodes)."""
    config = ctx.config
    try:
        _, policy = deployed_policy(trained, evaluated.protocol, config.policy.algorithm)
    except (ValueError, KeyError):
        return None
    seeds = validation_seeds(config) or evaluation_seeds(config)
    detail = campaign_calendar(make_env, policy, seeds, config.policy.algorithm)
    quota = np.zeros(np.shape(inputs.values.week_shift))
    group = {p: g for g, p in enumerate(persona_ids)}
    column = {c: k for k, c in enumerate(inputs.campaign_ids)}
    for row in detail.itertuples(index=False):
        k = column.get(row.campaign_id)
        if k is not None and row.persona_id in group and row.week <= quota.shape[1]:
            quota[group[row.persona_id], row.week - 1, k] = np.floor(row.recipients)
    return quota


def _plan_inputs(ctx: RunContext, inputs: Inputs, bayes: InferenceResult,
                 ranked: Ranking, evidence: pd.DataFrame) -> PlanInputs:
    config = ctx.config
    return plan_inputs_from_table(ranked.table, ranked.audience.recipients, inputs.campaigns,
                                  bayes.personas, config.dynamics, inputs.events,
                                  config.simulation.horizon, evidence, config.plan.send_rule,
                                  config.plan.hold_back)


def _with_exploration(config: ExperimentConfig, evidence: pd.DataFrame,
                      n: int) -> ExperimentConfig:
    """With ``send_rule: explore``, cap each untested campaign at ``explore_share`` of ``n``."""
    plan = config.plan
    if plan.send_rule != "explore":
        return config
    tested = evidence.groupby(CAMPAIGN_ID)["exposures"].sum()
    capacity = dict(plan.capacity)
    for cid in tested[tested == 0].index:
        cap = int(np.floor(plan.explore_share * n))
        capacity[str(cid)] = min(capacity.get(str(cid), cap), cap)
    return config.model_copy(update={"plan": plan.model_copy(update={"capacity": capacity})})


@dataclass(frozen=True)
class _Candidate:
    """One way to pace the plan: the allocator's inputs, its dual price and its plan."""

    inputs: PlanInputs
    price: float
    plan: pd.DataFrame


def _candidates(ctx: RunContext, plan_inputs: PlanInputs, holdout: np.ndarray, budget: float,
                quota: np.ndarray | None) -> dict[str, _Candidate]:
    config = ctx.config.plan
    seed = stage_seed(ctx.config.seed, "plan")
    out: dict[str, _Candidate] = {}
    if config.pacing in ("auto", "value") or quota is None:
        price = choose_dual_price(plan_inputs, config, budget, holdout, seed)
        out["plan_value"] = _Candidate(plan_inputs, price,
                                       allocate(plan_inputs, config, budget, holdout, price,
                                                warn_empty=False))
    if quota is not None and config.pacing in ("auto", "policy"):
        paced = replace(plan_inputs, quota=quota)
        out["plan_policy"] = _Candidate(paced, 0.0, allocate(paced, config, budget, holdout,
                                                             warn_empty=False))
    return out


def _choose(config: ExperimentConfig, make_env: EnvFactory, candidates: dict[str, _Candidate],
            ids: list[str]) -> str:
    """The candidate with the higher mean return on the validation seeds (or the only one)."""
    if len(candidates) == 1:
        return next(iter(candidates))
    trial = play_schedules(make_env, {k: c.plan for k, c in candidates.items()}, ids,
                           validation_seeds(config))
    chosen = max(trial, key=lambda name: (float(trial[name]["return"].mean()), name))
    logger.info("plan pacing: %s (validation returns %s)", chosen, ", ".join(
        f"{k} {v['return'].mean():,.0f}" for k, v in trial.items()))
    return chosen


def _simulated_evaluation(config: ExperimentConfig, make_env: EnvFactory, plan: pd.DataFrame,
                          candidates: dict[str, _Candidate], chosen: str, ids: list[str],
                          budget: float, ranked: Ranking, inputs: Inputs,
                          evaluated: PolicyEvaluation, trained: TrainedPolicies
                          ) -> pd.DataFrame:
    """``plan_evaluation.csv``: the plan, its variants and the alternatives in the simulation.

    ``plan_without_holdout`` is the same allocation with nobody held out: the like-for-like
    comparison with strategies that hold nobody out (the difference is what measuring lift
    after launch costs).
    """
    best = candidates[chosen]
    everyone = np.zeros(len(ids), dtype=bool)
    schedules = {
        "plan": plan,
        "plan_without_holdout": allocate(best.inputs, config.plan, budget, everyone,
                                         best.price, warn_empty=False),
        **{f"{name}_pacing": c.plan for name, c in candidates.items() if name != chosen},
        "greedy_table": greedy_schedule(ranked.table, {c.id: c.cost for c in inputs.campaigns},
                                        budget, config.simulation.horizon),
    }
    episodes = play_schedules(make_env, schedules, ids, evaluation_seeds(config))
    episodes |= policy_episodes(config, evaluated, trained)
    return evaluation_table(episodes, budget)


def _finish(plan: pd.DataFrame, ranked: Ranking, inputs: Inputs,
            config: ExperimentConfig, evidence: pd.DataFrame) -> pd.DataFrame:
    """The plan file's columns, with a reason per message."""
    persona = ranked.audience.recipients.set_index(RECIPIENT_ID)[PERSONA_ID]
    return finish_plan(plan, persona, inputs.campaigns, inputs.events,
                       config.simulation.horizon, outcome_word(config), evidence)


def outcome_word(config: ExperimentConfig) -> str:
    """What one response is called: ``visit``, ``order`` or ``response``."""
    return {"visit": "visit", "conversion": "order", "spend": "order"}.get(
        config.dataset.outcome if config.dataset else "", "response")


def run(ctx: RunContext, advance: Advance, inputs: Inputs, ab: ABResults,
        bayes: InferenceResult, ranked: Ranking, make_env: EnvFactory,
        evaluated: PolicyEvaluation, trained: TrainedPolicies) -> PlanResult:
    """Build, check, evaluate and write the plan; the table that follows it."""
    evidence = evidence_table(bayes.outcome.counts, bayes.posterior)  # noised under privacy
    control = next((c.id for c in inputs.campaigns if c.control), None)
    warnings = evidence_warnings(evidence, control)
    ctx = replace(ctx, config=_with_exploration(ctx.config, evidence,
                                                len(ranked.audience.recipients)))
    config = ctx.config
    plan_inputs = _plan_inputs(ctx, inputs, bayes, ranked, evidence)
    persona_ids = [p.id for p in bayes.personas]
    n = len(plan_inputs.recipient_ids)
    holdout = holdout_mask(n, config.plan.holdout_fraction,
                           stage_seed(config.seed, "plan_holdout"))
    budget = config.plan_budget()
    simulated = inputs.recipients is None
    quota = (_policy_quota(ctx, make_env, trained, evaluated, plan_inputs, persona_ids)
             if simulated and config.plan.pacing != "value" else None)
    candidates = _candidates(ctx, plan_inputs, holdout, budget, quota)
    ids = list(plan_inputs.recipient_ids)
    chosen = _choose(config, make_env, candidates, ids)
    best = candidates[chosen]
    if best.plan.empty:
        logger.warning("The plan is empty: nothing can be sent under the plan's constraints "
                       "(budget %s, %d recipients held out); plan.csv has no rows",
                       "none" if not np.isfinite(budget) else f"${budget:,.2f}",
                       int(holdout.sum()))
    require_valid(best.plan, best.inputs, config.plan, budget, holdout)
    plan = _finish(best.plan, ranked, inputs, config, evidence)
    table = apply_plan(ranked.table, plan, evidence)
    sizes = ranked.audience.recipients[PERSONA_ID].value_counts().reindex(persona_ids)
    calendar = plan_calendar(plan, sizes.fillna(0).astype(int).to_dict(),
                             plan_inputs.campaign_ids, config.simulation.horizon)
    evaluation = (_simulated_evaluation(config, make_env, plan, candidates, chosen, ids,
                                        budget, ranked, inputs, evaluated, trained)
                  if simulated else None)
    held = pd.DataFrame({RECIPIENT_ID: plan_inputs.recipient_ids[holdout],
                         PERSONA_ID: ranked.audience.recipients[PERSONA_ID].to_numpy()[holdout]})
    summary = _summary(plan, held, budget, chosen, n, sizes.to_dict())
    summary["send_rule"] = config.plan.send_rule
    summary["evidence"] = evidence.to_dict(orient="records")
    summary["evidence_warnings"] = warnings
    _write(ctx, plan, held, calendar, evaluation)
    logger.info("plan: %d messages to %d recipients, $%.2f of %s", summary["messages"],
                summary["recipients_messaged"], summary["spend"],
                "no budget limit" if not np.isfinite(budget) else f"${budget:,.2f}")
    return PlanResult(plan, table, calendar, evaluation, summary, held)


def _summary(plan: pd.DataFrame, held: pd.DataFrame, budget: float, pacing: str, n: int,
             sizes: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``plan`` section."""
    return {
        "messages": int(len(plan)),
        "recipients_messaged": int(plan[RECIPIENT_ID].nunique()),
        "recipients": int(n),
        "holdout": int(len(held)),
        "spend": round(float(plan["cost"].sum()), 6),
        "budget": budget if np.isfinite(budget) else None,
        "expected_net_value": round(float(plan["priority"].sum()), 6),
        "pacing": pacing.removeprefix("plan_"),
        "messages_per_week": {int(w): int(c) for w, c in plan["week"].value_counts()
                              .sort_index().items()},
        "messages_per_campaign": {str(c): int(v) for c, v in plan[CAMPAIGN_ID].value_counts()
                                  .sort_index().items()},
        "messages_per_persona": {str(p): int(plan[PERSONA_ID].eq(p).sum()) for p in sizes},
        "constraint_violations": 0,
    }


def _write(ctx: RunContext, plan: pd.DataFrame, held: pd.DataFrame, calendar: pd.DataFrame,
           evaluation: pd.DataFrame | None) -> None:
    out, config = ctx.out, ctx.config
    export_table(plan, out, "plan", list(config.output.formats))
    write_csv(held, files.HOLDOUT.path(out))
    write_csv(calendar, files.CALENDAR.path(out))
    if evaluation is not None:
        write_csv(evaluation, files.PLAN_EVALUATION.path(out))
    if config.output.plots:
        plot_plan(calendar, files.PLAN_PLOT.path(out), config.plan_budget())
        if evaluation is not None:
            plot_plan_evaluation(evaluation, files.PLAN_EVALUATION_PLOT.path(out),
                                 config.simulation.horizon)
