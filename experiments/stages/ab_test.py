"""Stage: the A/B test, read from the data files or randomized in the simulation."""

from __future__ import annotations

import numpy as np

from personasim.agents.abtest import ab_results_from_file, simulate_ab_test
from personasim.agents.model import CampaignModel, simulation_from_config
from personasim.config.persona import Persona
from personasim.core.types import ABResults
from personasim.data.ab_results import counts_to_ab
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import stage_seed
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.inputs import Inputs

STAGE = Stage("ab_test", "A/B test", saved=True)


def build_simulation(ctx: RunContext, personas: list[Persona], inputs: Inputs,
                     seed: int) -> CampaignModel:
    """A fresh simulation of ``personas`` without an influence graph (one week needs none)."""
    return simulation_from_config(ctx.config, personas, inputs.campaigns, inputs.events,
                                  np.random.default_rng(seed))


def run(ctx: RunContext, advance: Advance, inputs: Inputs) -> ABResults:
    """Read the A/B results (per recipient or aggregated), or randomize a test in the simulation."""
    config = ctx.config
    persona_ids = tuple(p.id for p in inputs.personas)
    campaign_ids = tuple(c.id for c in inputs.campaigns)
    if inputs.ab_counts is not None and config.ab_test.source != "simulate":
        return counts_to_ab(inputs.ab_counts, persona_ids, campaign_ids,
                            str(config.data.ab_counts))
    if inputs.ab_table is not None and config.ab_test.source != "simulate":
        if inputs.recipients is None:
            raise ValueError("an A/B results file needs a recipients file to place recipients")
        persona_of = inputs.recipients.set_index("recipient_id")["persona_id"]
        return ab_results_from_file(inputs.ab_table, persona_of, persona_ids, campaign_ids,
                                    str(config.data.ab_results or config.dataset and
                                        f"dataset {config.dataset.name}"))
    model = build_simulation(ctx, inputs.personas, inputs, stage_seed(config.seed, "ab_test"))
    return simulate_ab_test(model, config.ab_test.sample_size)
