"""Train Stable-Baselines3 agents on :class:`~personasim.envs.CampaignEnv`.

Algorithms are registered by name in :data:`ALGORITHMS`; :func:`train_policy` builds a
monitored vectorized environment, merges the config's hyperparameters over per-algorithm
defaults, trains, and records a learning curve from the episodes finished during training.
SB3 and torch are imported only when a model is trained, loaded or saved: naming and
validating algorithms (``personasim validate``) imports neither.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import pandas as pd
from gymnasium import spaces

from personasim.config.sections import PolicyConfig
from personasim.core.interrupts import StopFlag
from personasim.core.registry import Registry
from personasim.envs.campaign_env import MAX_FLAT_ACTIONS, FlatActionWrapper
from personasim.envs.wrappers import SeasonEndWrapper
from personasim.policies.checkpointing import (
    CheckpointCallback,
    TrainingProgress,
    checkpoint_timesteps,
    load_checkpoint,
)
from personasim.policies.hooks import LearningCurveCallback, Stopwatch, sb3_callback
from personasim.policies.sb3_files import load_model

if TYPE_CHECKING:  # SB3 (and torch) are imported when training, not to name an algorithm
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.vec_env import VecEnv

logger = logging.getLogger(__name__)

HyperparameterDefaults = Callable[[int, int, int, dict[str, Any]], dict[str, Any]]
"""``(horizon, n_envs, total_timesteps, overrides) -> defaults``; the overrides win after."""


def _no_defaults(horizon: int, n_envs: int, total_timesteps: int,
                 overrides: dict[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class AlgorithmSpec:
    """A registered SB3 algorithm: where its class lives and how it is set up.

    Attributes
    ----------
    target
        The algorithm class, or ``"module:Class"`` imported on first use (so that naming
        or validating an algorithm imports neither SB3 nor torch).
    defaults
        Default hyperparameters for short campaign episodes.
    flat_actions
        Whether it needs one ``Discrete`` action: a ``MultiDiscrete`` space is flattened to
        its joint actions (see :class:`~personasim.envs.FlatActionWrapper`).
    """

    target: str | type[BaseAlgorithm]
    defaults: HyperparameterDefaults = _no_defaults
    flat_actions: bool = False

    def algorithm_class(self) -> type[BaseAlgorithm]:
        """The SB3 algorithm class (imported now when given as ``"module:Class"``)."""
        if not isinstance(self.target, str):
            return self.target
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


#: SB3 algorithms by name; ``policy.algorithm`` and ``policy.compare_algorithms`` pick them.
ALGORITHMS: Registry[AlgorithmSpec] = Registry("algorithm")

SB3_POLICY = "MlpPolicy"
"""The SB3 policy network used by every registered algorithm (override: ``policy``)."""

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
    seed
        The training seed.
    timesteps
        Environment steps trained (PPO and A2C round up to whole rollouts).
    resumed_from
        Timesteps of the checkpoint this training resumed from (0: a fresh start).
    """

    model: BaseAlgorithm
    curve: pd.DataFrame
    seconds: float
    algorithm: str
    hyperparameters: dict[str, Any]
    seed: int = 0
    timesteps: int = 0
    resumed_from: int = 0


def _largest_divisor(n: int, cap: int) -> int:
    """Largest divisor of ``n`` that is at most ``cap`` and above 1 (``n`` itself if none)."""
    for d in range(min(cap, n), 1, -1):
        if n % d == 0:
            return d
    return max(n, 2)


def _ppo_defaults(horizon: int, n_envs: int, total_timesteps: int,
                  overrides: dict[str, Any]) -> dict[str, Any]:
    """``8 * horizon`` steps per env per update (several episodes), a dividing minibatch."""
    n_steps = int(overrides.get("n_steps", 8 * horizon))
    return {
        "n_steps": n_steps,
        "batch_size": _largest_divisor(n_steps * n_envs, 64),
        "learning_rate": 3e-4,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "ent_coef": 0.01,
        "n_epochs": 10,
    }


def _a2c_defaults(horizon: int, n_envs: int, total_timesteps: int,
                  overrides: dict[str, Any]) -> dict[str, Any]:
    """One episode per env per update."""
    return {"n_steps": horizon, "learning_rate": 7e-4, "gamma": 0.99, "ent_coef": 0.01}


