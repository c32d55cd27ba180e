"""Stage: every baseline and trained model plays the same evaluation episodes."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from personasim.config.schema import ExperimentConfig
from personasim.core.types import ABResults
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import evaluation_seeds, stage_seed, validation_seeds
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.policy import build_baselines, deployed_policy
from personasim.experiments.stages.training import EnvFactory
from personasim.policies.baselines import Policy
from personasim.policies.comparison import ProtocolEvaluation, TrainedPolicies, evaluate_all
from personasim.policies.rollouts import run_episode
from personasim.policies.training import algorithm_names, torch_threads


def _total(config: ExperimentConfig) -> int:
    runs = len(algorithm_names(config.policy)) * config.policy.training_seeds
    return len(config.policy.baselines) + runs


STAGE = Stage("evaluation", "Evaluating policies", total=_total)


@dataclass(frozen=True)
class PolicyEvaluation:
    """The comparison of every policy, and the deployed policy's per-week metrics."""

    protocol: ProtocolEvaluation
    metrics: pd.DataFrame

    @property
    def summary(self) -> pd.DataFrame:
        """Every policy's mean return with its 95% interval."""
        return self.protocol.summary

    @property
    def episodes(self) -> pd.DataFrame:
        """Per-episode returns."""
        return self.protocol.episodes


def rollout_metrics(make_env: EnvFactory, policy: Policy, seed: int) -> pd.DataFrame:
    """One episode of ``policy``; the Mesa DataCollector's per-week model variables."""
    env = make_env()
    run_episode(env, policy, seed)
    return env.unwrapped.model.datacollector.get_model_vars_dataframe().reset_index(drop=True)


def run(ctx: RunContext, advance: Advance, make_env: EnvFactory, ab: ABResults,
        trained: TrainedPolicies) -> PolicyEvaluation:
    """Evaluate baselines and every trained run on the same seeds.

    Each algorithm's deployed run is its best on the validation seeds, not on the episodes
    reported.
    """
    config = ctx.config
    seeds = evaluation_seeds(config)
    with torch_threads(config.policy.torch_threads):
        baselines = build_baselines(config, make_env, ab.counts,
                                    stage_seed(config.seed, "baselines"))
        protocol = evaluate_all(make_env, baselines, trained, seeds, validation_seeds(config),
                                ctx.out, stop=ctx.stop, progress=advance)
        _, deployed = deployed_policy(trained, protocol, config.policy.algorithm)
        metrics = rollout_metrics(make_env, deployed, seeds[0])
    return PolicyEvaluation(protocol, metrics)
