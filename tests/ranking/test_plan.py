"""Tests for the constrained, fatigue-aware message plan."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from personasim.config.sections import PlanConfig
from personasim.core.numeric import logit
from personasim.ranking.plan import (
    PLAN_COLUMNS,
    PlanInputs,
    allocate,
    choose_dual_price,
    holdout_mask,
)
from personasim.ranking.plan_checks import check_plan
from personasim.ranking.plan_values import ResponseValues

VALUE = 20.0  # value of a response in these tests; the control rate is 0.5


def make_inputs(
    net_value: np.ndarray,
    cost: list[float] | np.ndarray,
    horizon: int = 4,
    fatigue: tuple[float, float, float] = (0.0, 0.0, 1.0),
    allowed: np.ndarray | None = None,
    week_shift: np.ndarray | None = None,
    quota: np.ndarray | None = None,
) -> PlanInputs:
    """Inputs whose first-week, unfatigued net values are ``net_value``.

    ``fatigue`` is ``(weight, rate, recovery)``; ``week_shift`` is ``(horizon, K)``.
    """
    net_value = np.asarray(net_value, dtype=float)
    cost = np.asarray(cost, dtype=float)
    n, k = net_value.shape
    if len(cost) != k:
        raise ValueError(f"cost and value need one entry per campaign ({k})")
    p = 0.5 + (net_value + cost[None, :]) / VALUE
    weight, rate, recovery = fatigue
    shift = np.zeros((1, horizon, k)) if week_shift is None else week_shift[None]
    values = ResponseValues(
        logit=logit(p), p_control=np.full(n, 0.5), value=np.full(k, VALUE), cost=cost,
        group=np.zeros(n, dtype=np.int64), week_shift=shift,
        fatigue_rate=np.full((1, horizon), rate), fatigue_weight=weight,
        fatigue_recovery=recovery,
    )
    return PlanInputs(
        recipient_ids=np.array([f"r{i}" for i in range(n)], dtype=object),
        campaign_ids=tuple(f"c{j}" for j in range(k)),
        channels=tuple("email" if j % 2 == 0 else "sms" for j in range(k)),
        allowed=np.ones((n, k), dtype=bool) if allowed is None else allowed,
        values=values,
        quota=quota,
    )


def no_holdout(inputs: PlanInputs) -> np.ndarray:
    return np.zeros(len(inputs.recipient_ids), dtype=bool)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PlanInputs, PlanConfig, float, np.ndarray]:
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, 4))
    horizon = draw(st.integers(1, 6))
    values = st.floats(-3, 5, allow_nan=False, allow_subnormal=False).map(lambda v: round(v, 3))
    net = np.array(draw(st.lists(values, min_size=n * k, max_size=n * k))).reshape(n, k)
    costs = st.sampled_from([0.0, 0.1, 0.5, 1.0, 1.7])
    cost = draw(st.lists(costs, min_size=k, max_size=k))
    allowed = np.array(draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k)))
    fatigue = draw(st.sampled_from([(0.0, 0.0, 1.0), (1.0, 0.3, 0.3), (3.0, 0.8, 0.1)]))
    shift = np.array(draw(st.lists(st.sampled_from([-1.0, 0.0, 0.5]), min_size=horizon * k,
                                   max_size=horizon * k))).reshape(horizon, k)
    quota = None
    if draw(st.booleans()):
        quota = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, np.inf]),
                                       min_size=horizon * k, max_size=horizon * k)))
        quota = quota.reshape(1, horizon, k)
    inputs = make_inputs(net, cost, horizon, fatigue, allowed.reshape(n, k), shift, quota)
    if draw(st.booleans()):
        doubt = np.array(draw(st.lists(st.booleans(), min_size=n * k, max_size=n * k)))
        inputs = replace(inputs, doubt=doubt.reshape(n, k))
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
    price = 0.0 if budget > 10 else 0.5
    plan = allocate(inputs, config, budget, holdout, dual_price=price)
    assert list(plan.columns) == list(PLAN_COLUMNS)
    assert check_plan(plan, inputs, config, budget, holdout) == []
    paying = plan["priority"] > price * plan["cost"]
    if inputs.doubt is None:
        assert paying.all()
    else:  # only a recipient's first message may go out on the benefit of the doubt
        first = plan.groupby("recipient_id").cumcount() == 0
        assert (paying | first).all()
    assert math.fsum(plan["cost"]) <= budget  # exactly, not within a tolerance


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
    inputs = make_inputs(np.array([[-1.0, -0.001], [2.0, -0.5]]), [0.1, 0.1], horizon=3)
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
    fresh = make_inputs(net, [0.5, 0.5], horizon=12)
    tired = make_inputs(net, [0.5, 0.5], horizon=12, fatigue=(3.0, 0.8, 0.2))
    config = PlanConfig(max_per_week=2)
    assert len(allocate(fresh, config, 1e6, no_holdout(fresh))) == 24
    plan = allocate(tired, config, 1e6, no_holdout(tired))
    assert 0 < len(plan) < 24
    assert plan["priority"].iloc[0] == pytest.approx(3.0)
    # Later messages are worth less: fatigue lowers the response.
    assert plan["priority"].iloc[-1] < plan["priority"].iloc[0]
    assert check_plan(plan, tired, config, 1e6, no_holdout(tired)) == []


def test_fatigue_lets_a_fresh_recipient_outbid_a_repeat() -> None:
    net = np.array([[5.0], [1.0]])
    inputs = make_inputs(net, [1.0], horizon=3, fatigue=(4.0, 1.0, 0.0))
    plan = allocate(inputs, PlanConfig(), 2.0, no_holdout(inputs))
    # r0's second message (fatigue 1, logit -4) is worth less than r1's first.
    assert list(plan["recipient_id"]) == ["r0", "r1"]


def test_event_weeks_move_the_value() -> None:
    shift = np.zeros((3, 1))
    shift[0] = -3.0  # a downturn in week 1
    inputs = make_inputs(np.array([[2.0]]), [0.5], horizon=3, week_shift=shift)
    plan = allocate(inputs, PlanConfig(), 1e6, no_holdout(inputs))
    assert list(plan["week"]) == [2, 3]


def test_dual_price_saves_the_budget_for_better_weeks() -> None:
    shift = np.zeros((4, 1))
    shift[:2] = -0.6  # the first two weeks are worth less
    rng = np.random.default_rng(1)
    inputs = make_inputs(rng.uniform(0.5, 3, (200, 1)), [0.5], horizon=4, week_shift=shift)
    holdout = no_holdout(inputs)
    budget = 100.0  # 200 sends: a quarter of what would pay
    price = choose_dual_price(inputs, PlanConfig(), budget, holdout, seed=0)
    assert price > 0
    greedy = allocate(inputs, PlanConfig(), budget, holdout)
    priced = allocate(inputs, PlanConfig(), budget, holdout, dual_price=price)
    assert priced["priority"].sum() > 1.05 * greedy["priority"].sum()
    assert priced["week"].min() >= 2
    assert check_plan(priced, inputs, PlanConfig(), budget, holdout) == []
    assert choose_dual_price(inputs, PlanConfig(), 1e9, holdout, seed=0) == 0.0


def test_pacing_quota_caps_each_persona_week_campaign() -> None:
    quota = np.full((1, 3, 2), np.inf)
    quota[0, 0, 0] = 2  # week 1: at most two sends of c0
    quota[0, 1, :] = 0  # week 2: nothing
    inputs = make_inputs(np.full((5, 2), 2.0), [0.1, 0.1], horizon=3, quota=quota)
    plan = allocate(inputs, PlanConfig(), 1e6, no_holdout(inputs))
    week1 = plan[plan["week"] == 1]
    assert (week1["campaign_id"] == "c0").sum() == 2
    assert not (plan["week"] == 2).any()
    assert check_plan(plan, inputs, PlanConfig(), 1e6, no_holdout(inputs)) == []
    tampered = pd.concat([plan, plan[plan["week"] == 1].head(1).assign(week=2)])
    assert any("pacing" in e for e in check_plan(tampered, inputs, PlanConfig(), 1e6,
                                                   no_holdout(inputs)))


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
            "p_response": 0.6,
            "uplift": 0.1,
            "expected_value": 2.0,
            "cost": [1.0, 1.0, 1.0, 1.0, 1.0],
            "priority": [2.0, 2.0, 2.0, 2.0, -1.0],
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
        make_inputs(np.zeros((2, 2)), [0.1, 0.1], fatigue=(1.0, 0.1, 1.5))
    with pytest.raises(ValueError, match="cost"):
        make_inputs(np.zeros((2, 2)), [-0.1, 0.1])
    inputs = make_inputs(np.zeros((2, 2)), [0.1, 0.1])
    with pytest.raises(ValueError, match="budget"):
        allocate(inputs, PlanConfig(), -1.0, no_holdout(inputs))
    with pytest.raises(ValueError, match="holdout"):
        allocate(inputs, PlanConfig(), 1.0, np.zeros(3, dtype=bool))


def test_check_plan_catches_a_tampered_plan() -> None:
    inputs = make_inputs(np.full((2, 2), 2.0), [0.5, 0.5], horizon=4, fatigue=(1.0, 0.3, 0.3))
    config = PlanConfig(max_per_horizon=2)
    holdout = no_holdout(inputs)
    plan = allocate(inputs, config, 1e6, holdout)
    assert check_plan(plan, inputs, config, 1e6, holdout) == []
    assert check_plan(plan, inputs, PlanConfig(max_per_horizon=1), 1e6, holdout)
    inflated = plan.assign(priority=plan["priority"] + 0.01)
    assert any("fatigue" in e for e in check_plan(inflated, inputs, config, 1e6, holdout))
    unknown = plan.assign(recipient_id="nobody")
    assert any("unknown" in e for e in check_plan(unknown, inputs, config, 1e6, holdout))
    assert check_plan(plan.drop(columns="priority"), inputs, config, 1e6, holdout)
    assert check_plan(plan, inputs, config, float(plan["cost"].sum()) - 0.1, holdout)


def test_benefit_of_doubt_sends_a_first_message_only_when_money_allows() -> None:
    net = np.array([[2.0], [-0.3], [-0.1]])
    doubt = np.array([[False], [True], [True]])
    inputs = replace(make_inputs(net, [0.1], horizon=3), doubt=doubt)
    plan = allocate(inputs, PlanConfig(), 1e6, no_holdout(inputs))
    # r1 and r2 get one message each (their first), never a second
    assert set(plan.loc[plan["week"] == 1, "recipient_id"]) == {"r0", "r1", "r2"}
    assert (plan["recipient_id"] != "r0").sum() == 2
    # paying sends go first, then the least bad: with room for two, r0 and r2
    two = allocate(inputs, PlanConfig(capacity={"c0": 2}), 1e6, no_holdout(inputs))
    assert set(two["recipient_id"]) == {"r0", "r2"}
    assert check_plan(plan, inputs, PlanConfig(), 1e6, no_holdout(inputs)) == []
    # a binding budget (a positive dual price) never pays for a token send
    priced = allocate(inputs, PlanConfig(), 1e6, no_holdout(inputs), dual_price=0.5)
    assert set(priced["recipient_id"]) == {"r0"}
    tampered = pd.concat([plan, plan[plan["recipient_id"] == "r1"].assign(week=3)])
    assert any("marginal value <= 0" in e for e in
               check_plan(tampered, inputs, PlanConfig(), 1e6, no_holdout(inputs)))
