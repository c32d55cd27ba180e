"""Held-out evaluation: IPW policy values, the T-learner, uplift curves, sim-to-real, the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hillstrom_helpers import shared_hillstrom
from typer.testing import CliRunner

from personasim.cli import app
from personasim.config.campaign import Campaign
from personasim.config.persona import Persona
from personasim.core.types import Diagnostics, Posterior
from personasim.evaluation.offline import (
    EVAL_COLUMNS,
    HeldOut,
    best_arm,
    fixed_policies,
    ipw_terms,
    one_hot,
    policy_values,
    qini_coefficient,
    t_learner,
    uplift_curve,
)
from personasim.evaluation.sim_to_real import SimulationSettings, sim_to_real, wilson_interval

ARMS = ("mens", "womens", "none")
METRICS = {"visit": ("visit", False), "net_value": ("visit", True)}


def randomized(n: int = 30_000, seed: int = 0) -> tuple[HeldOut, np.ndarray, np.ndarray]:
    """A randomized test: group 1 answers arm 1, everyone else arm 0; arm 2 sends nothing."""
    rng = np.random.default_rng(seed)
    group = (rng.random(n) < 0.4).astype(int)
    arm = rng.integers(0, 3, n)
    rate = np.array([[0.20, 0.12, 0.10], [0.12, 0.30, 0.10]])[group, arm]
    table = pd.DataFrame({"recipient_id": [f"r{i}" for i in range(n)],
                          "campaign_id": np.array(ARMS)[arm], "propensity": 1 / 3,
                          "visit": (rng.random(n) < rate).astype(int)})
    data = HeldOut.from_table(table, ARMS, "none", {"mens": 0.05, "womens": 0.05},
                              {"visit": "visit"})
    return data, group, rate


def test_ipw_recovers_each_arms_true_value() -> None:
    data, group, _ = randomized()
    values = policy_values(fixed_policies(data, seed=1), data, METRICS, reference="nothing")
    assert list(values.columns) == list(EVAL_COLUMNS)
    visit = values[values["metric"] == "visit"].set_index("policy")
    truth = {"mens_to_all": 0.6 * 0.20 + 0.4 * 0.12, "womens_to_all": 0.6 * 0.12 + 0.4 * 0.30,
             "nothing": 0.10, "random": np.mean([0.6 * r0 + 0.4 * r1 for r0, r1 in
                                                 ((0.20, 0.12), (0.12, 0.30), (0.10, 0.10))])}
    for policy, value in truth.items():
        row = visit.loc[policy]
        assert row["ci_low"] < value < row["ci_high"], policy
        assert row["ci_high"] - row["ci_low"] < 0.03


def test_net_value_subtracts_exactly_the_cost_of_the_sends() -> None:
    data, _, _ = randomized(3000)
    values = policy_values(fixed_policies(data, seed=1), data, METRICS, reference="nothing")
    by = values.pivot(index="policy", columns="metric", values="value")
    assert by.loc["mens_to_all", "net_value"] == pytest.approx(by.loc["mens_to_all", "visit"]
                                                               - 0.05)
    assert by.loc["nothing", "net_value"] == by.loc["nothing", "visit"]
    share = values.set_index(["policy", "metric"])["share_emailed"]
    assert share["nothing", "visit"] == 0 and share["mens_to_all", "visit"] == 1


def test_paired_advantage_is_tighter_than_separate_intervals() -> None:
    data, group, _ = randomized()
    policies = fixed_policies(data, seed=1)
    policies["oracle"] = one_hot(np.where(group == 1, 1, 0), 3)
    near = np.where(np.arange(data.n) % 10 == 0, 2, np.where(group == 1, 1, 0))
    policies["near_oracle"] = one_hot(near, 3)  # differs from the oracle on 10% of customers
    values = policy_values(policies, data, METRICS, reference="oracle")
    visit = values[values["metric"] == "visit"].set_index("policy")
    assert visit.loc["mens_to_all", "advantage_low"] > 0  # the oracle beats Mens to all
    assert visit.loc["oracle", "table_advantage"] == 0
    near_row = visit.loc["near_oracle"]
    paired = near_row["advantage_high"] - near_row["advantage_low"]
    assert paired < 0.5 * (near_row["ci_high"] - near_row["ci_low"])
    assert near_row["advantage_low"] > 0  # detected although the two intervals overlap
    assert near_row["ci_high"] > visit.loc["oracle", "ci_low"]


def test_ipw_terms_weight_only_matching_customers() -> None:
    data, _, _ = randomized(300)
    terms = ipw_terms(one_hot(np.zeros(data.n, int), 3), data, "visit")
    assert np.all(terms[data.arm != 0] == 0)
    assert np.allclose(terms[data.arm == 0], 3 * data.outcomes["visit"][data.arm == 0])


def test_best_arm_holds_back_when_the_gain_does_not_pay() -> None:
    expected = np.array([[0.20, 0.15, 0.10], [0.13, 0.14, 0.10], [0.12, 0.30, 0.10]])
    choice, best_send, gain = best_arm(expected, 1.0, np.array([0.05, 0.05, 0.0]), 2)
    assert choice.tolist() == [0, 2, 1] and best_send.tolist() == [0, 1, 1]
    assert gain == pytest.approx([0.05, -0.01, 0.15])


def test_uplift_curve_rewards_the_right_order() -> None:
    data, group, _ = randomized()
    rec = np.where(group == 1, 1, 0)
    good = uplift_curve(group.astype(float), rec, data, "visit", net=False)
    bad = uplift_curve(-group.astype(float), rec, data, "visit", net=False)
    assert good["gain"].iloc[0] == 0 and good["gain"].iloc[-1] == pytest.approx(
        bad["gain"].iloc[-1])
    assert qini_coefficient(good) > 0.01 > -0.01 > qini_coefficient(bad)
    everyone = policy_values({"rec": one_hot(rec, 3), **fixed_policies(data, 1)}, data,
                             METRICS, "rec").set_index(["policy", "metric"])["value"]
    assert good["gain"].iloc[-1] == pytest.approx(everyone["rec", "visit"]
                                                  - everyone["nothing", "visit"])
    net = uplift_curve(group.astype(float), rec, data, "visit", net=True)
    assert net["gain"].iloc[-1] == pytest.approx(good["gain"].iloc[-1] - 0.05)


def test_t_learner_finds_the_groups_best_arm() -> None:
    data, group, _ = randomized(24_000, seed=3)
    x = pd.DataFrame({"segment": np.where(group == 1, "womens_buyer", "mens_buyer"),
                      "noise": np.random.default_rng(0).normal(size=data.n)})
    train, test = np.arange(data.n) < 16_000, np.arange(data.n) >= 16_000
    mu = t_learner(x[train], data.arm[train], data.outcomes["visit"][train],
                   x[test].reset_index(drop=True), 3, seed=0, binary=True)
    choice, _, _ = best_arm(mu, 1.0, np.array([0.05, 0.05, 0.0]), 2)
    assert (choice == np.where(group[test] == 1, 1, 0)).mean() > 0.9


def test_wilson_interval_covers_and_shrinks() -> None:
    low, high = wilson_interval(np.array([10, 1000]), np.array([100, 10_000]), 0.9)
    assert low[0] < 0.1 < high[0] and (high[1] - low[1]) < (high[0] - low[0]) / 5


def heldout_cells(rates: np.ndarray, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for j, k in np.ndindex(rates.shape):
        hits = rng.random(n) < rates[j, k]
        rows.append(pd.DataFrame({"persona_id": f"p{j}", "campaign_id": ARMS[k],
                                  "outcome": hits.astype(int)}))
    return pd.concat(rows, ignore_index=True)


def test_sim_to_real_covers_a_true_posterior_and_flags_a_wrong_one() -> None:
    rng = np.random.default_rng(0)
    truth = np.column_stack([rng.uniform(0.15, 0.3, 8), rng.uniform(0.1, 0.2, 8),
                             rng.uniform(0.03, 0.1, 8)])
    personas = [Persona(id=f"p{j}") for j in range(8)]
    campaigns = [Campaign(id="mens", value=1, cost=0.05),
                 Campaign(id="womens", value=1, cost=0.05), Campaign(id="none", control=True)]
    diag = Diagnostics("test", 1.0, 1000.0, 0, 0.0)
    noise = rng.normal(0, 0.004, (300, *truth.shape))
    right = Posterior(tuple(p.id for p in personas), ARMS,
                      (truth + noise).astype(np.float32), diag)
    wrong = Posterior(right.persona_ids, ARMS, (right.draws * 1.4).astype(np.float32), diag)
    held = heldout_cells(truth, 1500, seed=1)
    good = sim_to_real(personas, right, campaigns, held, SimulationSettings(), 2, 120)
    bad = sim_to_real(personas, wrong, campaigns, held, SimulationSettings(), 2, 120)
    assert len(good) == 24 and good["heldout_customers"].eq(1500).all()
    assert good["inside"].mean() >= 0.75 > 0.4 > bad["inside"].mean()
    assert (good["simulated_low"] < good["simulated_rate"]).all()
    assert np.allclose(good["simulated_rate"], truth.ravel(), atol=0.02)


@pytest.fixture(scope="module")
def hillstrom_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real run: 3,000 sampled Hillstrom customers, half held out."""
    data = shared_hillstrom()
    base = tmp_path_factory.mktemp("hillstrom")
    config = base / "h.yaml"
    config.write_text(yaml.safe_dump({
        "name": "hillstrom-small", "seed": 5,
        "dataset": {"name": "hillstrom", "path": str(data), "sample": 3000},
        "synthesis": {"k": 3, "features": ["recency", "log_history", "mens", "womens"]},
        "simulation": {"horizon": 3}, "dynamics": {"influence": {"enabled": False}},
        "inference": {"nuts_sampler": "pymc", "draws": 200, "tune": 200, "chains": 2,
                      "ess_min": 50, "rhat_max": 1.1},
        "policy": {"total_timesteps": 64, "eval_seeds": 2,
                   "hyperparameters": {"n_steps": 32, "batch_size": 16}},
        "prioritization": {"membership_temperature": 0.1},
    }))
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(base / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    return base / "run"


def test_run_scores_the_table_on_held_out_customers(hillstrom_run: Path) -> None:
    evaluation = pd.read_csv(hillstrom_run / "offline_evaluation.csv")
    assert list(evaluation.columns) == list(EVAL_COLUMNS)
    assert set(evaluation["policy"]) == {"prioritization_table", "t_learner", "nothing",
                                         "random", "mens_email_to_all", "womens_email_to_all",
                                         "first_choice_for_all"}
    assert set(evaluation["metric"]) == {"visit", "spend", "net_value"}
    assert (evaluation["ci_low"] <= evaluation["value"]).all()
    manifest = json.loads((hillstrom_run / "manifest.json").read_text())
    left_out = manifest["heldout"]["plan_holdout_left_out"]
    assert 0 < left_out < 1500 * 0.1  # the plan holds out 5% of every customer
    assert manifest["heldout"]["customers"] == 1500 - left_out
    ranked = pd.read_csv(hillstrom_run / "prioritization.csv")["recipient_id"].nunique()
    assert ranked == 3000  # every customer is ranked; only the training half fit the model
    assert manifest["ab_test"]["exposures"] == 1500


def test_run_writes_sim_to_real_qini_and_report(hillstrom_run: Path) -> None:
    sim = pd.read_csv(hillstrom_run / "sim_to_real.csv")
    assert len(sim) == 9 and sim["heldout_customers"].sum() == 1500
    assert sim["inside"].dtype == bool
    curves = pd.read_csv(hillstrom_run / "qini.csv")
    assert set(curves["policy"]) == {"prioritization_table", "t_learner"}
    for name in ("qini.png", "sim_to_real.png", "report.html", "card_persona_1.png"):
        assert (hillstrom_run / name).stat().st_size > 1000, name
    page = (hillstrom_run / "report.html").read_text()
    assert page.count("class=card>") == 3 and "who spent $" in page
