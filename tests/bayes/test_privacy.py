"""Differential-privacy noise on aggregated A/B counts, and its reported accuracy cost."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from personasim.bayes.privacy import (
    L2_SENSITIVITY,
    gaussian_sigma,
    noise_scale,
    privacy_report,
    privatize,
)
from personasim.config.sections import PrivacyConfig


def _leak(sigma: float, epsilon: float, sensitivity: float = L2_SENSITIVITY) -> float:
    a, b = sensitivity / (2 * sigma), epsilon * sigma / sensitivity
    return float(stats.norm.cdf(a - b) - math.exp(epsilon) * stats.norm.cdf(-a - b))


@pytest.mark.parametrize(("epsilon", "delta"), [(0.5, 1e-6), (1.0, 1e-5), (4.0, 1e-3)])
def test_gaussian_sigma_is_the_smallest_that_meets_delta(epsilon: float, delta: float) -> None:
    sigma = gaussian_sigma(epsilon, delta)
    assert _leak(sigma, epsilon) <= delta * 1.0001
    assert _leak(0.99 * sigma, epsilon) > delta
    if epsilon < 1:  # the classical bound holds only there, and the analytic one beats it
        classical = math.sqrt(2 * math.log(1.25 / delta)) * L2_SENSITIVITY / epsilon
        assert sigma < classical


def test_gaussian_sigma_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        gaussian_sigma(0.0, 1e-6)
    with pytest.raises(ValueError, match="delta"):
        gaussian_sigma(1.0, 1.0)


def test_config_rejects_non_positive_epsilon() -> None:
    with pytest.raises(ValidationError, match="epsilon"):
        PrivacyConfig(mechanism="laplace", epsilon=0)


@pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
def test_noise_has_the_stated_scale_and_keeps_counts_valid(mechanism: str) -> None:
    config = PrivacyConfig(mechanism=mechanism, epsilon=0.5)
    exposures = np.full(40_000, 5_000, dtype=np.int64)
    responses = np.full(40_000, 400, dtype=np.int64)
    noisy_e, noisy_r = privatize(exposures, responses, config, np.random.default_rng(1))
    assert noisy_e.dtype == np.int64 and noisy_r.dtype == np.int64
    for noisy, raw in ((noisy_e, exposures), (noisy_r, responses)):
        diff = (noisy - raw).astype(np.float64)
        assert abs(diff.mean()) < 0.05 * noise_scale(config)  # unbiased away from the bounds
        # rounding adds variance 1/12 to the noise's own
        expected = math.sqrt(noise_scale(config) ** 2 + 1 / 12)
        assert diff.std() == pytest.approx(expected, rel=0.03)


def test_clipping_keeps_responses_within_exposures() -> None:
    config = PrivacyConfig(mechanism="laplace", epsilon=0.1)  # noise far above the counts
    exposures = np.array([0, 1, 2, 3, 5] * 200, dtype=np.int64)
    responses = np.minimum(exposures, 1)
    noisy_e, noisy_r = privatize(exposures, responses, config, np.random.default_rng(2))
    assert (noisy_e >= 0).all() and (noisy_r >= 0).all() and (noisy_r <= noisy_e).all()


def test_no_mechanism_returns_copies_and_seeds_repeat() -> None:
    exposures, responses = np.array([10, 20]), np.array([1, 2])
    same_e, same_r = privatize(exposures, responses, PrivacyConfig(), np.random.default_rng(0))
    np.testing.assert_array_equal(same_e, exposures)
    assert same_e is not exposures
    config = PrivacyConfig(mechanism="gaussian", epsilon=1.0)
    first = privatize(exposures, responses, config, np.random.default_rng(5))
    again = privatize(exposures, responses, config, np.random.default_rng(5))
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])


def test_report_states_a_cost_that_falls_with_epsilon() -> None:
    rng = np.random.default_rng(3)
    exposures = rng.integers(50, 400, 60)
    responses = rng.binomial(exposures, 0.08)
    reports = {}
    for epsilon in (0.1, 10.0):
        config = PrivacyConfig(mechanism="laplace", epsilon=epsilon)
        noisy = privatize(exposures, responses, config, np.random.default_rng(4))
        reports[epsilon] = privacy_report((exposures, responses), noisy, config)
    strict, loose = reports[0.1], reports[10.0]
    assert strict.noise_sd == pytest.approx(math.sqrt(2) * 2 / 0.1)
    assert strict.count_mae > 5 * loose.count_mae
    assert strict.rate_rmse > loose.rate_rmse and strict.posterior_rmse > loose.posterior_rmse
    assert strict.rate_rmse > strict.sampling_se  # at epsilon 0.1 noise outweighs sampling
    entry = strict.to_dict()
    assert entry["mechanism"] == "laplace" and entry["delta"] is None
    assert set(entry) >= {"count_mae", "rate_rmse", "posterior_rmse", "interval_width_ratio"}
