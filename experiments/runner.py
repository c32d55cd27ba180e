"""The experiment runner: wires the stages together and writes one run directory.

Stages, in order: inputs (personas, campaigns, events, data files) -> A/B test (simulated or
read) -> Bayesian update -> simulation re-parameterized from the posterior -> policy
training -> evaluation against baselines -> prioritization -> export, plots, manifest.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from personasim.abtest import ab_results_from_file, simulate_ab_test
from personasim.agents.model import ENGINES, CampaignModel
from personasim.audience import audience_from_recipients, simulated_audience
from personasim.calibration import calibrate_personas
from personasim.campaign import CampaignArrays
from personasim.config import ExperimentConfig
from personasim.envs import CampaignEnv
from personasim.evaluation import evaluate_policies, run_episode
from personasim.experiments.inputs import Inputs, load_inputs
from personasim.experiments.reporting import Reporter, SilentReporter
from personasim.experiments.run_dir import (
    RunDirectory,
    StageTimer,
    command_line,
    git_commit,
    package_versions,
    write_json,
)
from personasim.export import export_table
from personasim.inference import fit_posterior
from personasim.persona import Persona, cohort_sizes
from personasim.plots import (
    plot_learning_curve,
    plot_policy_comparison,
    plot_response_heatmap,
    plot_step_metrics,
)
from personasim.policies import POLICIES, Policy, PolicyContext
from personasim.population import expected_rates
from personasim.posterior_io import posterior_table, save_posterior
from personasim.prioritization import prioritize
from personasim.training import save_policy, train_policy
from personasim.types import PERSONA_ID, ABResults, Audience, Posterior

logger = logging.getLogger(__name__)


def stage_seed(seed: int, stage: str) -> int:
    """A seed for one stage, stable whatever the other stages draw."""
    return int(np.random.SeedSequence([seed, zlib.crc32(stage.encode())]).generate_state(1)[0])


@dataclass(frozen=True)
class RunSummary:
    """What a finished run produced."""

    run_dir: Path
    prioritization: pd.DataFrame
    evaluation: pd.DataFrame
    manifest: dict[str, Any]


def run_experiment(
    config: ExperimentConfig,
    run_dir: Path,
    *,
    config_source: str = "config",
    reporter: Reporter | None = None,
    overwrite: bool = False,
) -> RunSummary:
    """Run every stage and write ``run_dir`` (atomically: it appears only when complete)."""
    reporter = reporter or SilentReporter()
    timer = StageTimer()
    started = time.perf_counter()
    with RunDirectory(run_dir, overwrite=overwrite) as out:
        with timer.stage("inputs"), reporter.stage("Loading personas, campaigns and data"):
            inputs = load_inputs(config, config_source, stage_seed(config.seed, "synthesis"))
        with timer.stage("ab_test"), reporter.stage("A/B test"):
            ab = run_ab_test(config, inputs)
        with timer.stage("inference"), reporter.stage("Bayesian update (PyMC)"):
            posterior = infer(config, inputs, ab)  # failed diagnostics are logged as warnings
            personas = calibrate_personas(inputs.personas, posterior, inputs.campaigns)

        def env_factory() -> CampaignEnv:
            return CampaignEnv.from_config(config, personas, inputs.campaigns, inputs.events)

        algorithm = config.policy.algorithm
        with timer.stage("training"), reporter.stage(
            f"Training {algorithm.upper()}", total=config.policy.total_timesteps
        ) as advance:
            trained = train_policy(
                env_factory, config.policy, stage_seed(config.seed, "training"),
                out / "tensorboard", progress=lambda done, total: advance(done),
            )
            save_policy(trained.model, out / "policy.zip")
            # training sees rewards per recipient; report the curve in dollars like evaluation
            curve = trained.curve.assign(
                mean_return=trained.curve["mean_return"] / env_factory().reward_scale
            )
        with timer.stage("evaluation"), reporter.stage(
            "Evaluating policies", total=len(config.policy.baselines) + 1
        ) as advance:
            evaluation, episodes, metrics = evaluate(config, env_factory, ab, trained.model,
                                                     advance)
        with timer.stage("prioritization"), reporter.stage("Ranking campaigns per recipient"):
            audience = build_audience(config, inputs)
            table = prioritize(audience, posterior, inputs.campaigns, config.prioritization)
        with timer.stage("export"), reporter.stage("Writing tables and plots"):
            summary_table = posterior_table(posterior, ab.counts,
                                            config.prioritization.credible_interval)
            write_outputs(out, config, inputs, personas, posterior, summary_table, ab, table,
                          evaluation, episodes, metrics, curve)
        manifest = {
            "name": config.name,
            "seed": config.seed,
            "command": command_line(),
            "config_source": config_source,
            "versions": package_versions(),
            "git_commit": git_commit(Path(__file__).resolve().parent),
            "stage_seconds": timer.seconds,
            "wall_seconds": round(time.perf_counter() - started, 3),
            "diagnostics": {
                "sampler": posterior.diagnostics.sampler,
                "rhat_max": posterior.diagnostics.rhat_max,
                "ess_bulk_min": posterior.diagnostics.ess_bulk_min,
                "divergences": posterior.diagnostics.divergences,
                "sampling_seconds": posterior.diagnostics.seconds,
                "ok": posterior.diagnostics.ok,
                "warnings": posterior.diagnostics.warnings,
            },
            "ab_test": {"source": ab.source, "exposures": int(ab.counts.exposures.sum())},
            "rows": {"prioritization": len(table), "recipients": len(audience.recipients)},
        }
        write_json(out / "manifest.json", manifest)
    return RunSummary(run_dir, table, evaluation, manifest)


def build_model(config: ExperimentConfig, personas: list[Persona], inputs: Inputs,
                seed: int) -> CampaignModel:
    """A fresh simulation of ``personas`` (no influence graph: one A/B week needs none)."""
    engine = ENGINES.get(config.simulation.engine)
    return engine(
        personas, cohort_sizes(personas, config.population.size), inputs.campaigns,
        config.dynamics, inputs.events, config.simulation.response_model,
        config.simulation.budget, None, np.random.default_rng(seed),
    )


def run_ab_test(config: ExperimentConfig, inputs: Inputs) -> ABResults:
    """Read the A/B results file, or randomize a test in the simulation."""
    persona_ids = tuple(p.id for p in inputs.personas)
    campaign_ids = tuple(c.id for c in inputs.campaigns)
    if inputs.ab_table is not None and config.ab_test.source != "simulate":
        assert inputs.recipients is not None or config.personas
        if inputs.recipients is None:
            raise ValueError("an A/B results file needs a recipients file to place recipients")
        persona_of = inputs.recipients.set_index("recipient_id")["persona_id"]
        return ab_results_from_file(inputs.ab_table, persona_of, persona_ids, campaign_ids,
                                    str(config.data.ab_results))
    model = build_model(config, inputs.personas, inputs, stage_seed(config.seed, "ab_test"))
    return simulate_ab_test(model, config.ab_test.sample_size)


def infer(config: ExperimentConfig, inputs: Inputs, ab: ABResults) -> Posterior:
    """Posterior response rates, with the personas' trait distributions as prior knowledge."""
    arrays = CampaignArrays.from_campaigns(inputs.campaigns)
    prior_mean = np.stack([expected_rates(p, arrays) for p in inputs.personas])
    return fit_posterior(ab.counts, config.inference, stage_seed(config.seed, "inference"),
                         prior_mean=prior_mean)


