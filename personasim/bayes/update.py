"""The run's Bayesian-update stage: priors, covariates, privacy, the fit and A/B waves.

:func:`infer_stage` turns a run's A/B results into a posterior:

1. the prior comes from the personas' trait distributions, or from an earlier run's
   posterior (``inference.prior_run``, set by ``personasim run --prior RUN_DIR``);
2. recipient covariates that carry signal enter the model (data mode, per-recipient
   results; see :mod:`personasim.bayes.covariates`);
3. with ``inference.privacy``, the aggregated counts are noised first and the accuracy cost
   is measured (:mod:`personasim.bayes.privacy`);
4. the estimator registered as ``inference.estimator`` (``hierarchical`` by default) is
   looked up in :data:`~personasim.bayes.estimators.ESTIMATORS` and called with one
   :class:`~personasim.bayes.request.EstimationRequest`;
5. for a simulated A/B test, ``ab_test.waves`` further simulated waves are added one at a
   time and the model refitted by the same estimator, to show the estimates converging on
   the simulation's truth.

One :class:`~personasim.bayes.sampling.CompiledModelCache` per run (made here unless the
caller passes one) lets every fit of the same model structure reuse its compiled model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.bayes.cells import ModelInputs, grid_inputs
from personasim.bayes.covariates import (
    CovariatePosterior,
    CovariateSpec,
    covariate_inputs,
    select_covariates,
)
from personasim.bayes.design import Design
from personasim.bayes.estimators import ESTIMATORS
from personasim.bayes.priors import PriorGrid, campaign_features, posterior_prior, trait_prior
from personasim.bayes.privacy import PrivacyReport, privacy_report, privatize
from personasim.bayes.request import (
    CovariateInfo,
    EstimationRequest,
    uses_covariates,
    uses_recipients,
)
from personasim.bayes.sampling import CompiledModelCache
from personasim.bayes.storage import load_posterior
from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.config.sections import InferenceConfig
from personasim.core.log_filters import demoted_for, filtered_logger
from personasim.core.types import CAMPAIGN_ID, PERSONA_ID, ABCounts, ABResults, Posterior

logger = logging.getLogger(__name__)

WaveSimulator = Callable[[int], ABCounts]
"""``wave number (1-based, beyond the first test) -> that wave's A/B counts``."""


@dataclass(frozen=True)
class InferenceOutcome:
    """What the Bayesian-update stage produced.

    Attributes
    ----------
    posterior
        The fitted posterior.
    prior
        The prior it started from.
    counts
        The persona x campaign counts it was fitted to (noised when privacy is on).
    covariates
        The recipient covariates in the model, or ``None``.
    features
        Names of the campaign features in the model.
    privacy
        The accuracy cost of privacy noise, or ``None``.
    waves
        One row per wave x cell (``wave, persona_id, campaign_id, exposures, mean, p_low,
        p_high, truth`` and the wave fit's ``rhat_max, ess_bulk_min, divergences``) for
        simulated tests with ``ab_test.waves > 0``, else ``None``.
    """

    posterior: Posterior
    prior: PriorGrid
    counts: ABCounts
    covariates: CovariateSpec | Design | None
    features: tuple[str, ...]
    privacy: PrivacyReport | None
    waves: pd.DataFrame | None

    def manifest(self) -> dict[str, Any]:
        """The manifest's ``inference`` entry."""
        entry: dict[str, Any] = {
            "prior": self.prior.source,
            "campaign_features": list(self.features),
            "covariates": list(self.covariates.names) if self.covariates else [],
            "cells": int(self.counts.exposures.size),
            "waves": 0 if self.waves is None else int(self.waves["wave"].max()),
        }
        if self.privacy is not None:
            entry["privacy"] = self.privacy.to_dict()
        if self.waves is not None:
            last = self.waves[self.waves["wave"] == self.waves["wave"].max()]
            first = self.waves[self.waves["wave"] == 1]
            entry["wave_rmse"] = {
                "first": round(_rmse(first), 6),
                "last": round(_rmse(last), 6),
            }
            entry["wave_fits"] = _wave_fits(self.waves)
        return entry


