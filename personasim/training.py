"""Train Stable-Baselines3 agents on :class:`~personasim.envs.CampaignEnv`.

Algorithms are registered by name in :data:`ALGORITHMS`; :func:`train_policy` builds a
monitored vectorized environment, merges the config's hyperparameters over per-algorithm
defaults, trains, and records a learning curve from the episodes finished during training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import pandas as pd
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv

from personasim.config import PolicyConfig
from personasim.envs.campaign_env import FlatActionWrapper
from personasim.registry import Registry

logger = logging.getLogger(__name__)

ALGORITHMS: Registry[type[BaseAlgorithm]] = Registry("algorithm")
ALGORITHMS.add("ppo", PPO)
ALGORITHMS.add("a2c", A2C)
ALGORITHMS.add("dqn", DQN)

SB3_POLICY = "MlpPolicy"
"""The SB3 policy network used by every registered algorithm (override: ``policy``)."""

CURVE_COLUMNS = ("timesteps", "mean_return", "n_episodes")

_DEFAULT_HORIZON = 12


@dataclass
class TrainResult:
    """What training produced.

    Attributes
    ----------
    model
        The trained SB3 model.
    curve
        Learning curve: ``timesteps`` (training steps so far), ``mean_return`` (mean return,
        in the env's scaled reward units, of the episodes that ended at that step) and
        ``n_episodes`` (how many ended there).
    seconds
        Wall-clock training time.
    algorithm
        Registered algorithm name.
    hyperparameters
        The hyperparameters actually passed to SB3 (defaults merged with the config's).
    """

    model: BaseAlgorithm
    curve: pd.DataFrame
    seconds: float
    algorithm: str
    hyperparameters: dict[str, Any]


class LearningCurveCallback(BaseCallback):
    """Record the return of every finished episode (from SB3's ``Monitor``) and report progress.

    Parameters
    ----------
    total
        Training budget in timesteps, passed on to ``progress``.
    progress
        Called as ``progress(timesteps_done, total)`` after every vectorized step.
    """

    def __init__(self, total: int, progress: Callable[[int, int], None] | None = None) -> None:
        super().__init__()
        self.total = int(total)
        self.progress = progress
        self.records: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", []):
            episode = info.get("episode")
            if episode is not None:
                self.records.append((int(self.num_timesteps), float(episode["r"])))
        if self.progress is not None:
            self.progress(min(int(self.num_timesteps), self.total), self.total)
        return True

    def curve(self) -> pd.DataFrame:
        """The recorded episodes, averaged per timestep."""
        if not self.records:
            return pd.DataFrame({c: pd.Series(dtype=float) for c in CURVE_COLUMNS})
        frame = pd.DataFrame(self.records, columns=["timesteps", "return"])
        grouped = frame.groupby("timesteps", sort=True)["return"]
        return pd.DataFrame(
            {"mean_return": grouped.mean(), "n_episodes": grouped.size()}
        ).reset_index()[list(CURVE_COLUMNS)]


def _largest_divisor(n: int, cap: int) -> int:
    """Largest divisor of ``n`` that is at most ``cap`` and above 1 (``n`` itself if none)."""
    for d in range(min(cap, n), 1, -1):
        if n % d == 0:
            return d
    return max(n, 2)


def default_hyperparameters(
    algorithm: str,
    horizon: int,
    n_envs: int,
    total_timesteps: int,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Per-algorithm defaults for short campaign episodes, with ``overrides`` merged on top.

    PPO collects ``8 * horizon`` steps per env per update so an update spans several
    episodes, with a minibatch size that divides the rollout; DQN starts learning and
    updates its target network early enough for small budgets.
    """
    overrides = dict(overrides or {})
    if algorithm == "ppo":
        n_steps = int(overrides.get("n_steps", 8 * horizon))
        params: dict[str, Any] = {
            "n_steps": n_steps,
            "batch_size": _largest_divisor(n_steps * n_envs, 64),
            "learning_rate": 3e-4,
            "gamma": 0.99,
            "gae_lambda": 0.95,
            "ent_coef": 0.01,
            "n_epochs": 10,
        }
    elif algorithm == "a2c":
        params = {"n_steps": horizon, "learning_rate": 7e-4, "gamma": 0.99, "ent_coef": 0.01}
    elif algorithm == "dqn":
        params = {
            "learning_rate": 5e-4,
            "buffer_size": max(min(100_000, total_timesteps), 1_000),
            "learning_starts": max(1, min(1_000, total_timesteps // 10)),
            "batch_size": 64,
            "gamma": 0.99,
            "train_freq": 1,
            "target_update_interval": max(horizon * 10, min(1_000, total_timesteps // 20)),
            "exploration_fraction": 0.3,
            "exploration_final_eps": 0.05,
        }
    else:
        params = {}
    params.update(overrides)
    return params


def _needs_flat_actions(algorithm_cls: type[BaseAlgorithm]) -> bool:
    return issubclass(algorithm_cls, DQN)


def _make_env(
    env_factory: Callable[[], gym.Env[Any, Any]], flat: bool
) -> Callable[[], gym.Env[Any, Any]]:
    if not flat:
        return env_factory

    def build() -> gym.Env[Any, Any]:
        env = env_factory()
        if isinstance(env.action_space, spaces.MultiDiscrete):
            env = FlatActionWrapper(env)
        elif not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"DQN needs a discrete action space, got {env.action_space}")
        return env

    return build


def _horizon(vec_env: VecEnv) -> int:
    try:
        return int(vec_env.get_attr("horizon", indices=[0])[0])
    except AttributeError:
        logger.debug("env has no 'horizon'; assuming %d", _DEFAULT_HORIZON)
        return _DEFAULT_HORIZON


def train_policy(
    env_factory: Callable[[], gym.Env[Any, Any]],
    policy: PolicyConfig,
    seed: int,
    log_dir: Path | None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train the configured SB3 algorithm.

    Parameters
    ----------
    env_factory
        Builds one fresh environment (called ``policy.n_envs`` times).
    policy
        Algorithm, budget, number of envs and hyperparameter overrides.
    seed
        Seeds the algorithm (torch, action sampling) and the environments' first resets.
    log_dir
        If given, ``Monitor`` CSVs go to ``log_dir/monitor`` and SB3's log to
        ``log_dir/progress.csv``.
    progress
        Called as ``progress(timesteps_done, total)`` during training.

    Raises
    ------
    ValueError
        If the algorithm cannot handle the environment (DQN on a too large joint action space).
    """
    algorithm_cls = ALGORITHMS.get(policy.algorithm)
    flat = _needs_flat_actions(algorithm_cls)
    monitor_dir = None
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        monitor_dir = str(Path(log_dir) / "monitor")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        vec_env = make_vec_env(
            _make_env(env_factory, flat), n_envs=policy.n_envs, seed=seed, monitor_dir=monitor_dir
        )
        overrides = dict(policy.hyperparameters)
        policy_name = str(overrides.pop("policy", SB3_POLICY))
        params = default_hyperparameters(
            policy.algorithm, _horizon(vec_env), policy.n_envs, policy.total_timesteps, overrides
        )
        model = algorithm_cls(policy_name, vec_env, seed=seed, verbose=0, device="cpu", **params)
        if log_dir is not None:
            model.set_logger(configure(str(log_dir), ["csv"]))
        callback = LearningCurveCallback(policy.total_timesteps, progress)
        logger.info(
            "training %s for %d timesteps on %d env(s)",
            policy.algorithm, policy.total_timesteps, policy.n_envs,
        )
        start = time.perf_counter()
        model.learn(total_timesteps=policy.total_timesteps, callback=callback)
        seconds = time.perf_counter() - start
        vec_env.close()
    finally:
        torch.set_num_threads(threads)
    logger.info("trained %s in %.1f s", policy.algorithm, seconds)
    return TrainResult(model, callback.curve(), seconds, policy.algorithm, params)


def save_policy(model: BaseAlgorithm, path: Path | str) -> Path:
    """Save ``model`` as a zip archive; return the path written (``.zip`` added if missing)."""
    path = Path(path)
    if path.suffix != ".zip":
        path = path.with_name(path.name + ".zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def load_policy(algorithm: str, path: Path | str) -> BaseAlgorithm:
    """Load a model saved by :func:`save_policy`, for prediction (no env attached)."""
    return ALGORITHMS.get(algorithm).load(Path(path), device="cpu")
