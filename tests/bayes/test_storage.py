"""The posterior as ArviZ InferenceData: ``posterior.nc`` opens with ``az.from_netcdf``."""

from __future__ import annotations

import math
from pathlib import Path

import arviz as az
import numpy as np

from personasim.bayes.covariates import CovariatePosterior, CovariateSpec
from personasim.bayes.storage import NETCDF_FILE, load_posterior, save_posterior
from personasim.core.types import Diagnostics, Posterior

PERSONAS, CAMPAIGNS = ("young", "old"), ("mail", "sms", "none")


def _draws(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.random(shape).astype(np.float32)


def test_posterior_nc_holds_the_draws_with_named_dims(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    diagnostics = Diagnostics("nutpie", math.nan, 321.0, 1, 2.5, ["1 divergent transition"])
    posterior = Posterior(PERSONAS, CAMPAIGNS, _draws(rng, 40, 2, 3), diagnostics)
    save_posterior(posterior, tmp_path)
    idata = az.from_netcdf(tmp_path / NETCDF_FILE)
    p = idata.posterior["p_response"]
    assert p.dims == ("chain", "draw", "persona", "campaign")
    assert list(p.coords["persona"].values) == list(PERSONAS)
    assert list(p.coords["campaign"].values) == list(CAMPAIGNS)
    np.testing.assert_array_equal(p.values[0], posterior.draws)
    attrs = idata.posterior.attrs
    assert attrs["sampler"] == "nutpie" and int(attrs["divergences"]) == 1
    assert math.isnan(float(attrs["rhat_max"]))
    assert attrs["warnings"] == "1 divergent transition"
    summary = az.summary(idata, var_names=["p_response"], kind="stats")
    assert len(summary) == 6  # the ecosystem reads it as it is
    np.testing.assert_array_equal(load_posterior(tmp_path).draws, posterior.draws)


def test_covariate_posterior_adds_logits_and_slopes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    spec = CovariateSpec(("age", "tenure"), (40.0, 3.0), (10.0, 1.0))
    posterior = CovariatePosterior(
        PERSONAS, CAMPAIGNS, _draws(rng, 30, 2, 3), Diagnostics("pymc", 1.01, 400.0, 0, 1.0),
        _draws(rng, 30, 2, 3), _draws(rng, 30, 3, 2), spec)
    save_posterior(posterior, tmp_path)
    posterior_group = az.from_netcdf(tmp_path / NETCDF_FILE).posterior
    assert posterior_group["gamma"].dims == ("chain", "draw", "campaign", "covariate")
    assert list(posterior_group.coords["covariate"].values) == ["age", "tenure"]
    np.testing.assert_array_equal(posterior_group["eta"].values[0], posterior.eta)
    np.testing.assert_array_equal(posterior_group["gamma"].values[0], posterior.gamma)