def _wave_fits(waves: pd.DataFrame) -> list[dict[str, Any]]:
    """Each further wave fit's health, as the log reports it (wave 1 is the run's own fit)."""
    out = []
    for wave, rows in waves[waves["wave"] > 1].groupby("wave"):
        first = rows.iloc[0]
        out.append({"wave": int(wave), "rhat_max": round(float(first["rhat_max"]), 4),
                    "ess_bulk_min": round(float(first["ess_bulk_min"]), 1),
                    "divergences": int(first["divergences"])})
    return out


def _rmse(frame: pd.DataFrame) -> float:
    return float(np.sqrt(np.mean((frame["mean"] - frame["truth"]) ** 2)))


def build_prior(
    config: InferenceConfig, personas: list[Persona], campaigns: list[Campaign],
    traits: PriorGrid | None = None,
) -> PriorGrid:
    """The personas' trait prior, or the posterior of ``config.prior_run`` over it.

    ``traits`` is ``trait_prior(personas, campaigns)`` when the caller already has it.

    Raises
    ------
    DataError
        ``config.prior_run`` does not hold a saved posterior.
    """
    prior = trait_prior(personas, campaigns) if traits is None else traits
    if config.prior_run is None:
        return prior
    earlier = load_posterior(Path(config.prior_run))
    logger.info("prior: posterior of %s", config.prior_run)
    return posterior_prior(earlier, prior, str(config.prior_run))


def _grid(prior: PriorGrid, counts: ABCounts, features: np.ndarray,
          names: tuple[str, ...]) -> ModelInputs:
    return grid_inputs(counts, prior.mean, prior.scale, features, names)


def resolve_estimator(name: str, has_recipients: bool) -> str:
    """Return the estimator a config names; ``auto`` resolves by the data.

    ``auto`` is ``recipient`` for per-recipient A/B results with attributes, else
    ``hierarchical``.
    """
    if name != "auto":
        return name
    return "recipient" if has_recipients else "hierarchical"


def infer_stage(
    config: InferenceConfig,
    personas: list[Persona],
    campaigns: list[Campaign],
    ab: ABResults,
    seed: int,
    recipients: pd.DataFrame | None = None,
    waves: int = 0,
    simulate_wave: WaveSimulator | None = None,
    cache: CompiledModelCache | None = None,
) -> InferenceOutcome:
    """Fit the posterior of a run (see the module docstring).

    Parameters
    ----------
    config
        The ``inference`` section.
    personas, campaigns
        The run's personas (the prior) and campaigns.
    ab
        The A/B results: per-recipient rows (covariates possible) or aggregated counts.
    seed
        Seed for the sampler, the privacy noise and the waves.
    recipients
        Recipient attributes by ``recipient_id`` (data mode), for covariates.
    waves, simulate_wave
        Further simulated A/B waves for the convergence plot, and how to simulate one.
    cache
        Compiled models to reuse (e.g. across a benchmark's runs); default a new one for
        this run.

    Raises
    ------
    UnknownNameError
        ``config.estimator`` is not registered.
    """
    private = config.privacy.mechanism != "none"
    has_recipients = recipients is not None and ab.per_recipient and not private
    name = resolve_estimator(config.estimator, has_recipients)
    estimator = ESTIMATORS.get(name)
    cache = CompiledModelCache() if cache is None else cache
    traits = trait_prior(personas, campaigns)  # also the simulation's truth for the waves
    prior = build_prior(config, personas, campaigns, traits)
    features, names = campaign_features(campaigns)
    inputs = _grid(prior, ab.counts, features, names)
    info: CovariateInfo | None = None
    spec: CovariateSpec | Design | None = None
    use_covariates = (config.covariates is not None and uses_covariates(estimator)
                      and has_recipients)
    if use_covariates:
        assert recipients is not None
        requested = None if config.covariates == "auto" else list(config.covariates or [])
        spec = select_covariates(ab.table, recipients, requested, config.max_covariates,
                                 config.covariate_alpha)
        if spec is not None:
            inputs, group_x, group_weight, centers = covariate_inputs(
                ab.table, recipients, spec, prior, inputs.features, inputs.feature_names,
                config.covariate_bins)
            info = CovariateInfo(spec, group_x, group_weight, centers)
            logger.info("covariates in the model: %s (%d cells)", ", ".join(spec.names),
                        inputs.exposures.size)
    elif private and config.covariates is not None and recipients is not None:
        logger.info("privacy is on: covariates are left out (their bins would depend on the "
                    "protected data)")
    report = None
    counts = inputs.grid_counts()
    if private:
        rng = np.random.default_rng([seed, 1])
        noisy = privatize(inputs.exposures, inputs.responses, config.privacy, rng)
        report = privacy_report((inputs.exposures, inputs.responses), noisy, config.privacy)
        inputs = replace(inputs, exposures=noisy[0], responses=noisy[1])
        counts = inputs.grid_counts()
    request = EstimationRequest(inputs, config, seed, prior.mean, info, cache,
                                control=next((k for k, c in enumerate(campaigns) if c.control),
                                             None))
    if uses_recipients(estimator) and has_recipients:
        request = replace(request, ab=ab, recipients=recipients)
    posterior = estimator(request)
    if spec is None and isinstance(posterior, CovariatePosterior):
        spec = posterior.spec  # a recipient-level estimator chose its own attributes
    wave_table = None
    if waves > 0 and simulate_wave is not None:
        wave_table = run_waves(config, prior, features, names, counts, posterior, waves,
                               simulate_wave, seed, traits.mean, cache)
    return InferenceOutcome(posterior, prior, counts, spec, inputs.feature_names, report,
                            wave_table)


