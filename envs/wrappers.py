"""Wrappers used when training on :class:`~personasim.envs.campaign_env.CampaignEnv`."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym


class SeasonEndWrapper(gym.Wrapper[Any, Any, Any, Any]):
    """Report the end of the season (truncation at the horizon) as termination.

    The campaign season's end is part of the task (the observation counts the weeks left),
    so a learner must not bootstrap a value past it. The environment itself follows the
    Gymnasium convention and reports the horizon as ``truncated``; training wraps it in this.
    """

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the wrapped env; a truncation becomes a termination."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, bool(terminated or truncated), False, info