def _dqn_defaults(horizon: int, n_envs: int, total_timesteps: int,
                  overrides: dict[str, Any]) -> dict[str, Any]:
    """Learning starts, and the target network updates, early enough for small budgets."""
    return {
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


ALGORITHMS.add("ppo", AlgorithmSpec("stable_baselines3:PPO", _ppo_defaults))
ALGORITHMS.add("a2c", AlgorithmSpec("stable_baselines3:A2C", _a2c_defaults))
ALGORITHMS.add("dqn", AlgorithmSpec("stable_baselines3:DQN", _dqn_defaults, flat_actions=True))


def default_hyperparameters(
    algorithm: str,
    horizon: int,
    n_envs: int,
    total_timesteps: int,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The registered algorithm's defaults for short campaign episodes, ``overrides`` on top.

    Raises
    ------
    UnknownNameError
        If ``algorithm`` is not registered.
    """
    overrides = dict(overrides or {})
    params = dict(ALGORITHMS.get(algorithm).defaults(horizon, n_envs, total_timesteps, overrides))
    params.update(overrides)
    return params


def unsupported_reason(algorithm: str, action_space: spaces.Space[Any]) -> str | None:
    """Why ``algorithm`` cannot train on ``action_space`` (``None`` when it can).

    An algorithm with ``flat_actions`` (DQN) needs one ``Discrete`` action: a
    ``MultiDiscrete`` space is flattened to its joint actions, which must number at most
    :data:`MAX_FLAT_ACTIONS`.
    """
    if not ALGORITHMS.get(algorithm).flat_actions:
        return None
    if isinstance(action_space, spaces.MultiDiscrete):
        n = int(np.prod(np.asarray(action_space.nvec, dtype=np.float64)))
        if n > MAX_FLAT_ACTIONS:
            return (f"{algorithm} needs a small joint action space: "
                    f"{' x '.join(map(str, action_space.nvec))} = {n} joint actions exceeds "
                    f"{MAX_FLAT_ACTIONS}")
        return None
    if not isinstance(action_space, spaces.Discrete):
        return f"{algorithm} needs a discrete action space, got {action_space}"
    return None


def hyperparameters_for(policy: PolicyConfig, algorithm: str) -> dict[str, Any]:
    """The config's SB3 overrides for ``algorithm``.

    ``policy.hyperparameters`` belong to ``policy.algorithm``; each entry of
    ``policy.compare_algorithms`` carries its own.
    """
    if algorithm == policy.algorithm:
        return dict(policy.hyperparameters)
    return dict(policy.compare_algorithms.get(algorithm) or {})


def algorithm_names(policy: PolicyConfig) -> list[str]:
    """Every SB3 algorithm a config trains: ``algorithm`` first, then ``compare_algorithms``."""
    return list(dict.fromkeys([policy.algorithm, *policy.compare_algorithms]))


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` torch CPU threads inside the block, then restore the previous count.

    One thread suits a 2-core machine: the 64-unit MLPs gain nothing from intra-op
    parallelism, and the environment needs the other core less than it loses to contention.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _make_env(
    env_factory: Callable[[], gym.Env[Any, Any]], flat: bool, name: str
) -> Callable[[], gym.Env[Any, Any]]:
    def build() -> gym.Env[Any, Any]:
        env: gym.Env[Any, Any] = SeasonEndWrapper(env_factory())
        if not flat:
            return env
        if isinstance(env.action_space, spaces.MultiDiscrete):
            env = FlatActionWrapper(env)
        elif not isinstance(env.action_space, spaces.Discrete):
            raise ValueError(f"{name} needs a discrete action space, got {env.action_space}")
        return env

    return build


def _horizon(vec_env: VecEnv) -> int:
    try:
        return int(vec_env.get_attr("horizon", indices=[0])[0])
    except AttributeError:
        logger.debug("env has no 'horizon'; assuming %d", _DEFAULT_HORIZON)
        return _DEFAULT_HORIZON


def _sb3_logger(log_dir: Path, resumed_from: int) -> Logger:
    """SB3 log to ``progress.csv`` (``progress-from-<t>.csv`` after a resume) and TensorBoard."""
    from stable_baselines3.common.logger import Logger, make_output_format

    suffix = f"-from-{resumed_from}" if resumed_from else ""
    outputs = [make_output_format("csv", str(log_dir), suffix)]
    try:
        outputs.append(make_output_format("tensorboard", str(log_dir)))
    except (ImportError, AssertionError):  # SB3 asserts when tensorboard is missing
        logger.warning("tensorboard is not installed: SB3 logs go to CSV only")
    return Logger(str(log_dir), outputs)


def train_policy(
    env_factory: Callable[[], gym.Env[Any, Any]],
    policy: PolicyConfig,
    seed: int,
    log_dir: Path | None,
    progress: Callable[[int, int], None] | None = None,
    *,
    algorithm: str | None = None,
    checkpoint_dir: Path | None = None,
    stop: StopFlag | None = None,
) -> TrainResult:
    """Train one SB3 algorithm with one seed, resuming from a checkpoint when there is one.

    Parameters
    ----------
    env_factory
        Builds one fresh environment (called ``policy.n_envs`` times, in a
        :class:`DummyVecEnv`: on 2 cores it beats subprocesses, see
        ``benchmarks/vec_env.py``).
    policy
        Budget, number of envs, torch threads, checkpoint interval and hyperparameters.
    seed
        Seeds the algorithm (torch, action sampling) and the environments' first resets.
    log_dir
        If given: ``Monitor`` CSVs in ``log_dir/monitor``, SB3's log in ``progress.csv`` and
        TensorBoard event files in ``log_dir``.
    progress
        Called as ``progress(timesteps_done, total)`` during training.
    algorithm
        Registered algorithm to train (default ``policy.algorithm``); its hyperparameters
        come from :func:`hyperparameters_for`.
    checkpoint_dir
        If given: training resumes from the newest checkpoint there, saves one every
        ``policy.checkpoint_every`` timesteps, and saves one before stopping on request.
    stop
        Polled at every rollout start; once set, training checkpoints and raises
        :class:`~personasim.policies.checkpointing.TrainingInterrupted`.

    Raises
    ------
    ValueError
        If the algorithm cannot handle the environment (DQN on a too large joint action space).
    TrainingInterrupted
        If ``stop`` was set; the checkpoint (when ``checkpoint_dir`` is given) is saved.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    name = algorithm or policy.algorithm
    spec = ALGORITHMS.get(name)
    algorithm_cls = spec.algorithm_class()
    flat = spec.flat_actions
    resumed_from = checkpoint_timesteps(checkpoint_dir) or 0
    monitor_dir = None
    if log_dir is not None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        monitor = Path(log_dir) / "monitor"
        monitor_dir = str(monitor / f"from-{resumed_from}" if resumed_from else monitor)
    overrides = hyperparameters_for(policy, name)
    policy_name = str(overrides.pop("policy", SB3_POLICY))
    with torch_threads(policy.torch_threads):
        vec_env = make_vec_env(_make_env(env_factory, flat, name), n_envs=policy.n_envs, seed=seed,
                               monitor_dir=monitor_dir, vec_env_cls=DummyVecEnv)
        params = default_hyperparameters(
            name, _horizon(vec_env), policy.n_envs, policy.total_timesteps, overrides
        )
        restored = (load_checkpoint(checkpoint_dir, algorithm_cls, vec_env, policy=policy_name,
                                    hyperparameters=params)
                    if checkpoint_dir is not None else None)
        if restored is None:
            model = algorithm_cls(policy_name, vec_env, seed=seed, verbose=0, device="cpu",
                                  **params)
            before = TrainingProgress()
        else:
            model, before = restored
        if log_dir is not None:
            model.set_logger(_sb3_logger(Path(log_dir), resumed_from))
        clock = Stopwatch(before.seconds)
        curve = LearningCurveCallback(policy.total_timesteps, progress, before.records)

        def snapshot() -> TrainingProgress:
            return TrainingProgress(model.num_timesteps, clock.seconds, list(curve.records),
                                    before.sessions + 1)

        checkpoints = CheckpointCallback(checkpoint_dir, policy.checkpoint_every, stop, snapshot,
                                         last_saved=resumed_from)
        remaining = max(policy.total_timesteps - model.num_timesteps, 0)
        logger.info(
            "training %s (seed %d) for %d timesteps on %d env(s)%s", name, seed, remaining,
            policy.n_envs, f", resuming at {resumed_from}" if resumed_from else "",
        )
        clock.start()
        try:
            if remaining:
                model.learn(total_timesteps=remaining, callback=sb3_callback(curve, checkpoints),
                            reset_num_timesteps=restored is None)
        finally:
            vec_env.close()
    logger.info("trained %s in %.1f s", name, clock.seconds)
    return TrainResult(model, curve.curve(), clock.seconds, name, params, seed,
                       int(model.num_timesteps), resumed_from)


def save_policy(model: BaseAlgorithm, path: Path | str) -> Path:
    """Save ``model`` as a zip archive; return the path written (``.zip`` added if missing)."""
    path = Path(path)
    if path.suffix != ".zip":
        path = path.with_name(path.name + ".zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return path


def load_policy(algorithm: str, path: Path | str, env: gym.Env[Any, Any],
                policy: str = SB3_POLICY,
                hyperparameters: dict[str, Any] | None = None) -> BaseAlgorithm:
    """Load a model saved by :func:`save_policy`, for prediction (no env attached).

    Nothing in the zip is unpickled (:func:`~personasim.policies.sb3_files.load_model`):
    the spaces come from ``env`` (wrapped as for training), the rest from ``algorithm``.

    Raises
    ------
    DataError
        The file is not such a model, or does not fit ``env``.
    """
    spec = ALGORITHMS.get(algorithm)
    acting = _make_env(lambda: env, spec.flat_actions, algorithm)()
    return load_model(spec.algorithm_class(), Path(path),
                      observation_space=acting.observation_space,
                      action_space=acting.action_space, policy=policy,
                      hyperparameters=hyperparameters)