def run_waves(
    config: InferenceConfig, prior: PriorGrid, features: np.ndarray, names: tuple[str, ...],
    first: ABCounts, posterior: Posterior, waves: int, simulate_wave: WaveSimulator, seed: int,
    truth: np.ndarray, cache: CompiledModelCache | None = None,
) -> pd.DataFrame:
    """Refit after each further simulated A/B wave; one row per wave x cell.

    Wave 1 is the run's own test (its posterior is reused); wave ``w`` adds the counts of
    ``simulate_wave(w - 1)`` and is fitted by the ``config.estimator`` on the persona x
    campaign grid. Waves use half the configured draws; only the data change, so nutpie
    reuses its compiled model from ``cache`` (default a new one for these waves; the PyMC
    sampler compiles each wave again).
    """
    estimator = ESTIMATORS.get(resolve_estimator(config.estimator, False))
    cache = CompiledModelCache() if cache is None else cache
    light = config.model_copy(update={"draws": max(config.draws // 2, 100)})
    exposures, responses = first.exposures.copy(), first.responses.copy()
    rows = [_wave_rows(1, posterior, exposures, truth)]
    for w in range(2, waves + 2):
        extra = simulate_wave(w - 1)
        exposures = exposures + extra.exposures
        responses = responses + extra.responses
        counts = ABCounts(first.persona_ids, first.campaign_ids, exposures, responses)
        # the run's own fit is the one whose health is reported: wave fits' sampler
        # warnings go to INFO (they stay in the waves table)
        with filtered_logger("personasim.bayes.diagnostics",
                             demoted_for(f"A/B wave {w} fit (not the run's posterior)")):
            request = EstimationRequest(_grid(prior, counts, features, names), light,
                                        seed + w, prior.mean, cache=cache)
            fitted = estimator(request)
        rows.append(_wave_rows(w, fitted, exposures, truth))
        logger.info("A/B wave %d: %d exposures, RMSE to truth %.4f", w, int(exposures.sum()),
                    _rmse(rows[-1]))
    return pd.concat(rows, ignore_index=True)


def _wave_rows(wave: int, posterior: Posterior, exposures: np.ndarray,
               truth: np.ndarray) -> pd.DataFrame:
    low, high = posterior.interval(0.9)
    n_p, n_k = exposures.shape
    diag = posterior.diagnostics
    return pd.DataFrame({
        "wave": wave,
        PERSONA_ID: np.repeat(np.asarray(posterior.persona_ids, dtype=object), n_k),
        CAMPAIGN_ID: np.tile(np.asarray(posterior.campaign_ids, dtype=object), n_p),
        "exposures": exposures.ravel(),
        "mean": posterior.mean().astype(np.float64).ravel(),
        "p_low": low.astype(np.float64).ravel(),
        "p_high": high.astype(np.float64).ravel(),
        "truth": np.asarray(truth, dtype=np.float64).ravel(),
        "rhat_max": diag.rhat_max,
        "ess_bulk_min": diag.ess_bulk_min,
        "divergences": diag.divergences,
    })
