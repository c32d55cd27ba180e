"""Resumable runs: an interrupted run keeps its folder, and ``--resume`` finishes it.

A run works in a hidden ``.NAME.partial-PID`` folder that becomes ``NAME`` when it succeeds
(:class:`~personasim.experiments.run_dir.RunDirectory`). When SIGINT or SIGTERM stops it
(:class:`~personasim.core.interrupts.RunInterrupted`, or ``KeyboardInterrupt`` after a second
signal), :class:`ResumableRunDirectory` moves the folder to ``NAME.interrupted`` instead of
deleting it. Inside, ``checkpoints/`` holds what a resume needs:

- ``run.json``: the resolved config, the final destination, sessions so far and the seconds
  spent per stage;
- ``stages/<stage>.pkl``: the result of every finished early stage (inputs, A/B test,
  Bayesian update), so a resume does not redo them;
- one folder per training run with its newest checkpoint (:mod:`personasim.policies.checkpointing`),
  and the evaluation episodes already played.

``personasim run --resume NAME.interrupted`` continues in place and renames the folder to
``NAME`` when done; ``checkpoints/`` is then removed.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from personasim.config.schema import ExperimentConfig
from personasim.core.errors import ConfigError
from personasim.core.interrupts import ExitHandler, GracefulInterrupt, StopFlag, is_interruption
from personasim.core.run_layout import CHECKPOINTS, RUN_STATE
from personasim.experiments.run_dir import RunDirectory, StageTimer

logger = logging.getLogger(__name__)

INTERRUPTED_SUFFIX = ".interrupted"

T = TypeVar("T")


def interrupted_path(final: Path) -> Path:
    """Where an interrupted run headed for ``final`` is kept: ``final`` + ``.interrupted``."""
    final = Path(final)
    return final.with_name(final.name + INTERRUPTED_SUFFIX)


@dataclass(frozen=True)
class SavedRun:
    """A resumable run, as read from its ``checkpoints/run.json``."""

    directory: Path
    config: ExperimentConfig
    final: Path
    config_source: str
    overwrite: bool


def read_saved_run(path: Path) -> SavedRun:
    """Read the resumable run at ``path`` (the folder, or the final path it was heading for).

    Raises
    ------
    ConfigError
        ``path`` is not a resumable run folder, or its saved config no longer validates.
    """
    path = Path(path)
    candidates = [path, interrupted_path(path)]
    directory = next((c for c in candidates if (c / CHECKPOINTS.name / RUN_STATE).is_file()), None)
    if directory is None:
        raise ConfigError(str(path), None, f"not a resumable run folder (no {CHECKPOINTS.name}/"
                          f"{RUN_STATE}); an interrupted run is kept as NAME{INTERRUPTED_SUFFIX}")
    state = json.loads((directory / CHECKPOINTS.name / RUN_STATE).read_text())
    try:
        config = ExperimentConfig.model_validate(state["config"])
    except ValueError as exc:
        raise ConfigError(str(directory / CHECKPOINTS.name / RUN_STATE), "config",
                          f"the saved config no longer validates ({exc})") from None
    return SavedRun(directory, config, Path(state["final"]), state["config_source"],
                    bool(state["overwrite"]))


class ResumableRunDirectory(RunDirectory):
    """A :class:`RunDirectory` that keeps an interrupted run, and can continue one.

    Parameters
    ----------
    final
        Where the finished run should live.
    overwrite
        Replace an existing folder at ``final`` (and an interrupted run heading there).
    resume
        An interrupted run folder to continue in place (``None``: a fresh run).
    """

    def __init__(self, final: Path, overwrite: bool = False, resume: Path | None = None) -> None:
        super().__init__(Path(final), overwrite=overwrite)
        self.resume = Path(resume) if resume is not None else None
        if self.resume is not None:
            self.partial = self.resume

    def __enter__(self) -> Path:
        if self.resume is None:
            pending = interrupted_path(self.final)
            if pending.exists() and not self.overwrite:
                raise FileExistsError(
                    f"{pending} holds an interrupted run: continue it with `personasim run "
                    f"--resume {pending}`, or pass --overwrite to start again"
                )
            return super().__enter__()
        if self.final.exists() and not self.overwrite:
            raise FileExistsError(f"{self.final} already exists (use --overwrite to replace it)")
        return self.partial

    def leave(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        """Keep an interrupted or failed resumed run; otherwise finish as a run folder does."""
        if is_interruption(exc_type):
            target = interrupted_path(self.final)
            if self.partial.resolve() != target.resolve():
                if target.exists():
                    shutil.rmtree(target)  # only with overwrite: __enter__ refused otherwise
                os.replace(self.partial, target)
            if exc is not None:
                exc.resume_dir = target  # type: ignore[attr-defined]  # read by the CLI
            logger.info("run interrupted; continue with `personasim run --resume %s`", target)
            return None
        if exc_type is not None and self.resume is not None:
            logger.error("the resumed run failed; %s is kept for another --resume", self.partial)
            return None
        if exc_type is None:
            shutil.rmtree(self.partial / CHECKPOINTS.name, ignore_errors=True)
        return super().leave(exc_type, exc)


class RunSession(ExitHandler):
    """The resumable state of one run folder: saved stages, seconds and the stop flag.

    Entering the session routes SIGINT/SIGTERM to :attr:`stop` (see
    :class:`~personasim.core.interrupts.GracefulInterrupt`) and records one more session in
    ``run.json``; leaving it after an interruption adds this session's stage seconds there.

    Parameters
    ----------
    out
        The run folder being written.
    config, config_source, final, overwrite
        What ``run.json`` records for a resume (ignored when it exists already).
    timer
        The runner's stage timer, whose seconds this session adds to the earlier ones.
    """

    def __init__(self, out: Path, config: ExperimentConfig, config_source: str, final: Path,
                 overwrite: bool, timer: StageTimer) -> None:
        self.out = Path(out)
        self.dir = self.out / CHECKPOINTS.name
        self.timer = timer
        self.stop = StopFlag()
        self.reused: list[str] = []
        self._interrupt = GracefulInterrupt(self.stop)
        path = self.dir / RUN_STATE
        if path.is_file():
            self.state: dict[str, Any] = json.loads(path.read_text())
        else:
            self.state = {
                "config": config.model_dump(mode="json", by_alias=True),
                "config_source": config_source,
                "final": str(Path(final).resolve()),
                "overwrite": overwrite,
                "sessions": 0,
                "stage_seconds": {},
                "wall_seconds": 0.0,
            }

    @property
    def sessions(self) -> int:
        """Sessions of this run so far, this one included."""
        return int(self.state["sessions"])

    def _write(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{RUN_STATE}.tmp"
        tmp.write_text(json.dumps(self.state, indent=2, default=str))
        os.replace(tmp, self.dir / RUN_STATE)

    def __enter__(self) -> RunSession:
        self._interrupt.__enter__()
        self.state["sessions"] = self.sessions + 1
        self._write()
        return self

    def leave(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        """Restore the signal handlers; after an interruption, save the stage seconds."""
        self._interrupt.leave(exc_type, exc)
        if is_interruption(exc_type):
            self.state["stage_seconds"] = self.stage_seconds(self.timer.seconds)
            self._write()

    def stage(self, name: str, compute: Callable[[], T]) -> T:
        """Return the stage's saved result, or compute, save and return it.

        After a stage is computed, a pending stop request raises
        :class:`~personasim.core.interrupts.RunInterrupted` (the result is saved first).
        """
        path = self.dir / "stages" / f"{name}.pkl"
        if path.is_file():
            with path.open("rb") as fh:
                result: T = pickle.load(fh)  # our own file, written below
            self.reused.append(name)
            logger.info("stage %s: reusing the result saved by an earlier session", name)
            return result
        result = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            pickle.dump(result, fh)
        os.replace(tmp, path)
        self.stop.check(name)
        return result

    def stage_seconds(self, current: dict[str, float]) -> dict[str, float]:
        """Seconds per stage over every session (stages reused now keep their first time)."""
        total = dict(self.state["stage_seconds"])
        for name, seconds in current.items():
            earlier = float(total.get(name, 0.0))
            total[name] = round(earlier if name in self.reused else earlier + seconds, 3)
        return total

    def summary(self) -> dict[str, Any]:
        """For the manifest: sessions so far and the stages this session reused."""
        return {"sessions": self.sessions, "reused_stages": list(self.reused)}
