"""Behaviour of the Mesa cohort simulation: response, fatigue, influence, events, budget."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from personasim.agents import NO_SEND, CampaignModel, PersonaAgent
from personasim.agents.abtest import simulate_ab_test
from personasim.config.campaign import Campaign
from personasim.config.distributions import Beta, Constant
from personasim.config.persona import Persona, PersonaTraits, cohort_sizes
from personasim.config.sections import DynamicsConfig, EventConfig
from personasim.core.numeric import logit32 as logit
from personasim.core.numeric import sigmoid32 as sigmoid


def persona(pid: str, p: float = 0.2, fatigue: float = 0.5, organic: float = 0.0) -> Persona:
    return Persona(
        id=pid,
        traits=PersonaTraits(
            propensity={"default": Constant(value=p)},
            price_sensitivity=Constant(value=2.0),
            fatigue_rate=Constant(value=fatigue),
            susceptibility=Constant(value=1.0),
            organic=Constant(value=organic),
        ),
    )


CAMPAIGNS = [
    Campaign(id="plain", cost=0.1, value=5.0),
    Campaign(id="sale", cost=0.1, value=4.0, features={"discount": 0.25}),
    Campaign(id="holdout", control=True),
]


def dynamics(fatigue: bool = True, influence: bool = False) -> DynamicsConfig:
    return DynamicsConfig.model_validate(
        {
            "fatigue": {"enabled": fatigue, "weight": 1.0, "recovery": 0.2},
            "influence": {"enabled": influence, "weight": 3.0},
        }
    )


def test_one_agent_per_persona_and_cohort_arrays_are_views() -> None:
    model = CampaignModel([persona("a"), persona("b")], [100, 300], CAMPAIGNS, rng=1)
    assert len(model.agents) == 2
    assert all(isinstance(a, PersonaAgent) for a in model.agents)
    b = model.cohorts[1]
    assert b.size == 300 and b.fatigue.base is model.fatigue
    assert b.traits.base_logit.dtype == np.float32


def test_response_rate_matches_propensity_without_dynamics() -> None:
    model = CampaignModel([persona("a", p=0.3)], [50_000], CAMPAIGNS, dynamics(False), rng=2)
    outcome = model.send([0])
    rate = outcome.responses[0, 0] / outcome.assigned[0, 0]
    assert rate == pytest.approx(0.3, abs=0.01)


def test_discount_raises_response_through_price_sensitivity() -> None:
    model = CampaignModel([persona("a", p=0.2)], [50_000], CAMPAIGNS, dynamics(False), rng=3)
    expected = float(sigmoid(logit(np.float32(0.2)) + 2.0 * 0.25))
    outcome = model.send([1])
    assert outcome.responses[0, 1] / 50_000 == pytest.approx(expected, abs=0.01)


def test_fatigue_lowers_response_and_decays_when_resting() -> None:
    model = CampaignModel([persona("a", p=0.3, fatigue=0.8)], [40_000], CAMPAIGNS, rng=4)
    rates = [model.send([0]).responses[0, 0] / 40_000 for _ in range(4)]
    assert rates[0] > rates[1] > rates[2] > rates[3]
    tired = float(model.fatigue.mean())
    model.send([NO_SEND])
    assert float(model.fatigue.mean()) == pytest.approx(tired * 0.7, rel=1e-5)  # recovery 0.3


def test_no_fatigue_means_flat_response() -> None:
    model = CampaignModel(
        [persona("a", p=0.3, fatigue=0.8)], [40_000], CAMPAIGNS, dynamics(fatigue=False), rng=5
    )
    rates = [model.send([0]).responses[0, 0] / 40_000 for _ in range(4)]
    assert max(rates) - min(rates) < 0.02


def test_influence_spreads_over_graph() -> None:
    n = 20_000
    ring = sparse.diags([1.0, 1.0], [-1, 1], shape=(n, n), format="csr", dtype=np.float32)
    with_graph = CampaignModel(
        [persona("a", p=0.2, fatigue=0)],
        [n],
        CAMPAIGNS,
        dynamics(fatigue=False, influence=True),
        adjacency=ring,
        rng=6,
    )
    without = CampaignModel(
        [persona("a", p=0.2, fatigue=0)],
        [n],
        CAMPAIGNS,
        dynamics(fatigue=False, influence=False),
        rng=6,
    )
    for model in (with_graph, without):
        model.send([0])
    second_with = with_graph.send([0]).responses[0, 0]
    second_without = without.send([0]).responses[0, 0]
    # neighbours responded at ~20% and susceptibility 1, weight 3 -> logit +0.6 on average
    assert second_with > second_without * 1.3


def test_event_changes_behaviour_only_in_its_weeks() -> None:
    downturn = EventConfig(
        name="downturn",
        start_week=2,
        end_week=2,
        propensity_shift=-1.0,
        price_sensitivity_multiplier=2.0,
    )
    model = CampaignModel(
        [persona("a", p=0.3)], [40_000], CAMPAIGNS, dynamics(False), events=[downturn], rng=7
    )
    plain = [model.send([0]).responses[0, 0] / 40_000 for _ in range(3)]
    assert plain[1] < plain[0] - 0.1 and abs(plain[2] - plain[0]) < 0.015
    model = CampaignModel(
        [persona("a", p=0.3)],
        [40_000],
        CAMPAIGNS,
        dynamics(False),
        events=[downturn.model_copy(update={"propensity_shift": 0.0})],
        rng=8,
    )
    sale = [model.send([1]).responses[0, 1] / 40_000 for _ in range(2)]
    assert sale[1] > sale[0] + 0.05  # doubled price sensitivity makes the discount work harder


def test_budget_caps_sends_and_reward_is_value_minus_cost() -> None:
    model = CampaignModel([persona("a")], [1000], CAMPAIGNS, budget=150.0, rng=9)
    first = model.send([0])
    assert first.cost == pytest.approx(100.0)
    assert first.reward == pytest.approx(first.responses[0, 0] * 5.0 - 100.0)
    second = model.send([0])
    assert second.assigned[0, 0] == 500 and model.budget_remaining == pytest.approx(0.0)


def test_control_and_no_send_cost_nothing_and_respond_organically() -> None:
    model = CampaignModel([persona("a", organic=0.1)], [30_000], CAMPAIGNS, dynamics(False), rng=10)
    control = model.send([2])
    assert control.cost == 0 and control.value == 0
    assert control.responses[0, 2] / 30_000 == pytest.approx(0.1, abs=0.01)
    nothing = model.send([NO_SEND])
    assert nothing.assigned.sum() == 0 and nothing.organic[0] / 30_000 == pytest.approx(
        0.1, abs=0.01
    )


def test_same_seed_same_history_different_seed_differs() -> None:
    def run(seed: int) -> list[int]:
        model = CampaignModel([persona("a"), persona("b")], [500, 700], CAMPAIGNS, rng=seed)
        return [int(model.send([0, 1]).responses.sum()) for _ in range(5)]

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_traits_are_drawn_from_distributions() -> None:
    p = Persona(id="a", traits=PersonaTraits(propensity={"default": Beta(a=2, b=8)}))
    model = CampaignModel([p], [20_000], CAMPAIGNS, rng=13)
    draws = sigmoid(model.cohorts[0].traits.base_logit[:, 0])
    assert draws.mean() == pytest.approx(0.2, abs=0.01)
    assert draws.std() == pytest.approx(np.sqrt(0.2 * 0.8 / 11), abs=0.01)


def test_simulated_ab_test_is_balanced_and_recovers_rates() -> None:
    model = CampaignModel(
        [persona("a", p=0.3), persona("b", p=0.1)],
        [20_000, 20_000],
        CAMPAIGNS,
        dynamics(False),
        rng=14,
    )
    results = simulate_ab_test(model, sample_size=30_000)
    counts = results.counts
    assert counts.exposures.sum() == 30_000
    assert np.all(np.abs(counts.exposures.sum(0) - 10_000) <= 1)
    assert results.table["recipient_id"].is_unique
    assert counts.rates[0, 0] == pytest.approx(0.3, abs=0.03)
    assert counts.rates[1, 0] == pytest.approx(0.1, abs=0.02)
    assert counts.rates[0, 2] == pytest.approx(0.0, abs=1e-9)  # control, no organic response


def test_cohort_sizes_split_exactly_by_share() -> None:
    personas = [Persona(id="a", share=1), Persona(id="b", share=2), Persona(id="c", size=7)]
    assert cohort_sizes(personas, 100) == [33, 67, 7]
