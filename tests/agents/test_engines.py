"""The per-recipient reference engine against the cohort engine, and dynamics at scale."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from scipy import sparse, stats

from personasim.agents import (
    ENGINES,
    NO_SEND,
    CampaignModel,
    RecipientAgent,
    RecipientModel,
    StepOutcome,
)
from personasim.behaviour.network import build_adjacency, graph_to_adjacency
from personasim.behaviour.population import CohortTraits
from personasim.behaviour.response import RESPONSE_MODELS, ResponseContext
from personasim.behaviour.transition import EventCalendar, InfluenceOperator
from personasim.config.campaign import Campaign, CampaignArrays
from personasim.config.distributions import Beta, Constant, Gamma, Normal
from personasim.config.persona import Persona, PersonaTraits
from personasim.config.sections import DynamicsConfig, EventConfig, NetworkConfig, SimulationConfig
from personasim.envs import CampaignEnv

ALPHA = 1e-3
"""Family-wise false-alarm rate of the equivalence test."""

PERSONAS = [
    Persona(id="hunters", traits=PersonaTraits(
        propensity={"email": Beta(a=4, b=30), "sms": Beta(a=3, b=30)},
        price_sensitivity=Gamma(shape=6, scale=0.5), fatigue_rate=Beta(a=4, b=4),
        susceptibility=Beta(a=6, b=3), organic=Beta(a=2, b=100))),
    Persona(id="regulars", traits=PersonaTraits(
        propensity={"default": Beta(a=6, b=30)}, fatigue_rate=Beta(a=2, b=6),
        susceptibility=Beta(a=4, b=4), organic=Beta(a=3, b=100),
        affinity={"news": Normal(mu=0.5, sd=0.2)})),
]
CAMPAIGNS = [
    Campaign(id="sale", channel="email", cost=0.05, value=9.0, features={"discount": 0.3}),
    Campaign(id="news", channel="email", cost=0.05, value=12.0),
    Campaign(id="flash", channel="sms", cost=0.1, value=8.0, features={"discount": 0.15}),
    Campaign(id="holdout", control=True),
]
EVENTS = [
    EventConfig(name="downturn", start_week=3, end_week=4, propensity_shift=-0.8,
                price_sensitivity_multiplier=1.5, fatigue_multiplier=2.0),
    EventConfig(name="sms_push", start_week=5, end_week=6, propensity_shift=0.7,
                channels=["sms"], personas=["hunters"]),
]
SIZES = [8_000, 6_000]
WEEKS = 8


def dynamics(fatigue_weight: float = 1.2, influence_weight: float = 6.0) -> DynamicsConfig:
    return DynamicsConfig.model_validate({
        "fatigue": {"weight": fatigue_weight, "recovery": 0.3},
        "influence": {"weight": influence_weight,
                      "network": {"generator": "watts_strogatz", "params": {"k": 6, "p": 0.1}}},
    })


def graph() -> sparse.csr_matrix:
    return build_adjacency(NetworkConfig(generator="watts_strogatz", params={"k": 6, "p": 0.1}),
                           sum(SIZES), np.random.default_rng(0))


def schedule() -> list[list[int | np.ndarray]]:
    """Weeks 1-4: every recipient its own random arm; weeks 5-8: one campaign per persona."""
    rng = np.random.default_rng(99)
    weeks: list[list[int | np.ndarray]] = [
        [rng.integers(-1, len(CAMPAIGNS), size=n) for n in SIZES] for _ in range(4)]
    weeks += [[0, 2], [2, 1], [1, NO_SEND], [3, 0]]
    return weeks


def simulate(engine: str, seed: int, **kwargs: object) -> tuple[list[StepOutcome], list[float]]:
    """Run the schedule; return each week's outcome and the mean-fatigue path."""
    model = ENGINES.get(engine)(PERSONAS, SIZES, CAMPAIGNS, kwargs.get("dyn", dynamics()),
                                kwargs.get("events", EVENTS), adjacency=graph(), rng=seed)
    outcomes = [model.send_assignment(week) for week in schedule()]
    fatigue = model.datacollector.get_model_vars_dataframe()["mean_fatigue"].tolist()
    return outcomes, fatigue


