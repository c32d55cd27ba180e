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

from personasim.agents.abtest import ab_results_from_file, simulate_ab_test
from personasim.agents.audience import simulated_audience
from personasim.agents.model import ENGINES, CampaignModel
from personasim.audience.membership import audience_from_recipients
from personasim.bayes.calibration import calibrate_personas
from personasim.bayes.storage import posterior_table, save_posterior
from personasim.bayes.update import InferenceOutcome, infer_stage
from personasim.config.persona import Persona, cohort_sizes
from personasim.config.schema import ExperimentConfig
from personasim.core.interrupts import StopFlag
from personasim.core.types import PERSONA_ID, ABCounts, ABResults, Audience, Posterior
from personasim.data.files import counts_to_ab
from personasim.envs import CampaignEnv
from personasim.experiments.progress import Reporter, SilentReporter
from personasim.experiments.resume import ResumableRunDirectory, RunSession, read_saved_run
from personasim.experiments.run_dir import (
    StageTimer,
    command_line,
    git_commit,
    package_versions,
    write_json,
)
from personasim.experiments.stages.heldout import (
    evaluate_heldout,
    write_heldout,
    write_persona_report,
)
from personasim.experiments.stages.inputs import Inputs, load_inputs
from personasim.experiments.stages.policy import (
    deployed_policy,
    evaluate_stage,
    write_policy_outputs,
)
from personasim.outputs.bayes_plots import write_bayes_plots
from personasim.outputs.plots import (
    plot_learning_curve,
    plot_policy_comparison,
    plot_response_heatmap,
    plot_step_metrics,
)
from personasim.outputs.writers import export_table
from personasim.policies.baselines import Policy
from personasim.policies.comparison import (
    ProtocolEvaluation,
    TrainedPolicies,
    check_algorithms,
    train_all,
)
from personasim.policies.rollouts import run_episode
from personasim.policies.training import algorithm_names, torch_threads
from personasim.ranking.prioritization import prioritize

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
    resume: Path | None = None,
) -> RunSummary:
    """Run every stage and write ``run_dir`` (atomically: it appears only when complete).

    SIGINT/SIGTERM stop the run at a safe point and keep it as ``run_dir.interrupted``
    (:class:`~personasim.core.interrupts.RunInterrupted` is raised); ``resume`` continues such a
    folder, reusing its finished stages and training checkpoints (see :mod:`personasim.experiments.resume`).
    """
    reporter = reporter or SilentReporter()
    timer = StageTimer()
    started = time.perf_counter()
    check_algorithms(config.policy, config_source)
    with ResumableRunDirectory(run_dir, overwrite=overwrite, resume=resume) as out, \
            RunSession(out, config, config_source, run_dir, overwrite, timer) as session:
        with timer.stage("inputs"), reporter.stage("Loading personas, campaigns and data"):
            inputs = session.stage("inputs", lambda: load_inputs(
                config, config_source, stage_seed(config.seed, "synthesis")))
        with timer.stage("ab_test"), reporter.stage("A/B test"):
            ab = session.stage("ab_test", lambda: run_ab_test(config, inputs))
        with timer.stage("inference"), reporter.stage("Bayesian update (PyMC)"):
            # failed diagnostics are logged as warnings
            bayes, personas = session.stage("inference", lambda: infer_and_calibrate(
                config, inputs, ab))
            posterior = bayes.posterior

        def env_factory() -> CampaignEnv:
            return CampaignEnv.from_config(config, personas, inputs.campaigns, inputs.events)

        algorithms = algorithm_names(config.policy)
        runs = len(algorithms) * config.policy.training_seeds
        with timer.stage("training"), reporter.stage(
            f"Training {', '.join(a.upper() for a in algorithms)} "
            f"({config.policy.training_seeds} seed(s) each)",
            total=runs * config.policy.total_timesteps,
        ) as advance:
            trained = train_all(
                env_factory, config.policy, training_seeds(config), out,
                reward_scale=env_factory().reward_scale, stop=session.stop, progress=advance,
            )
            curve = trained.curve  # in dollars per episode, like evaluation
        with timer.stage("evaluation"), reporter.stage(
            "Evaluating policies", total=len(config.policy.baselines) + runs
        ) as advance:
            protocol, metrics = evaluate(config, env_factory, ab, trained, out, session.stop,
                                         advance)
            evaluation, episodes = protocol.summary, protocol.episodes
        with timer.stage("prioritization"), reporter.stage("Ranking campaigns per recipient"):
            audience = build_audience(config, inputs)
            table = prioritize(audience, posterior, inputs.campaigns, config.prioritization)
        with timer.stage("export"), reporter.stage("Writing tables and plots"):
            summary_table = posterior_table(posterior, ab.counts,
                                            config.prioritization.credible_interval)
            write_outputs(out, config, inputs, personas, posterior, summary_table, ab, table,
                          evaluation, episodes, metrics, curve)
            bayes_manifest = bayes.manifest() | write_bayes_plots(
                out, bayes, config.output.plots, stage_seed(config.seed, "ppc"))
            with torch_threads(config.policy.torch_threads):
                write_policy_outputs(out, config, env_factory, ab.counts, trained, protocol,
                                     evaluation_seeds(config), stage_seed(config.seed,
                                                                          "baselines"))
        heldout = None
        if inputs.holdout is not None:
            with timer.stage("heldout_evaluation"), reporter.stage("Held-out evaluation"):
                heldout = evaluate_heldout(config, inputs, posterior, table,
                                           stage_seed(config.seed, "heldout"))
                write_heldout(out, heldout, config.output.plots)
        with timer.stage("report"), reporter.stage("Persona report"):
            write_persona_report(out, config, inputs, posterior, table, heldout)
        manifest = {
            "name": config.name,
            "seed": config.seed,
            "command": command_line(),
            "config_source": config_source,
            "versions": package_versions(),
            "git_commit": git_commit(Path(__file__).resolve().parent),
            "stage_seconds": session.stage_seconds(timer.seconds),
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
            "inference": bayes_manifest,
            "ab_test": {"source": ab.source, "exposures": int(ab.counts.exposures.sum())},
            "rows": {"prioritization": len(table), "recipients": len(audience.recipients)},
            "policy_training": trained.manifest(),
            "resume": session.summary(),
        }
        if heldout is not None:
            manifest["heldout"] = heldout.summary
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
    if inputs.ab_counts is not None and config.ab_test.source != "simulate":
        return counts_to_ab(inputs.ab_counts, persona_ids, campaign_ids,
                            str(config.data.ab_counts))
    if inputs.ab_table is not None and config.ab_test.source != "simulate":
        assert inputs.recipients is not None or config.personas
        if inputs.recipients is None:
            raise ValueError("an A/B results file needs a recipients file to place recipients")
        persona_of = inputs.recipients.set_index("recipient_id")["persona_id"]
        return ab_results_from_file(inputs.ab_table, persona_of, persona_ids, campaign_ids,
                                    str(config.data.ab_results or config.dataset and
                                        f"dataset {config.dataset.name}"))
    model = build_model(config, inputs.personas, inputs, stage_seed(config.seed, "ab_test"))
    return simulate_ab_test(model, config.ab_test.sample_size)


