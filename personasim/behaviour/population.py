"""Population: sample each persona's cohort of recipients from its trait distributions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from personasim.config.campaign import CampaignArrays
from personasim.config.persona import Persona
from personasim.core.numeric import logit32, sigmoid32


@dataclass
class CohortTraits:
    """Per-recipient traits of one cohort, all float32 arrays.

    Attributes
    ----------
    base_logit
        ``(n, n_campaigns)``: logit of the channel propensity plus the campaign affinity.
    price_sensitivity, fatigue_rate, susceptibility, organic
        ``(n,)`` each.
    """

    base_logit: np.ndarray
    price_sensitivity: np.ndarray
    fatigue_rate: np.ndarray
    susceptibility: np.ndarray
    organic: np.ndarray

    @property
    def n(self) -> int:
        """Number of recipients in the cohort."""
        return int(self.price_sensitivity.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return sum(
            a.nbytes
            for a in (
                self.base_logit,
                self.price_sensitivity,
                self.fatigue_rate,
                self.susceptibility,
                self.organic,
            )
        )


def sample_cohort(
    persona: Persona, n: int, campaigns: CampaignArrays, rng: np.random.Generator
) -> CohortTraits:
    """Draw ``n`` recipients' traits from ``persona``'s distributions.

    Each channel's propensity is drawn once per recipient and shared by that channel's
    campaigns; each campaign's affinity adds a logit offset on top.
    """
    traits = persona.traits
    base = np.zeros((n, campaigns.n), dtype=np.float32)
    channel_logits: dict[str, np.ndarray] = {}
    for k, channel in enumerate(campaigns.channels):
        if k == campaigns.control_index:
            continue
        if channel not in channel_logits:
            channel_logits[channel] = logit32(traits.propensity_for(channel).sample(rng, n))
        base[:, k] = channel_logits[channel]
        affinity = traits.affinity.get(campaigns.ids[k])
        if affinity is not None:
            base[:, k] += affinity.sample(rng, n)
    return CohortTraits(
        base_logit=base,
        price_sensitivity=np.maximum(traits.price_sensitivity.sample(rng, n), 0),
        fatigue_rate=np.maximum(traits.fatigue_rate.sample(rng, n), 0),
        susceptibility=np.clip(traits.susceptibility.sample(rng, n), 0, None),
        organic=np.clip(traits.organic.sample(rng, n), 0, 1),
    )


def expected_rates(
    persona: Persona, campaigns: CampaignArrays, n: int = 4000, seed: int = 0
) -> np.ndarray:
    """A persona's expected week-one response rate per campaign (control: the organic rate).

    A Monte-Carlo average over ``n`` recipients drawn with a fixed ``seed``, so it is
    deterministic; used as prior knowledge by the Bayesian update.
    """
    traits = sample_cohort(persona, n, campaigns, np.random.default_rng(seed))
    z = traits.base_logit + traits.price_sensitivity[:, None] * campaigns.discount[None, :]
    p = traits.organic[:, None] + (1 - traits.organic[:, None]) * sigmoid32(z)
    rates = p.mean(axis=0).astype(np.float64)
    if campaigns.control_index is not None:
        rates[campaigns.control_index] = float(traits.organic.mean())
    return rates