def z_scores(a: list[StepOutcome], b: list[StepOutcome]) -> np.ndarray:
    """Two-proportion z per persona x campaign (and nothing-sent) x week, both n >= 30."""
    out = []
    for oa, ob in zip(a, b, strict=True):
        na = np.column_stack([oa.assigned, np.asarray(SIZES) - oa.assigned.sum(1)])
        nb = np.column_stack([ob.assigned, np.asarray(SIZES) - ob.assigned.sum(1)])
        ya, yb = np.column_stack([oa.responses, oa.organic]), np.column_stack(
            [ob.responses, ob.organic])
        ok = (na >= 30) & (nb >= 30)
        pooled = (ya + yb)[ok] / (na + nb)[ok]
        se = np.sqrt(pooled * (1 - pooled) * (1 / na[ok] + 1 / nb[ok]))
        diff = ya[ok] / na[ok] - yb[ok] / nb[ok]
        out.append(np.divide(diff, se, out=np.zeros_like(diff), where=se > 0))
    return np.concatenate(out)


def differs(z: np.ndarray) -> bool:
    """Bonferroni on the largest |z| or a chi-square on sum z^2, each at ALPHA / 2."""
    bonferroni = np.abs(z).max() > stats.norm.isf(ALPHA / 4 / z.size)
    chi2 = float((z**2).sum()) > stats.chi2.isf(ALPHA / 2, z.size)
    return bool(bonferroni or chi2)


@pytest.fixture(scope="module")
def cohort_run() -> tuple[list[StepOutcome], list[float]]:
    return simulate("cohort", seed=5)


def test_engines_agree_within_sampling_error(cohort_run) -> None:  # noqa: ANN001
    cohort, cohort_fatigue = cohort_run
    per_recipient, per_fatigue = simulate("per_recipient", seed=6)  # independent draws
    z = z_scores(cohort, per_recipient)
    assert z.size >= 2 * 4 * 5  # persona x arm cells over the weeks, control included
    assert not differs(z), f"max |z| {np.abs(z).max():.2f}, sum z^2 {(z**2).sum():.1f}/{z.size}"
    # mean fatigue of 14,000 recipients: standard error ~0.4%, tolerance ~5 standard errors
    np.testing.assert_allclose(per_fatigue, cohort_fatigue, rtol=0.02)
    assert cohort_fatigue[3] > cohort_fatigue[0] > 0


def test_same_seed_reproduces_the_cohort_engine_recipient_by_recipient(cohort_run) -> None:  # noqa: ANN001
    cohort, cohort_fatigue = cohort_run
    per_recipient, per_fatigue = simulate("per_recipient", seed=5)
    np.testing.assert_allclose(per_fatigue, cohort_fatigue, rtol=1e-5)
    for a, b in zip(cohort, per_recipient, strict=True):
        assert np.array_equal(a.assigned, b.assigned)
        # same traits and uniforms; only float32 rounding of the influence may flip a draw
        assert np.abs(a.responses - b.responses).sum() + np.abs(a.organic - b.organic).sum() <= 3


@pytest.mark.parametrize(
    ("change", "kwargs"),
    [
        ("fatigue weight halved", {"dyn": dynamics(fatigue_weight=0.6)}),
        ("no word of mouth", {"dyn": dynamics(influence_weight=0.0)}),
        ("no events", {"events": []}),
    ],
)
def test_equivalence_test_detects_each_dynamic(cohort_run, change: str, kwargs) -> None:  # noqa: ANN001
    changed, _ = simulate("cohort", seed=6, **kwargs)
    assert differs(z_scores(cohort_run[0], changed)), change


def test_same_engine_other_seed_passes(cohort_run) -> None:  # noqa: ANN001
    other, _ = simulate("cohort", seed=7)
    assert not differs(z_scores(cohort_run[0], other))


