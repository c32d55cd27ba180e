"""Tests for the baseline policies and the evaluation harness."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from small_envs import make_env

from personasim.core.types import ABCounts
from personasim.envs import CampaignEnv
from personasim.policies.baselines import (
    POLICIES,
    ABWinnerPolicy,
    FixedPolicy,
    Policy,
    PolicyContext,
    ab_value_per_send,
    make_policy,
)
from personasim.policies.rollouts import evaluate_policies, run_episodes


def _expected_dollars(env: CampaignEnv, action: tuple[int, ...]) -> float:
    """One-week expected reward of a joint action, straight from the model."""
    assert env.model is not None
    campaigns = env.campaign_indices(np.array(action))
    responders = env.model.expected_response(campaigns.tolist())
    sizes = np.array(env.sizes, dtype=float)
    value = env.campaigns.value[campaigns] * (campaigns >= 0)
    cost = env.campaigns.cost[campaigns] * (campaigns >= 0)
    return float((responders * value - sizes * cost).sum())


def test_registry_lists_the_baselines() -> None:
    for name in ("random", "ab_winner", "thompson", "myopic_oracle", "sb3"):
        assert name in POLICIES
    with pytest.raises(KeyError, match="did you mean 'thompson'"):
        POLICIES.get("thomson")


def test_myopic_oracle_beats_every_fixed_action_this_week() -> None:
    env = make_env()
    obs, _ = env.reset(seed=0)
    oracle = make_policy("myopic_oracle", env)
    warmup = np.array([1, 2, 1])
    for week in range(3):
        action = oracle.act(obs, env)
        best = _expected_dollars(env, tuple(int(a) for a in action))
        for joint in itertools.product(range(env.n_actions), repeat=env.n_personas):
            assert best >= _expected_dollars(env, joint) - 1e-9
        obs, *_ = env.step(warmup if week % 2 == 0 else action)  # build fatigue in between
    assert action[0] == 1 and action[1] == 2  # each persona's own channel


def test_random_policy_is_reproducible_and_valid() -> None:
    env = make_env()
    env.reset(seed=0)
    policy = make_policy("random", env, PolicyContext(seed=4))
    policy.reset(9)
    first = [policy.act(np.zeros(12, np.float32), env) for _ in range(5)]
    policy.reset(9)
    second = [policy.act(np.zeros(12, np.float32), env) for _ in range(5)]
    np.testing.assert_array_equal(first, second)
    assert all(env.action_space.contains(a) for a in first)


def test_thompson_concentrates_on_the_best_campaign() -> None:
    env = make_env(horizon=40, fatigue=False)
    policy = make_policy("thompson", env, PolicyContext(seed=0))
    assert isinstance(policy, Policy)
    policy.reset(3)
    obs, _ = env.reset(seed=3)
    chosen = []
    for _ in range(40):
        action = policy.act(obs, env)
        obs, _, terminated, truncated, info = env.step(action)
        policy.observe(action, info)
        chosen.append(action)
        if terminated or truncated:
            break
    last = np.array(chosen[-10:])
    assert np.mean(last[:, 0] == 1) >= 0.9  # emailers: email
    assert np.mean(last[:, 1] == 2) >= 0.9  # texters: sms


def _ab_counts(rates: dict[str, float], n: int = 1000) -> ABCounts:
    ids = tuple(rates)
    exposures = np.full((2, len(ids)), n // 2, dtype=np.int64)
    responses = np.array([[round(rates[c] * n / 2) for c in ids]] * 2, dtype=np.int64)
    return ABCounts(("p1", "p2"), ids, exposures, responses)


def test_ab_winner_picks_the_highest_value_per_send() -> None:
    env = make_env()
    # email: (0.10 - 0.02) * 2 - 0.05 = 0.11; sms: (0.08 - 0.02) * 3 - 0.1 = 0.08
    counts = _ab_counts({"holdout": 0.02, "email": 0.10, "sms": 0.08})
    values = ab_value_per_send(env, counts)
    assert values[1:] == pytest.approx([0.11, 0.08])
    policy = make_policy("ab_winner", env, PolicyContext(ab_counts=counts))
    assert isinstance(policy, ABWinnerPolicy) and policy.winner == "email"
    env.reset(seed=0)
    assert policy.act(np.zeros(12, np.float32), env).tolist() == [1, 1, 1]
    # without a control column raw rates decide: email 0.08 * 2 - 0.05 = 0.11 < sms 0.17
    raw = _ab_counts({"email": 0.08, "sms": 0.09})
    assert make_policy("ab_winner", env, PolicyContext(ab_counts=raw)).winner == "sms"


def test_ab_winner_sends_nothing_when_no_campaign_pays() -> None:
    env = make_env()
    counts = _ab_counts({"holdout": 0.05, "email": 0.06, "sms": 0.05})
    policy = make_policy("ab_winner", env, PolicyContext(ab_counts=counts))
    env.reset(seed=0)
    assert policy.act(np.zeros(12, np.float32), env).tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="A/B results"):
        make_policy("ab_winner", env, PolicyContext())


def test_evaluation_summary_uses_common_seeds() -> None:
    counts = _ab_counts({"holdout": 0.01, "email": 0.10, "sms": 0.05})
    probe = make_env()
    policies = {
        "random": make_policy("random", probe, PolicyContext(seed=1)),
        "ab_winner": make_policy("ab_winner", probe, PolicyContext(ab_counts=counts)),
        "myopic_oracle": make_policy("myopic_oracle", probe),
        "fixed_a": FixedPolicy(np.array([1, 2, 1])),
        "fixed_b": FixedPolicy(np.array([1, 2, 1])),
    }
    seeds = [0, 1, 2, 3]
    episodes, summary = evaluate_policies(make_env, policies, seeds)
    assert list(summary.columns) == ["policy", "mean_return", "ci_low", "ci_high", "n_episodes"]
    assert summary["policy"].tolist() == list(policies)
    assert (summary["n_episodes"] == len(seeds)).all()
    assert (summary["ci_low"] <= summary["mean_return"]).all()
    assert (summary["mean_return"] <= summary["ci_high"]).all()
    for _, group in episodes.groupby("policy"):
        assert sorted(group["seed"]) == seeds
    same = episodes.pivot(index="seed", columns="policy", values="return")
    pd.testing.assert_series_equal(same["fixed_a"], same["fixed_b"], check_names=False)
    means = summary.set_index("policy")["mean_return"]
    assert means["myopic_oracle"] > means["random"]


def test_run_episodes_reports_weekly_metrics() -> None:
    episodes, steps = run_episodes(make_env, {"fixed": FixedPolicy(np.array([1, 0, 2]))}, [5])
    assert list(steps.columns) == ["policy", "seed", "week", "sends", "responses", "reward"]
    assert steps["week"].tolist() == list(range(1, 7))
    assert (steps["sends"] == 700).all()
    assert steps["reward"].sum() == pytest.approx(episodes["return"].iloc[0])
