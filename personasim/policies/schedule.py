"""Play a per-recipient message schedule in the simulation.

A persona-level policy picks one campaign per persona and week; a plan picks, per recipient,
which campaign (if any) goes out in which week. :func:`play_schedule` runs such a schedule in
the environment's Mesa model, recipient by recipient, on the same seeds (and so the same
simulated audiences) that the policies are evaluated on, so the returns compare directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from personasim.core.types import CAMPAIGN_ID, NO_SEND, RECIPIENT_ID
from personasim.envs.campaign_env import CampaignEnv

logger = logging.getLogger(__name__)

EnvFactory = Callable[[], gym.Env[Any, Any]]
#: Columns of :func:`play_schedule`'s result.
EPISODE_COLUMNS = ("seed", "return", "spend", "messages")


def _indices(env: CampaignEnv, schedule: pd.DataFrame, recipient_ids: Sequence[str]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Population positions, weeks and model campaign indices of the schedule's messages."""
    if len(recipient_ids) != env.n_recipients:
        raise ValueError(f"the schedule's audience has {len(recipient_ids)} recipients, the "
                         f"simulation {env.n_recipients}")
    position = pd.Index(list(recipient_ids)).get_indexer(schedule[RECIPIENT_ID].astype(str))
    campaign = pd.Index(list(env.campaigns.ids)).get_indexer(schedule[CAMPAIGN_ID])
    if np.any(position < 0) or np.any(campaign < 0):
        raise ValueError("the schedule names recipients or campaigns the simulation lacks")
    week = schedule["week"].to_numpy(dtype=np.int64)
    if np.any(week < 1) or np.any(week > env.horizon):
        raise ValueError(f"the schedule has weeks outside 1..{env.horizon}")
    if pd.DataFrame({"r": position, "w": week}).duplicated().any():
        raise ValueError("the simulation sends one message per recipient and week")
    return position, week, campaign


def play_schedule(env_factory: EnvFactory, schedule: pd.DataFrame,
                  recipient_ids: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """Run ``schedule`` in a fresh simulation per seed; the return of each episode.

    Parameters
    ----------
    env_factory : EnvFactory
        Makes the campaign environment (its ``reset(seed=)`` builds the simulation).
    schedule : pd.DataFrame
        ``recipient_id, week, campaign_id`` rows, at most one per recipient and week.
    recipient_ids : Sequence[str]
        The simulated audience's ids in population order (persona cohorts in order).
    seeds : Sequence[int]
        One episode per seed.

    Returns
    -------
    pd.DataFrame
        :data:`EPISODE_COLUMNS`: the return (value of responses minus cost, dollars), the
        spend and the messages sent, per seed.
    """
    env = env_factory()
    base = env.unwrapped
    if not isinstance(base, CampaignEnv):
        raise TypeError(f"expected a CampaignEnv, got {type(base).__name__}")
    position, week, campaign = _indices(base, schedule, recipient_ids)
    offsets = np.concatenate([[0], np.cumsum(base.sizes)])
    cohort = np.searchsorted(offsets, position, side="right") - 1
    local = position - offsets[cohort]
    rows = []
    try:
        for seed in seeds:
            env.reset(seed=int(seed))
            model = base.model
            assert model is not None
            total = spend = 0.0
            for w in range(1, base.horizon + 1):
                assignment: list[int | np.ndarray] = []
                now = week == w
                for j, size in enumerate(base.sizes):
                    mine = now & (cohort == j)
                    if not mine.any():
                        assignment.append(NO_SEND)
                        continue
                    chosen = np.full(size, NO_SEND, dtype=np.int64)
                    chosen[local[mine]] = campaign[mine]
                    assignment.append(chosen)
                outcome = model.send_assignment(assignment)
                total += outcome.reward
                spend += outcome.cost
            rows.append({"seed": int(seed), "return": total, "spend": spend,
                         "messages": len(schedule)})
    finally:
        env.close()
    return pd.DataFrame(rows, columns=list(EPISODE_COLUMNS))
