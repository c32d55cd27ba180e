"""Stage: the persona report, one card per persona, for a campaign team."""

from __future__ import annotations

from pathlib import Path

from personasim.audience.descriptions import member_facts
from personasim.audience.roles import roles_from_config
from personasim.config.schema import ExperimentConfig
from personasim.core import run_layout as files
from personasim.core.types import PERSONA_ID, Posterior
from personasim.evaluation.self_check import SelfCheck
from personasim.experiments.progress import Advance
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.heldout import HeldOutResult
from personasim.experiments.stages.inputs import Inputs, persona_sizes
from personasim.experiments.stages.plan import PlanResult
from personasim.outputs.plan_report import plan_section
from personasim.outputs.report import ReportContext, persona_cards, write_report

STAGE = Stage("report", "Persona report")


def write_persona_report(out: Path, config: ExperimentConfig, inputs: Inputs,
                         posterior: Posterior, planned: PlanResult,
                         heldout: HeldOutResult | None,
                         checked: SelfCheck | None = None) -> Path:
    """Write ``report.html`` with one card per persona (and the held-out evaluation)."""
    recipients = inputs.recipients
    sizes = persona_sizes(inputs, config.population.size)
    if recipients is not None and PERSONA_ID in recipients:
        roles = roles_from_config(config.synthesis, recipients.columns)
        facts = {pid: member_facts(rows.drop(columns=[PERSONA_ID]), roles)
                 for pid, rows in recipients.groupby(PERSONA_ID)}
    else:
        facts = {p.id: {k: str(v) for k, v in p.attributes.items()} for p in inputs.personas}
    outcome = {"visit": "visits", "conversion": "orders", "spend": "orders"}.get(
        config.dataset.outcome if config.dataset else "", "responses")
    cards = persona_cards(inputs.personas, posterior, inputs.campaigns, sizes, facts,
                          planned.plan,
                          heldout.sim_to_real if heldout else None, outcome,
                          config.prioritization.credible_interval)
    campaigns = "; ".join(f"{c.offer or c.id} (a response is worth ${c.value:,.2f}, a send "
                          f"costs ${c.cost:.2f})" for c in inputs.campaigns if not c.control)
    intro = (f"{config.description + ' ' if config.description else ''}"
             f"{sum(sizes.values()):,} customers in {len(cards)} personas. Campaigns: "
             f"{campaigns}.")
    figures: list[tuple[str, str]] = []
    if heldout is not None and config.output.plots:
        figures = [(files.QINI_PLOT.name, "Uplift curves: the gain over sending nothing as more "
                    "customers are e-mailed in the order each model ranks them."),
                   (files.SIM_TO_REAL_PLOT.name, "Each persona × arm cell: the simulation's 90% "
                    "interval against the rate observed on held-out customers.")]
    labels = {c.id: c.offer or c.id for c in inputs.campaigns}
    plan_figures = []
    if config.output.plots:
        plan_figures.append((files.PLAN_PLOT.name, "Messages the plan sends each week, by "
                             "campaign, and the spend against the budget."))
        if planned.evaluation is not None:
            plan_figures.append((files.PLAN_EVALUATION_PLOT.name, "The plan played in the "
                                 "simulation beside the other ways to spend the same budget."))
    plan_html = plan_section(planned.summary, planned.calendar, planned.plan, sizes, labels,
                             planned.evaluation, plan_figures)
    context = ReportContext(f"Persona report: {config.name}", intro, outcome,
                            heldout.evaluation if heldout else None,
                            heldout.sim_to_real if heldout else None, figures, labels,
                            checked.table if checked is not None else None, plan_html)
    return write_report(out, cards, context, config.output.plots)


def run(ctx: RunContext, advance: Advance, inputs: Inputs, posterior: Posterior,
        planned: PlanResult, heldout: HeldOutResult | None,
        checked: SelfCheck | None = None) -> Path:
    """Write ``report.html`` and the persona cards."""
    return write_persona_report(ctx.out, ctx.config, inputs, posterior, planned, heldout,
                                checked)
