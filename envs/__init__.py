"""Gymnasium environments over the campaign simulation."""

from __future__ import annotations

import gymnasium

from personasim.envs.campaign_env import (
    FATIGUE_OBS_MAX,
    MAX_FLAT_ACTIONS,
    OBS_FEATURES,
    CampaignEnv,
    FlatActionWrapper,
)

ENV_ID = "personasim/Campaign-v0"
"""Gymnasium id of :class:`CampaignEnv`."""

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="personasim.envs.campaign_env:CampaignEnv")

__all__ = [
    "ENV_ID",
    "FATIGUE_OBS_MAX",
    "MAX_FLAT_ACTIONS",
    "OBS_FEATURES",
    "CampaignEnv",
    "FlatActionWrapper",
]
