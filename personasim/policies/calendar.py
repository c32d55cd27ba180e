"""A policy as a campaign calendar: which campaign each persona gets each week.

A trained policy reacts to the state of the audience, so its calendar is read off simulated
episodes: every cell is the campaign the policy chose most often for that persona in that
week over the evaluation seeds, with the share of episodes that agree.
``policy_calendar.csv`` is that grid (personas down, weeks across, campaign ids in the cells;
the run's ``calendar.csv`` is the plan's, which a campaign team sends from);
``calendar_detail.csv`` has one row per policy x persona x week with the agreement, the
recipients reached, the spend and the external events of the week.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from personasim.core.types import NO_SEND_ID
from personasim.envs.campaign_env import CampaignEnv
from personasim.policies.baselines import Policy

logger = logging.getLogger(__name__)

"""Cell value for a week in which the persona is sent nothing."""

DETAIL_COLUMNS = ("policy", "persona_id", "week", "campaign_id", "agreement", "recipients",
                  "spend", "events")
"""Columns of :func:`campaign_calendar`."""


def _rollouts(
    env_factory: Callable[[], gym.Env[Any, Any]], policy: Policy, seeds: Sequence[int]
) -> tuple[CampaignEnv, np.ndarray, np.ndarray, np.ndarray]:
    """Actions, recipients and spend, each ``(n_seeds, horizon, n_personas)``.

    Weeks after an episode ended (budget exhausted) count as sending nothing.
    """
    env = env_factory()
    base = env.unwrapped
    if not isinstance(base, CampaignEnv):
        raise TypeError(f"expected a CampaignEnv, got {type(base).__name__}")
    shape = (len(seeds), base.horizon, base.n_personas)
    actions = np.zeros(shape, dtype=np.int64)
    recipients = np.zeros(shape, dtype=np.float64)
    spend = np.zeros(shape, dtype=np.float64)
    try:
        for i, seed in enumerate(seeds):
            policy.reset(int(seed))
            obs, _ = env.reset(seed=int(seed))
            for week in range(base.horizon):
                action = np.asarray(policy.act(obs, base), dtype=np.int64).reshape(-1)
                obs, _, terminated, truncated, info = env.step(action)
                policy.observe(action, info)
                actions[i, week] = action
                recipients[i, week] = info["sends"]
                spend[i, week] = np.asarray(info["sends"]) * base.action_cost[action]
                if terminated or truncated:
                    break
    finally:
        env.close()
    return base, actions, recipients, spend


def _events(base: CampaignEnv, persona_id: str, week: int) -> str:
    """Names of the external events that touch ``persona_id`` in ``week`` (``;``-joined)."""
    return ";".join(e.name for e in base.events if e.start_week <= week <= e.end_week
                    and (e.personas is None or persona_id in e.personas))


def campaign_calendar(
    env_factory: Callable[[], gym.Env[Any, Any]],
    policy: Policy,
    seeds: Sequence[int],
    name: str,
) -> pd.DataFrame:
    """The calendar of ``policy``: modal campaign per persona and week over ``seeds``.

    Parameters
    ----------
    env_factory
        Builds the campaign environment.
    policy
        The policy to read (deterministic policies give agreement 1 where the audience
        state does not change their mind).
    seeds
        Evaluation seeds, one simulated episode each.
    name
        Written in the ``policy`` column.

    Returns
    -------
    pd.DataFrame
        :data:`DETAIL_COLUMNS`, one row per persona x week, sorted by persona then week.
        ``agreement`` is the share of episodes choosing ``campaign_id``; ``recipients`` and
        ``spend`` are means over the episodes.
    """
    if not seeds:
        raise ValueError("a calendar needs at least one seed")
    base, actions, recipients, spend = _rollouts(env_factory, policy, seeds)
    persona_ids = [p.id for p in base.personas]
    rows: list[dict[str, Any]] = []
    for j, persona_id in enumerate(persona_ids):
        for week in range(base.horizon):
            counts = np.bincount(actions[:, week, j], minlength=base.n_actions)
            modal = int(np.argmax(counts))
            campaign = base.action_campaign_ids[modal]
            rows.append({
                "policy": name,
                "persona_id": persona_id,
                "week": week + 1,
                "campaign_id": campaign if campaign is not None else NO_SEND_ID,
                "agreement": float(counts[modal] / len(seeds)),
                "recipients": float(recipients[:, week, j].mean()),
                "spend": float(spend[:, week, j].mean()),
                "events": _events(base, persona_id, week + 1),
            })
    logger.info("calendar of %s over %d episodes", name, len(seeds))
    return pd.DataFrame(rows, columns=list(DETAIL_COLUMNS))


def calendar_grid(detail: pd.DataFrame) -> pd.DataFrame:
    """The campaign team's view: ``persona_id, week_1, ..., week_H`` with campaign ids.

    ``detail`` holds one policy's rows of :func:`campaign_calendar`; personas keep its order.
    """
    if detail["policy"].nunique() > 1:
        raise ValueError("calendar_grid needs the rows of one policy")
    personas = list(dict.fromkeys(detail["persona_id"]))
    grid = detail.pivot(index="persona_id", columns="week", values="campaign_id")
    grid = grid.reindex(personas)
    grid.columns = [f"week_{int(w)}" for w in grid.columns]
    return grid.reset_index()
