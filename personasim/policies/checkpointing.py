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

Nothing in a checkpoint is unpickled on resume: the model is an SB3 zip read by
:func:`~personasim.policies.sb3_files.load_model` (no cloudpickle), the replay buffer an
``.npz`` of arrays, and the rest (``state-<timesteps>.npz``) plain data
(:mod:`personasim.core.plain_files`). A tampered checkpoint can make a resume fail with a
one-line error; it cannot run code.

:class:`CheckpointCallback` is a plain training hook that
:func:`~personasim.policies.hooks.sb3_callback` wraps in an SB3 callback, so that this
module imports without SB3 or torch.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from personasim.core.errors import DataError
from personasim.core.interrupts import RunInterrupted, StopFlag
from personasim.core.plain_files import PlainFileError, load_plain, save_plain
from personasim.policies.sb3_files import (
    load_model,
    load_replay_buffer,
    model_state,
    save_replay_buffer,
)

if TYPE_CHECKING:  # SB3 and torch are imported when a checkpoint is written or read
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecEnv

logger = logging.getLogger(__name__)

POINTER = "latest.json"
"""The file naming the newest complete checkpoint in a checkpoint folder."""

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
        "torch": torch.get_rng_state().numpy(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }


def _restore_rng(model: BaseAlgorithm, state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(torch.from_numpy(np.array(state["torch"], dtype=np.uint8)))
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


STATE_TYPES: tuple[type, ...] = (TrainingProgress,)
"""The only class a checkpoint's ``state-<timesteps>.npz`` may contain."""


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
        save_replay_buffer(model, directory / f"replay-{tag}.npz")
    payload = {
        "progress": progress,
        "envs": _env_states(env),
        "rng": _rng_state(model),
        "model": model_state(model),
    }
    save_plain(payload, directory / f"state-{tag}.npz", STATE_TYPES)
    pointer_tmp = directory / f".{POINTER}.tmp"
    pointer_tmp.write_text(json.dumps({"timesteps": model.num_timesteps, "tag": tag}))
    os.replace(pointer_tmp, directory / POINTER)
    for old in directory.iterdir():
        if old.name != POINTER and old.suffix in (".zip", ".pkl", ".npz") and tag not in old.name:
            old.unlink(missing_ok=True)
    logger.info("checkpoint at %d timesteps in %s", model.num_timesteps, directory)
    return directory / POINTER


def _read_tag(directory: Path) -> str:
    pointer = directory / POINTER
    try:
        tag = json.loads(pointer.read_text())["tag"]
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise DataError(str(pointer), None, f"not a checkpoint pointer ({exc})") from None
    if not isinstance(tag, str) or not tag.isdigit():
        raise DataError(str(pointer), "tag", f"{str(tag)[:40]!r} is not a checkpoint tag")
    return tag


def load_checkpoint(
    directory: Path, algorithm_cls: type[BaseAlgorithm], vec_env: VecEnv, *,
    policy: str, hyperparameters: dict[str, Any],
) -> tuple[BaseAlgorithm, TrainingProgress] | None:
    """Restore the newest checkpoint in ``directory`` onto ``vec_env`` (``None``: none).

    The environments are put back into the episodes they were in and the random states are
    restored after SB3's ``load`` (which reseeds), so training continues as if never stopped.
    When the environments cannot be restored (not a :class:`DummyVecEnv` of
    :class:`~personasim.envs.CampaignEnv`), the episodes in progress restart instead.
    ``policy`` and ``hyperparameters`` are those training was started with (SB3's pickled
    schedules are rebuilt from them, see :mod:`personasim.policies.sb3_files`).

    Raises
    ------
    DataError
        A checkpoint file is damaged, tampered with or does not fit this training.
    """
    from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

    directory = Path(directory)
    if checkpoint_timesteps(directory) is None:
        return None
    tag = _read_tag(directory)
    state_path = directory / f"state-{tag}.npz"
    try:
        payload = load_plain(state_path, STATE_TYPES)
        envs, rng, saved_model = payload["envs"], payload["rng"], payload["model"]
        progress = payload["progress"]
    except (PlainFileError, KeyError, TypeError) as exc:
        raise DataError(str(state_path), None, f"not a saved checkpoint state ({exc})") from None
    if not isinstance(progress, TrainingProgress):
        raise DataError(str(state_path), "progress", "not a saved checkpoint state")
    restorable = envs is not None and _env_states(vec_env) is not None
    model = load_model(algorithm_cls, directory / f"model-{tag}.zip",
                       observation_space=vec_env.observation_space,
                       action_space=vec_env.action_space, policy=policy,
                       hyperparameters=hyperparameters, env=vec_env, state=saved_model,
                       force_reset=not restorable)
    replay = directory / f"replay-{tag}.npz"
    if isinstance(model, OffPolicyAlgorithm) and replay.is_file():
        load_replay_buffer(model, replay)
    if restorable:
        _restore_envs(vec_env, envs)
    else:
        logger.warning("checkpoint without environment state: episodes in progress restart")
    _restore_rng(model, rng)
    progress.records = [(int(t), float(r)) for t, r in progress.records]
    logger.info("resuming from %d timesteps (%s)", model.num_timesteps, directory)
    return model, progress


class CheckpointCallback:
    """Checkpoint every ``every`` timesteps and when a stop is requested, at rollout starts.

    A training hook: :func:`~personasim.policies.hooks.sb3_callback` drives it.

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