def infer(config: ExperimentConfig, inputs: Inputs, ab: ABResults) -> InferenceOutcome:
    """Posterior response rates (see :func:`personasim.bayes.update.infer_stage`)."""

    def wave(i: int) -> ABCounts:
        model = build_model(config, inputs.personas, inputs, stage_seed(config.seed, f"wave-{i}"))
        return simulate_ab_test(model, config.ab_test.sample_size).counts

    simulated = ab.source == "simulated"
    return infer_stage(config.inference, inputs.personas, inputs.campaigns, ab,
                       stage_seed(config.seed, "inference"), inputs.recipients,
                       config.ab_test.waves if simulated else 0, wave if simulated else None)


def infer_and_calibrate(config: ExperimentConfig, inputs: Inputs,
                        ab: ABResults) -> tuple[InferenceOutcome, list[Persona]]:
    """The Bayesian update, and the personas re-parameterized from its posterior."""
    bayes = infer(config, inputs, ab)
    return bayes, calibrate_personas(inputs.personas, bayes.posterior, inputs.campaigns)


def training_seeds(config: ExperimentConfig) -> list[int]:
    """One seed per training run; the first is the single-run seed of earlier versions."""
    return [stage_seed(config.seed, "training" if k == 0 else f"training-{k}")
            for k in range(config.policy.training_seeds)]


def evaluation_seeds(config: ExperimentConfig) -> list[int]:
    """The evaluation episodes' seeds, shared by every policy."""
    return [stage_seed(config.seed, f"evaluation-{i}") % 2**31
            for i in range(config.policy.eval_seeds)]


def evaluate(
    config: ExperimentConfig, env_factory: Callable[[], CampaignEnv], ab: ABResults,
    trained: TrainedPolicies, out: Path, stop: StopFlag | None, advance: Callable[[int], None],
) -> tuple[ProtocolEvaluation, pd.DataFrame]:
    """Evaluate baselines and every trained run on the same seeds.

    Returns the protocol's evaluation (summary with 95% intervals, per-episode returns,
    per-run table, selected runs) and the deployed policy's per-week metrics from the Mesa
    DataCollector.
    """
    seeds = evaluation_seeds(config)
    validation = [stage_seed(config.seed, f"validation-{i}") % 2**31
                  for i in range(config.policy.validation_episodes)]
    with torch_threads(config.policy.torch_threads):
        protocol = evaluate_stage(config, env_factory, ab.counts, trained, seeds, validation,
                                  stage_seed(config.seed, "baselines"), out, stop, advance)
        _, deployed = deployed_policy(trained, protocol, config.policy.algorithm)
        metrics = rollout_metrics(env_factory, deployed, seeds[0])
    return protocol, metrics


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
        plot_learning_curve(curve[curve["algorithm"] == config.policy.algorithm],
                            out / "learning_curve.png")
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
