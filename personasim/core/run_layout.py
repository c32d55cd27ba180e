"""Every file a run writes: its path in the run folder, its format and the stage that writes it.

Writers and readers (``rank``, ``resume``, the report, the tests) ask this module for names,
so that renaming a file is one edit. :data:`RUN_FILES` lists them in the order the README's
outputs table shows them; ``tests/core/test_run_layout.py`` keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFile:
    """One file (or folder, or family of files) of a run folder.

    Attributes
    ----------
    name
        Path relative to the run folder; ``<persona>``, ``<algorithm>`` or ``<run>`` stand
        for a family of files, one per persona, algorithm or training run.
    format
        ``csv``, ``parquet``, ``yaml``, ``json``, ``npz``, ``netcdf``, ``zip``, ``png``,
        ``html`` or ``folder``.
    stage
        The runner stage that writes it.
    content
        What it holds, in a few words.
    when
        When it is written: ``always``, ``plots`` (``output.plots`` on), ``csv``/``parquet``
        (that output format chosen), ``held-out`` (data with a held-out part),
        ``per-recipient A/B`` (data mode), ``simulation`` (the audience is simulated),
        ``waves`` (simulated A/B waves), ``resumable``
        (only while a run can still be resumed).
    """

    name: str
    format: str
    stage: str
    content: str
    when: str = "always"

    def path(self, run_dir: Path) -> Path:
        """Return the file inside ``run_dir`` (only for names without a ``<...>`` family)."""
        if "<" in self.name:
            raise ValueError(f"{self.name} names a family of files; use its own helper")
        return Path(run_dir) / self.name


CONFIG = RunFile("config.yaml", "yaml", "export", "the resolved config")
MANIFEST = RunFile("manifest.json", "json", "manifest",
                   "versions, seed, git commit, command, seconds per stage, diagnostics")
PERSONAS = RunFile("personas.yaml", "yaml", "export", "the personas the run started from")
PERSONAS_TABLE = RunFile("personas.csv", "csv", "export", "one row per persona: size, traits")
PERSONAS_POSTERIOR = RunFile("personas_posterior.yaml", "yaml", "export",
                             "personas re-parameterized from the posterior (usable as priors)")
CAMPAIGNS = RunFile("campaigns.yaml", "yaml", "export", "the campaigns")
PROFILES = RunFile("profiles.json", "json", "export",
                   "persona centroids and scales for soft membership (read by rank)")
POSTERIOR = RunFile("posterior.npz", "npz", "export", "posterior draws per persona x campaign")
POSTERIOR_NETCDF = RunFile("posterior.nc", "netcdf", "export",
                           "the same draws as ArviZ InferenceData (`az.from_netcdf`)")
POSTERIOR_SUMMARY = RunFile("posterior_summary.csv", "csv", "export",
                            "posterior mean and interval per persona x campaign")
POSTERIOR_DIAGNOSTICS = RunFile("posterior_diagnostics.json", "json", "export",
                                "sampler diagnostics of the posterior")
AB_RESULTS = RunFile("ab_results.csv", "csv", "export", "the A/B test, one row per recipient")
PPC = RunFile("ppc.csv", "csv", "export", "posterior predictive check per A/B cell")
PPC_PLOT = RunFile("ppc.png", "png", "export", "observed rates against predictive intervals",
                   "plots")
AB_WAVES = RunFile("ab_waves.csv", "csv", "export",
                   "estimates over further simulated A/B waves", "waves")
AB_WAVES_PLOT = RunFile("ab_waves.png", "png", "export", "the estimates closing in on the truth",
                        "waves")
POLICY = RunFile("policy.zip", "zip", "export", "the deployed SB3 policy")
POLICIES = RunFile("policies", "folder", "training", "every trained model, its curve and scores")
LEARNING_CURVE = RunFile("learning_curve.csv", "csv", "export",
                         "training curves of every algorithm and seed")
LEARNING_CURVE_PLOT = RunFile("learning_curve.png", "png", "export",
                              "the deployed algorithm's learning curve", "plots")
ALGORITHM_CURVE_PLOT = RunFile("learning_curve_<algorithm>.png", "png", "export",
                               "each further algorithm's learning curve", "plots")
TENSORBOARD = RunFile("tensorboard", "folder", "training", "SB3 logs per training run")
CALENDAR = RunFile("calendar.csv", "csv", "plan",
                   "the plan per persona x week x campaign: messages, share, spend")
POLICY_CALENDAR = RunFile("policy_calendar.csv", "csv", "export",
                          "the deployed policy's own calendar, persona x week")
CALENDAR_DETAIL = RunFile("calendar_detail.csv", "csv", "export",
                          "every policy's calendar, one row per persona x week")
EVALUATION = RunFile("evaluation.csv", "csv", "export",
                     "every policy's mean return with a 95% interval")
EVALUATION_EPISODES = RunFile("evaluation_episodes.csv", "csv", "export",
                              "per-episode returns")
EVALUATION_RUNS = RunFile("evaluation_runs.csv", "csv", "export",
                          "every trained model on its own, and which one was deployed")
METRICS = RunFile("metrics.csv", "csv", "export", "per-week metrics of the deployed policy")
PRIORITIZATION_CSV = RunFile("prioritization.csv", "csv", "export", "the ranking", "csv")
PRIORITIZATION_PARQUET = RunFile("prioritization.parquet", "parquet", "export", "the ranking",
                                 "parquet")
PLAN_CSV = RunFile("plan.csv", "csv", "plan",
                   "the message plan: one row per message, with its week and reason")
PLAN_PARQUET = RunFile("plan.parquet", "parquet", "plan", "the same as Parquet")
HOLDOUT = RunFile("holdout.csv", "csv", "plan", "recipients the plan never messages")
PLAN_PLOT = RunFile("plan.png", "png", "plan", "messages and spend per week and campaign",
                    "plots")
PLAN_EVALUATION = RunFile("plan_evaluation.csv", "csv", "plan",
                          "the plan against the alternatives in the simulation", "simulation")
PLAN_EVALUATION_PLOT = RunFile("plan_evaluation.png", "png", "plan",
                               "the same as a plot", "simulation")
RESPONSE_HEATMAP = RunFile("response_heatmap.png", "png", "export",
                           "posterior response rate per persona x campaign", "plots")
POLICY_COMPARISON = RunFile("policy_comparison.png", "png", "export",
                            "every policy's return with its interval", "plots")
STEP_METRICS = RunFile("step_metrics.png", "png", "export",
                       "the deployed policy's sends, responses and reward per week", "plots")
SELF_CHECK = RunFile("self_check.csv", "csv", "self_check",
                     "the posterior's ranking against a T-learner on held-out A/B rows",
                     "per-recipient A/B")
OFFLINE_EVALUATION = RunFile("offline_evaluation.csv", "csv", "heldout",
                             "IPW value of the table and the baselines on held-out customers",
                             "held-out")
QINI = RunFile("qini.csv", "csv", "heldout", "uplift curves on held-out customers", "held-out")
QINI_PLOT = RunFile("qini.png", "png", "heldout", "the uplift curves", "held-out")
SIM_TO_REAL = RunFile("sim_to_real.csv", "csv", "heldout",
                      "simulated against observed rates per persona x arm", "held-out")
SIM_TO_REAL_PLOT = RunFile("sim_to_real.png", "png", "heldout", "the same as a plot", "held-out")
BUDGET_TARGETING = RunFile("budget_targeting.csv", "csv", "heldout",
                           "the plan against random and T-learner targeting at 10/25/50% "
                           "budgets", "held-out")
BUDGET_TARGETING_PLOT = RunFile("uplift_at_budget.png", "png", "heldout",
                                "the same as a plot", "held-out")
REPORT = RunFile("report.html", "html", "report", "the persona report")
PERSONA_CARD = RunFile("card_<persona>.png", "png", "report", "one card per persona", "plots")
CHECKPOINTS = RunFile("checkpoints", "folder", "runner",
                      "what a resume needs; removed when the run completes", "resumable")

RUN_FILES: tuple[RunFile, ...] = (
    CONFIG, MANIFEST, PERSONAS, PERSONAS_TABLE, PERSONAS_POSTERIOR, CAMPAIGNS, PROFILES, POSTERIOR,
    POSTERIOR_NETCDF, POSTERIOR_SUMMARY, POSTERIOR_DIAGNOSTICS, AB_RESULTS, PPC, PPC_PLOT, AB_WAVES,
    AB_WAVES_PLOT, POLICY, POLICIES, LEARNING_CURVE, LEARNING_CURVE_PLOT, ALGORITHM_CURVE_PLOT,
    TENSORBOARD, POLICY_CALENDAR, CALENDAR_DETAIL, EVALUATION, EVALUATION_EPISODES, EVALUATION_RUNS,
    METRICS, PRIORITIZATION_CSV, PRIORITIZATION_PARQUET, PLAN_CSV, PLAN_PARQUET, HOLDOUT, CALENDAR,
    PLAN_PLOT, PLAN_EVALUATION, PLAN_EVALUATION_PLOT, RESPONSE_HEATMAP, POLICY_COMPARISON,
    STEP_METRICS, SELF_CHECK, OFFLINE_EVALUATION, QINI, QINI_PLOT, SIM_TO_REAL, SIM_TO_REAL_PLOT,
    BUDGET_TARGETING, BUDGET_TARGETING_PLOT, REPORT, PERSONA_CARD, CHECKPOINTS,
)
"""Every file of a finished run, in the README's order."""

