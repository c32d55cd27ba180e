"""The self-check scores rankings on held-out A/B rows and says when the posterior loses."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from personasim.config.campaign import Campaign
from personasim.evaluation.self_check import POSTERIOR, T_LEARNER, run_self_check, split_rows

CAMPAIGNS = [Campaign(id="none", control=True), Campaign(id="mail", value=10.0, cost=0.5)]


def _ab(n: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south"], n)
    recipients = pd.DataFrame({"recipient_id": [f"r{i}" for i in range(n)], "region": region,
                               "age": rng.integers(18, 80, n)})
    lift = np.where(region == "north", 0.25, -0.05)  # mail pays in the north only
    p = np.column_stack([np.full(n, 0.1), np.clip(0.1 + lift, 0, 1)])
    arm = rng.integers(0, 2, n)
    table = pd.DataFrame({"recipient_id": recipients["recipient_id"],
                          "campaign_id": np.array(["none", "mail"])[arm],
                          "outcome": (rng.random(n) < p[np.arange(n), arm]).astype(int)})
    return table, recipients, p


def test_split_is_seeded_and_stratified() -> None:
    campaigns = np.array(["a"] * 100 + ["b"] * 300)
    held = split_rows(campaigns, 0.2, seed=3)
    assert held[:100].sum() == 20 and held[100:].sum() == 60
    np.testing.assert_array_equal(held, split_rows(campaigns, 0.2, seed=3))


def test_a_ranking_that_knows_the_truth_beats_one_that_does_not(
        caplog: pytest.LogCaptureFixture) -> None:
    table, recipients, truth = _ab()
    held = split_rows(table["campaign_id"].to_numpy(), 0.3, seed=1)
    truth_of = pd.DataFrame(truth, index=recipients["recipient_id"], columns=["none", "mail"])

    def knows(fit: pd.DataFrame, check: pd.DataFrame) -> pd.DataFrame:
        return truth_of.loc[check["recipient_id"]].reset_index(drop=True)

    def backwards(fit: pd.DataFrame, check: pd.DataFrame) -> pd.DataFrame:
        return knows(fit, check)[["mail", "none"]].set_axis(["none", "mail"], axis=1)

    good = run_self_check(table, recipients, CAMPAIGNS, ["region", "age"], held, knows, 0)
    assert not good.posterior_loses
    gains = good.table.set_index(["model", "budget"])["gain_per_1000"]
    assert gains[(POSTERIOR, 0.2)] > 0 and gains[(T_LEARNER, 0.2)] > 0
    with caplog.at_level(logging.WARNING):
        bad = run_self_check(table, recipients, CAMPAIGNS, ["region", "age"], held,
                             backwards, 0)
    assert bad.posterior_loses and "self-check" in caplog.text
    summary = bad.summary()
    assert summary["heldout_rows"] == int(held.sum())
    low, high = summary["posterior_minus_t_learner"]["50pct"][1:]
    assert high < 0  # clearly worse, not noise
