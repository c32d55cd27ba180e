"""Resumable runs: an interrupted run keeps its folder, and ``--resume`` finishes it.

A run works in a hidden ``.NAME.partial-PID`` folder that becomes ``NAME`` when it succeeds
(:class:`~personasim.experiments.run_dir.RunDirectory`). When SIGINT or SIGTERM stops it
(:class:`~personasim.core.interrupts.RunInterrupted`, or ``KeyboardInterrupt`` after a second
signal), :class:`ResumableRunDirectory` moves the folder to ``NAME.interrupted`` instead of
deleting it. Inside, ``checkpoints/`` holds what a resume needs:

- ``run.json``: the resolved config, the final destination, sessions so far and the seconds
  spent per stage;
- ``stages/<stage>.npz``: the result of every finished early stage (inputs, A/B test,
  Bayesian update, self-check), so a resume does not redo them. They are plain data
  (:mod:`personasim.core.plain_files`: JSON, arrays and Parquet in one ``.npz``, read with
  ``allow_pickle=False``), never pickles: a tampered run folder cannot run code on resume.
  A stage file that does not read back (damaged, a pickle, a type not in
  :data:`STAGE_TYPES`) stops the resume with a one-line error naming it; an old
  ``stages/<stage>.pkl`` is never opened (the stage is recomputed);
- one folder per training run with its newest checkpoint (:mod:`personasim.policies.checkpointing`),
  and the evaluation episodes already played.

``personasim run --resume NAME.interrupted`` continues in place and renames the folder to
``NAME`` when done; ``checkpoints/`` is then removed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from personasim.audience.profiles import PersonaProfiles
from personasim.bayes.covariates import CovariatePosterior, CovariateSpec
from personasim.bayes.design import Coding, Design
from personasim.bayes.diagnostics import FitDiagnostics
from personasim.bayes.priors import PriorGrid
from personasim.bayes.privacy import PrivacyReport
from personasim.bayes.update import InferenceOutcome
from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta, Constant, Gamma, LogNormal, Normal, Uniform
from personasim.config.persona import Persona, PersonaTraits
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import EventConfig
from personasim.core.errors import ConfigError, DataError
from personasim.core.interrupts import ExitHandler, GracefulInterrupt, StopFlag, is_interruption
from personasim.core.plain_files import PlainFileError, load_plain, save_plain
from personasim.core.run_layout import CHECKPOINTS, RUN_STATE, STAGE_RESULTS
from personasim.core.types import ABCounts, ABResults, Diagnostics, Posterior
from personasim.evaluation.self_check import SelfCheck
from personasim.experiments.run_dir import RunDirectory, StageTimer
from personasim.experiments.stages.inference import InferenceResult
from personasim.experiments.stages.inputs import Inputs

logger = logging.getLogger(__name__)

INTERRUPTED_SUFFIX = ".interrupted"

T = TypeVar("T")

STAGE_TYPES: tuple[type, ...] = (
    Inputs, Persona, PersonaTraits, Beta, Gamma, Normal, LogNormal, Uniform, Constant,
    Campaign, EventConfig, PersonaProfiles, ABResults, ABCounts, InferenceResult,
    InferenceOutcome, Posterior, CovariatePosterior, Diagnostics, FitDiagnostics, PriorGrid,
    CovariateSpec, Design, Coding, PrivacyReport, SelfCheck,
)
"""The only classes a saved stage result may contain (anything else is refused on reading)."""


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

    The run finishes beside its folder (``NAME.interrupted`` becomes ``NAME``): a
    ``run.json`` naming another destination (the folder was moved, or the file edited) is
    not followed there, and its ``overwrite`` is then ignored.

    Raises
    ------
    ConfigError
        ``path`` is not a resumable run folder, its ``run.json`` is damaged, or its saved
        config no longer validates.
    """
    path = Path(path)
    candidates = [path, interrupted_path(path)]
    directory = next((c for c in candidates if (c / CHECKPOINTS.name / RUN_STATE).is_file()), None)
    if directory is None:
        raise ConfigError(str(path), None, f"not a resumable run folder (no {CHECKPOINTS.name}/"
                          f"{RUN_STATE}); an interrupted run is kept as NAME{INTERRUPTED_SUFFIX}")
    state_path = directory / CHECKPOINTS.name / RUN_STATE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        config = ExperimentConfig.model_validate(state["config"])
        final, overwrite = Path(state["final"]), bool(state["overwrite"])
        source = str(state["config_source"])
    except ValidationError as exc:
        raise ConfigError(str(state_path), "config",
                          f"the saved config no longer validates ({exc})") from None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ConfigError(str(state_path), None, f"damaged resume state ({exc})") from None
    if directory.name.endswith(INTERRUPTED_SUFFIX):
        beside = directory.with_name(directory.name.removesuffix(INTERRUPTED_SUFFIX))
        if final.resolve() != beside.resolve():
            logger.warning("%s names %s as the destination; the run finishes beside its "
                           "folder, in %s", state_path, final, beside)
            final, overwrite = beside, False
    return SavedRun(directory, config, final, source, overwrite)


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
        A result that cannot be saved as plain data is not saved (a resume recomputes it).

        Raises
        ------
        DataError
            The saved result does not read back as plain data (damaged or tampered with).
        """
        folder = self.dir / STAGE_RESULTS
        path = folder / f"{name}.npz"
        if (folder / f"{name}.pkl").is_file():
            logger.warning("stage %s: ignoring %s (a pickle, never opened); the stage is "
                           "recomputed", name, folder / f"{name}.pkl")
        if path.is_file():
            try:
                result: T = load_plain(path, STAGE_TYPES)
            except PlainFileError as exc:
                raise DataError(str(path), None, f"not a saved stage result ({exc}); delete it "
                                "to recompute the stage") from None
            self.reused.append(name)
            logger.info("stage %s: reusing the result saved by an earlier session", name)
            return result
        result = compute()
        try:
            save_plain(result, path, STAGE_TYPES)
        except TypeError as exc:
            logger.warning("stage %s: result not saved for a resume (%s)", name, exc)
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
