"""The scenario configs: documented, on protocol, and their worlds reward planning ahead.

Each dynamics test plays simple hand-written plans against ``myopic_oracle`` in the
scenario's own world (the config's personas, a smaller audience), on common seeds. They pin
down what the config's header promises: the opportunity that reinforcement learning is meant
to find exists, and the myopic baselines miss it. The full runs (training included) are
benchmarks: ``python benchmarks/scenarios.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from personasim.config.loading import load_config
from personasim.config.schema import ExperimentConfig
from personasim.envs import CampaignEnv
from personasim.experiments.stages.inputs import load_inputs
from personasim.policies.baselines import expected_rewards, make_policy
from personasim.policies.rollouts import run_episodes
from personasim.policies.training import (
    algorithm_names,
    default_hyperparameters,
    unsupported_reason,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SCENARIOS = ("fatigue", "budget", "social")
SEEDS = [101, 102, 103]


def _config(name: str, *overrides: str) -> ExperimentConfig:
    return load_config(CONFIGS / f"{name}.yaml", list(overrides))


def _env_factory(config: ExperimentConfig) -> Any:
    inputs = load_inputs(config, "scenario", 0)

    def build() -> CampaignEnv:
        return CampaignEnv.from_config(config, inputs.personas, inputs.campaigns, inputs.events)

    return build


class _Plan:
    """The myopic oracle's choice, filtered by a rule on (week, persona, observation)."""

    def __init__(self, env: CampaignEnv, rule: Any) -> None:
        self.oracle = make_policy("myopic_oracle", env)
        self.rule = rule

    def reset(self, seed: int) -> None:
        """Nothing to reset."""

    def act(self, obs: np.ndarray, env: CampaignEnv) -> np.ndarray:
        assert env.model is not None
        action = self.oracle.act(obs, env)
        return self.rule(env.model.week + 1, action, obs.reshape(env.n_personas, -1), env)

    def observe(self, action: np.ndarray, info: dict[str, Any]) -> None:
        """Nothing to learn."""


def _returns(factory: Any, policies: dict[str, Any]) -> dict[str, np.ndarray]:
    episodes, _ = run_episodes(factory, policies, SEEDS)
    return {name: group.sort_values("seed")["return"].to_numpy()
            for name, group in episodes.groupby("policy")}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_is_documented_and_on_protocol(name: str) -> None:
    text = (CONFIGS / f"{name}.yaml").read_text()
    header = text.split("\nname:")[0]
    assert header.startswith("# Scenario:")
    for part in ("What it tests", "Why reinforcement learning should matter", "Protocol"):
        assert part in header
    config = _config(name)
    policy = config.policy
    assert policy.training_seeds >= 5 and policy.eval_seeds >= 20
    assert policy.baselines == ["random", "ab_winner", "thompson", "myopic_oracle"]
    assert algorithm_names(policy) == ["ppo", "a2c", "dqn"]
    env = _env_factory(config)()
    assert unsupported_reason("dqn", env.action_space) is None
    for algorithm in ("ppo", "a2c"):  # no rounding up to whole rollouts
        overrides = policy.hyperparameters if algorithm == "ppo" else {}
        n_steps = default_hyperparameters(algorithm, env.horizon, policy.n_envs,
                                          policy.total_timesteps, overrides)["n_steps"]
        assert policy.total_timesteps % (n_steps * policy.n_envs) == 0


def test_fatigue_rewards_resting_a_cohort() -> None:
    factory = _env_factory(_config("fatigue", "population.size=1500"))
    env = factory()

    def rest_when_tired(week: int, action: np.ndarray, obs: np.ndarray,
                        env: CampaignEnv) -> np.ndarray:
        last_week = week == env.horizon
        return np.where((obs[:, 1] < 0.6) | last_week, action, 0)

    returns = _returns(factory, {"myopic_oracle": make_policy("myopic_oracle", env),
                                 "rest": _Plan(env, rest_when_tired)})
    assert np.all(returns["rest"] > 1.05 * returns["myopic_oracle"])


def test_budget_rewards_holding_money_for_the_peak() -> None:
    config = _config("budget", "population.size=2000", "simulation.budget=1500")
    factory = _env_factory(config)
    env = factory()

    def hold_until_peak(week: int, action: np.ndarray, obs: np.ndarray,
                        env: CampaignEnv) -> np.ndarray:
        return action if week >= 9 else np.zeros_like(action)

    oracle = make_policy("myopic_oracle", env)
    returns = _returns(factory, {"myopic_oracle": oracle, "hold": _Plan(env, hold_until_peak)})
    assert np.all(returns["hold"] > 1.5 * returns["myopic_oracle"])
    obs, _ = env.reset(seed=SEEDS[0])
    spent_before_peak = 0.0
    for _ in range(8):
        obs, _, terminated, truncated, info = env.step(oracle.act(obs, env))
        spent_before_peak += info["cost"]
        if terminated or truncated:
            break
    assert spent_before_peak > 0.9 * 1500


def test_social_rewards_seeding_the_connectors() -> None:
    factory = _env_factory(_config("social"))
    env = factory()
    kit = env.action_campaign_ids.index("ambassador_kit")

    def seed_connectors(week: int, action: np.ndarray, obs: np.ndarray,
                        env: CampaignEnv) -> np.ndarray:
        action = action.copy()
        if week < env.horizon:
            action[0] = kit
        return action

    oracle = make_policy("myopic_oracle", env)
    returns = _returns(factory, {"myopic_oracle": oracle, "seed": _Plan(env, seed_connectors)})
    assert np.all(returns["seed"] > 1.15 * returns["myopic_oracle"])
    env.reset(seed=SEEDS[0])
    assert expected_rewards(env)[:, kit].max() < 0  # the kit never pays in its own week
