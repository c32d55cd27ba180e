"""What a posterior estimator is asked: one typed :class:`EstimationRequest`.

Every estimator registered in :data:`personasim.bayes.estimators.ESTIMATORS` is a
:class:`PosteriorEstimator`, a callable ``(request) -> Posterior``. The request carries all
that the hierarchical fit needs (aggregated cells with their priors and campaign features,
recipient covariates, settings, seed, the run's compiled-model cache), so a plug-in sees
the same data as the built-in estimators and uses what it needs.

Importing this module does not import PyMC, PyTensor, nutpie or ArviZ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd

from personasim.bayes.cells import ModelInputs, grid_inputs
from personasim.bayes.covariates import CovariateSpec
from personasim.bayes.sampling import CompiledModelCache
from personasim.config.sections import InferenceConfig
from personasim.core.types import ABCounts, ABResults, Posterior

__all__ = [
    "CovariateInfo",
    "EstimationRequest",
    "PosteriorEstimator",
    "fits_covariates",
    "fits_recipients",
    "uses_covariates",
    "uses_recipients",
]


@dataclass(frozen=True)
class CovariateInfo:
    """What turns covariate draws into persona averages and recipient scores.

    Attributes
    ----------
    spec
        The covariates' names and standardization.
    group_x, group_weight
        Per persona, its covariate groups' mean persona-centred covariates ``(P, G, D)``
        and A/B shares ``(P, G)`` (see :func:`personasim.bayes.covariates.covariate_inputs`).
    centers
        ``(P, D)`` each persona's mean standardized covariates (the model's centring).
    """

    spec: CovariateSpec
    group_x: np.ndarray
    group_weight: np.ndarray
    centers: np.ndarray


@dataclass(frozen=True)
class EstimationRequest:
    """Everything an estimator may use to fit a posterior.

    Attributes
    ----------
    inputs
        The aggregated cells (the persona x campaign grid, or persona x campaign x covariate
        bin when there are covariates), noised when privacy is on, with each cell's prior
        logit mean and scale and the standardized campaign features
        (:class:`~personasim.bayes.cells.ModelInputs`).
    config
        The ``inference`` settings.
    seed
        Seed of the fit; the same request gives the same draws.
    prior_mean
        ``(P, K)`` stated prior response probabilities (the personas' traits or an earlier
        posterior), or ``None`` when nothing was stated (the hierarchical model then centres
        on ``inputs.prior_logit``, the pooled rate; the Beta-Binomial prior is uniform).
    covariates
        Present exactly when ``inputs`` has covariate columns: how to turn covariate draws
        into persona averages. Only estimators marked with :func:`fits_covariates` get it.
    cache
        The run's compiled nutpie models, reused across fits of the same structure;
        ``None`` compiles afresh and keeps nothing.
    progress
        Show the sampler's progress bar.
    ab, recipients
        The per-recipient A/B rows and the recipients' attributes; only estimators marked
        with :func:`fits_recipients` get them (and only when the data have them).
    control
        Index of the control campaign in ``inputs.campaign_ids``, or ``None``.
    """

    inputs: ModelInputs
    config: InferenceConfig
    seed: int
    prior_mean: np.ndarray | None = None
    covariates: CovariateInfo | None = None
    cache: CompiledModelCache | None = None
    progress: bool = False
    ab: ABResults | None = None
    recipients: pd.DataFrame | None = None
    control: int | None = None

    @property
    def counts(self) -> ABCounts:
        """The cells summed to persona x campaign counts."""
        return self.inputs.grid_counts()

    @property
    def n_draws(self) -> int:
        """Draws the posterior should hold: ``chains * draws``."""
        return self.config.chains * self.config.draws

    @classmethod
    def from_counts(
        cls,
        counts: ABCounts,
        config: InferenceConfig,
        seed: int,
        prior_mean: np.ndarray | None = None,
        prior_scale: np.ndarray | float | None = None,
        features: np.ndarray | None = None,
        feature_names: tuple[str, ...] = (),
        cache: CompiledModelCache | None = None,
        progress: bool = False,
    ) -> EstimationRequest:
        """A request for persona x campaign counts, without covariates.

        Parameters
        ----------
        counts
            Aggregated A/B counts.
        config, seed, cache, progress
            As the attributes.
        prior_mean
            Optional ``(P, K)`` prior response probabilities.
        prior_scale
            Prior standard deviation of each cell's logit (default 1).
        features, feature_names
            Optional ``(K, n_features)`` campaign features and their names.
        """
        inputs = grid_inputs(counts, prior_mean, prior_scale, features, feature_names)
        return cls(inputs, config, seed, prior_mean, None, cache, progress)


class PosteriorEstimator(Protocol):
    """A registered estimator: ``(request) -> Posterior``.

    It returns ``request.n_draws`` float32 draws of P(response) per persona x campaign cell,
    labelled like ``request.inputs``; one that fits recipient covariates returns a
    :class:`~personasim.bayes.covariates.CovariatePosterior` when ``request.covariates`` is
    set. Mark such an estimator with :func:`fits_covariates`.
    """

    def __call__(self, request: EstimationRequest, /) -> Posterior:
        """Fit the posterior the request describes."""
        ...


E = TypeVar("E")


def fits_covariates(estimator: E) -> E:
    """Mark ``estimator`` as fitting recipient covariates (decorator).

    The Bayesian-update stage then builds covariate cells for it when the config and the
    data allow; other estimators always get the persona x campaign grid.
    """
    estimator.uses_covariates = True  # type: ignore[attr-defined]
    return estimator


def uses_covariates(estimator: object) -> bool:
    """True when ``estimator`` was marked with :func:`fits_covariates`."""
    return bool(getattr(estimator, "uses_covariates", False))


def fits_recipients(estimator: E) -> E:
    """Mark ``estimator`` as a recipient-level model (decorator).

    It then gets the per-recipient A/B rows and the recipients' attributes in its request,
    when the run has them; ``inference.estimator: auto`` picks it for such data.
    """
    estimator.uses_recipients = True  # type: ignore[attr-defined]
    return estimator


def uses_recipients(estimator: object) -> bool:
    """True when ``estimator`` was marked with :func:`fits_recipients`."""
    return bool(getattr(estimator, "uses_recipients", False))
