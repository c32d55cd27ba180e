"""Training hooks: plain classes that one SB3 callback calls, and a multi-session stopwatch.

:func:`sb3_callback` wraps hooks (:class:`LearningCurveCallback`,
:class:`~personasim.policies.checkpointing.CheckpointCallback`) in one SB3 callback built on
first use, so that this module imports without SB3 or torch.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import pandas as pd

if TYPE_CHECKING:
    from stable_baselines3.common.callbacks import BaseCallback

CURVE_COLUMNS = ("timesteps", "mean_return", "n_episodes")
"""Columns of a training run's learning curve."""


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


class LearningCurveCallback:
    """Record the return of every finished episode (from SB3's ``Monitor``) and report progress.

    A training hook: :func:`sb3_callback` drives it.

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
