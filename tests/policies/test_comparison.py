"""The evaluation protocol: intervals over training seeds, all policies on common seeds,
best-run selection, skipped algorithms and the campaign calendar."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from small_envs import make_env, tiny_env_factory

from personasim.config.sections import PolicyConfig
from personasim.core.types import NO_SEND_ID
from personasim.policies.baselines import FixedPolicy, make_policy
from personasim.policies.calendar import calendar_grid, campaign_calendar
from personasim.policies.comparison import CURVE_COLUMNS, evaluate_all, train_all
from personasim.policies.rollouts import PROTOCOL_COLUMNS, protocol_interval, summarize_protocol


def test_one_training_seed_gives_the_student_t_interval() -> None:
    returns = np.array([[10.0, 12.0, 9.0, 13.0]])
    mean, low, high = protocol_interval(returns)
    half = stats.t.ppf(0.975, 3) * returns.std(ddof=1) / 2
    assert (mean, low, high) == pytest.approx((11.0, 11.0 - half, 11.0 + half))


def test_training_seed_spread_widens_the_interval() -> None:
    audiences = np.array([100.0, 110.0, 90.0, 105.0])
    steady = np.tile(audiences, (5, 1))
    shaky = steady + np.array([[-20.0], [15.0], [0.0], [25.0], [-20.0]])
    _, low_steady, high_steady = protocol_interval(steady)
    mean, low, high = protocol_interval(shaky)
    assert mean == pytest.approx(steady.mean())
    assert high - low > 1.5 * (high_steady - low_steady)
    # var(run means)/K + var(audience means)/N, Welch-Satterthwaite degrees of freedom
    a = shaky.mean(axis=1).var(ddof=1) / 5
    b = shaky.mean(axis=0).var(ddof=1) / 4
    dof = (a + b) ** 2 / (a**2 / 4 + b**2 / 3)
    assert high - mean == pytest.approx(stats.t.ppf(0.975, dof) * np.sqrt(a + b))
    assert protocol_interval(np.full((3, 4), 7.0)) == (7.0, 7.0, 7.0)


def test_protocol_summary_columns_and_oracle_ratio() -> None:
    rows = [("myopic_oracle", np.nan, s, 100.0 + s) for s in range(4)]
    rows += [("ppo", t, s, 120.0 + s + t) for t in (1, 2) for s in range(4)]
    episodes = pd.DataFrame(rows, columns=["policy", "training_seed", "seed", "return"])
    summary = summarize_protocol(episodes)
    assert tuple(summary.columns) == PROTOCOL_COLUMNS
    assert tuple(summary.columns[:5]) == ("policy", "mean_return", "ci_low", "ci_high",
                                          "relative_to_myopic_oracle")
    row = summary.set_index("policy")
    assert row.loc["ppo", "relative_to_myopic_oracle"] == pytest.approx(123.0 / 101.5)
    assert row.loc["ppo", "n_training_seeds"] == 2 and row.loc["ppo", "n_episodes"] == 8
    assert row.loc["myopic_oracle", "relative_to_myopic_oracle"] == 1.0
    with pytest.raises(ValueError, match="every training seed needs every evaluation seed"):
        summarize_protocol(episodes.drop(index=len(episodes) - 1))


def test_calendar_names_campaigns_not_indices() -> None:
    plan = FixedPolicy(np.array([1, 2, 0]))  # emailers: email, texters: sms, mixed: nothing
    detail = campaign_calendar(make_env, plan, [0, 1], "plan")
    assert len(detail) == 3 * 6 and set(detail["agreement"]) == {1.0}
    week = detail[detail["week"] == 2].set_index("persona_id")
    assert week["campaign_id"].to_dict() == {"emailers": "email", "texters": "sms",
                                             "mixed": NO_SEND_ID}
    assert week.loc["texters", "recipients"] == 300
    assert week.loc["texters", "spend"] == pytest.approx(300 * 0.1)
    assert week.loc["mixed", "spend"] == 0.0
    grid = calendar_grid(detail)
    assert list(grid.columns) == ["persona_id", *(f"week_{w}" for w in range(1, 7))]
    assert grid["persona_id"].tolist() == ["emailers", "texters", "mixed"]
    assert set(grid.iloc[0, 1:]) == {"email"}
    noisy = campaign_calendar(make_env, make_policy("random", make_env()), [0, 1, 2, 3], "r")
    assert noisy["agreement"].min() < 1.0


def test_train_and_evaluate_every_algorithm_on_common_seeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    factory = tiny_env_factory(n_personas=6, n_campaigns=4)  # 5^6 joint actions: too many for DQN
    policy = PolicyConfig(total_timesteps=96, n_envs=2, training_seeds=2,
                          hyperparameters={"n_steps": 24, "batch_size": 16},
                          compare_algorithms={"a2c": {}, "dqn": {}}, checkpoint_every=None)
    with caplog.at_level(logging.WARNING, logger="personasim.policies.comparison"):
        trained = train_all(factory, policy, [3, 4], tmp_path, reward_scale=1 / 900)
    assert "skipping dqn" in caplog.text and "15625 joint actions" in trained.skipped["dqn"]
    assert list(trained.runs) == ["ppo", "a2c"]
    assert tuple(trained.curve.columns) == CURVE_COLUMNS
    assert set(zip(trained.curve["algorithm"], trained.curve["run"], strict=True)) == {
        ("ppo", 0), ("ppo", 1), ("a2c", 0), ("a2c", 1)}
    assert (tmp_path / "policies" / "a2c-seed1.zip").is_file()

    again = train_all(factory, policy, [3, 4], tmp_path, reward_scale=1 / 900)
    assert [r.seconds for r in again.runs["ppo"]] == [r.seconds for r in trained.runs["ppo"]]

    baselines = {"random": make_policy("random", factory())}
    result = evaluate_all(factory, baselines, trained, [10, 11, 12], [20, 21], tmp_path)
    assert result.summary["policy"].tolist() == ["random", "ppo", "a2c"]
    seeds = result.episodes.groupby("policy")["seed"].apply(lambda s: sorted(set(s)))
    assert all(s == [10, 11, 12] for s in seeds)
    assert result.summary.set_index("policy").loc["ppo", "n_episodes"] == 6
    assert result.runs["selected"].sum() == 2 and set(result.best) == {"ppo", "a2c"}
    chosen = result.runs[result.runs["selected"]].set_index("policy")
    for algorithm, k in result.best.items():
        validation = result.runs[result.runs["policy"] == algorithm]["validation_return"]
        assert chosen.loc[algorithm, "validation_return"] == validation.max()
        assert chosen.loc[algorithm, "run"] == k
    assert np.isnan(result.summary.set_index("policy").loc["random", "training_seconds"])


def test_impossible_algorithms_fail_early(tmp_path: Path) -> None:
    policy = PolicyConfig(algorithm="dqn", total_timesteps=32)
    with pytest.raises(ValueError, match="policy.algorithm: dqn needs a small joint action"):
        train_all(tiny_env_factory(6, 4), policy, [0], tmp_path, reward_scale=1.0)
