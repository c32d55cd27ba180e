"""Closing the loop: persona traits re-parameterized from a posterior.

The simulation's response is ``organic + (1 - organic) * sigmoid(z)`` with
``z = logit(propensity[channel]) + affinity[campaign] + price_sensitivity * discount``.
Given posterior draws of each persona x campaign response rate, this module solves for the
traits that make a freshly built simulation reproduce those rates in its first week, with the
posterior's spread carried into the trait distributions.
"""

from __future__ import annotations

import logging

import numpy as np

from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta, Normal
from personasim.config.persona import Persona
from personasim.core.numeric import logit, sigmoid
from personasim.core.types import Posterior

logger = logging.getLogger(__name__)

_FLOOR = 1e-4


def calibrate_personas(
    personas: list[Persona], posterior: Posterior, campaigns: list[Campaign]
) -> list[Persona]:
    """Return copies of ``personas`` whose traits reproduce the posterior response rates.

    Per persona: ``organic`` comes from the control column (when there is one); each
    channel's ``propensity`` is a Beta matched to the draws of the channel's mean stimulus
    probability; each campaign's ``affinity`` is a Normal on the logit gap between the campaign
    and its channel, net of the persona's mean price sensitivity times the campaign discount.
    Price sensitivity, fatigue and susceptibility keep their prior distributions.

    Parameters
    ----------
    personas
        The prior personas (not modified).
    posterior
        Posterior draws of P(response), persona x campaign.
    campaigns
        The campaigns, for channel, discount and control.

    Returns
    -------
    list[Persona]
        Calibrated deep copies, in the order given; personas absent from the posterior are
        copied unchanged (with a warning).
    """
    column = {cid: k for k, cid in enumerate(posterior.campaign_ids)}
    control = next((c for c in campaigns if c.control), None)
    sendable = [c for c in campaigns if not c.control and c.id in column]
    row = {pid: j for j, pid in enumerate(posterior.persona_ids)}
    draws = posterior.draws.astype(np.float64)
    calibrated: list[Persona] = []
    for persona in personas:
        j = row.get(persona.id)
        if j is None:
            logger.warning("persona %r is not in the posterior; traits unchanged", persona.id)
            calibrated.append(persona.model_copy(deep=True))
            continue
        traits = persona.traits
        if control is not None and control.id in column:
            organic_draws = draws[:, j, column[control.id]]
            organic = Beta.from_moments(organic_draws.mean(), organic_draws.var())
        else:
            organic = traits.organic
            organic_draws = np.full(draws.shape[0], organic.mean())
        price = traits.price_sensitivity.mean()
        stimulus: dict[str, np.ndarray] = {}
        for campaign in sendable:
            p = draws[:, j, column[campaign.id]]
            q = (p - organic_draws) / np.maximum(1 - organic_draws, _FLOOR)
            stimulus[campaign.id] = logit(q, _FLOOR) - price * campaign.discount
        propensity = dict(traits.propensity)
        affinity = dict(traits.affinity)
        for channel in sorted({c.channel for c in sendable}):
            members = [c.id for c in sendable if c.channel == channel]
            channel_z = np.stack([stimulus[cid] for cid in members])
            channel_p = sigmoid(channel_z).mean(axis=0)
            propensity[channel] = Beta.from_moments(channel_p.mean(), channel_p.var())
            base = logit(np.full(1, propensity[channel].mean()), _FLOOR)[0]
            for cid, z in zip(members, channel_z, strict=True):
                affinity[cid] = Normal(mu=float(z.mean() - base), sd=float(z.std()))
        new_traits = traits.model_copy(
            update={"propensity": propensity, "affinity": affinity, "organic": organic}, deep=True
        )
        calibrated.append(persona.model_copy(update={"traits": new_traits}, deep=True))
    return calibrated