def evaluate(
    config: ExperimentConfig, env_factory: Callable[[], CampaignEnv], ab: ABResults,
    model: Any, advance: Callable[[int], None],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Evaluate baselines and the trained policy on the same seeds.

    Returns the summary (mean return and 95% interval per policy), the per-episode returns,
    and the trained policy's per-week metrics from the Mesa DataCollector.
    """
    seeds = [stage_seed(config.seed, f"evaluation-{i}") % 2**31
             for i in range(config.policy.eval_seeds)]
    env = env_factory()
    context = PolicyContext(ab_counts=ab.counts, seed=stage_seed(config.seed, "baselines"),
                            algorithm=config.policy.algorithm, model=model)
    names = [*config.policy.baselines, config.policy.algorithm]
    policies: dict[str, Policy] = {}
    frames, summaries = [], []
    for i, name in enumerate(names):
        key = "sb3" if name == config.policy.algorithm else name
        policies[name] = POLICIES.get(key)(env, context)
        episodes, summary = evaluate_policies(env_factory, {name: policies[name]}, seeds)
        frames.append(episodes)
        summaries.append(summary)
        advance(i + 1)
    metrics = rollout_metrics(env_factory, policies[config.policy.algorithm], seeds[0])
    return pd.concat(summaries, ignore_index=True), pd.concat(frames, ignore_index=True), metrics


def rollout_metrics(env_factory: Callable[[], CampaignEnv], policy: Policy,
                    seed: int) -> pd.DataFrame:
    """One episode of ``policy``; the Mesa DataCollector's per-week model variables."""
    env = env_factory()
    run_episode(env, policy, seed)
    return env.unwrapped.model.datacollector.get_model_vars_dataframe().reset_index(drop=True)


def build_audience(config: ExperimentConfig, inputs: Inputs) -> Audience:
    """Recipients to rank: the recipients file, or the simulated population."""
    persona_ids = tuple(p.id for p in inputs.personas)
    if inputs.recipients is not None:
        recipients = inputs.recipients
        if not config.personas:  # synthesized: rank by soft membership, not the hard cluster
            recipients = recipients.drop(columns=PERSONA_ID)
        return audience_from_recipients(
            recipients, persona_ids, inputs.profiles,
            config.prioritization.membership_temperature, str(config.data.recipients),
        )
    model = build_model(config, inputs.personas, inputs, stage_seed(config.seed, "audience"))
    return simulated_audience(model)


def write_outputs(
    out: Path, config: ExperimentConfig, inputs: Inputs, personas: list[Persona],
    posterior: Posterior, summary_table: pd.DataFrame, ab: ABResults, table: pd.DataFrame,
    evaluation: pd.DataFrame, episodes: pd.DataFrame, metrics: pd.DataFrame,
    curve: pd.DataFrame,
) -> None:
    """Write every table, the resolved config, personas and plots into ``out``."""
    resolved = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    (out / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    dump = [p.model_dump(mode="json", exclude_none=True) for p in inputs.personas]
    (out / "personas.yaml").write_text(yaml.safe_dump(dump, sort_keys=False))
    updated = [p.model_dump(mode="json", exclude_none=True) for p in personas]
    (out / "personas_posterior.yaml").write_text(yaml.safe_dump(updated, sort_keys=False))
    campaigns = [c.model_dump(mode="json", by_alias=True) for c in inputs.campaigns]
    (out / "campaigns.yaml").write_text(yaml.safe_dump(campaigns, sort_keys=False))
    persona_table(inputs.personas).to_csv(out / "personas.csv", index=False)
    write_json(out / "profiles.json", inputs.profiles.to_dict())
    save_posterior(posterior, out)
    ab.table.to_csv(out / "ab_results.csv", index=False)
    evaluation.to_csv(out / "evaluation.csv", index=False)
    episodes.to_csv(out / "evaluation_episodes.csv", index=False)
    metrics.to_csv(out / "metrics.csv", index=False)
    curve.to_csv(out / "learning_curve.csv", index=False)
    export_table(table, out, "prioritization", list(config.output.formats))
    if config.output.plots:
        plot_response_heatmap(summary_table, out / "response_heatmap.png")
        plot_learning_curve(curve, out / "learning_curve.png")
        plot_policy_comparison(evaluation, out / "policy_comparison.png")
        plot_step_metrics(metrics.rename(columns={"week": "step"}), out / "step_metrics.png")


def persona_table(personas: list[Persona]) -> pd.DataFrame:
    """One row per persona: id, description, share, size, attributes, trait means."""
    rows = []
    for p in personas:
        traits = p.traits
        row: dict[str, Any] = {
            "persona_id": p.id, "description": p.description, "share": p.share,
            "size": p.size,
            "price_sensitivity_mean": traits.price_sensitivity.mean(),
            "fatigue_rate_mean": traits.fatigue_rate.mean(),
            "susceptibility_mean": traits.susceptibility.mean(),
            "organic_mean": traits.organic.mean(),
        }
        row |= {f"propensity_{ch}_mean": d.mean() for ch, d in traits.propensity.items()}
        row |= {f"attr_{k}": v for k, v in p.attributes.items()}
        rows.append(row)
    return pd.DataFrame(rows)
