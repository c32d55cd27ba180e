"""The policy outputs of a run: the baselines, the deployed policy and its calendars.

Training is :func:`personasim.policies.comparison.train_all` and evaluation
:mod:`personasim.experiments.stages.evaluation`; this module builds the baselines, picks the
deployed run and writes what a campaign team and a reviewer read:
``policy.zip`` (the deployed model: the primary algorithm's best run on the validation
seeds), ``policy_calendar.csv`` and ``calendar_detail.csv``, ``evaluation_runs.csv`` and one
learning-curve plot per extra algorithm.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import pandas as pd

from personasim.config.schema import ExperimentConfig
from personasim.core import run_layout as files
from personasim.core.csv_files import write_csv
from personasim.core.types import ABCounts
from personasim.outputs.plots import plot_learning_curve
from personasim.policies.baselines import POLICIES, Policy, PolicyContext, SB3Policy
from personasim.policies.calendar import calendar_grid, campaign_calendar
from personasim.policies.comparison import (
    ProtocolEvaluation,
    TrainedPolicies,
    run_key,
)

logger = logging.getLogger(__name__)

EnvFactory = Callable[[], gym.Env[Any, Any]]


def build_baselines(
    config: ExperimentConfig, env_factory: EnvFactory, ab_counts: ABCounts, seed: int
) -> dict[str, Policy]:
    """The config's baseline policies, by name, in config order."""
    env = env_factory()
    context = PolicyContext(ab_counts=ab_counts, seed=seed)
    return {name: POLICIES.get(name)(env.unwrapped, context) for name in config.policy.baselines}


def deployed_policy(trained: TrainedPolicies, evaluation: ProtocolEvaluation,
                    algorithm: str) -> tuple[str, SB3Policy]:
    """The run of ``algorithm`` selected on the validation seeds, as ``(run key, policy)``."""
    if algorithm not in trained.runs:
        raise ValueError(f"algorithm {algorithm!r} was not trained: "
                         f"{trained.skipped.get(algorithm, 'unknown reason')}")
    k = evaluation.best[algorithm]
    return run_key(algorithm, k), SB3Policy(trained.runs[algorithm][k].model)


def write_policy_outputs(
    out: Path,
    config: ExperimentConfig,
    env_factory: EnvFactory,
    ab_counts: ABCounts,
    trained: TrainedPolicies,
    evaluation: ProtocolEvaluation,
    seeds: Sequence[int],
    baseline_seed: int,
) -> None:
    """Write ``policy.zip``, the calendars, ``evaluation_runs.csv`` and extra curve plots.

    ``policy_calendar.csv`` is the deployed policy's grid (personas x weeks, campaign ids);
    ``calendar_detail.csv`` holds the calendars of the baselines and of every algorithm's
    selected run, with agreement, recipients, spend and events.
    """
    primary = config.policy.algorithm
    key, _ = deployed_policy(trained, evaluation, primary)
    shutil.copyfile(files.policy_file(out, key, ".zip"), files.POLICY.path(out))
    details = [
        campaign_calendar(env_factory, policy, seeds, name)
        for name, policy in build_baselines(config, env_factory, ab_counts,
                                            baseline_seed).items()
    ]
    for algorithm in trained.runs:
        _, deployed = deployed_policy(trained, evaluation, algorithm)
        details.append(campaign_calendar(env_factory, deployed, seeds, algorithm))
    detail = pd.concat(details, ignore_index=True)
    write_csv(detail, files.CALENDAR_DETAIL.path(out))
    write_csv(calendar_grid(detail[detail["policy"] == primary]), files.POLICY_CALENDAR.path(out))
    write_csv(evaluation.runs.round(4), files.EVALUATION_RUNS.path(out))
    logger.info("deployed policy: %s (policy_calendar.csv)", key)
    if not config.output.plots:
        return
    for algorithm in trained.runs:
        curve = trained.curve[trained.curve["algorithm"] == algorithm]
        if algorithm != primary and not curve.empty:
            plot_learning_curve(curve, files.algorithm_curve(out, algorithm),
                                config.simulation.horizon)
