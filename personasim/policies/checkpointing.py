"""Training checkpoints that resume exactly: nothing lost, nothing done twice.

A checkpoint is taken at the start of a rollout, when every collected step has been learned
from (on-policy: the last update is done; off-policy: the replay buffer holds every
transition). It holds

- the SB3 model (parameters, optimizer, counters, last observation) and, for off-policy
  algorithms, the replay buffer;
- each training environment's episode in progress (:meth:`CampaignEnv.get_state
  <personasim.envs.CampaignEnv.get_state>`: the generator state at its reset and the actions
  since) and its ``Monitor`` counters;
- the random states SB3 draws from: Python's ``random``, NumPy's legacy global generator,
  torch's, and the action space's;
- the learning-curve records and the training seconds so far.

Files are versioned by timestep and ``latest.json`` is replaced last (atomically), so a crash
while saving leaves the previous checkpoint usable. Resuming from a checkpoint gives the same
model as never stopping (tested).

Training hooks (:class:`LearningCurveCallback`, :class:`CheckpointCallback`) are plain
classes that :func:`sb3_callback` wraps in one SB3 callback, so that this module imports
without SB3 or torch.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from personasim.core.interrupts import RunInterrupted, StopFlag

if TYPE_CHECKING:  # SB3 and torch are imported when a checkpoint is written or read
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecEnv

logger = logging.getLogger(__name__)

POINTER = "latest.json"
"""The file naming the newest complete checkpoint in a checkpoint folder."""

CURVE_COLUMNS = ("timesteps", "mean_return", "n_episodes")
"""Columns of a training run's learning curve."""

_MONITOR_FIELDS = ("rewards", "needs_reset", "episode_returns", "episode_lengths",
                   "episode_times", "total_steps", "current_reset_info")


class TrainingInterrupted(RunInterrupted):
    """Training stopped at a checkpoint because a stop was requested."""


@dataclass
class TrainingProgress:
    """What a checkpoint carries besides the model.

    Attributes
    ----------
    timesteps
        Environment steps trained so far.
    seconds
        Wall-clock training seconds so far, over every session.
    records
        Learning-curve records ``(timesteps, episode return)`` so far.
    sessions
        Training sessions so far (1 + the number of resumes).
    """

    timesteps: int = 0
    seconds: float = 0.0
    records: list[tuple[int, float]] = field(default_factory=list)
    sessions: int = 0


def checkpoint_timesteps(directory: Path | None) -> int | None:
    """Timesteps of the newest checkpoint in ``directory`` (``None`` if there is none)."""
    if directory is None:
        return None
    pointer = Path(directory) / POINTER
    if not pointer.is_file():
        return None
    return int(json.loads(pointer.read_text())["timesteps"])


def _rng_state(model: BaseAlgorithm) -> dict[str, Any]:
    import torch

    return {
        "python": random.getstate(),
        # SB3 draws minibatch orders and epsilon-greedy coins from NumPy's legacy global
        # generator; it is saved and restored here, never drawn from
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }


def _restore_rng(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    model.action_space.np_random.bit_generator.state = state["action_space"]


def _env_states(vec_env: VecEnv) -> list[dict[str, Any]] | None:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    if not isinstance(vec_env, DummyVecEnv):
        return None
    states = []
    for env in vec_env.envs:
        base = env.unwrapped
        if not hasattr(base, "get_state"):
            return None
        monitor = env if isinstance(env, Monitor) else None
        states.append({
            "env": base.get_state(),
            "monitor": ({k: getattr(monitor, k) for k in _MONITOR_FIELDS}
                        if monitor is not None else None),
        })
    return states


def _restore_envs(vec_env: VecEnv, states: list[dict[str, Any]]) -> None:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    assert isinstance(vec_env, DummyVecEnv)
    if len(states) != len(vec_env.envs):
        raise ValueError(f"checkpoint has {len(states)} environments, training has "
                         f"{len(vec_env.envs)}")
    for env, saved in zip(vec_env.envs, states, strict=True):
        env.unwrapped.set_state(saved["env"])
        if saved["monitor"] is not None and isinstance(env, Monitor):
            for key, value in saved["monitor"].items():
                setattr(env, key, value)


def save_checkpoint(directory: Path, model: BaseAlgorithm, progress: TrainingProgress) -> Path:
    """Write a checkpoint of ``model`` and its environments; return the pointer file."""
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    env = model.get_env()
    assert env is not None
    tag = f"{model.num_timesteps:012d}"
    model.save(directory / f"model-{tag}.zip")
    if isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        model.save_replay_buffer(directory / f"replay-{tag}.pkl")
    payload = {
        "progress": progress,
        "envs": _env_states(env),
        "rng": _rng_state(model),
    }
    tmp = directory / f".state-{tag}.tmp"
    with tmp.open("wb") as fh:
        pickle.dump(payload, fh)
    os.replace(tmp, directory / f"state-{tag}.pkl")
    pointer_tmp = directory / f".{POINTER}.tmp"
    pointer_tmp.write_text(json.dumps({"timesteps": model.num_timesteps, "tag": tag}))
    os.replace(pointer_tmp, directory / POINTER)
    for old in directory.iterdir():
        if old.name != POINTER and old.suffix in (".zip", ".pkl") and tag not in old.name:
            old.unlink(missing_ok=True)
    logger.info("checkpoint at %d timesteps in %s", model.num_timesteps, directory)
    return directory / POINTER


def load_checkpoint(
    directory: Path, algorithm_cls: type[BaseAlgorithm], vec_env: VecEnv
) -> tuple[BaseAlgorithm, TrainingProgress] | None:
    """Restore the newest checkpoint in ``directory`` onto ``vec_env`` (``None``: none).

    The environments are put back into the episodes they were in and the random states are
    restored after SB3's ``load`` (which reseeds), so training continues as if never stopped.
    When the environments cannot be restored (not a :class:`DummyVecEnv` of
    :class:`~personasim.envs.CampaignEnv`), the episodes in progress restart instead.
    """
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    directory = Path(directory)
    if checkpoint_timesteps(directory) is None:
        return None
    tag = json.loads((directory / POINTER).read_text())["tag"]
    with (directory / f"state-{tag}.pkl").open("rb") as fh:
        payload = pickle.load(fh)  # our own file, written by save_checkpoint
    envs = payload["envs"]
    restorable = envs is not None and _env_states(vec_env) is not None
    model = algorithm_cls.load(directory / f"model-{tag}.zip", env=vec_env, device="cpu",
                               force_reset=not restorable)
    replay = directory / f"replay-{tag}.pkl"
    if isinstance(model, OffPolicyAlgorithm) and replay.is_file():
        model.load_replay_buffer(replay, truncate_last_traj=False)
    if restorable:
        _restore_envs(vec_env, envs)
    else:
        logger.warning("checkpoint without environment state: episodes in progress restart")
    _restore_rng(model, payload["rng"])
    progress: TrainingProgress = payload["progress"]
    logger.info("resuming from %d timesteps (%s)", model.num_timesteps, directory)
    return model, progress


class TrainingHook(Protocol):
    """What :func:`sb3_callback` calls; ``callback`` is the SB3 callback (model, locals)."""

    def on_rollout_start(self, callback: BaseCallback) -> None:
        """Called at the start of every rollout (every collected step has been learned from)."""
        ...

    def on_step(self, callback: BaseCallback) -> None:
        """Called after every vectorized environment step."""
        ...


def sb3_callback(*hooks: TrainingHook) -> BaseCallback:
    """One SB3 callback that calls each hook, in order, at rollout starts and steps.

    The hooks are plain classes, so this module and :mod:`personasim.policies.training`
    import without SB3; the SB3 class is built on first use.
    """
    return _hook_callback_class()(hooks)


@functools.cache
def _hook_callback_class() -> type[BaseCallback]:
    from stable_baselines3.common.callbacks import BaseCallback

    class HookCallback(BaseCallback):
        """Calls plain training hooks (never stops training itself)."""

        def __init__(self, hooks: tuple[TrainingHook, ...]) -> None:
            super().__init__()
            self.hooks = tuple(hooks)

        def _on_rollout_start(self) -> None:
            for hook in self.hooks:
                hook.on_rollout_start(self)

        def _on_step(self) -> bool:
            for hook in self.hooks:
                hook.on_step(self)
            return True

    return HookCallback


class CheckpointCallback:
    """Checkpoint every ``every`` timesteps and when a stop is requested, at rollout starts.

    A training hook: :func:`sb3_callback` drives it.

    Parameters
    ----------
    directory
        Checkpoint folder (``None``: never save; a stop then just stops).
    every
        Timesteps between periodic checkpoints (``None``: only on a stop request).
    stop
        The stop flag to poll.
    progress
        Returns the :class:`TrainingProgress` to store (records and seconds so far).
    last_saved
        Timesteps of the checkpoint training resumed from (0 for a fresh start).
    """

    def __init__(
        self,
        directory: Path | None,
        every: int | None,
        stop: StopFlag | None,
        progress: Callable[[], TrainingProgress],
        last_saved: int = 0,
    ) -> None:
        self.directory = directory
        self.every = every
        self.stop = stop
        self.progress = progress
        self.last_saved = int(last_saved)
        self.saves = 0

    def save(self, model: BaseAlgorithm) -> None:
        """Write a checkpoint of ``model`` now (at a rollout boundary)."""
        if self.directory is None:
            return
        save_checkpoint(self.directory, model, self.progress())
        self.last_saved = model.num_timesteps
        self.saves += 1

    def on_rollout_start(self, callback: BaseCallback) -> None:
        """Save when due or when a stop is requested (then raise TrainingInterrupted)."""
        model = callback.model
        if self.stop is not None and self.stop.requested:
            if (model.num_timesteps != self.last_saved
                    or checkpoint_timesteps(self.directory) is None):
                self.save(model)
            assert self.stop.signum is not None
            raise TrainingInterrupted(self.stop.signum,
                                      f"training at {callback.num_timesteps} steps")
        due = self.every is not None and model.num_timesteps - self.last_saved >= self.every
        if due:
            self.save(model)

    def on_step(self, callback: BaseCallback) -> None:
        """Nothing to do after a step."""


class LearningCurveCallback:
    """Record the return of every finished episode (from SB3's ``Monitor``) and report progress.

    A training hook: :func:`~personasim.policies.checkpointing.sb3_callback` drives it.

    Parameters
    ----------
    total
        Training budget in timesteps, passed on to ``progress``.
    progress
        Called as ``progress(timesteps_done, total)`` after every vectorized step.
    records
        Records of earlier sessions (when training resumes from a checkpoint).
    """

    def __init__(
        self,
        total: int,
        progress: Callable[[int, int], None] | None = None,
        records: list[tuple[int, float]] | None = None,
    ) -> None:
        self.total = int(total)
        self.progress = progress
        self.records: list[tuple[int, float]] = list(records or [])

    def on_rollout_start(self, callback: BaseCallback) -> None:
        """Nothing to do at a rollout start."""

    def on_step(self, callback: BaseCallback) -> None:
        """Record the episodes that ended at this step; report progress."""
        for info in callback.locals.get("infos", []):
            episode = info.get("episode")
            if episode is not None:
                self.records.append((int(callback.num_timesteps), float(episode["r"])))
        if self.progress is not None:
            self.progress(min(int(callback.num_timesteps), self.total), self.total)

    def curve(self) -> pd.DataFrame:
        """The recorded episodes, averaged per timestep."""
        if not self.records:
            return pd.DataFrame({c: pd.Series(dtype=float) for c in CURVE_COLUMNS})
        frame = pd.DataFrame(self.records, columns=["timesteps", "return"])
        grouped = frame.groupby("timesteps", sort=True)["return"]
        return pd.DataFrame(
            {"mean_return": grouped.mean(), "n_episodes": grouped.size()}
        ).reset_index()[list(CURVE_COLUMNS)]


class Stopwatch:
    """Seconds over several sessions: an offset plus the time since :meth:`start`."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = float(offset)
        self.started = time.perf_counter()

    def start(self) -> None:
        """Start counting this session."""
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        """Offset plus seconds since the last start."""
        return self.offset + time.perf_counter() - self.started
