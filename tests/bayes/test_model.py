"""The hierarchical model's structure: features, compiled-model reuse, ADVI, covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from personasim.bayes import sampling
from personasim.bayes.cells import grid_inputs, standardize_features
from personasim.bayes.covariates import covariate_inputs, persona_average, select_covariates
from personasim.bayes.estimators import fit_model
from personasim.bayes.model import centering
from personasim.bayes.priors import PriorGrid
from personasim.config.sections import InferenceConfig
from personasim.core.errors import DataError
from personasim.core.types import ABCounts

SMALL = InferenceConfig(draws=300, tune=300, chains=2)


def test_features_drop_constant_and_collinear_columns() -> None:
    raw = np.array([[0.1, 1.0, 0.2, 5.0], [0.2, 1.0, 0.4, 3.0], [0.3, 1.0, 0.6, 1.0],
                    [0.0, 1.0, 0.0, 2.0], [0.3, 1.0, 0.6, 0.0]])
    features, names = standardize_features(raw, ("a", "const", "twice_a", "b"))
    assert names == ("a", "b")
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(features.std(axis=0), 1.0)
    assert standardize_features(raw[:3], ("a", "const", "twice_a", "b"))[1] == ("a",)  # K - 2


def test_centering_follows_the_data() -> None:
    exposures = np.array([[5000, 5000, 0], [5000, 3, 0]])
    counts = ABCounts(("p0", "p1"), ("c0", "c1", "c2"), exposures,
                      np.round(exposures * np.array([0.05, 0.2, 0.1])).astype(np.int64))
    lam = centering(grid_inputs(counts, prior_scale=1.0))["lam_cell"]
    assert ((lam >= 0) & (lam <= 1)).all()
    assert lam[0, 0] > 0.9 and lam[1, 1] < 0.2 and lam[0, 2] == 0.0


def _feature_world(seed: int, rich: float) -> ABCounts:
    """Rates rise with the discount; campaigns c3 (rich discount) and c4 (none) are unseen."""
    discount = np.array([0.0, rich, 0.1, 0.3, 0.0])
    logit = -3.0 + 6.0 * discount + np.array([[0.0], [0.3], [-0.2]])
    rates = 1.0 / (1.0 + np.exp(-logit))
    exposures = np.full(rates.shape, 3000, dtype=np.int64)
    exposures[:, 3:] = 0
    responses = np.random.default_rng(seed).binomial(exposures, rates)
    return ABCounts(("p0", "p1", "p2"), tuple(f"c{k}" for k in range(5)), exposures, responses)


FEATURES = np.array([[0.0], [0.3], [0.1], [0.3], [0.0]])


def test_unseen_campaign_is_predicted_from_its_features_and_reuses_the_model() -> None:
    if not sampling.nutpie_available():
        pytest.skip("nutpie is not installed")
    cache = sampling.CompiledModelCache()
    counts = _feature_world(0, 0.3)
    inputs = grid_inputs(counts, np.full((3, 5), 0.1), 1.0, FEATURES, ("discount",))
    first = fit_model(inputs, SMALL, seed=1, cache=cache)
    assert first.diagnostics.compile_seconds > 0 and len(cache) == 1
    mean = first.mean()
    assert (mean[:, 3] > 2 * mean[:, 4]).all(), mean  # rich discount, like c1, beats none
    assert mean[:, 3] == pytest.approx(counts.rates[:, 1], rel=0.35)
    # new data of the same shape: the compiled model is reused and the answer moves
    again = grid_inputs(_feature_world(1, 0.2), np.full((3, 5), 0.1), 1.0, FEATURES,
                        ("discount",))
    second = fit_model(again, SMALL, seed=1, cache=cache)
    assert second.diagnostics.compile_seconds == 0.0 and len(cache) == 1
    assert (second.mean()[:, 1] < mean[:, 1]).all()


def test_advi_fits_a_large_model_approximately() -> None:
    counts = _feature_world(2, 0.3)
    seen = ABCounts(counts.persona_ids[:3], counts.campaign_ids[:3], counts.exposures[:, :3],
                    counts.responses[:, :3])
    config = SMALL.model_copy(update={"algorithm": "advi", "advi_iterations": 4000})
    post = fit_model(grid_inputs(seen, np.full((3, 3), 0.1), 1.0), config, seed=0)
    assert post.diagnostics.sampler == "advi"
    assert post.draws.shape == (600, 3, 3)
    np.testing.assert_allclose(post.mean(), seen.rates, atol=0.03)  # mean-field: approximate
    auto = SMALL.model_copy(update={"advi_above_cells": 4})
    assert sampling.resolve_algorithm(auto, grid_inputs(seen)) == "advi"
    assert sampling.resolve_algorithm(SMALL, grid_inputs(seen)) == "nuts"


def _covariate_table(seed: int, n: int = 6000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Outcomes depend on ``signal`` (campaign-specific slope), not on ``noise``."""
    rng = np.random.default_rng(seed)
    recipients = pd.DataFrame({
        "recipient_id": [f"r{i}" for i in range(n)],
        "signal": rng.normal(0, 1, n), "noise": rng.normal(0, 1, n),
        "flag": rng.random(n) < 0.5, "label": "x",
    })
    persona = rng.integers(0, 2, n)
    campaign = rng.integers(0, 2, n)
    slope = np.where(campaign == 1, 0.8, -0.4)
    p = 1.0 / (1.0 + np.exp(-(-2.5 + 0.3 * persona + slope * recipients["signal"])))
    table = pd.DataFrame({
        "recipient_id": recipients["recipient_id"],
        "persona_id": np.array(["a", "b"])[persona],
        "campaign_id": np.array(["x", "y"])[campaign],
        "outcome": (rng.random(n) < p).astype(np.int8),
    })
    return table, recipients


