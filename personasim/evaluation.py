"""Evaluate policies on the campaign environment with common random numbers.

Every policy plays one full episode per seed, and every policy sees the same seeds, so the
simulated audiences (and their random draws, as far as the actions agree) are shared and
differences between policies are not drowned in between-seed noise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from scipy import stats

from personasim.envs.campaign_env import CampaignEnv
from personasim.policies import Policy

logger = logging.getLogger(__name__)

EPISODE_COLUMNS = ("policy", "seed", "return", "weeks")
SUMMARY_COLUMNS = ("policy", "mean_return", "ci_low", "ci_high", "n_episodes")
STEP_COLUMNS = ("policy", "seed", "week", "sends", "responses", "reward")


def run_episode(
    env: gym.Env[Any, Any], policy: Policy, seed: int
) -> tuple[float, list[dict[str, Any]]]:
    """Play one episode of ``policy`` on ``env`` reset with ``seed``.

    Returns
    -------
    tuple[float, list[dict]]
        The return in dollars (sum of ``info["reward_dollars"]``) and one record per week
        with ``week, sends, responses, reward`` (totals over personas; reward in dollars).
    """
    base = env.unwrapped
    if not isinstance(base, CampaignEnv):
        raise TypeError(f"expected a CampaignEnv, got {type(base).__name__}")
    policy.reset(seed)
    obs, _ = env.reset(seed=seed)
    total = 0.0
    steps: list[dict[str, Any]] = []
    done = False
    while not done:
        action = np.asarray(policy.act(obs, base), dtype=np.int64)
        obs, _, terminated, truncated, info = env.step(action)
        policy.observe(action, info)
        dollars = float(info["reward_dollars"])
        total += dollars
        steps.append({
            "week": int(info["week"]),
            "sends": int(np.sum(info["sends"])),
            "responses": int(np.sum(info["responses"])),
            "reward": dollars,
        })
        done = bool(terminated or truncated)
    return total, steps


def run_episodes(
    env_factory: Callable[[], gym.Env[Any, Any]],
    policies: Mapping[str, Policy],
    seeds: Sequence[int],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Play every policy for one episode per seed.

    Each policy gets its own environment from ``env_factory``; ``reset(seed=...)`` rebuilds
    the whole simulation, so every episode starts from the same state for every policy.

    Returns
    -------
    tuple[pd.DataFrame, pd.DataFrame]
        Per-episode returns (:data:`EPISODE_COLUMNS`) and per-week metrics
        (:data:`STEP_COLUMNS`).
    """
    episodes: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for name, policy in policies.items():
        env = env_factory()
        try:
            for seed in seeds:
                total, records = run_episode(env, policy, int(seed))
                episodes.append(
                    {"policy": name, "seed": int(seed), "return": total, "weeks": len(records)}
                )
                steps.extend({"policy": name, "seed": int(seed), **r} for r in records)
        finally:
            env.close()
        logger.info("evaluated %s on %d seeds", name, len(seeds))
    episode_frame = pd.DataFrame(episodes, columns=list(EPISODE_COLUMNS))
    step_frame = pd.DataFrame(steps, columns=list(STEP_COLUMNS))
    return episode_frame, step_frame


def summarize(episodes: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Mean return per policy with a Student-t confidence interval.

    The interval is ``mean +/- t(level, n - 1) * sd / sqrt(n)``; with one episode it is NaN.
    Policies keep their order of first appearance.
    """
    rows: list[dict[str, Any]] = []
    for name, group in episodes.groupby("policy", sort=False):
        values = group["return"].to_numpy(dtype=np.float64)
        n = values.size
        mean = float(values.mean()) if n else float("nan")
        if n >= 2:
            half = float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / np.sqrt(n))
            low, high = mean - half, mean + half
        else:
            low = high = float("nan")
        rows.append(
            {"policy": name, "mean_return": mean, "ci_low": low, "ci_high": high, "n_episodes": n}
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def evaluate_policies(
    env_factory: Callable[[], gym.Env[Any, Any]],
    policies: Mapping[str, Policy],
    seeds: list[int],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate policies on common seeds.

    Returns
    -------
    tuple[pd.DataFrame, pd.DataFrame]
        Per-episode returns in dollars (``policy, seed, return, weeks``) and the summary
        (``policy, mean_return, ci_low, ci_high, n_episodes``, 95% Student-t interval).
        For per-week metrics use :func:`run_episodes`, which this wraps.
    """
    episodes, _ = run_episodes(env_factory, policies, seeds)
    return episodes, summarize(episodes)
