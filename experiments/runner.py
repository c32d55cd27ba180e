"""The experiment runner: sequences the stages, checkpoints them and reports progress.

Stages, in order (each a module of :mod:`personasim.experiments.stages` with a typed input
and output): inputs -> A/B test -> Bayesian update -> training on the simulation
re-parameterized from the posterior -> evaluation against baselines -> prioritization ->
plan -> export -> held-out evaluation (when customers were held out) -> report -> manifest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from personasim.config.schema import ExperimentConfig
from personasim.core.types import RECIPIENT_ID
from personasim.experiments.preflight import check_registered_names
from personasim.experiments.progress import Reporter, SilentReporter
from personasim.experiments.resume import ResumableRunDirectory, RunSession, read_saved_run
from personasim.experiments.run_dir import StageTimer
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages import (
    ab_test,
    evaluation,
    export,
    heldout,
    inference,
    inputs,
    manifest,
    plan,
    ranking,
    report,
    self_check,
    training,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RunSummary:
    """What a finished run produced."""

    run_dir: Path
    prioritization: pd.DataFrame
    evaluation: pd.DataFrame
    manifest: dict[str, Any]
    plan: pd.DataFrame


class StageSequencer:
    """Runs one stage at a time: timed, shown as progress, saved for a resume if it says so."""

    def __init__(self, ctx: RunContext, session: RunSession, timer: StageTimer,
                 reporter: Reporter) -> None:
        self.ctx, self.session, self.timer, self.reporter = ctx, session, timer, reporter

    def __call__(self, stage: Stage, work: Callable[..., T], *args: Any) -> T:
        """Run ``work(ctx, advance, *args)`` as ``stage`` and return its result."""
        config = self.ctx.config
        self.ctx.stop.check(f"before {stage.name}")  # a stop between stages ends the run here
        total = stage.total(config) if stage.total is not None else None
        with self.timer.stage(stage.name), \
                self.reporter.stage(stage.title_for(config), total=total) as advance:
            if stage.saved:
                return self.session.stage(stage.name, lambda: work(self.ctx, advance, *args))
            return work(self.ctx, advance, *args)


def run_experiment(
    config: ExperimentConfig,
    run_dir: Path,
    *,
    config_source: str = "config",
    reporter: Reporter | None = None,
    overwrite: bool = False,
    resume: Path | None = None,
) -> RunSummary:
    """Run every stage and write ``run_dir`` (atomically: it appears only when complete).

    SIGINT/SIGTERM stop the run at a safe point and keep it as ``run_dir.interrupted``
    (:class:`~personasim.core.interrupts.RunInterrupted` is raised); ``resume`` continues such
    a folder, reusing its finished stages and training checkpoints
    (see :mod:`personasim.experiments.resume`).
    """
    timer = StageTimer()
    started = time.perf_counter()
    check_registered_names(config, config_source)  # before a run folder exists
    with ResumableRunDirectory(run_dir, overwrite=overwrite, resume=resume) as out, \
            RunSession(out, config, config_source, run_dir, overwrite, timer) as session:
        ctx = RunContext(config, config_source, out, session.stop)
        step = StageSequencer(ctx, session, timer, reporter or SilentReporter())
        loaded = step(inputs.STAGE, inputs.run)
        ab = step(ab_test.STAGE, ab_test.run, loaded)
        bayes = step(inference.STAGE, inference.run, loaded, ab)
        if config.inference.privacy.mechanism != "none":
            # from here on only the noised aggregates stand for the A/B test
            ab = replace(ab, counts=bayes.outcome.counts)
        checked = (step(self_check.STAGE, self_check.run, loaded, ab)
                   if self_check.applies(ctx, loaded, ab) else None)
        make_env = training.env_factory(ctx, loaded, bayes)
        trained = step(training.STAGE, training.run, make_env)
        evaluated = step(evaluation.STAGE, evaluation.run, make_env, ab, trained)
        ranked = step(ranking.STAGE, ranking.run, loaded, bayes.posterior)
        planned = step(plan.STAGE, plan.run, loaded, ab, bayes, ranked, make_env, evaluated,
                       trained)
        results = export.RunResults(loaded, ab, bayes, trained, evaluated, planned.table,
                                    make_env)
        bayes_manifest = step(export.STAGE, export.run, results)
        held_out = None
        if loaded.holdout is not None:
            held_out = step(heldout.STAGE, heldout.run, loaded, bayes.posterior, planned.table,
                            bayes.personas, set(planned.holdout[RECIPIENT_ID].astype(str)))
        step(report.STAGE, report.run, loaded, bayes.posterior, planned, held_out, checked)
        timing = {"stage_seconds": session.stage_seconds(timer.seconds),
                  "wall_seconds": round(time.perf_counter() - started, 3)}
        content = manifest.build_manifest(ctx, results, ranked, bayes_manifest, held_out,
                                          checked, timing, session.summary(), planned)
        manifest.write_manifest(ctx, content)
    return RunSummary(run_dir, planned.table, evaluated.summary, content, planned.plan)


def resume_experiment(run_dir: Path, *, reporter: Reporter | None = None,
                      overwrite: bool = False) -> RunSummary:
    """Continue the interrupted run at ``run_dir`` (or the one heading for ``run_dir``).

    ``overwrite`` (or the original run's ``--overwrite``) lets the finished run replace an
    existing folder at its destination.

    Raises
    ------
    ConfigError
        ``run_dir`` is not a resumable run folder.
    """
    saved = read_saved_run(run_dir)
    return run_experiment(saved.config, saved.final, config_source=saved.config_source,
                          reporter=reporter, overwrite=saved.overwrite or overwrite,
                          resume=saved.directory)
