"""The sections of the experiment config, one pydantic model each, ``extra="forbid"``.

Defaults live on the fields; a user's YAML overrides them. Plug-ins (engine, response model,
graph generator, synthesis method, estimator, algorithm, baseline policy, exporter, dataset)
are named by their registered name, a plain ``str`` here: the registries live in higher
layers, so the names are checked against them by ``personasim validate`` and before a run
(:func:`personasim.experiments.preflight.check_registered_names`), not by this schema.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from personasim.config.base import StrictModel
from personasim.config.columns import ColumnRole


class DataConfig(StrictModel):
    """Files for data mode; paths are relative to the config file."""

    recipients: Path | None = Field(None, description="recipient_id + attributes (+ consent).")
    campaigns: Path | None = Field(None, description="campaign_id, value, cost (+ control).")
    ab_results: Path | None = Field(None, description="recipient_id, campaign_id, outcome.")
    ab_counts: Path | None = Field(
        None, description="Aggregated A/B counts: segment, campaign_id, exposures, responses."
    )
    max_levels: int = Field(
        50, ge=2, description="An attribute column with more distinct strings than this is "
        "refused (it is likely an id, not a category).",
    )

    def files(self) -> list[Path]:
        """The data files the section names."""
        return [p for p in (self.recipients, self.campaigns, self.ab_results, self.ab_counts)
                if p is not None]


class DatasetConfig(StrictModel):
    """A public dataset used as the data-mode inputs (see ``personasim.data.hillstrom``)."""

    name: str = Field("hillstrom", description="Registered dataset name (built in: hillstrom).")
    outcome: Literal["visit", "conversion", "spend"] = Field(
        "visit", description="What a response is; spend is conversion times its value."
    )
    value: float | None = Field(
        None, ge=0, description="Value of one response (default $1 a visit, mean spend per sale)."
    )
    cost: float = Field(0.05, ge=0, description="Cost of one e-mail.")
    holdout_fraction: float = Field(
        0.5, ge=0, lt=1, description="Share of customers held out for evaluation (0: none)."
    )
    path: Path | None = Field(
        None, description="Local copy, or a folder holding the dataset's file (default "
                           "$PERSONASIM_DATA, else the cached download)."
    )
    sample: int | None = Field(
        None, ge=300, description="Use a seeded random sample of this many customers."
    )


class SynthesisConfig(StrictModel):
    """How personas are synthesized from a recipients file."""

    method: str = Field(
        "kmeans", description="Registered synthesis method name (built in: kmeans, dbscan)."
    )
    k: int | Literal["auto"] = Field("auto", description="Number of personas, or 'auto'.")
    k_range: tuple[int, int] = Field((2, 8), description="Range searched when k is 'auto'.")
    features: list[str] | None = Field(None, description="Columns to cluster on (default all).")
    eps: float = Field(1.5, gt=0, description="DBSCAN neighbourhood radius (standardized units).")
    min_samples: int = Field(20, ge=1, description="DBSCAN core-point threshold.")
    sample_size: int = Field(5000, ge=100, description="Rows used to choose k.")
    noun: str = Field("", description="What members are called in descriptions ('subscribers'); "
                      "empty: phrases only.")
    columns: dict[str, ColumnRole] = Field(
        default_factory=dict, description="Recipients column -> its role in descriptions; when "
        "none is declared, the three columns that most set a persona apart are described.")


class PopulationConfig(StrictModel):
    """The simulated audience."""

    size: int = Field(10_000, ge=1, description="Recipients split over personas by share.")
    relative_shares: bool = Field(
        False, description="Read persona shares as relative sizes and rescale them; by "
        "default shares written in the config must sum to 1.",
    )


class FatigueConfig(StrictModel):
    """Fatigue builds with exposures and decays over time."""

    enabled: bool = True
    weight: float = Field(1.0, ge=0, description="Logit penalty per unit of fatigue.")
    recovery: float = Field(0.3, ge=0, le=1, description="Share of fatigue lost each week.")


class NetworkConfig(StrictModel):
    """The word-of-mouth graph over recipients."""

    generator: str = Field("watts_strogatz", description="Registered graph generator name.")
    params: dict[str, float | int] = Field(default_factory=dict, description="Its parameters.")
    file: Path | None = Field(None, description="Edge list (source,target) instead of a generator.")


class InfluenceConfig(StrictModel):
    """Word-of-mouth: neighbours' responses raise a recipient's response logit."""

    enabled: bool = True
    weight: float = Field(2.0, ge=0, description="Logit gain at 100% of neighbours responding.")
    network: NetworkConfig = Field(default_factory=NetworkConfig)


class EventConfig(StrictModel):
    """An external event that changes behaviour in given weeks (1-based, inclusive)."""

    name: str
    start_week: int = Field(ge=1)
    end_week: int = Field(ge=1)
    propensity_shift: float = Field(0.0, description="Added to every response logit.")
    price_sensitivity_multiplier: float = Field(1.0, ge=0, description="Scales price sensitivity.")
    fatigue_multiplier: float = Field(1.0, ge=0, description="Scales fatigue built per exposure.")
    personas: list[str] | None = Field(None, description="Personas affected (default all).")
    channels: list[str] | None = Field(None, description="Channels affected (default all).")

    @model_validator(mode="after")
    def _ordered(self) -> EventConfig:
        if self.end_week < self.start_week:
            raise ValueError("end_week must be >= start_week")
        return self


class DynamicsConfig(StrictModel):
    """Transition dynamics between weeks."""

    fatigue: FatigueConfig = Field(default_factory=FatigueConfig)
    influence: InfluenceConfig = Field(default_factory=InfluenceConfig)
    events: list[EventConfig] = Field(default_factory=list)
    events_file: Path | None = Field(None, description="CSV calendar with EventConfig columns.")


class SimulationConfig(StrictModel):
    """The Mesa simulation."""

    engine: str = Field("cohort", description="Registered simulation engine name.")
    response_model: str = Field("logistic", description="Registered response model name.")
    horizon: int = Field(12, ge=1, description="Weeks per episode.")
    budget: float | None = Field(None, gt=0, description="Total send budget per episode.")


class ABTestConfig(StrictModel):
    """The A/B test: simulated here, or read from ``data.ab_results``."""

    source: Literal["auto", "simulate", "file"] = "auto"
    sample_size: int = Field(4000, ge=10, description="Recipients randomized in a simulated test.")
    waves: int = Field(
        3, ge=0, le=20, description="Extra simulated A/B waves for the convergence plot (0: none)."
    )


class PrivacyConfig(StrictModel):
    """Differential privacy: noise added to the aggregated A/B counts before inference."""

    mechanism: Literal["none", "laplace", "gaussian"] = Field(
        "none", description="Noise on counts: none, laplace (pure DP) or gaussian ((eps, delta))."
    )
    epsilon: float = Field(1.0, gt=0, description="Privacy budget; smaller adds more noise.")
    delta: float = Field(1e-6, gt=0, lt=1, description="Gaussian mechanism's delta.")


class InferenceConfig(StrictModel):
    """Bayesian updating of persona x campaign response rates.

    Three settings pick how: ``estimator`` (which registered model), ``algorithm`` (how the
    hierarchical model is fitted: MCMC or variational) and ``nuts_sampler`` (which NUTS
    implementation runs the MCMC). Their old names ``method`` and ``sampler`` are still read,
    with a deprecation warning.
    """

    nuts_sampler: Literal["auto", "nutpie", "pymc"] = Field(
        "auto", description="NUTS implementation: nutpie, pymc, or auto (nutpie when installed)."
    )
    draws: int = Field(1000, ge=50, description="Posterior draws per chain.")
    tune: int = Field(1000, ge=50, description="Warm-up draws per chain.")
    chains: int = Field(4, ge=1, description="Chains; nutpie runs them in parallel threads.")
    target_accept: float = Field(
        0.99, gt=0, lt=1, description="NUTS step-size target; high avoids divergences."
    )
    rhat_max: float = Field(1.01, gt=1, description="Warn above this R-hat.")
    ess_min: float = Field(400, gt=0, description="Warn below this bulk ESS.")
    estimator: str = Field(
        "auto",
        description="Registered posterior estimator: recipient (recipient-level model of "
        "each campaign's lift from the attributes), hierarchical (pooled persona x campaign "
        "model) or beta_binomial (independent cells, closed form); auto picks recipient for "
        "per-recipient A/B results with attributes (and no privacy noise), else hierarchical.",
    )
    algorithm: Literal["auto", "nuts", "advi"] = Field(
        "auto",
        description="How the hierarchical estimator fits: nuts (MCMC, see nuts_sampler), advi "
        "(variational), or auto (advi above advi_above_cells cells).",
    )
    advi_above_cells: int = Field(20_000, ge=1, description="auto uses ADVI above this many cells.")
    advi_iterations: int = Field(30_000, ge=100, description="ADVI optimization steps.")
    fallback: bool = Field(True, description="Use the Beta-Binomial update if sampling fails.")
    covariates: list[str] | Literal["auto"] | None = Field(
        "auto", description="Recipient covariates to test: auto (numeric attributes), a list, null."
    )
    max_covariates: int = Field(4, ge=0, le=8, description="At most this many covariates kept.")
    covariate_bins: int = Field(5, ge=2, le=20, description="Quantile bins per covariate.")
    covariate_alpha: float = Field(
        1.0, gt=0, le=1,
        description="Keep a covariate whose score-test p-value is at most this; the default 1 "
        "keeps every candidate (up to max_covariates, most significant first) and lets the "
        "hierarchical slopes shrink weak ones.",
    )
    self_check: float = Field(
        0.2, ge=0, lt=1, description="Share of per-recipient A/B rows held out to check the "
        "posterior's ranking against a T-learner (0: no check; data mode only).",
    )
    privacy: PrivacyConfig = Field(default_factory=lambda: PrivacyConfig())
    prior_run: Path | None = Field(
        None, description="Start from this earlier run's posterior (personasim run --prior)."
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        """Read the old names ``sampler`` and ``method``, with a deprecation warning."""
        if not isinstance(data, dict) or not any(old in data for old, _ in _RENAMED_INFERENCE):
            return data
        data = dict(data)
        for old, new in _RENAMED_INFERENCE:
            if old not in data:
                continue
            if new in data:
                raise ValueError(f"{old!r} is the old name of {new!r}; give only {new!r}")
            warnings.warn(
                f"inference.{old} is deprecated: rename it inference.{new} (same values)",
                FutureWarning,
                stacklevel=3,  # past pydantic, to whoever validated the config
            )
            data[new] = data.pop(old)
        return data


#: Old -> new names of InferenceConfig fields (the old ones are read with a warning).
_RENAMED_INFERENCE = (("sampler", "nuts_sampler"), ("method", "algorithm"))


class PolicyConfig(StrictModel):
    """Policy training and evaluation."""

    algorithm: str = Field(
        "ppo", description="Registered algorithm name (built in: ppo, a2c, dqn)."
    )
    total_timesteps: int = Field(20_000, ge=1)
    n_envs: int = Field(1, ge=1, description="Vectorized training environments.")
    hyperparameters: dict[str, Any] = Field(default_factory=dict, description="Passed to SB3.")
    baselines: list[str] = Field(
        default_factory=lambda: ["random", "ab_winner", "thompson"],
        description="Registered policy names evaluated beside the trained one.",
    )
    eval_seeds: int = Field(5, ge=2, description="Evaluation episodes, one per seed.")
    compare_algorithms: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="More algorithms trained and evaluated too: registered algorithm name "
        "-> SB3 overrides.",
    )
    training_seeds: int = Field(1, ge=1, description="Training runs (seeds) per SB3 algorithm.")
    validation_episodes: int = Field(
        5, ge=1, description="Episodes, on their own seeds, that pick the best training seed."
    )
    checkpoint_every: int | None = Field(
        10_000, ge=1, description="Training checkpoint every N timesteps (null: on stop only)."
    )
    torch_threads: int = Field(1, ge=1, description="Torch CPU threads for training/evaluation.")


class PrioritizationConfig(StrictModel):
    """The per-recipient ranking."""

    top_n: int | None = Field(None, ge=1, description="Keep the top N campaigns per recipient.")
    credible_interval: float = Field(0.9, gt=0, lt=1)
    membership_temperature: float = Field(
        1.0, gt=0, description="Soft persona membership: softmax temperature on distance."
    )


class PlanConfig(StrictModel):
    """The message plan: which recipient gets which campaign in which week, under constraints."""

    budget: float | None = Field(
        None, ge=0,
        description="Total cost of the plan (null: simulation.budget, set by the caller).",
    )
    max_per_week: int = Field(1, ge=1, description="Most messages to one recipient in one week.")
    max_per_horizon: int | None = Field(
        None, ge=1, description="Most messages to one recipient over the horizon (null: no limit)."
    )
    min_gap_weeks: int = Field(
        0, ge=0, description="Weeks that must pass between two weeks in which one recipient is "
        "messaged (1: never in consecutive weeks).",
    )
    capacity: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="Campaign id -> most sends over the horizon."
    )
    quiet_weeks: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=list, description="1-based weeks in which nothing is sent."
    )
    holdout_fraction: float = Field(
        0.05, ge=0, lt=1, description="Seeded share of recipients who never get a message."
    )
    pacing: Literal["auto", "value", "policy"] = Field(
        "auto", description="Who sets how many messages go out each week: 'value' (a dual price "
        "on the budget over recipient-level values), 'policy' (the trained policy's calendar "
        "per persona and week; recipient-level values pick who), 'auto' (the one that earns "
        "more in the simulation on the validation seeds; 'value' in data mode).",
    )

    send_rule: Literal["mean", "lower_bound", "explore"] = Field(
        "mean", description="How estimates are used: 'mean' (the posterior mean, except that a "
        "persona x campaign cell with no A/B results is valued at its lower bound), "
        "'lower_bound' (every send valued at the lower bound of its credible interval), "
        "'explore' (untested cells at their mean, each untested campaign capped at "
        "plan.explore_share of the recipients).",
    )
    hold_back: Literal["evidence", "mean"] = Field(
        "evidence", description="When a recipient gets nothing: 'evidence' (only when every "
        "campaign's interval says it does not pay; one whose mean is below cost but whose "
        "interval reaches a profit may still go out as their first message, after every "
        "paying send and never against a binding budget), 'mean' (whenever no mean pays).",
    )
    explore_share: float = Field(
        0.1, ge=0, le=1, description="With send_rule 'explore': most share of the recipients "
        "an untested campaign may go to.",
    )

    @model_validator(mode="after")
    def _per_week_within_horizon(self) -> PlanConfig:
        if self.max_per_horizon is not None and self.max_per_week > self.max_per_horizon:
            raise ValueError(
                f"plan.max_per_week ({self.max_per_week}) is above "
                f"plan.max_per_horizon ({self.max_per_horizon})"
            )
        return self


class OutputConfig(StrictModel):
    """What the run writes."""

    formats: list[str] = Field(
        default_factory=lambda: ["csv", "parquet"],
        description="Registered exporter names (built in: csv, parquet) for the output tables.",
    )
    plots: bool = True
