"""Smoke tests for SB3 training, saving and loading (tiny budgets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from small_envs import tiny_env_factory

from personasim.config.sections import PolicyConfig
from personasim.policies.baselines import PolicyContext, SB3Policy, make_policy
from personasim.policies.training import (
    ALGORITHMS,
    AlgorithmSpec,
    default_hyperparameters,
    load_policy,
    save_policy,
    train_policy,
)


def _observations(n: int = 8) -> np.ndarray:
    env = tiny_env_factory()()
    return np.stack([env.observation_space.sample() for _ in range(n)])


@pytest.mark.parametrize("algorithm", ["ppo", "a2c"])
def test_on_policy_training_curve_and_round_trip(algorithm: str, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    config = PolicyConfig(algorithm=algorithm, total_timesteps=128)
    result = train_policy(
        tiny_env_factory(), config, seed=0, log_dir=tmp_path / "log",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert result.algorithm == algorithm
    assert list(result.curve.columns) == ["timesteps", "mean_return", "n_episodes"]
    assert len(result.curve) > 0
    assert result.curve["timesteps"].is_monotonic_increasing
    assert result.curve["n_episodes"].sum() >= 128 // 6 - 1
    assert result.seconds > 0
    assert calls and calls[-1][1] == 128 and calls[-1][0] == 128
    assert any((tmp_path / "log" / "monitor").iterdir())

    path = save_policy(result.model, tmp_path / "model")
    assert path.suffix == ".zip" and path.exists()
    loaded = load_policy(algorithm, path, tiny_env_factory()())
    obs = _observations()
    expected, _ = result.model.predict(obs, deterministic=True)
    actual, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(expected, actual)

    env = tiny_env_factory()()
    policy = make_policy(
        "sb3", env, PolicyContext(model_path=path, algorithm=algorithm)
    )
    first, _ = env.reset(seed=0)
    action = policy.act(first, env)
    assert env.action_space.contains(action)


def test_ppo_defaults_span_several_episodes() -> None:
    params = default_hyperparameters("ppo", horizon=6, n_envs=2, total_timesteps=1000)
    assert params["n_steps"] == 48
    assert (params["n_steps"] * 2) % params["batch_size"] == 0
    assert params["learning_rate"] == 3e-4 and params["ent_coef"] == 0.01
    custom = default_hyperparameters("ppo", 6, 1, 1000, {"n_steps": 30, "gamma": 0.9})
    assert custom["n_steps"] == 30 and 30 % custom["batch_size"] == 0 and custom["gamma"] == 0.9


def test_same_seed_trains_the_same_model() -> None:
    config = PolicyConfig(algorithm="ppo", total_timesteps=64, n_envs=2)
    first = train_policy(tiny_env_factory(), config, seed=3, log_dir=None)
    second = train_policy(tiny_env_factory(), config, seed=3, log_dir=None)
    obs = _observations()
    a, _ = first.model.predict(obs, deterministic=True)
    b, _ = second.model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a, b)
    assert first.curve.equals(second.curve)


def test_dqn_trains_on_a_small_joint_action_space(tmp_path: Path) -> None:
    config = PolicyConfig(algorithm="dqn", total_timesteps=200)
    result = train_policy(tiny_env_factory(2, 2), config, seed=0, log_dir=None)
    assert result.model.action_space.n == 9
    assert len(result.curve) > 0
    path = save_policy(result.model, tmp_path / "dqn.zip")
    policy = SB3Policy(load_policy("dqn", path, tiny_env_factory(2, 2)()))
    env = tiny_env_factory(2, 2)()
    obs, _ = env.reset(seed=1)
    action = policy.act(obs, env)
    assert action.shape == (2,) and env.action_space.contains(action)


def test_dqn_rejects_a_large_joint_action_space() -> None:
    config = PolicyConfig(algorithm="dqn", total_timesteps=64)
    with pytest.raises(ValueError, match="DQN needs a small joint action space"):
        train_policy(tiny_env_factory(6, 4), config, seed=0, log_dir=None)


def test_unknown_algorithm_lists_known_ones() -> None:
    assert ALGORITHMS.names() == ["a2c", "dqn", "ppo"]
    with pytest.raises(KeyError, match="known: a2c, dqn, ppo"):
        train_policy(tiny_env_factory(), PolicyConfig(algorithm="sac"), seed=0, log_dir=None)


def test_algorithms_are_specs_that_import_sb3_on_demand() -> None:
    from stable_baselines3 import DQN, PPO

    assert ALGORITHMS.get("ppo").algorithm_class() is PPO
    assert ALGORITHMS.get("dqn").algorithm_class() is DQN
    assert [n for n in ALGORITHMS.names() if ALGORITHMS.get(n).flat_actions] == ["dqn"]
    dqn = default_hyperparameters("dqn", horizon=6, n_envs=1, total_timesteps=500)
    assert dqn["learning_starts"] == 50 and dqn["exploration_final_eps"] == 0.05


def test_a_registered_spec_trains_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from stable_baselines3 import A2C

    monkeypatch.setattr(ALGORITHMS, "_items", dict(ALGORITHMS._items))
    ALGORITHMS.add("a2c_short", AlgorithmSpec(
        A2C, lambda horizon, n_envs, total, overrides: {"n_steps": 2, "gamma": 0.5}))
    assert default_hyperparameters("a2c_short", 6, 1, 100, {"gamma": 0.9}) == {
        "n_steps": 2, "gamma": 0.9}
    result = train_policy(tiny_env_factory(),
                          PolicyConfig(algorithm="a2c_short", total_timesteps=16),
                          seed=0, log_dir=None)
    assert isinstance(result.model, A2C) and result.algorithm == "a2c_short"
    assert result.hyperparameters == {"n_steps": 2, "gamma": 0.5}