PRIORITIZATION_STEM = "prioritization"
"""Stem of the ranking table; each registered exporter adds its own suffix."""

RANK_INPUTS: tuple[RunFile, ...] = (CONFIG, CAMPAIGNS, PROFILES, POSTERIOR)
"""What ``personasim rank`` reads from a finished run."""

# Inside checkpoints/ (the resume state), policies/ and tensorboard/.
RUN_STATE = "run.json"
"""In ``checkpoints/``: resolved config, destination, sessions and seconds per stage."""
STAGE_RESULTS = "stages"
"""In ``checkpoints/``: one file per finished early stage."""
EVALUATION_CACHE = "evaluation"
"""In ``checkpoints/``: evaluation episodes already played."""
CHECKPOINT_POINTER = "latest.json"
"""In ``checkpoints/<run>/``: the newest checkpoint of one training run."""


def persona_card(run_dir: Path, persona_id: str) -> Path:
    """The report card image of one persona."""
    return Path(run_dir) / PERSONA_CARD.name.replace("<persona>", persona_id)


def algorithm_curve(run_dir: Path, algorithm: str) -> Path:
    """The learning-curve plot of one further algorithm."""
    return Path(run_dir) / ALGORITHM_CURVE_PLOT.name.replace("<algorithm>", algorithm)


def training_run_dir(run_dir: Path, folder: RunFile, key: str) -> Path:
    """One training run's folder under ``checkpoints/`` or ``tensorboard/``."""
    return Path(run_dir) / folder.name / key


def policy_file(run_dir: Path, key: str, suffix: str) -> Path:
    """A trained model's file in ``policies/``: ``<key>.zip``, ``.json`` or ``.curve.csv``."""
    return Path(run_dir) / POLICIES.name / f"{key}{suffix}"


def markdown_table() -> str:
    """The README's outputs table: one row per run file, in :data:`RUN_FILES` order."""
    rows = ["| file | format | written by | when | content |", "|---|---|---|---|---|"]
    for f in RUN_FILES:
        name = f"{f.name}/" if f.format == "folder" else f.name
        rows.append(f"| `{name}` | {f.format} | {f.stage} | {f.when} | {f.content} |")
    return "\n".join(rows) + "\n"
