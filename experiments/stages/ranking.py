"""Stage: rank every campaign for every recipient by expected value net of cost."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from personasim.agents.audience import simulated_audience
from personasim.audience.membership import audience_from_recipients
from personasim.core.types import PERSONA_ID, Audience, Posterior
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import stage_seed
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.ab_test import build_simulation
from personasim.experiments.stages.inputs import Inputs
from personasim.ranking.prioritization import prioritize

STAGE = Stage("prioritization", "Ranking campaigns per recipient")


@dataclass(frozen=True)
class Ranking:
    """The audience that was ranked, and the prioritization table."""

    audience: Audience
    table: pd.DataFrame


def build_audience(ctx: RunContext, inputs: Inputs) -> Audience:
    """Recipients to rank: the recipients file, or the simulated population."""
    config = ctx.config
    persona_ids = tuple(p.id for p in inputs.personas)
    if inputs.recipients is not None:
        recipients = inputs.recipients
        if not config.personas:  # synthesized: rank by soft membership, not the hard cluster
            recipients = recipients.drop(columns=PERSONA_ID)
        return audience_from_recipients(
            recipients, persona_ids, inputs.profiles,
            config.prioritization.membership_temperature, str(config.data.recipients),
        )
    model = build_simulation(ctx, inputs.personas, inputs, stage_seed(config.seed, "audience"))
    return simulated_audience(model)


def run(ctx: RunContext, advance: Advance, inputs: Inputs, posterior: Posterior) -> Ranking:
    """The prioritization table for the run's audience."""
    audience = build_audience(ctx, inputs)
    table = prioritize(audience, posterior, inputs.campaigns, ctx.config.prioritization)
    return Ranking(audience, table)
