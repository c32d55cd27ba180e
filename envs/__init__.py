"""Gymnasium environments over the campaign simulation."""

from __future__ import annotations

import gymnasium

from personasim.behaviour.network import GraphCache
from personasim.envs.campaign_env import (
    FATIGUE_OBS_MAX,
    MAX_FLAT_ACTIONS,
    OBS_FEATURES,
    CampaignEnv,
    FlatActionWrapper,
)
from personasim.envs.factory import make_campaign_env

ENV_ID = "personasim/Campaign-v0"
"""Gymnasium id of :class:`CampaignEnv`, made by :func:`make_campaign_env`.

``gymnasium.make(ENV_ID)`` builds the quickstart scenario shipped with the package;
``gymnasium.make(ENV_ID, config=...)`` a config file, a loaded config or a finished run.
"""

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="personasim.envs.factory:make_campaign_env")

__all__ = [
    "ENV_ID",
    "FATIGUE_OBS_MAX",
    "MAX_FLAT_ACTIONS",
    "OBS_FEATURES",
    "CampaignEnv",
    "FlatActionWrapper",
    "GraphCache",
    "make_campaign_env",
]
