"""Re-plan a finished run for a new audience or a new budget (``personasim plan``).

Nothing is trained or sampled again: the run's posterior scores the recipients, and the plan
is allocated with the run's dynamics (fatigue, events), its ``plan:`` constraints and the
budget given. The trained policy paces only simulated audiences, so a re-plan paces by value.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from personasim.audience.membership import audience_from_recipients
from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.config.schema import ExperimentConfig
from personasim.core import run_layout as files
from personasim.core.csv_files import write_csv
from personasim.core.errors import DataError
from personasim.core.types import PERSONA_ID, RECIPIENT_ID, Audience, Posterior
from personasim.data.recipients import check_channel_consent, load_recipients
from personasim.experiments.rank import _read, read_finished_run
from personasim.experiments.seeds import stage_seed
from personasim.outputs.writers import EXPORTERS
from personasim.ranking.plan import allocate, choose_dual_price, holdout_mask
from personasim.ranking.plan_checks import require_valid
from personasim.ranking.plan_table import (
    TableMatrices,
    concat_matrices,
    finish_plan,
    plan_inputs_from_matrices,
    table_matrices,
)
from personasim.ranking.prioritization import prioritize

logger = logging.getLogger(__name__)

SCORE_CHUNK = 100_000
"""Recipients scored at a time."""


@dataclass(frozen=True)
class Replan:
    """A re-plan's result: the plan, the held-out recipients and the numbers to print."""

    plan: pd.DataFrame
    holdout: pd.DataFrame
    summary: dict[str, Any]


def score_matrices(audience: Audience, posterior: Posterior, campaigns: list[Campaign],
                   config: ExperimentConfig, chunk: int = SCORE_CHUNK) -> TableMatrices:
    """Score the audience chunk by chunk: memory holds one chunk's table at a time."""
    parts = []
    n = len(audience.recipients)
    for start in range(0, max(n, 1), chunk):
        rows = slice(start, start + chunk)
        part = Audience(audience.recipients.iloc[rows].reset_index(drop=True),
                        audience.membership[rows], audience.persona_ids)
        table = prioritize(part, posterior, campaigns, config.prioritization)
        parts.append(table_matrices(table, part.recipients, campaigns))
        del table
    return concat_matrices(parts)


def _evidence(run_dir: Path) -> pd.DataFrame | None:
    """The run's evidence table (from its manifest), or None for runs without one."""
    try:
        manifest = json.loads(files.MANIFEST.path(run_dir).read_text(encoding="utf-8"))
        rows = manifest["plan"]["evidence"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pd.DataFrame(rows) if rows else None


def holdout_path(out_path: Path) -> Path:
    """Where the held-out recipients of a plan written to ``out_path`` go."""
    return out_path.with_name(f"{out_path.stem}_holdout.csv")


def replan(run_dir: Path, recipients_path: Path, out_path: Path,
           budget: float | None = None) -> Replan:
    """Plan the messages for ``recipients_path`` with the finished run ``run_dir``.

    Parameters
    ----------
    run_dir : Path
        A finished run.
    recipients_path : Path
        Recipients (CSV or Parquet): ``recipient_id``, attributes, consent columns.
    out_path : Path
        The plan (``.csv`` or ``.parquet``); the held-out recipients go beside it
        (:func:`holdout_path`). Both are written under temporary names and renamed.
    budget : float or None
        The plan's budget (default: the run's ``plan.budget``, else ``simulation.budget``).

    Raises
    ------
    DataError
        The run is incomplete or damaged, the recipients file is bad, or the budget is
        negative.
    """
    if budget is not None and not budget >= 0:
        raise DataError("--budget", None, f"must be >= 0, got {budget}")
    run = read_finished_run(run_dir, out_path, also=(files.PERSONAS_POSTERIOR,))
    config, campaigns, profiles, posterior, fmt = (run.config, run.campaigns, run.profiles,
                                                   run.posterior, run.fmt)
    personas = _read(run_dir, files.PERSONAS_POSTERIOR, lambda text: [
        Persona.model_validate(p) for p in yaml.safe_load(text)])
    recipients = load_recipients(recipients_path, max_levels=None)
    check_channel_consent(recipients, campaigns, str(recipients_path))
    audience = audience_from_recipients(
        recipients, posterior.persona_ids, profiles,
        config.prioritization.membership_temperature, str(recipients_path))
    matrices = score_matrices(audience, posterior, campaigns, config)
    horizon = config.simulation.horizon
    events = config.dynamics.events
    evidence = _evidence(run_dir)
    inputs = plan_inputs_from_matrices(matrices, audience.recipients, personas,
                                       config.dynamics, events, horizon, evidence,
                                       config.plan.send_rule, config.plan.hold_back)
    del matrices  # the allocator's inputs hold what it needs; free the scores
    if budget is None:
        budget = config.plan_budget()
    n = len(inputs.recipient_ids)
    held = holdout_mask(n, config.plan.holdout_fraction, stage_seed(config.seed, "plan_holdout"))
    price = choose_dual_price(inputs, config.plan, budget, held, stage_seed(config.seed, "plan"))
    plan = allocate(inputs, config.plan, budget, held, price)
    require_valid(plan, inputs, config.plan, budget, held)
    persona_of = audience.recipients.set_index(RECIPIENT_ID)[PERSONA_ID]
    plan = finish_plan(plan, persona_of, campaigns, events, horizon, evidence=evidence)
    holdout = pd.DataFrame({RECIPIENT_ID: inputs.recipient_ids[held],
                            PERSONA_ID: audience.recipients[PERSONA_ID].to_numpy()[held]})
    _write(plan, holdout, out_path, fmt)
    summary = {
        "messages": len(plan), "recipients_messaged": int(plan[RECIPIENT_ID].nunique()),
        "recipients": n, "holdout": int(held.sum()), "spend": float(plan["cost"].sum()),
        "budget": budget if np.isfinite(budget) else None,
        "messages_per_week": plan["week"].value_counts().sort_index().to_dict(),
    }
    return Replan(plan, holdout, summary)


def _write(plan: pd.DataFrame, holdout: pd.DataFrame, out_path: Path, fmt: str) -> None:
    """Write the plan and its holdout atomically (temporary names, then renames)."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.stem}.partial-{os.getpid()}")
    held_partial = out_path.with_name(f".{out_path.stem}_holdout.partial-{os.getpid()}.csv")
    try:
        written = EXPORTERS.get(fmt)(plan, partial)
        write_csv(holdout, held_partial)
    except BaseException:
        for leftover in out_path.parent.glob(f".{out_path.stem}*partial-{os.getpid()}*"):
            leftover.unlink(missing_ok=True)
        raise
    os.replace(written, out_path)
    os.replace(held_partial, holdout_path(out_path))
