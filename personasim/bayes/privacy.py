"""Differential privacy for A/B results: noise on the aggregated counts before inference.

Each recipient adds one exposure and at most one response to exactly one persona x campaign
cell, so adding or removing a recipient changes the vector of counts by at most 2 in L1 norm
and sqrt(2) in L2 norm. The Laplace mechanism adds ``Laplace(2 / epsilon)`` noise to every
count (epsilon-DP); the Gaussian mechanism adds ``Normal(0, sigma)`` noise with ``sigma`` from
the analytic calibration of Balle and Wang (2018), exact for any epsilon ((epsilon,
delta)-DP). The noisy counts are then rounded and clipped so that ``0 <= responses <=
exposures`` (post-processing, which keeps the guarantee).

The guarantee covers the A/B outcome counts given the cells (personas, campaigns); the cells
must not themselves be chosen from the protected outcomes. :func:`privacy_report` states what
the noise cost in accuracy.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from personasim.config.sections import PrivacyConfig

logger = logging.getLogger(__name__)

L1_SENSITIVITY = 2.0
L2_SENSITIVITY = math.sqrt(2.0)


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float = L2_SENSITIVITY) -> float:
    """Smallest Gaussian noise scale giving (epsilon, delta)-DP (analytic calibration).

    Solves ``Phi(D / 2s - e s / D) - exp(e) Phi(-D / 2s - e s / D) <= delta`` for ``s`` by
    bisection on the log scale (the left side decreases in ``s``).
    """
    if epsilon <= 0 or not 0 < delta < 1:
        raise ValueError("epsilon must be > 0 and delta in (0, 1)")

    def leak(s: float) -> float:
        a, b = sensitivity / (2 * s), epsilon * s / sensitivity
        return float(stats.norm.cdf(a - b) - math.exp(epsilon) * stats.norm.cdf(-a - b))

    low, high = 1e-6 * sensitivity, 1e6 * sensitivity
    for _ in range(200):
        mid = math.sqrt(low * high)
        if leak(mid) > delta:
            low = mid
        else:
            high = mid
    return high


def noise_scale(config: PrivacyConfig) -> float:
    """Standard deviation of the noise added to each count (0 when the mechanism is none)."""
    if config.mechanism == "laplace":
        return math.sqrt(2.0) * L1_SENSITIVITY / config.epsilon
    if config.mechanism == "gaussian":
        return gaussian_sigma(config.epsilon, config.delta)
    return 0.0


def privatize(
    exposures: np.ndarray, responses: np.ndarray, config: PrivacyConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Noisy, rounded and clipped copies of ``exposures`` and ``responses`` (int64).

    Returns the inputs unchanged (as copies) when ``config.mechanism`` is ``"none"``.
    """
    exposures = np.asarray(exposures, dtype=np.int64)
    responses = np.asarray(responses, dtype=np.int64)
    if config.mechanism == "none":
        return exposures.copy(), responses.copy()
    if config.mechanism == "laplace":
        b = L1_SENSITIVITY / config.epsilon
        noise_e = rng.laplace(0.0, b, exposures.shape)
        noise_r = rng.laplace(0.0, b, responses.shape)
    else:
        sigma = gaussian_sigma(config.epsilon, config.delta)
        noise_e = rng.normal(0.0, sigma, exposures.shape)
        noise_r = rng.normal(0.0, sigma, responses.shape)
    noisy_e = np.maximum(np.rint(exposures + noise_e), 0).astype(np.int64)
    noisy_r = np.clip(np.rint(responses + noise_r), 0, noisy_e).astype(np.int64)
    return noisy_e, noisy_r


@dataclass(frozen=True)
class PrivacyReport:
    """What privacy cost in accuracy (the run manifest's ``privacy`` entry).

    Attributes
    ----------
    mechanism, epsilon, delta
        The configuration (``delta`` is ``None`` for Laplace).
    noise_sd
        Standard deviation of the noise on each count.
    count_mae
        Mean absolute change of the counts, after rounding and clipping.
    rate_rmse
        Exposure-weighted RMSE between the noisy and the raw observed rates.
    sampling_se
        Exposure-weighted typical binomial standard error of the raw rates, for scale.
    posterior_rmse
        RMSE between Beta-Binomial posterior means from noisy and from raw counts.
    interval_width_ratio
        Mean 90% interval width from noisy counts over that from raw counts.
    """

    mechanism: str
    epsilon: float
    delta: float | None
    noise_sd: float
    count_mae: float
    rate_rmse: float
    sampling_se: float
    posterior_rmse: float
    interval_width_ratio: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (rounded)."""
        return {
            key: (round(value, 6) if isinstance(value, float) else value)
            for key, value in self.__dict__.items()
        }


def _rates(exposures: np.ndarray, responses: np.ndarray) -> np.ndarray:
    return (responses + 0.5) / (exposures + 1.0)


def _beta_summary(exposures: np.ndarray, responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = 1.0 + responses, 1.0 + exposures - responses
    low, high = stats.beta.ppf(0.05, a, b), stats.beta.ppf(0.95, a, b)
    return a / (a + b), high - low


def privacy_report(
    raw: tuple[np.ndarray, np.ndarray], noisy: tuple[np.ndarray, np.ndarray],
    config: PrivacyConfig,
) -> PrivacyReport:
    """Compare inference inputs before and after noise (see :class:`PrivacyReport`)."""
    e0, r0 = (np.asarray(x, dtype=np.float64).ravel() for x in raw)
    e1, r1 = (np.asarray(x, dtype=np.float64).ravel() for x in noisy)
    weight = e0 / max(e0.sum(), 1.0)
    rate0, rate1 = _rates(e0, r0), _rates(e1, r1)
    se = np.sqrt(rate0 * (1 - rate0) / np.maximum(e0, 1.0))
    mean0, width0 = _beta_summary(e0, r0)
    mean1, width1 = _beta_summary(e1, r1)
    report = PrivacyReport(
        mechanism=config.mechanism,
        epsilon=config.epsilon,
        delta=config.delta if config.mechanism == "gaussian" else None,
        noise_sd=noise_scale(config),
        count_mae=float(np.mean(np.abs(np.concatenate([e1 - e0, r1 - r0])))),
        rate_rmse=float(np.sqrt(np.sum(weight * (rate1 - rate0) ** 2))),
        sampling_se=float(np.sum(weight * se)),
        posterior_rmse=float(np.sqrt(np.mean((mean1 - mean0) ** 2))),
        interval_width_ratio=float(np.mean(width1) / max(np.mean(width0), 1e-12)),
    )
    logger.info("privacy (%s, epsilon=%g): %s", config.mechanism, config.epsilon,
                report.to_dict())
    return report
