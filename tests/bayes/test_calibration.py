"""Closing the loop: a simulation rebuilt from calibrated personas reproduces the posterior."""

from __future__ import annotations

import numpy as np
import pytest

from personasim.agents import CampaignModel
from personasim.bayes.calibration import calibrate_personas
from personasim.bayes.estimators import beta_binomial_posterior
from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta, Gamma, Normal
from personasim.config.persona import Persona, PersonaTraits
from personasim.core.types import ABCounts

CAMPAIGNS = [
    Campaign(id="email_a", channel="email", features={"discount": 0.3}),
    Campaign(id="email_b", channel="email"),
    Campaign(id="sms_a", channel="sms", features={"discount": 0.1}),
    Campaign(id="holdout", control=True),
]
RATES = np.array([[0.05, 0.08, 0.12, 0.01], [0.03, 0.06, 0.10, 0.02]])


def _posterior():  # noqa: ANN202
    exposures = np.full(RATES.shape, 20_000, dtype=np.int64)
    responses = np.random.default_rng(9).binomial(exposures, RATES)
    counts = ABCounts(("young", "family"), tuple(c.id for c in CAMPAIGNS), exposures, responses)
    return beta_binomial_posterior(counts, n_draws=2000, seed=1)


def test_rebuilt_simulation_reproduces_posterior_rates() -> None:
    posterior = _posterior()
    personas = [
        Persona(id="young", traits=PersonaTraits(price_sensitivity=Gamma(shape=4, scale=0.5))),
        Persona(id="family", traits=PersonaTraits(propensity={"default": Beta(a=1, b=9)})),
    ]
    calibrated = calibrate_personas(personas, posterior, CAMPAIGNS)
    n = 200_000
    for k in range(len(CAMPAIGNS)):
        model = CampaignModel(calibrated, [n, n], CAMPAIGNS, rng=k)
        outcome = model.send([k, k])
        observed = outcome.responses[:, k] / n
        assert observed == pytest.approx(posterior.mean()[:, k], abs=0.004), CAMPAIGNS[k].id


def test_uncertainty_and_priors_are_carried_over() -> None:
    posterior = _posterior()
    young = Persona(id="young", traits=PersonaTraits(affinity={"sms_a": Normal(mu=2, sd=0)}))
    (calibrated,) = calibrate_personas([young], posterior, CAMPAIGNS)
    traits = calibrated.traits
    assert set(traits.propensity) == {"default", "email", "sms"}
    assert traits.affinity["email_a"].sd > 0  # posterior spread, not a point
    assert traits.affinity["sms_a"].mu == pytest.approx(0.0, abs=0.01)  # lone campaign = channel
    assert traits.organic.mean() == pytest.approx(posterior.mean()[0, 3], abs=1e-4)
    assert traits.price_sensitivity == young.traits.price_sensitivity
    assert young.traits.affinity["sms_a"].mu == 2  # original untouched


def test_persona_missing_from_posterior_is_unchanged() -> None:
    stranger = Persona(id="stranger")
    (copy,) = calibrate_personas([stranger], _posterior(), CAMPAIGNS)
    assert copy == stranger and copy is not stranger
