"""Bayesian updating of persona x campaign response rates from A/B counts.

Every posterior estimator is registered in :data:`ESTIMATORS` under the name that
``inference.estimator`` gives, and is called the same way:
``ESTIMATORS.get(name)(request) -> Posterior``, with one
:class:`~personasim.bayes.request.EstimationRequest` carrying the cells, priors, campaign
features, covariates, settings, seed and the run's compiled-model cache. Two are built in:

``hierarchical``
    The hierarchical logistic model of :mod:`personasim.bayes.model` (baseline, persona,
    campaign, campaign-feature and persona x campaign effects, optionally recipient
    covariates), sampled with nutpie or PyMC NUTS, or fitted by ADVI when very large
    (:mod:`personasim.bayes.sampling`); see :func:`fit_hierarchical`. :func:`fit_model` and
    :func:`fit_posterior` build the request for it from cells or counts.
``beta_binomial``
    Independent closed-form Beta-Binomial updates per cell; instant, the baseline to beat,
    and (through the same interface) the fallback when sampling fails; see
    :func:`beta_binomial_posterior`.

A plug-in registers a callable ``(request) -> Posterior`` with ``ESTIMATORS.register(name)``
(marked with :func:`~personasim.bayes.request.fits_covariates` if it fits covariates).
Importing this module does not import PyMC, PyTensor, nutpie or ArviZ, so config validation
can check estimator names cheaply.

Diagnostics (:mod:`personasim.bayes.diagnostics`) travel with the posterior; posteriors are
written and read by :mod:`personasim.bayes.storage`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np

from personasim.bayes.cells import ModelInputs
from personasim.bayes.covariates import CovariatePosterior, persona_average
from personasim.bayes.diagnostics import advi_diagnostics, diagnose, fallback_diagnostics
from personasim.bayes.request import (
    CovariateInfo,
    EstimationRequest,
    PosteriorEstimator,
    fits_covariates,
    fits_recipients,
)
from personasim.bayes.sampling import (
    ADVI_TOLERANCE,
    CompiledModelCache,
    nutpie_available,
    resolve_algorithm,
    resolve_sampler,
    sample_advi,
    sample_nuts,
)
from personasim.config.sections import InferenceConfig
from personasim.core.numeric import sigmoid
from personasim.core.registry import Registry
from personasim.core.types import ABCounts, Diagnostics, Posterior

logger = logging.getLogger(__name__)

__all__ = [
    "ESTIMATORS",
    "FALLBACK_ESTIMATOR",
    "CovariateInfo",
    "EstimationRequest",
    "PosteriorEstimator",
    "beta_binomial_estimator",
    "beta_binomial_posterior",
    "fit_hierarchical",
    "fit_model",
    "fit_posterior",
    "nutpie_available",
]

ESTIMATORS: Registry[PosteriorEstimator] = Registry("posterior estimator")
"""Posterior estimators by name: each a callable ``(EstimationRequest) -> Posterior``."""

#: The estimator the hierarchical fit falls back to when sampling fails.
FALLBACK_ESTIMATOR = "beta_binomial"

#: Pseudo-observations behind the beta_binomial estimator's prior when prior_mean is given.
PRIOR_CONCENTRATION = 2.0

_EPS = 1e-6


def _draws(idata: Any, name: str, dims: tuple[str, ...]) -> np.ndarray:
    """A variable's draws, chain-major, as float32 ``(chains * draws, ...)``."""
    values = idata.posterior[name].transpose("chain", "draw", *dims).values
    return np.ascontiguousarray(values.reshape(-1, *values.shape[2:]), dtype=np.float32)


