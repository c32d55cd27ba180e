"""Tests for personasim.bayes.estimators: posterior fits, the estimator interface, config
names, trait feedback and persistence."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, write_yaml
from pydantic import ValidationError

from personasim.bayes import estimators
from personasim.bayes.diagnostics import FitDiagnostics
from personasim.bayes.estimators import (
    ESTIMATORS,
    EstimationRequest,
    beta_binomial_posterior,
    fit_posterior,
)
from personasim.bayes.sampling import CompiledModelCache
from personasim.bayes.storage import load_posterior, posterior_table, save_posterior
from personasim.config.loading import load_config
from personasim.config.sections import InferenceConfig
from personasim.core.errors import ConfigError, DataError
from personasim.core.numeric import sigmoid
from personasim.core.types import ABCounts, Diagnostics, Posterior

PERSONAS = ("young", "family", "retired")
CAMPAIGNS = ("email_a", "email_b", "sms_a")
TRUE_RATES = np.array([[0.05, 0.08, 0.12], [0.03, 0.06, 0.10], [0.08, 0.12, 0.18]])
SMALL = InferenceConfig(draws=300, tune=300, chains=2)
#: Fits of the same shape in this module reuse one compiled nutpie model.
CACHE = CompiledModelCache()


def _logit(x: np.ndarray | float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.log(x) - np.log1p(-x)


def _sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _counts(exposures: np.ndarray, responses: np.ndarray) -> ABCounts:
    return ABCounts(PERSONAS, CAMPAIGNS, exposures.astype(np.int64), responses.astype(np.int64))


def _simulated(rates: np.ndarray, n: int, seed: int) -> ABCounts:
    rng = np.random.default_rng(seed)
    exposures = np.full(rates.shape, n, dtype=np.int64)
    return _counts(exposures, rng.binomial(exposures, rates))


@pytest.fixture(scope="module")
def recovery() -> tuple[ABCounts, Posterior]:
    counts = _simulated(TRUE_RATES, 2000, seed=11)
    return counts, fit_posterior(counts, SMALL, seed=3, cache=CACHE)


@pytest.fixture(scope="module")
def sparse() -> tuple[ABCounts, Posterior]:
    """Different rates, one tiny all-success cell (0, 0) and one unexposed cell (2, 2)."""
    counts = _simulated(TRUE_RATES * 1.5, 2000, seed=12)
    exposures, responses = counts.exposures.copy(), counts.responses.copy()
    exposures[0, 0], responses[0, 0] = 5, 5
    exposures[2, 2], responses[2, 2] = 0, 0
    counts = _counts(exposures, responses)
    return counts, fit_posterior(counts, SMALL, seed=4, cache=CACHE)


def test_recovers_known_rates(recovery: tuple[ABCounts, Posterior]) -> None:
    _, posterior = recovery
    assert posterior.draws.shape == (600, 3, 3)
    assert posterior.draws.dtype == np.float32
    assert posterior.persona_ids == PERSONAS and posterior.campaign_ids == CAMPAIGNS
    low, high = posterior.interval(0.9)
    inside = (low <= TRUE_RATES) & (TRUE_RATES <= high)
    assert inside.sum() >= 8, f"true rates outside the 90% interval:\n{inside}"
    np.testing.assert_allclose(posterior.mean(), TRUE_RATES, atol=0.02)


def test_refit_with_new_data_uses_new_data(sparse: tuple[ABCounts, Posterior]) -> None:
    # Same shape as the recovery fit: nutpie reuses its compiled model via with_data.
    counts, posterior = sparse
    informed = counts.exposures >= 1000
    np.testing.assert_allclose(posterior.mean()[informed], counts.rates[informed], atol=0.02)


def test_small_cell_is_shrunk(sparse: tuple[ABCounts, Posterior]) -> None:
    counts, posterior = sparse
    assert posterior.mean()[0, 0] < 0.7
    independent = beta_binomial_posterior(counts, n_draws=20_000, seed=0)
    assert independent.mean()[0, 0] == pytest.approx(6 / 7, abs=0.01)


def test_unexposed_cell_gets_a_prediction(sparse: tuple[ABCounts, Posterior]) -> None:
    _, posterior = sparse
    cell = posterior.draws[:, 2, 2]
    assert np.isfinite(cell).all() and ((cell > 0) & (cell < 1)).all()
    low, high = posterior.interval(0.9)
    assert high[2, 2] - low[2, 2] > high[2, 1] - low[2, 1]


def test_diagnostics_populated(recovery: tuple[ABCounts, Posterior]) -> None:
    diag = recovery[1].diagnostics
    assert diag.sampler in {"nutpie", "pymc"}
    assert math.isfinite(diag.rhat_max) and diag.rhat_max >= 0.99
    assert 0 < diag.ess_bulk_min <= 2 * 600
    assert diag.divergences >= 0 and diag.seconds > 0
    healthy = (
        diag.rhat_max <= SMALL.rhat_max
        and diag.ess_bulk_min >= SMALL.ess_min
        and diag.divergences == 0
    )
    assert diag.ok == healthy


def test_terrible_sampling_warns_and_is_deterministic(
    recovery: tuple[ABCounts, Posterior], caplog: pytest.LogCaptureFixture
) -> None:
    counts = recovery[0]
    config = InferenceConfig(draws=50, tune=50, chains=1, ess_min=1e6)
    with caplog.at_level("WARNING", logger="personasim.bayes.estimators"):
        first = fit_posterior(counts, config, seed=7, cache=CACHE)
    assert first.draws.shape == (50, 3, 3)
    assert not first.diagnostics.ok
    assert any("ESS" in w for w in first.diagnostics.warnings)
    assert any("ESS" in r.getMessage() for r in caplog.records)
    again = fit_posterior(counts, config, seed=7, cache=CACHE)
    np.testing.assert_array_equal(first.draws, again.draws)
    other = fit_posterior(counts, config, seed=8, cache=CACHE)
    assert not np.array_equal(first.draws, other.draws)


def test_sampler_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from personasim.bayes import sampling

    monkeypatch.setattr(sampling, "nutpie_available", lambda: False)
    assert sampling.resolve_sampler("auto") == "pymc"
    assert sampling.resolve_sampler("pymc") == "pymc"
    with pytest.raises(ImportError, match="nutpie"):
        sampling.resolve_sampler("nutpie")
    monkeypatch.setattr(sampling, "nutpie_available", lambda: True)
    assert sampling.resolve_sampler("auto") == "nutpie"


def test_prior_mean_sets_the_prior_logit() -> None:
    from personasim.bayes.cells import grid_inputs

    counts = _simulated(TRUE_RATES, 100, seed=1)
    informed = grid_inputs(counts, prior_mean=TRUE_RATES)
    np.testing.assert_allclose(informed.prior_logit, _logit(TRUE_RATES))
    pooled = grid_inputs(counts)
    rate = (counts.responses.sum() + 0.5) / (counts.exposures.sum() + 1)
    np.testing.assert_allclose(pooled.prior_logit, float(_logit(rate)))
    with pytest.raises(ValueError, match="prior_mean"):
        grid_inputs(counts, prior_mean=TRUE_RATES[:2])


def test_beta_binomial_matches_closed_form() -> None:
    exposures = np.array([[0, 10, 200], [5, 50, 1000], [1, 2, 3]])
    responses = np.array([[0, 3, 20], [5, 1, 90], [0, 2, 1]])
    counts = _counts(exposures, responses)
    prior_a = np.array([[1.0], [2.0], [0.5]])
    n_draws = 40_000
    posterior = beta_binomial_posterior(counts, n_draws, seed=5, prior_a=prior_a, prior_b=3.0)
    a, b = prior_a + responses, 3.0 + exposures - responses
    expected = a / (a + b)
    sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    assert np.all(np.abs(posterior.mean() - expected) < 4 * sd / np.sqrt(n_draws))
    assert posterior.draws.shape == (n_draws, 3, 3) and posterior.draws.dtype == np.float32
    diag = posterior.diagnostics
    assert (diag.sampler, diag.rhat_max, diag.ess_bulk_min, diag.divergences) == (
        "beta-binomial",
        1.0,
        float(n_draws),
        0,
    )
    assert diag.ok
    again = beta_binomial_posterior(counts, n_draws, seed=5, prior_a=prior_a, prior_b=3.0)
    np.testing.assert_array_equal(posterior.draws, again.draws)


def test_beta_binomial_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="exceed"):
        beta_binomial_posterior(_counts(np.ones((3, 3)), np.full((3, 3), 2)), 10, seed=0)


def test_estimator_registry() -> None:
    assert {"beta_binomial", "hierarchical"} <= set(ESTIMATORS.names())
    assert ESTIMATORS.get("hierarchical") is estimators.fit_hierarchical
    counts = _simulated(TRUE_RATES, 500, seed=2)
    config = InferenceConfig(draws=100, chains=3)
    bb = ESTIMATORS.get("beta_binomial")
    posterior = bb(EstimationRequest.from_counts(counts, config, 1))
    assert posterior.draws.shape == (300, 3, 3)
    request = EstimationRequest.from_counts(counts, config, 1, prior_mean=np.full((3, 3), 0.5))
    informed = bb(request)
    assert informed.mean() == pytest.approx(posterior.mean(), abs=0.01)
    np.testing.assert_array_equal(posterior.draws, beta_binomial_posterior(counts, 300, 1).draws)


def test_failed_sampling_falls_back_through_the_estimator_interface(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("sampler broke\nsecond line")

    monkeypatch.setattr(estimators, "sample_nuts", broken)
    counts = _simulated(TRUE_RATES, 200, seed=5)
    config = InferenceConfig(draws=100, chains=2, algorithm="nuts")
    request = EstimationRequest.from_counts(counts, config, 9, prior_mean=TRUE_RATES)
    posterior = estimators.fit_hierarchical(request)
    centred = replace(request, prior_mean=sigmoid(request.inputs.prior_logit))
    expected = ESTIMATORS.get(estimators.FALLBACK_ESTIMATOR)(centred)
    np.testing.assert_array_equal(posterior.draws, expected.draws)
    assert posterior.diagnostics.sampler == "beta-binomial"
    assert "RuntimeError: sampler broke" in posterior.diagnostics.warnings[0]
    with pytest.raises(RuntimeError, match="sampler broke"):
        estimators.fit_hierarchical(
            replace(request, config=config.model_copy(update={"fallback": False})))


def test_compiled_model_cache_keeps_the_most_recent() -> None:
    cache = CompiledModelCache(max_models=2)
    cache.put((1,), "a")
    cache.put((2,), "b")
    assert cache.get((1,)) == "a"  # (1,) is now the most recent
    cache.put((3,), "c")
    assert (cache.get((2,)), cache.get((1,)), cache.get((3,)), len(cache)) == (None, "a", "c", 2)
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_models"):
        CompiledModelCache(max_models=0)


def test_fit_reports_compile_seconds_but_does_not_store_them(
    recovery: tuple[ABCounts, Posterior], tmp_path: Path
) -> None:
    posterior = recovery[1]
    assert isinstance(posterior.diagnostics, FitDiagnostics)
    assert posterior.diagnostics.compile_seconds >= 0.0
    save_posterior(posterior, tmp_path)
    stored = json.loads((tmp_path / "posterior_diagnostics.json").read_text())
    assert list(stored) == ["sampler", "rhat_max", "ess_bulk_min", "divergences", "seconds",
                            "warnings"]


def test_config_names_say_what_they_choose(tmp_path: Path) -> None:
    config = InferenceConfig()
    assert (config.estimator, config.algorithm, config.nuts_sampler) == (
        "auto", "auto", "auto")
    assert not {"sampler", "method"} & set(config.model_dump())
    with pytest.warns(FutureWarning) as record:
        old = InferenceConfig.model_validate({"sampler": "pymc", "method": "advi"})
    assert [str(w.message) for w in record] == [
        "inference.sampler is deprecated: rename it inference.nuts_sampler (same values)",
        "inference.method is deprecated: rename it inference.algorithm (same values)",
    ]
    assert (old.nuts_sampler, old.algorithm) == ("pymc", "advi")
    with pytest.raises(ValidationError, match="'method' is the old name of 'algorithm'"):
        InferenceConfig(method="nuts", algorithm="advi")
    payload = copy.deepcopy(TINY_CONFIG)
    payload["inference"] = {"sampler": "pymc", "nuts_sampler": "nutpie"}
    with pytest.raises(ConfigError) as info:
        load_config(write_yaml(tmp_path / "both.yaml", payload))
    text = str(info.value)
    assert "inference" in text and "old name of 'nuts_sampler'" in text and "\n" not in text


def test_estimator_registry_imports_without_pymc() -> None:
    code = (
        "import sys; import personasim.bayes.estimators, personasim.bayes.update, "
        "personasim.bayes.storage; "
        "print([m for m in ('pymc', 'pytensor', 'nutpie', 'arviz') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_posterior_table_aligns_counts() -> None:
    exposures = np.array([[10, 0, 5], [4, 4, 4], [1, 2, 3]])
    responses = np.array([[2, 0, 5], [1, 2, 3], [0, 1, 0]])
    counts = _counts(exposures, responses)
    posterior = beta_binomial_posterior(counts, 2000, seed=0)
    flipped = ABCounts(PERSONAS[::-1], CAMPAIGNS, exposures[::-1], responses[::-1])
    table = posterior_table(posterior, flipped, level=0.8)
    assert list(table.columns) == [
        "persona_id",
        "campaign_id",
        "mean",
        "p_low",
        "p_high",
        "exposures",
        "responses",
        "observed_rate",
    ]
    row = table[(table.persona_id == "retired") & (table.campaign_id == "email_b")].iloc[0]
    assert (row.exposures, row.responses) == (2, 1)
    assert row.observed_rate == pytest.approx(0.5)
    assert row.p_low < row["mean"] < row.p_high
    unexposed = table[(table.persona_id == "young") & (table.campaign_id == "email_b")]
    assert unexposed.exposures.item() == 0 and np.isnan(unexposed.observed_rate.item())
    bare = posterior_table(posterior, None, level=0.9)
    assert len(bare) == 9 and (bare.exposures == 0).all()


def test_save_load_round_trip(tmp_path: Path) -> None:
    counts = _simulated(TRUE_RATES, 300, seed=3)
    drawn = beta_binomial_posterior(counts, 500, seed=2)
    diagnostics = Diagnostics("nutpie", math.nan, 123.4, 2, 1.5, ["2 divergent transitions"])
    posterior = Posterior(PERSONAS, CAMPAIGNS, drawn.draws, diagnostics)
    save_posterior(posterior, tmp_path / "run")
    loaded = load_posterior(tmp_path / "run")
    np.testing.assert_array_equal(loaded.draws, posterior.draws)
    assert (loaded.persona_ids, loaded.campaign_ids) == (PERSONAS, CAMPAIGNS)
    assert math.isnan(loaded.diagnostics.rhat_max)
    assert loaded.diagnostics.warnings == diagnostics.warnings
    assert (loaded.diagnostics.sampler, loaded.diagnostics.divergences) == ("nutpie", 2)
    summary = pd.read_csv(tmp_path / "run" / "posterior_summary.csv")
    assert list(summary.columns) == ["persona_id", "campaign_id", "mean", "p_low", "p_high", "sd"]
    assert len(summary) == 9
    np.testing.assert_allclose(summary["mean"], posterior.mean().ravel(), rtol=1e-5)
    with pytest.raises(DataError, match="not found"):
        load_posterior(tmp_path / "missing")


@pytest.mark.slow
def test_pymc_sampler_recovers_known_rates() -> None:
    counts = _simulated(TRUE_RATES, 2000, seed=11)
    config = InferenceConfig(nuts_sampler="pymc", draws=300, tune=300, chains=2)
    posterior = fit_posterior(counts, config, seed=3)
    assert posterior.diagnostics.sampler == "pymc"
    assert posterior.draws.shape == (600, 3, 3)
    np.testing.assert_allclose(posterior.mean(), TRUE_RATES, atol=0.02)
