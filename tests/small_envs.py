"""Small, fast campaign environments shared by the policy, training and resume tests."""

from __future__ import annotations

from collections.abc import Callable

from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta, Constant
from personasim.config.persona import Persona, PersonaTraits
from personasim.config.sections import (
    DynamicsConfig,
    FatigueConfig,
    InfluenceConfig,
    SimulationConfig,
)
from personasim.envs import CampaignEnv


def channel_traits(email: float, sms: float, fatigue: float = 0.4) -> PersonaTraits:
    """Fixed traits: these e-mail and SMS propensities, no price or word-of-mouth effect."""
    return PersonaTraits(
        propensity={"email": Constant(value=email), "sms": Constant(value=sms)},
        price_sensitivity=Constant(value=0.0),
        fatigue_rate=Constant(value=fatigue),
        susceptibility=Constant(value=0.0),
        organic=Constant(value=0.005),
    )


def channel_campaigns() -> list[Campaign]:
    """A holdout, an e-mail and an SMS campaign."""
    return [
        Campaign(id="holdout", control=True),
        Campaign(id="email", channel="email", cost=0.05, value=2.0),
        Campaign(id="sms", channel="sms", cost=0.1, value=3.0),
    ]


def make_env(horizon: int = 6, fatigue: bool = True) -> CampaignEnv:
    """Three personas (e-mail, SMS and mixed responders) and :func:`channel_campaigns`."""
    personas = [
        Persona(id="emailers", traits=channel_traits(email=0.3, sms=0.02)),
        Persona(id="texters", traits=channel_traits(email=0.02, sms=0.25)),
        Persona(
            id="mixed",
            traits=PersonaTraits(propensity={"default": Beta(a=2, b=30)},
                                 organic=Constant(value=0.005)),
        ),
    ]
    dynamics = DynamicsConfig(
        fatigue=FatigueConfig(enabled=fatigue), influence=InfluenceConfig(enabled=False)
    )
    return CampaignEnv(
        personas, [300, 300, 400], channel_campaigns(), SimulationConfig(horizon=horizon),
        dynamics,
    )


def tiny_env_factory(n_personas: int = 2, n_campaigns: int = 2) -> Callable[[], CampaignEnv]:
    """A factory of 6-week environments with 150 recipients per persona and no control."""

    def build() -> CampaignEnv:
        personas = [
            Persona(
                id=f"p{j}",
                traits=PersonaTraits(
                    propensity={"default": Beta(a=2 + j, b=20)},
                    organic=Constant(value=0.01),
                ),
            )
            for j in range(n_personas)
        ]
        campaigns = [
            Campaign(id=f"c{k}", cost=0.02 * (k + 1), value=1.0 + k) for k in range(n_campaigns)
        ]
        dynamics = DynamicsConfig(influence=InfluenceConfig(enabled=False))
        return CampaignEnv(
            personas, [150] * n_personas, campaigns, SimulationConfig(horizon=6), dynamics
        )

    return build