def test_covariates_enter_only_with_signal() -> None:
    table, recipients = _covariate_table(0)
    spec = select_covariates(table, recipients, None, 4, alpha=0.01)
    assert spec is not None and spec.names == ("signal",)  # text columns are never candidates
    everything = select_covariates(table, recipients, None, 4, alpha=1.0)
    assert everything is not None and set(everything.names) == {"signal", "noise", "flag"}
    with pytest.raises(DataError, match="'income'"):
        select_covariates(table, recipients, ["income"], 4)


def test_covariate_cells_keep_every_row() -> None:
    table, recipients = _covariate_table(1)
    spec = select_covariates(table, recipients, ["signal", "noise"], 4, alpha=1.0)
    assert spec is not None
    prior = PriorGrid(("a", "b"), ("x", "y"), np.full((2, 2), 0.08), np.ones((2, 2)))
    inputs, group_x, group_weight, centers = covariate_inputs(
        table, recipients, spec, prior, np.zeros((2, 0)), (), n_bins=4)
    inputs.validate()
    assert inputs.exposures.sum() == len(table)
    assert inputs.responses.sum() == table["outcome"].sum()
    assert inputs.exposures.size <= 2 * 2 * 4 * 4
    np.testing.assert_allclose(group_weight.sum(axis=1), 1.0)
    for j in range(2):  # covariates are centred within each persona
        mine = inputs.persona == j
        weighted = (inputs.covariates[mine] * inputs.exposures[mine, None]).sum(axis=0)
        np.testing.assert_allclose(weighted / inputs.exposures[mine].sum(), 0.0, atol=1e-9)
    eta = np.full((5, 2, 2), -2.0, dtype=np.float32)
    flat = persona_average(eta, np.zeros((5, 2, 2), dtype=np.float32), group_x, group_weight)
    np.testing.assert_allclose(flat, 1.0 / (1.0 + np.exp(2.0)), rtol=1e-6)
    assert centers.shape == (2, 2)
