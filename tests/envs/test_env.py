"""Tests for the Gymnasium campaign environment."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta, Constant
from personasim.config.persona import Persona, PersonaTraits
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import DynamicsConfig, InfluenceConfig, SimulationConfig
from personasim.envs import ENV_ID, FATIGUE_OBS_MAX, CampaignEnv, FlatActionWrapper
from personasim.envs.wrappers import SeasonEndWrapper

HORIZON = 6


def _personas() -> list[Persona]:
    fixed = PersonaTraits(
        propensity={"default": Constant(value=0.1)},
        price_sensitivity=Constant(value=0.0),
        fatigue_rate=Constant(value=0.5),
        susceptibility=Constant(value=0.2),
        organic=Constant(value=0.01),
    )
    return [
        Persona(id="steady", traits=fixed),
        Persona(id="varied", traits=PersonaTraits(propensity={"default": Beta(a=2, b=18)})),
    ]


def _campaigns() -> list[Campaign]:
    return [
        Campaign(id="holdout", control=True),
        Campaign(id="email", channel="email", cost=0.05, value=2.0, features={"discount": 0.1}),
        Campaign(id="sms", channel="sms", cost=0.1, value=3.0),
    ]


def make_env(
    budget: float | None = None,
    horizon: int = HORIZON,
    influence: bool = True,
    sizes: tuple[int, int] = (300, 500),
) -> CampaignEnv:
    dynamics = DynamicsConfig(influence=InfluenceConfig(enabled=influence))
    simulation = SimulationConfig(horizon=horizon, budget=budget)
    return CampaignEnv(_personas(), list(sizes), _campaigns(), simulation, dynamics, graph_seed=3)


def test_spaces_and_action_mapping() -> None:
    env = make_env()
    assert isinstance(env.action_space, spaces.MultiDiscrete)
    assert env.action_space.nvec.tolist() == [3, 3]
    assert env.action_campaign_ids == (None, "email", "sms")
    assert env.observation_space.shape == (8,)
    assert env.observation_space.dtype == np.float32
    assert env.observation_space.high.reshape(2, 4)[:, 1].tolist() == [FATIGUE_OBS_MAX] * 2
    assert env.adjacency is not None and env.adjacency.shape == (800, 800)
    assert make_env(influence=False).adjacency is None


def test_gymnasium_check_env_passes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(make_env(), skip_render_check=True)


def test_sb3_check_env_passes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(make_env(budget=50.0))


def test_registered_id_makes_the_env() -> None:
    env = gymnasium.make(
        ENV_ID,
        personas=_personas(),
        sizes=[100, 100],
        campaigns=_campaigns(),
        simulation=SimulationConfig(horizon=HORIZON),
        dynamics=DynamicsConfig(),
    )
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    assert isinstance(env.unwrapped, CampaignEnv)


def test_from_config_uses_cohort_sizes() -> None:
    config = ExperimentConfig(
        name="t", personas=_personas(), campaigns=_campaigns(), population={"size": 801}
    )
    env = CampaignEnv.from_config(config, config.personas, config.campaigns, [])
    assert sum(env.sizes) == 801
    assert env.n_recipients == 801


def _rollout(env: CampaignEnv, seed: int, actions: np.ndarray) -> list[tuple]:
    obs, _ = env.reset(seed=seed)
    trace = [(obs,)]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, info["sends"], info["responses"]))
        if terminated or truncated:
            break
    return trace


def test_same_seed_same_actions_same_episode() -> None:
    actions = np.random.default_rng(7).integers(0, 3, size=(HORIZON, 2))
    first = _rollout(make_env(), 11, actions)
    second = _rollout(make_env(), 11, actions)
    assert len(first) == HORIZON + 1
    for a, b in zip(first, second, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    other = _rollout(make_env(), 12, actions)
    assert any(
        not np.array_equal(a[0], b[0]) for a, b in zip(first[1:], other[1:], strict=True)
    )


def test_terminated_when_budget_spent_before_horizon() -> None:
    env = make_env(budget=100.0)
    env.reset(seed=0)
    everything = np.array([2, 2])  # 800 sms sends cost 80 a week
    results = []
    for _ in range(HORIZON):
        obs, _, terminated, truncated, info = env.step(everything)
        results.append((terminated, truncated))
        assert obs in env.observation_space
        if terminated or truncated:
            break
    assert results[-1] == (True, False)
    assert len(results) < HORIZON
    assert env.model is not None and env.model.budget_remaining < 0.1
    assert obs.reshape(2, 4)[:, 2] == pytest.approx(0.0, abs=1e-3)


def test_horizon_truncates_and_training_sees_it_as_terminal() -> None:
    env = make_env()
    env.reset(seed=0)
    flags = [env.step(np.array([1, 2]))[2:4] for _ in range(HORIZON)]
    assert flags[:-1] == [(False, False)] * (HORIZON - 1)
    assert flags[-1] == (False, True)
    wrapped = SeasonEndWrapper(make_env())
    wrapped.reset(seed=0)
    flags = [wrapped.step(np.array([1, 2]))[2:4] for _ in range(HORIZON)]
    assert flags[-1] == (True, False)


def test_reward_is_value_minus_cost_scaled() -> None:
    env = make_env()
    env.reset(seed=5)
    value = {1: 2.0, 2: 3.0}
    cost = {1: 0.05, 2: 0.1}
    for action in ([1, 2], [2, 1], [1, 0]):
        _, reward, _, _, info = env.step(np.array(action))
        dollars = sum(
            info["responses"][j] * value[a] - info["sends"][j] * cost[a]
            for j, a in enumerate(action)
            if a > 0
        )
        assert info["reward_dollars"] == pytest.approx(dollars)
        assert reward == pytest.approx(dollars / env.n_recipients)
        expected_sends = [size if a else 0 for size, a in zip((300, 500), action, strict=True)]
        assert info["sends"].tolist() == expected_sends
    custom = make_env()
    custom.reward_scale = 1.0
    custom.reset(seed=5)
    _, reward, _, _, info = custom.step(np.array([1, 2]))
    assert reward == pytest.approx(info["reward_dollars"])


def test_action_zero_sends_nothing_and_costs_nothing() -> None:
    env = make_env(budget=30.0)
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        obs, reward, _, _, info = env.step(np.array([0, 0]))
        assert reward == 0.0
        assert info["cost"] == 0.0 and info["reward_dollars"] == 0.0
        assert info["sends"].tolist() == [0, 0]
        assert info["responses"].tolist() == [0, 0]
        assert info["campaign_index"].tolist() == [-1, -1]
        per = obs.reshape(2, 4)
        assert per[:, 0].tolist() == [0.0, 0.0]  # nothing sent: rate 0
        assert per[:, 1].tolist() == [0.0, 0.0]  # no fatigue
        assert per[:, 2].tolist() == [1.0, 1.0]  # budget untouched


def test_fatigue_observation_rises_when_sent_every_week() -> None:
    env = make_env()
    env.reset(seed=2)
    fatigue = []
    for _ in range(4):
        obs, *_ = env.step(np.array([1, 0]))
        fatigue.append(obs.reshape(2, 4)[:, 1])
    steady = [f[0] for f in fatigue]
    assert all(b > a for a, b in zip(steady, steady[1:], strict=False))
    assert steady[0] == pytest.approx(0.5)
    assert all(f[1] == 0.0 for f in fatigue)


def test_time_fraction_counts_down() -> None:
    env = make_env(influence=False)
    obs, _ = env.reset(seed=0)
    assert obs.reshape(2, 4)[:, 3].tolist() == [1.0, 1.0]
    obs, *_ = env.step(np.array([0, 0]))
    assert obs.reshape(2, 4)[0, 3] == pytest.approx(5 / 6)


def test_invalid_action_is_rejected() -> None:
    env = make_env()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions must lie"):
        env.step(np.array([3, 0]))
    with pytest.raises(ValueError, match="expected 2 actions"):
        env.step(np.array([1]))


def test_flat_action_wrapper_unravels() -> None:
    env = FlatActionWrapper(make_env())
    assert env.action_space == spaces.Discrete(9)
    assert env.action(0).tolist() == [0, 0]
    assert env.action(5).tolist() == [1, 2]
    assert env.action(8).tolist() == [2, 2]
    env.reset(seed=0)
    _, _, _, _, info = env.step(5)
    assert info["campaign_index"].tolist() == [1, 2]
