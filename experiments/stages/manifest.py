"""Stage: ``manifest.json``, what anyone needs to rerun and judge the run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from personasim.core import run_layout as files
from personasim.core.types import Posterior
from personasim.evaluation.self_check import SelfCheck
from personasim.experiments.run_dir import command_line, git_commit, package_versions, write_json
from personasim.experiments.stage import RunContext
from personasim.experiments.stages.export import RunResults
from personasim.experiments.stages.heldout import HeldOutResult
from personasim.experiments.stages.plan import PlanResult
from personasim.experiments.stages.ranking import Ranking


def diagnostics(posterior: Posterior) -> dict[str, Any]:
    """The sampler's health: R-hat, bulk ESS, divergences, seconds and warnings."""
    d = posterior.diagnostics
    return {
        "sampler": d.sampler, "rhat_max": d.rhat_max, "ess_bulk_min": d.ess_bulk_min,
        "divergences": d.divergences, "sampling_seconds": d.seconds, "ok": d.ok,
        "warnings": d.warnings,
    }


def build_manifest(ctx: RunContext, results: RunResults, ranking: Ranking,
                   bayes: dict[str, Any], heldout: HeldOutResult | None,
                   checked: SelfCheck | None, timing: dict[str, Any],
                   resume: dict[str, Any], planned: PlanResult) -> dict[str, Any]:
    """The manifest's content; ``timing`` holds ``stage_seconds`` and ``wall_seconds``."""
    config = ctx.config
    manifest = {
        "name": config.name,
        "seed": config.seed,
        "command": command_line(),
        "config_source": ctx.source,
        "versions": package_versions(),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        **timing,
        "diagnostics": diagnostics(results.inference.posterior),
        "inference": bayes,
        "ab_test": {"source": results.ab.source,
                    "exposures": int(results.ab.counts.exposures.sum())},
        "rows": {"prioritization": len(ranking.table),
                 "recipients": len(ranking.audience.recipients),
                 "plan": len(planned.plan)},
        "plan": planned.summary,
        "policy_training": results.trained.manifest(),
        "resume": resume,
    }
    if planned.evaluation is not None:
        manifest["plan"]["evaluation"] = planned.evaluation.to_dict(orient="records")
    if heldout is not None:
        manifest["heldout"] = heldout.summary
    if checked is not None:
        manifest["self_check"] = checked.summary()
    return manifest


def write_manifest(ctx: RunContext, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json``."""
    write_json(files.MANIFEST.path(ctx.out), manifest)