def test_one_mesa_agent_per_recipient_with_the_cohort_engines_traits() -> None:
    cohort = CampaignModel(PERSONAS, [30, 20], CAMPAIGNS, dynamics(), EVENTS, rng=3)
    model = RecipientModel(PERSONAS, [30, 20], CAMPAIGNS, dynamics(), EVENTS, rng=3)
    assert len(model.agents) == 50 and all(isinstance(a, RecipientAgent) for a in model.agents)
    assert [c.size for c in model.cohorts] == [30, 20]
    agent = model.cohorts[1].members[4]
    assert agent.traits.n == 1 and agent.traits.base_logit.base is None  # own arrays
    expected = cohort.cohorts[1].traits.base_logit[4]
    np.testing.assert_array_equal(agent.traits.base_logit[0], expected)
    assert model.recipient_ids(1)[4] == cohort.recipient_ids(1)[4] == "regulars-0000004"


_ALWAYS = "test_always_when_sent"
if _ALWAYS not in RESPONSE_MODELS:

    @RESPONSE_MODELS.register(_ALWAYS)
    class _Always:
        """Everyone sent a campaign responds, nobody else does."""

        def probability(self, traits: CohortTraits, fatigue: np.ndarray,
                        campaigns: CampaignArrays, assignment: int | np.ndarray,
                        context: ResponseContext) -> np.ndarray:
            k = np.broadcast_to(np.asarray(assignment), (traits.n,))
            return ((k >= 0) & (k != campaigns.control_index)).astype(np.float32)


@pytest.mark.parametrize("engine", ["cohort", "per_recipient"])
def test_engines_call_the_registered_response_model(engine: str) -> None:
    model = ENGINES.get(engine)(PERSONAS, [40, 30], CAMPAIGNS, response_model=_ALWAYS, rng=1)
    outcome = model.send_assignment([np.resize([NO_SEND, 0, 1, 3], 40), 2])
    assert outcome.responses[0].tolist() == [10, 10, 0, 0]  # holdout (3) sends nothing
    assert outcome.responses[1, 2] == 30 and outcome.organic.sum() == 0


def test_per_recipient_engine_runs_the_env_budget_and_oracle() -> None:
    simulation = SimulationConfig(engine="per_recipient", horizon=3, budget=6.0)
    env = CampaignEnv(PERSONAS, [60, 40], CAMPAIGNS, simulation, dynamics(), EVENTS)
    obs, _ = env.reset(seed=0)
    assert isinstance(env.model, RecipientModel) and obs.shape == (8,)
    expected = env.model.expected_response([0, 1])
    assert expected.shape == (2,) and np.all(expected > 0)
    _, _, terminated, _, info = env.step(np.array([1, 2]))
    assert info["sends"].tolist() == [60, 40] and env.model.budget_remaining == pytest.approx(1.0)
    _, _, terminated, _, info = env.step(np.array([1, 1]))
    assert info["sends"].sum() == 20  # the budget pays for 20 of 100 sends
    assert terminated


def test_influence_is_one_sparse_product_equal_to_the_dense_mean() -> None:
    rng = np.random.default_rng(1)
    adjacency = sparse.random(300, 300, density=0.03, format="csr", random_state=2,
                              dtype=np.float32)
    adjacency = adjacency + adjacency.T
    responded = rng.random(300) < 0.3
    dense = adjacency.toarray()
    degree = dense.sum(1)
    expected = np.divide(dense @ responded, degree, out=np.zeros(300), where=degree > 0)
    operator = InfluenceOperator(adjacency)
    np.testing.assert_allclose(operator.neighbour_share(responded), expected, rtol=1e-5)
    neighbours, weights = operator.row(7)
    assert weights.sum() == pytest.approx(1.0) or neighbours.size == 0
    np.testing.assert_allclose(operator.matrix.toarray() @ responded, expected, rtol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: nx.watts_strogatz_graph(400, 6, 0.2, seed=1),
    lambda: nx.relabel_nodes(nx.barabasi_albert_graph(400, 3, seed=2),
                             dict(enumerate(np.random.default_rng(0).permutation(400)))),
    lambda: nx.DiGraph(nx.gnp_random_graph(400, 0.02, seed=3, directed=True)),
    lambda: nx.Graph([(0, 1, {"weight": 2.5}), (1, 2), (2, 2), (399, 0)]),
])
def test_fast_graph_conversion_matches_networkx(make) -> None:  # noqa: ANN001
    graph = make()
    graph.add_nodes_from(range(400))
    fast = graph_to_adjacency(graph, 400)
    slow = nx.to_scipy_sparse_array(graph, nodelist=range(400), dtype=np.float32)
    assert abs(fast - slow).sum() == 0 and fast.dtype == np.float32
    assert fast.indices.dtype == np.int32


