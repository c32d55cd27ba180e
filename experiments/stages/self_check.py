"""Stage: the self-check, when the A/B results are per recipient (data mode).

A seeded ``inference.self_check`` share of the A/B recipients is held out; the posterior is
refitted on the rest and its table, computed exactly as the run's, is scored against a
T-learner's on the held-out rows (:mod:`personasim.evaluation.self_check`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from personasim.audience.membership import audience_from_recipients
from personasim.bayes.update import infer_stage
from personasim.core import run_layout as files
from personasim.core.csv_files import write_csv
from personasim.core.types import (
    CAMPAIGN_ID,
    CONSENT,
    PERSONA_ID,
    RECIPIENT_ID,
    ABResults,
)
from personasim.evaluation.self_check import SelfCheck, run_self_check, split_rows
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import stage_seed
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.inputs import Inputs
from personasim.ranking.prioritization import prioritize

STAGE = Stage("self_check", "Self-check: posterior against a T-learner on held-out A/B rows",
              saved=True)


def applies(ctx: RunContext, inputs: Inputs, ab: ABResults) -> bool:
    """Whether the run can check itself: per-recipient A/B rows, attributes, a control."""
    inference = ctx.config.inference
    return (inference.self_check > 0 and inputs.recipients is not None and ab.per_recipient
            and inference.privacy.mechanism == "none"
            and any(c.control for c in inputs.campaigns))


def run(ctx: RunContext, advance: Advance, inputs: Inputs, ab: ABResults) -> SelfCheck:
    """Hold out A/B rows, refit, score both rankings and write ``self_check.csv``."""
    config = ctx.config
    assert inputs.recipients is not None
    seed = stage_seed(config.seed, "self_check")
    table = ab.table
    held = split_rows(table[CAMPAIGN_ID].astype(str).to_numpy(), config.inference.self_check,
                      seed)
    persona_ids = tuple(p.id for p in inputs.personas)
    campaign_ids = tuple(c.id for c in inputs.campaigns)

    def posterior_scores(fit: pd.DataFrame, check: pd.DataFrame) -> pd.DataFrame:
        fit_ab = ABResults.from_table(fit, persona_ids, campaign_ids, f"{ab.source} (fit part)")
        outcome = infer_stage(config.inference, inputs.personas, inputs.campaigns, fit_ab, seed,
                              inputs.recipients)
        audience = audience_from_recipients(
            check.drop(columns=[PERSONA_ID], errors="ignore").assign(**{CONSENT: True}),
            persona_ids, inputs.profiles, config.prioritization.membership_temperature,
            "self-check recipients")
        ranked = prioritize(audience, outcome.posterior, inputs.campaigns,
                            config.prioritization.model_copy(update={"top_n": None}))
        return _probabilities(ranked, check[RECIPIENT_ID], campaign_ids,
                              next(c.id for c in inputs.campaigns if c.control))

    attributes = [c for c in inputs.recipients.columns
                  if c not in (RECIPIENT_ID, CONSENT, PERSONA_ID)]
    result = run_self_check(table, inputs.recipients, inputs.campaigns, attributes, held,
                            posterior_scores, seed)
    write_csv(result.table, files.SELF_CHECK.path(ctx.out))
    return result


def _probabilities(ranked: pd.DataFrame, order: pd.Series, campaign_ids: tuple[str, ...],
                   control: str) -> pd.DataFrame:
    """The table's P(response) per recipient x campaign, the control's included."""
    wide = ranked.pivot(index=RECIPIENT_ID, columns=CAMPAIGN_ID, values="p_response")
    base = (ranked["p_response"] - ranked["uplift"]).groupby(ranked[RECIPIENT_ID]).first()
    wide[control] = base
    ids = order.astype(str).to_numpy()
    return wide.reindex(index=ids, columns=list(campaign_ids)).fillna(0.0).astype(np.float64)
