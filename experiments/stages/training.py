"""Stage: train every SB3 algorithm on the simulation re-parameterized from the posterior."""

from __future__ import annotations

from collections.abc import Callable

from personasim.behaviour.network import GraphCache
from personasim.config.schema import ExperimentConfig
from personasim.envs import CampaignEnv
from personasim.experiments.progress import Advance
from personasim.experiments.seeds import training_seeds
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.inference import InferenceResult
from personasim.experiments.stages.inputs import Inputs
from personasim.policies.comparison import TrainedPolicies, train_all
from personasim.policies.training import algorithm_names

EnvFactory = Callable[[], CampaignEnv]


def _runs(config: ExperimentConfig) -> int:
    return len(algorithm_names(config.policy)) * config.policy.training_seeds


def _title(config: ExperimentConfig) -> str:
    names = ", ".join(a.upper() for a in algorithm_names(config.policy))
    return f"Training {names} ({config.policy.training_seeds} seed(s) each)"


STAGE = Stage("training", _title,
              total=lambda config: _runs(config) * config.policy.total_timesteps)


def env_factory(ctx: RunContext, inputs: Inputs, inference: InferenceResult) -> EnvFactory:
    """Fresh environments over the personas calibrated from the posterior."""
    config = ctx.config
    graph_cache = GraphCache()  # every environment of the run shares one recipient graph

    def make() -> CampaignEnv:
        return CampaignEnv.from_config(config, inference.personas, inputs.campaigns,
                                       inputs.events, graph_cache=graph_cache)

    return make


def run(ctx: RunContext, advance: Advance, make_env: EnvFactory) -> TrainedPolicies:
    """Train ``policy.training_seeds`` runs of every algorithm, checkpointing as it goes.

    The learning curves are in dollars per episode, like the evaluation.
    """
    return train_all(make_env, ctx.config.policy, training_seeds(ctx.config), ctx.out,
                     reward_scale=make_env().reward_scale, stop=ctx.stop, progress=advance)