def test_cohort_state_is_float32_arrays_under_200_bytes_per_recipient() -> None:
    n = 20_000
    adjacency = build_adjacency(NetworkConfig(params={"k": 6}), n, np.random.default_rng(0))
    model = CampaignModel(PERSONAS, [n // 2, n // 2], CAMPAIGNS, dynamics(), EVENTS,
                          adjacency=adjacency, rng=0)
    model.send([0, 1])
    assert len(model.agents) == 2  # no per-recipient Python objects
    for agent in model.cohorts:
        assert agent.fatigue.base is model.fatigue
        for name in ("base_logit", "price_sensitivity", "fatigue_rate", "susceptibility",
                     "organic"):
            assert getattr(agent.traits, name).dtype == np.float32
    assert model.fatigue.dtype == np.float32 and model.influence.dtype == np.float32
    assert model.responded.dtype == bool
    assert model.state_nbytes / n <= 200


def test_event_effects_are_cached_per_week_and_read_only() -> None:
    calendar = EventCalendar(EVENTS, [c.channel for c in CAMPAIGNS])
    shift, price, fatigue = calendar.effects(5, "hunters")
    assert calendar.effects(5, "hunters")[0] is shift
    assert shift.tolist() == pytest.approx([0, 0, 0.7, 0]) and fatigue == 1.0
    assert calendar.effects(3, "regulars")[1].tolist() == pytest.approx([1.5] * 4)
    with pytest.raises(ValueError):
        shift[0] = 1.0


def test_constant_traits_give_identical_engines_without_influence() -> None:
    persona = Persona(id="c", traits=PersonaTraits(propensity={"default": Constant(value=0.2)}))
    dyn = DynamicsConfig.model_validate({"influence": {"enabled": False}})
    a = CampaignModel([persona], [500], CAMPAIGNS, dyn, rng=0)
    b = RecipientModel([persona], [500], CAMPAIGNS, dyn, rng=0)
    for _ in range(3):
        a.send([0])
        b.send([0])
    np.testing.assert_allclose(a.fatigue, b.fatigue, rtol=1e-6)
    np.testing.assert_allclose(a.expected_response([1]), b.expected_response([1]), rtol=1e-4)


@pytest.mark.slow
def test_cli_runs_end_to_end_with_the_per_recipient_engine(tmp_path) -> None:  # noqa: ANN001
    from conftest import TINY_CONFIG, write_yaml
    from typer.testing import CliRunner

    from personasim.cli import app

    config = write_yaml(tmp_path / "tiny.yaml", TINY_CONFIG)
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(tmp_path / "run"),
                                      "--quiet", "--set", "simulation.engine=per_recipient"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "prioritization.csv").is_file()


@pytest.mark.slow
def test_benchmark_quick_mode_prints_the_promised_json_lines() -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_simulation.py"
    done = subprocess.run([sys.executable, str(script), "--quick"], capture_output=True,
                          text=True, check=True, timeout=600)
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    sizes = [line for line in lines if "recipients" in line]
    assert [s["recipients"] for s in sizes] == [2_000, 5_000]
    assert {"cohort_recipient_steps_per_s", "per_recipient_recipient_steps_per_s",
            "speedup_vs_mesa_agents", "graph_build_s", "cohort_model_build_s",
            "cohort_peak_rss_bytes_per_recipient"} <= set(sizes[-1])
    assert any("step_ns_per_edge" in line for line in lines)
    assert any("ppo_fps_100k" in line and "env_steps_per_s_100k" in line for line in lines)
    summary = lines[-1]
    assert {"speedup_vs_mesa_agents", "recipient_steps_per_s_1m",
            "bytes_per_recipient_1m"} <= set(summary)
    assert summary["bytes_per_recipient_1m"] <= 200
