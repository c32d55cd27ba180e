"""Stage: write the tables, the personas, the posterior, the policy outputs and the plots.

File names come from :mod:`personasim.core.run_layout`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml

from personasim.bayes.storage import posterior_table, save_posterior
from personasim.config.persona import Persona
from personasim.core import run_layout as files
from personasim.core.csv_files import write_csv
from personasim.core.types import ABResults
from personasim.experiments.progress import Advance
from personasim.experiments.run_dir import write_json
from personasim.experiments.seeds import evaluation_seeds, stage_seed
from personasim.experiments.stage import RunContext, Stage
from personasim.experiments.stages.evaluation import PolicyEvaluation
from personasim.experiments.stages.inference import InferenceResult
from personasim.experiments.stages.inputs import Inputs, persona_sizes
from personasim.experiments.stages.policy import write_policy_outputs
from personasim.experiments.stages.training import EnvFactory
from personasim.outputs.bayes_plots import write_bayes_plots
from personasim.outputs.plots import (
    plot_learning_curve,
    plot_policy_comparison,
    plot_response_heatmap,
    plot_step_metrics,
)
from personasim.outputs.writers import export_table
from personasim.policies.comparison import TrainedPolicies
from personasim.policies.training import torch_threads

logger = logging.getLogger(__name__)

STAGE = Stage("export", "Writing tables and plots")


@dataclass(frozen=True)
class RunResults:
    """Everything the export stage writes, as the earlier stages produced it."""

    inputs: Inputs
    ab: ABResults
    inference: InferenceResult
    trained: TrainedPolicies
    evaluation: PolicyEvaluation
    table: pd.DataFrame
    make_env: EnvFactory


def _yaml(items: list[dict[str, Any]]) -> str:
    return yaml.safe_dump(items, sort_keys=False)


def persona_table(personas: list[Persona], sizes: dict[str, int]) -> pd.DataFrame:
    """One row per persona: id, description, share, size, attributes, trait means."""
    rows = []
    for p in personas:
        traits = p.traits
        row: dict[str, Any] = {
            "persona_id": p.id, "description": p.description, "share": p.share,
            "size": sizes.get(p.id, p.size),
            "price_sensitivity_mean": traits.price_sensitivity.mean(),
            "fatigue_rate_mean": traits.fatigue_rate.mean(),
            "susceptibility_mean": traits.susceptibility.mean(),
            "organic_mean": traits.organic.mean(),
        }
        row |= {f"propensity_{ch}_mean": d.mean() for ch, d in traits.propensity.items()}
        row |= {f"attr_{k}": v for k, v in p.attributes.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def write_inputs(ctx: RunContext, inputs: Inputs, calibrated: list[Persona]) -> None:
    """The resolved config, the personas before and after the update, campaigns, profiles."""
    out, config = ctx.out, ctx.config
    resolved = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    files.CONFIG.path(out).write_text(yaml.safe_dump(resolved, sort_keys=False))
    files.PERSONAS.path(out).write_text(
        _yaml([p.model_dump(mode="json", exclude_none=True) for p in inputs.personas]))
    files.PERSONAS_POSTERIOR.path(out).write_text(
        _yaml([p.model_dump(mode="json", exclude_none=True) for p in calibrated]))
    files.CAMPAIGNS.path(out).write_text(
        _yaml([c.model_dump(mode="json", by_alias=True) for c in inputs.campaigns]))
    write_csv(persona_table(inputs.personas, persona_sizes(inputs, config.population.size)),
              files.PERSONAS_TABLE.path(out))
    write_json(files.PROFILES.path(out), inputs.profiles.to_dict())


def write_tables(ctx: RunContext, results: RunResults) -> None:
    """The posterior, the A/B test, the evaluation tables, the curves and the ranking."""
    out = ctx.out
    evaluation = results.evaluation
    save_posterior(results.inference.posterior, out)
    if ctx.config.inference.privacy.mechanism == "none":
        write_csv(results.ab.table, files.AB_RESULTS.path(out))
    else:
        logger.info("privacy is on: the per-recipient A/B results are not written")
    write_csv(evaluation.summary.round(4), files.EVALUATION.path(out))
    write_csv(evaluation.episodes.round(4), files.EVALUATION_EPISODES.path(out))
    write_csv(evaluation.metrics, files.METRICS.path(out))
    write_csv(results.trained.curve, files.LEARNING_CURVE.path(out))
    export_table(results.table, out, files.PRIORITIZATION_STEM, list(ctx.config.output.formats))


def write_plots(ctx: RunContext, results: RunResults, summary_table: pd.DataFrame) -> None:
    """The response heatmap, the deployed algorithm's curve, the comparison, the weeks."""
    out, config = ctx.out, ctx.config
    curve = results.trained.curve
    plot_response_heatmap(summary_table, files.RESPONSE_HEATMAP.path(out))
    horizon = config.simulation.horizon
    plot_learning_curve(curve[curve["algorithm"] == config.policy.algorithm],
                        files.LEARNING_CURVE_PLOT.path(out), horizon)
    plot_policy_comparison(results.evaluation.summary, files.POLICY_COMPARISON.path(out),
                           horizon)
    plot_step_metrics(results.evaluation.metrics.rename(columns={"week": "step"}),
                      files.STEP_METRICS.path(out))


def run(ctx: RunContext, advance: Advance, results: RunResults) -> dict[str, Any]:
    """Write every output of the run but the held-out evaluation and the report.

    Returns the inference part of the manifest (diagnostics, PPC coverage, waves).
    """
    config = ctx.config
    posterior = results.inference.posterior
    # the counts the posterior was fitted to: noised when privacy is on
    summary_table = posterior_table(posterior, results.inference.outcome.counts,
                                    config.prioritization.credible_interval)
    write_inputs(ctx, results.inputs, results.inference.personas)
    write_tables(ctx, results)
    if config.output.plots:
        write_plots(ctx, results, summary_table)
    bayes_manifest = results.inference.outcome.manifest() | write_bayes_plots(
        ctx.out, results.inference.outcome, config.output.plots, stage_seed(config.seed, "ppc"))
    with torch_threads(config.policy.torch_threads):
        write_policy_outputs(ctx.out, config, results.make_env, results.ab.counts,
                             results.trained, results.evaluation.protocol,
                             evaluation_seeds(config), stage_seed(config.seed, "baselines"))
    return bayes_manifest