@ESTIMATORS.register("hierarchical")
@fits_covariates
def fit_hierarchical(request: EstimationRequest) -> Posterior:
    """Fit the hierarchical model to ``request.inputs`` with NUTS or ADVI.

    ``config.algorithm`` picks NUTS or ADVI (``auto``: ADVI above ``advi_above_cells``
    aggregated cells); ``config.nuts_sampler`` picks the NUTS implementation (``auto``:
    nutpie when installed; its compiled model is kept in ``request.cache`` and reused
    through ``with_data``). If sampling raises and ``config.fallback`` is on, the
    :data:`FALLBACK_ESTIMATOR` answers the same request instead (centred on the model's
    prior mean), with a warning in its diagnostics.

    Parameters
    ----------
    request
        Cells, priors, features, covariates (required when ``inputs`` has covariates: the
        result is then a :class:`~personasim.bayes.covariates.CovariatePosterior`),
        settings, seed and the compiled-model cache.

    Returns
    -------
    Posterior
        ``(n_draws, P, K)`` float32 draws of P(response) (persona averages when there are
        covariates), chain-major; its diagnostics are a
        :class:`~personasim.bayes.diagnostics.FitDiagnostics` (with ``compile_seconds``)
        unless the fallback answered.

    Raises
    ------
    ImportError
        If ``config.nuts_sampler`` is ``"nutpie"`` and nutpie is not installed.
    """
    inputs, config, seed, covariates = (request.inputs, request.config, request.seed,
                                        request.covariates)
    inputs.validate()
    has_covariates = inputs.covariates.shape[1] > 0
    if has_covariates and covariates is None:
        raise ValueError("inputs with covariates need their CovariateInfo")
    algorithm = resolve_algorithm(config, inputs)
    sampler = resolve_sampler(config.nuts_sampler) if algorithm == "nuts" else "advi"
    start = time.perf_counter()
    compile_seconds = 0.0
    try:
        if algorithm == "advi":
            idata, change = sample_advi(inputs, config, seed, request.progress)
        else:
            idata, compile_seconds = sample_nuts(sampler, inputs, config, seed,
                                                 request.progress, request.cache)
    except Exception as exc:  # noqa: BLE001 - any sampler failure may fall back
        if not config.fallback:
            raise
        return _fallback(request, exc, start)
    grid = ("persona", "campaign")
    eta = _draws(idata, "eta", grid)
    seconds = time.perf_counter() - start
    if algorithm == "advi":
        diagnostics = advi_diagnostics(change, eta.shape[0], seconds, ADVI_TOLERANCE)
    else:
        diagnostics = diagnose(idata, config, sampler, seconds, compile_seconds)
    logger.info(
        "%s posterior: %d draws, R-hat max %.3f, ESS min %.0f, %d divergences, %.1f s",
        diagnostics.sampler, eta.shape[0], diagnostics.rhat_max, diagnostics.ess_bulk_min,
        diagnostics.divergences, diagnostics.seconds,
    )
    ids = (tuple(inputs.persona_ids), tuple(inputs.campaign_ids))
    if not has_covariates:
        return Posterior(*ids, _draws(idata, "p", grid), diagnostics)
    assert covariates is not None
    gamma = _draws(idata, "gamma", ("campaign", "covariate"))
    rates = persona_average(eta, gamma, covariates.group_x, covariates.group_weight)
    # store logits at the standardized covariates' zero, not at each persona's centre
    eta_zero = eta - np.einsum("jd,skd->sjk", covariates.centers, gamma).astype(np.float32)
    return CovariatePosterior(*ids, rates, diagnostics, eta_zero, gamma, covariates.spec)


def _fallback(request: EstimationRequest, exc: Exception, start: float) -> Posterior:
    """The :data:`FALLBACK_ESTIMATOR`'s answer, centred on the model's prior mean."""
    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
    centred = replace(request, prior_mean=sigmoid(request.inputs.prior_logit), covariates=None)
    fallback = ESTIMATORS.get(FALLBACK_ESTIMATOR)(centred)
    diagnostics = fallback_diagnostics(reason, fallback.draws.shape[0],
                                       time.perf_counter() - start)
    return Posterior(fallback.persona_ids, fallback.campaign_ids, fallback.draws, diagnostics)


def fit_model(
    inputs: ModelInputs,
    config: InferenceConfig,
    seed: int,
    covariates: CovariateInfo | None = None,
    progress: bool = False,
    cache: CompiledModelCache | None = None,
) -> Posterior:
    """Fit the hierarchical model to ``inputs`` (see :func:`fit_hierarchical`).

    Parameters
    ----------
    inputs
        Aggregated cells, priors and features (:mod:`personasim.bayes.cells`).
    config
        Sampler settings and diagnostic thresholds.
    seed
        Sampler seed; the same seed gives the same draws.
    covariates
        Required when ``inputs`` has covariates.
    progress
        Show the sampler's progress bar.
    cache
        Compiled models to reuse and add to (``None``: compile afresh).
    """
    request = EstimationRequest(inputs, config, seed, covariates=covariates, cache=cache,
                                progress=progress)
    return fit_hierarchical(request)


