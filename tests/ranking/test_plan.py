"""Tests for the constrained, fatigue-aware message plan."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from personasim.config.sections import PlanConfig
from personasim.ranking.plan import (
    PLAN_COLUMNS,
    PlanInputs,
    allocate,
    check_plan,
    holdout_mask,
)


def make_inputs(
    net_value: np.ndarray,
    cost: list[float] | np.ndarray,
    horizon: int = 4,
    fatigue: float = 0.0,
    allowed: np.ndarray | None = None,
) -> PlanInputs:
    net_value = np.asarray(net_value, dtype=float)
    n, k = net_value.shape
    return PlanInputs(
        recipient_ids=np.array([f"r{i}" for i in range(n)], dtype=object),
        net_value=net_value,
        cost=np.asarray(cost, dtype=float),
        campaign_ids=tuple(f"c{j}" for j in range(k)),
        channels=tuple("email" if j % 2 == 0 else "sms" for j in range(k)),
        allowed=np.ones((n, k), dtype=bool) if allowed is None else allowed,
        horizon=horizon,
        fatigue=fatigue,
    )


def no_holdout(inputs: PlanInputs) -> np.ndarray:
    return np.zeros(len(inputs.recipient_ids), dtype=bool)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PlanInputs, PlanConfig, float, np.ndarray]:
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, 4))
    horizon = draw(st.integers(1, 6))
    values = st.floats(-3, 5, allow_nan=False, allow_subnormal=False)
    net = np.array(draw(st.lists(values, min_size=n * k, max_size=n * k))).reshape(n, k)
    costs = st.sampled_from([0.0, 0.1, 0.5, 1.0, 1.7])
    cost = draw(st.lists(costs, min_size=k, max_size=k))
    allowed = np.array(draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k)))
    fatigue = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]))
    inputs = make_inputs(net, cost, horizon, fatigue, allowed.reshape(n, k))
    max_per_week = draw(st.integers(1, 3))
    max_per_horizon = draw(st.none() | st.integers(max_per_week, 6))
    capacity = draw(
        st.dictionaries(st.sampled_from(list(inputs.campaign_ids)), st.integers(0, 6))
    )
    config = PlanConfig(
        max_per_week=max_per_week,
        max_per_horizon=max_per_horizon,
        min_gap_weeks=draw(st.integers(0, 3)),
        capacity=capacity,
        quiet_weeks=draw(st.lists(st.integers(1, horizon + 1), max_size=3)),
        holdout_fraction=draw(st.sampled_from([0.0, 0.2, 0.5])),
    )
    budget = draw(st.sampled_from([0.0, 0.5, 2.0, 7.3, 50.0]))
    holdout = holdout_mask(n, config.holdout_fraction, draw(st.integers(0, 5)))
    return inputs, config, budget, holdout


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_plan_never_breaks_a_constraint(scenario) -> None:
    inputs, config, budget, holdout = scenario
    plan = allocate(inputs, config, budget, holdout)
    assert list(plan.columns) == list(PLAN_COLUMNS)
    assert check_plan(plan, inputs, config, budget, holdout) == []
    assert (plan["value"] > 0).all()


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_plan_is_deterministic_and_sorted(scenario) -> None:
    inputs, config, budget, holdout = scenario
    plan = allocate(inputs, config, budget, holdout)
    pd.testing.assert_frame_equal(plan, allocate(inputs, config, budget, holdout))
    order = pd.Index(inputs.recipient_ids).get_indexer(plan["recipient_id"])
    keys = list(zip(plan["week"], order, strict=True))
    assert keys == sorted(keys)


def test_budget_binds_and_is_nearly_spent() -> None:
    rng = np.random.default_rng(0)
    inputs = make_inputs(rng.uniform(1, 5, (50, 3)), [0.3, 0.7, 1.0], horizon=6)
    budget = 40.0
    plan = allocate(inputs, PlanConfig(), budget, no_holdout(inputs))
    assert plan["cost"].sum() <= budget
    assert plan["cost"].sum() >= budget - 0.3  # less than the cheapest send is left
    assert check_plan(plan, inputs, PlanConfig(), budget, no_holdout(inputs)) == []


def test_greedy_takes_the_best_values_first() -> None:
    net = np.array([[1.0], [3.0], [2.0]])
    inputs = make_inputs(net, [1.0], horizon=1)
    plan = allocate(inputs, PlanConfig(), 2.0, no_holdout(inputs))
    assert list(plan["recipient_id"]) == ["r1", "r2"]


def test_negative_values_are_never_sent() -> None:
    inputs = make_inputs(np.array([[-1.0, 0.0], [2.0, -0.5]]), [0.1, 0.1], horizon=3)
    plan = allocate(inputs, PlanConfig(), 100.0, no_holdout(inputs))
    assert set(zip(plan["recipient_id"], plan["campaign_id"], strict=True)) == {("r1", "c0")}


def test_quiet_weeks_are_empty() -> None:
    inputs = make_inputs(np.full((10, 2), 2.0), [0.1, 0.1], horizon=6)
    config = PlanConfig(quiet_weeks=[2, 5])
    plan = allocate(inputs, config, 1e6, no_holdout(inputs))
    assert not plan["week"].isin([2, 5]).any()
    assert set(plan["week"]) == {1, 3, 4, 6}


def test_min_gap_is_respected() -> None:
    inputs = make_inputs(np.full((5, 2), 2.0), [0.1, 0.1], horizon=10)
    config = PlanConfig(min_gap_weeks=2)
    plan = allocate(inputs, config, 1e6, no_holdout(inputs))
    for _, weeks in plan.groupby("recipient_id")["week"]:
        assert (np.diff(np.sort(weeks.unique())) > 2).all()
    assert sorted(plan.loc[plan["recipient_id"] == "r0", "week"]) == [1, 4, 7, 10]


def test_per_week_and_horizon_limits_and_capacity() -> None:
    inputs = make_inputs(np.full((6, 3), 2.0), [0.1, 0.1, 0.1], horizon=4)
    config = PlanConfig(max_per_week=2, max_per_horizon=3, capacity={"c0": 4, "c2": 0})
    plan = allocate(inputs, config, 1e6, no_holdout(inputs))
    assert plan.groupby(["recipient_id", "week"]).size().max() <= 2
    assert (plan.groupby("recipient_id").size() == 3).all()
    assert (plan["campaign_id"] == "c0").sum() == 4
    assert not (plan["campaign_id"] == "c2").any()
    assert not plan.duplicated(["recipient_id", "week", "campaign_id"]).any()


def test_consent_is_respected() -> None:
    allowed = np.array([[True, False], [False, False]])
    inputs = make_inputs(np.full((2, 2), 2.0), [0.1, 0.1], horizon=3, allowed=allowed)
    plan = allocate(inputs, PlanConfig(max_per_week=2), 1e6, no_holdout(inputs))
    assert set(zip(plan["recipient_id"], plan["campaign_id"], strict=True)) == {("r0", "c0")}


def test_holdout_is_exact_seeded_and_never_messaged() -> None:
    mask = holdout_mask(1000, 0.05, seed=3)
    assert mask.sum() == 50
    assert np.array_equal(mask, holdout_mask(1000, 0.05, seed=3))
    assert not np.array_equal(mask, holdout_mask(1000, 0.05, seed=4))
    assert holdout_mask(7, 0.0, seed=1).sum() == 0
    assert holdout_mask(7, 0.5, seed=1).sum() == round(0.5 * 7)
    inputs = make_inputs(np.full((40, 2), 2.0), [0.1, 0.1], horizon=3)
    holdout = holdout_mask(40, 0.25, seed=0)
    plan = allocate(inputs, PlanConfig(), 1e6, holdout)
    held = set(inputs.recipient_ids[holdout])
    assert len(held) == 10
    assert held.isdisjoint(plan["recipient_id"])
    assert set(plan["recipient_id"]) == set(inputs.recipient_ids) - held


def test_holdout_fraction_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="fraction"):
        holdout_mask(10, 1.0, seed=0)


def test_fatigue_spaces_out_or_stops_messages() -> None:
    net = np.array([[3.0, 3.0]])
    low = make_inputs(net, [0.5, 0.5], horizon=12, fatigue=0.0)
    high = make_inputs(net, [0.5, 0.5], horizon=12, fatigue=0.6)
    config = PlanConfig(max_per_week=2)
    n_low = len(allocate(low, config, 1e6, no_holdout(low)))
    plan_high = allocate(high, config, 1e6, no_holdout(high))
    assert n_low == 24
    # value part 3.5: 3.5 * 0.4**s > 0.5 only for s <= 2, so three messages in all.
    assert len(plan_high) == 3
    assert np.allclose(plan_high["value"], [3.0, 3.5 * 0.4 - 0.5, 3.5 * 0.16 - 0.5])
    assert check_plan(plan_high, high, config, 1e6, no_holdout(high)) == []


def test_fatigue_lets_a_fresh_recipient_outbid_a_repeat() -> None:
    net = np.array([[5.0], [1.0]])
    inputs = make_inputs(net, [1.0], horizon=3, fatigue=0.8)
    plan = allocate(inputs, PlanConfig(), 1e6, no_holdout(inputs))
    # r0: 5, then 6 * 0.2 - 1 = 0.2, then 6 * 0.04 - 1 < 0; r1: 1, then 2 * 0.2 - 1 < 0.
    assert list(plan["recipient_id"]) == ["r0", "r1", "r0"]
    assert np.allclose(plan["value"], [5.0, 1.0, 0.2])
    # With a budget for two sends, the fresh r1 (1.0) beats r0's repeat (0.2).
    plan = allocate(inputs, PlanConfig(), 2.0, no_holdout(inputs))
    assert list(plan["recipient_id"]) == ["r0", "r1"]


def test_config_validator_names_both_keys() -> None:
    with pytest.raises(ValidationError, match=r"plan.max_per_week \(3\) is above "
                       r"plan.max_per_horizon \(2\)"):
        PlanConfig(max_per_week=3, max_per_horizon=2)
    for bad in ({"budget": -1.0}, {"max_per_week": 0}, {"min_gap_weeks": -1},
                {"capacity": {"c0": -1}}, {"holdout_fraction": 1.0}, {"quiet_weeks": [0]},
                {"unknown": 1}):
        with pytest.raises(ValidationError):
            PlanConfig(**bad)
    assert PlanConfig(max_per_week=2, max_per_horizon=2).max_per_week == 2


@pytest.mark.parametrize(
    ("config", "budget"),
    [(PlanConfig(), 0.0), (PlanConfig(quiet_weeks=[1, 2, 3]), 10.0)],
)
def test_empty_plan_warns_and_keeps_the_columns(
    config: PlanConfig, budget: float, caplog: pytest.LogCaptureFixture
) -> None:
    inputs = make_inputs(np.full((3, 2), 2.0), [0.1, 0.1], horizon=3)
    with caplog.at_level(logging.WARNING, logger="personasim.ranking.plan"):
        plan = allocate(inputs, config, budget, no_holdout(inputs))
    assert plan.empty
    assert list(plan.columns) == list(PLAN_COLUMNS)
    assert "plan is empty" in caplog.text
    assert check_plan(plan, inputs, config, budget, no_holdout(inputs)) == []


def test_check_plan_reports_broken_constraints() -> None:
    inputs = make_inputs(np.full((3, 2), 2.0), [1.0, 1.0], horizon=4)
    holdout = np.array([False, False, True])
    config = PlanConfig(min_gap_weeks=1, quiet_weeks=[4], capacity={"c1": 0})
    plan = pd.DataFrame(
        {
            "recipient_id": ["r0", "r0", "r0", "r2", "r1"],
            "week": [1, 1, 2, 1, 4],
            "campaign_id": ["c0", "c0", "c1", "c0", "c0"],
            "channel": ["email", "email", "sms", "email", "sms"],
            "cost": [1.0, 1.0, 1.0, 1.0, 1.0],
            "value": [2.0, 2.0, 2.0, 2.0, -1.0],
        }
    )
    errors = " | ".join(check_plan(plan, inputs, config, 3.0, holdout))
    for phrase in ("quiet weeks", "held-out", "repeat a campaign", "max_per_week",
                   "min_gap_weeks", "capacity", "budget", "channel", "value <= 0"):
        assert phrase in errors, phrase


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="one entry per campaign"):
        make_inputs(np.zeros((2, 2)), [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="fatigue"):
        make_inputs(np.zeros((2, 2)), [0.1, 0.1], fatigue=1.0)
    with pytest.raises(ValueError, match="cost"):
        make_inputs(np.zeros((2, 2)), [-0.1, 0.1])
    inputs = make_inputs(np.zeros((2, 2)), [0.1, 0.1])
    with pytest.raises(ValueError, match="budget"):
        allocate(inputs, PlanConfig(), -1.0, no_holdout(inputs))
    with pytest.raises(ValueError, match="holdout"):
        allocate(inputs, PlanConfig(), 1.0, np.zeros(3, dtype=bool))


def test_check_plan_catches_a_tampered_plan() -> None:
    inputs = make_inputs(np.full((2, 2), 2.0), [0.5, 0.5], horizon=4, fatigue=0.3)
    config = PlanConfig(max_per_horizon=2)
    holdout = no_holdout(inputs)
    plan = allocate(inputs, config, 1e6, holdout)
    assert check_plan(plan, inputs, config, 1e6, holdout) == []
    assert check_plan(plan, inputs, PlanConfig(max_per_horizon=1), 1e6, holdout)
    inflated = plan.assign(value=plan["value"] + 0.01)
    assert any("fatigue" in e for e in check_plan(inflated, inputs, config, 1e6, holdout))
    unknown = plan.assign(recipient_id="nobody")
    assert any("unknown" in e for e in check_plan(unknown, inputs, config, 1e6, holdout))
    assert check_plan(plan.drop(columns="value"), inputs, config, 1e6, holdout)
    assert check_plan(plan, inputs, config, float(plan["cost"].sum()) - 0.1, holdout)
