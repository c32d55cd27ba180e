"""What the runner knows of a stage: its name, its title and whether a resume reuses it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from personasim.config.schema import ExperimentConfig
from personasim.core.interrupts import StopFlag
from personasim.experiments.progress import Advance


@dataclass(frozen=True)
class Stage:
    """One step of a run.

    Attributes
    ----------
    name
        Key in the manifest's ``stage_seconds`` and in the resume state.
    title
        What the progress display shows, or a function of the config that says it.
    saved
        Whether the result is saved so that a resumed run reuses it.
    total
        Units of progress the stage reports, as a function of the config (``None``: none).
    """

    name: str
    title: str | Callable[[ExperimentConfig], str]
    saved: bool = False
    total: Callable[[ExperimentConfig], int] | None = None

    def title_for(self, config: ExperimentConfig) -> str:
        """The progress title for ``config``."""
        return self.title(config) if callable(self.title) else self.title


@dataclass(frozen=True)
class RunContext:
    """What every stage may read: the config, the run folder being written and the stop flag.

    Attributes
    ----------
    config
        The resolved experiment config.
    source
        Where the config came from (for error messages).
    out
        The run folder being written (its temporary name until the run succeeds).
    stop
        Set by SIGINT/SIGTERM; long stages poll it.
    """

    config: ExperimentConfig
    source: str
    out: Path
    stop: StopFlag


StageFunction = Callable[..., object]
"""A stage's work: takes the run context, the progress callback and earlier results."""

__all__ = ["Advance", "RunContext", "Stage", "StageFunction"]
