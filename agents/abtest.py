"""A/B tests: randomized in the simulation, or read from a real results file."""

from __future__ import annotations

import numpy as np
import pandas as pd

from personasim.agents.model import NO_SEND, CampaignModel
from personasim.core.types import CAMPAIGN_ID, OUTCOME, PERSONA_ID, RECIPIENT_ID, ABResults


def simulate_ab_test(model: CampaignModel, sample_size: int) -> ABResults:
    """Randomize ``sample_size`` recipients evenly over every campaign (control included).

    The test runs as one week of ``model``: sampled recipients get their arm, everyone else
    gets nothing. Draws come from the model's generator only.

    Parameters
    ----------
    model
        A freshly built simulation (week 0).
    sample_size
        Recipients in the test, capped at the population.

    Returns
    -------
    ABResults
        Per-recipient outcomes (propensity ``1 / n_arms``) and persona x campaign counts.
    """
    rng = model.rng
    n_arms = model.campaigns.n
    chosen = np.sort(rng.choice(model.n_recipients, size=min(sample_size, model.n_recipients),
                                replace=False))
    arms = np.resize(np.arange(n_arms), chosen.size)
    rng.shuffle(arms)
    offsets = np.array([agent.cohort.start for agent in model.cohorts], dtype=np.int64)
    cohort_of = np.searchsorted(offsets, chosen, side="right") - 1
    assignment: list[int | np.ndarray] = []
    for j, agent in enumerate(model.cohorts):
        arm = np.full(agent.size, NO_SEND, dtype=np.int64)
        mine = cohort_of == j
        arm[chosen[mine] - offsets[j]] = arms[mine]
        assignment.append(arm)
    model.send_assignment(assignment)
    persona_ids = np.array(model.persona_ids, dtype=object)[cohort_of]
    local = chosen - offsets[cohort_of]
    table = pd.DataFrame(
        {
            RECIPIENT_ID: [f"{p}-{i:07d}" for p, i in zip(persona_ids, local, strict=True)],
            PERSONA_ID: persona_ids.astype(str),
            CAMPAIGN_ID: np.array(model.campaigns.ids, dtype=object)[arms].astype(str),
            OUTCOME: model.responded[chosen].astype(np.int8),
            "propensity": np.full(chosen.size, 1.0 / n_arms),
        }
    )
    return ABResults.from_table(table, model.persona_ids, model.campaigns.ids, "simulated")


def ab_results_from_file(
    table: pd.DataFrame,
    persona_of: pd.Series,
    persona_ids: tuple[str, ...],
    campaign_ids: tuple[str, ...],
    source: str,
) -> ABResults:
    """Attach each row's persona and aggregate a validated per-recipient results table.

    Parameters
    ----------
    table
        Validated rows: ``recipient_id, campaign_id, outcome`` (+ optional columns).
    persona_of
        Persona id indexed by recipient id.
    persona_ids, campaign_ids
        Labels of the aggregated cells.
    source
        The results file, for the record.
    """
    table = table.copy()
    table[PERSONA_ID] = table[RECIPIENT_ID].map(persona_of).astype(str)
    return ABResults.from_table(table, persona_ids, campaign_ids, source)