def fit_posterior(counts: ABCounts, config: InferenceConfig, seed: int,
                  **options: Any) -> Posterior:
    """Fit the hierarchical model to persona x campaign counts (no covariates).

    ``options`` are those of :meth:`EstimationRequest.from_counts` (prior mean and scale,
    campaign features, compiled-model cache, progress bar).
    """
    return fit_hierarchical(EstimationRequest.from_counts(counts, config, seed, **options))


def _check_counts(counts: ABCounts) -> None:
    shape = (len(counts.persona_ids), len(counts.campaign_ids))
    if counts.exposures.shape != shape or counts.responses.shape != shape:
        raise ValueError(f"counts arrays must have shape {shape}")
    if np.any(counts.exposures < 0) or np.any(counts.responses < 0):
        raise ValueError("counts must be non-negative")
    if np.any(counts.responses > counts.exposures):
        raise ValueError("responses must not exceed exposures")


def beta_binomial_posterior(
    counts: ABCounts,
    n_draws: int,
    seed: int,
    prior_a: float | np.ndarray = 1.0,
    prior_b: float | np.ndarray = 1.0,
) -> Posterior:
    """Independent conjugate Beta-Binomial posterior per cell.

    Each cell's posterior is ``Beta(prior_a + responses, prior_b + exposures - responses)``;
    there is no pooling between cells.

    Parameters
    ----------
    counts
        Aggregated A/B counts.
    n_draws
        Draws to take per cell.
    seed
        Seed of the ``numpy`` generator the draws come from.
    prior_a, prior_b
        Beta prior shapes: scalars or arrays broadcastable to ``(P, K)``.

    Returns
    -------
    Posterior
        ``(n_draws, P, K)`` float32 draws; diagnostics are exact (R-hat 1, ESS ``n_draws``).
    """
    _check_counts(counts)
    if n_draws < 1:
        raise ValueError("n_draws must be >= 1")
    start = time.perf_counter()
    shape = counts.exposures.shape
    a = np.broadcast_to(np.asarray(prior_a, dtype=np.float64), shape)
    b = np.broadcast_to(np.asarray(prior_b, dtype=np.float64), shape)
    if np.any(a <= 0) or np.any(b <= 0):
        raise ValueError("prior_a and prior_b must be positive")
    rng = np.random.default_rng(seed)
    post_a = a + counts.responses
    post_b = b + counts.exposures - counts.responses
    draws = rng.beta(post_a, post_b, size=(n_draws, *shape)).astype(np.float32)
    diagnostics = Diagnostics(
        sampler="beta-binomial",
        rhat_max=1.0,
        ess_bulk_min=float(n_draws),
        divergences=0,
        seconds=time.perf_counter() - start,
    )
    return Posterior(tuple(counts.persona_ids), tuple(counts.campaign_ids), draws, diagnostics)


@ESTIMATORS.register("recipient")
@fits_recipients
def fit_recipient(request: EstimationRequest) -> Posterior:
    """The recipient-level model (:mod:`personasim.bayes.recipient_glm`).

    Without per-recipient A/B rows and attributes there is nothing recipient-level to fit,
    and the hierarchical model fits the persona x campaign grid instead.
    """
    if request.ab is None or request.recipients is None:
        logger.info("no per-recipient A/B results with attributes: fitting the hierarchical "
                    "persona x campaign model instead of the recipient model")
        return fit_hierarchical(replace(request, covariates=None))
    from personasim.bayes.recipient_glm import recipient_posterior

    return recipient_posterior(request)


@ESTIMATORS.register("beta_binomial")
def beta_binomial_estimator(request: EstimationRequest) -> Posterior:
    """Independent Beta-Binomial posterior per cell of ``request.counts``.

    Takes ``request.n_draws`` draws with ``request.seed``. The prior is uniform, or, with
    ``request.prior_mean``, a Beta with that mean worth :data:`PRIOR_CONCENTRATION`
    observations. Covariates, features and prior scales are not used.
    """
    counts = request.counts
    if request.prior_mean is None:
        return beta_binomial_posterior(counts, request.n_draws, request.seed)
    mean = np.clip(np.asarray(request.prior_mean, dtype=np.float64), _EPS, 1 - _EPS)
    return beta_binomial_posterior(
        counts,
        request.n_draws,
        request.seed,
        prior_a=mean * PRIOR_CONCENTRATION,
        prior_b=(1 - mean) * PRIOR_CONCENTRATION,
    )
