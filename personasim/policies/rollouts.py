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
from personasim.policies.baselines import Policy

logger = logging.getLogger(__name__)

EPISODE_COLUMNS = ("policy", "seed", "return", "weeks")
SUMMARY_COLUMNS = ("policy", "mean_return", "ci_low", "ci_high", "n_episodes")
PROTOCOL_COLUMNS = ("policy", "mean_return", "ci_low", "ci_high", "relative_to_myopic_oracle",
                    "n_training_seeds", "n_episodes")
"""Columns of :func:`summarize_protocol` (``evaluation.csv``); the first five are fixed."""
REFERENCE_POLICY = "myopic_oracle"
"""The policy every mean return is divided by in ``relative_to_myopic_oracle``."""
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


def protocol_interval(returns: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean return and confidence interval over training seeds and evaluation seeds.

    Parameters
    ----------
    returns
        ``(n_training_seeds, n_eval_seeds)``: every trained model on every evaluation seed
        (one row for a policy that is not trained).
    level
        Confidence level.

    Returns
    -------
    tuple[float, float, float]
        ``(mean, low, high)``.

    Notes
    -----
    With one row this is the Student-t interval over episodes (as :func:`summarize`). With
    ``K`` training seeds and ``N`` shared evaluation seeds, the grand mean's variance is
    estimated as ``var(row means) / K + var(column means) / N``: the first term carries the
    spread between training runs, the second the spread between simulated audiences (their
    interaction is counted in both, so the interval is slightly conservative). Its degrees of
    freedom follow Welch-Satterthwaite.
    """
    values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 2 or values.size == 0:
        raise ValueError(f"expected a non-empty (training seeds, eval seeds) grid, got "
                         f"shape {values.shape}")
    k, n = values.shape
    mean = float(values.mean())
    if k == 1:
        if n < 2:
            return mean, float("nan"), float("nan")
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / np.sqrt(n))
        return mean, mean - half, mean + half
    between_runs = float(values.mean(axis=1).var(ddof=1)) / k
    between_audiences = float(values.mean(axis=0).var(ddof=1)) / n if n > 1 else 0.0
    variance = between_runs + between_audiences
    if variance <= 0:
        return mean, mean, mean
    denominator = between_runs**2 / (k - 1)
    if n > 1:
        denominator += between_audiences**2 / (n - 1)
    dof = variance**2 / denominator
    half = float(stats.t.ppf(0.5 + level / 2, dof) * np.sqrt(variance))
    return mean, mean - half, mean + half


def summarize_protocol(
    episodes: pd.DataFrame, level: float = 0.95, reference: str = REFERENCE_POLICY
) -> pd.DataFrame:
    """One row per policy: mean return, interval (:func:`protocol_interval`), vs the oracle.

    Parameters
    ----------
    episodes
        ``policy, training_seed, seed, return``; ``training_seed`` is NaN for policies that
        are not trained. Every training seed of a policy must cover the same evaluation seeds.
    level
        Confidence level.
    reference
        ``relative_to_myopic_oracle`` is ``mean_return / mean_return[reference]`` (NaN when
        the reference was not evaluated or its mean is 0).

    Returns
    -------
    pd.DataFrame
        :data:`PROTOCOL_COLUMNS`, policies in order of first appearance;
        ``n_training_seeds`` is 0 for policies that are not trained, ``n_episodes`` counts
        every (model, evaluation seed) episode.
    """
    rows: list[dict[str, Any]] = []
    for name, group in episodes.groupby("policy", sort=False):
        runs = group["training_seed"].fillna(-1)
        grid = group.assign(run=runs).pivot_table(index="run", columns="seed", values="return",
                                                  aggfunc="mean")
        if grid.isna().to_numpy().any():
            raise ValueError(f"policy {name!r}: every training seed needs every evaluation seed")
        mean, low, high = protocol_interval(grid.to_numpy(), level)
        rows.append({"policy": name, "mean_return": mean, "ci_low": low, "ci_high": high,
                     "n_training_seeds": int(group["training_seed"].nunique()),
                     "n_episodes": len(group)})
    summary = pd.DataFrame(rows)
    oracle = summary.loc[summary["policy"] == reference, "mean_return"]
    base = float(oracle.iloc[0]) if len(oracle) else float("nan")
    summary["relative_to_myopic_oracle"] = (summary["mean_return"] / base if base != 0
                                            else float("nan"))
    return summary[list(PROTOCOL_COLUMNS)]
