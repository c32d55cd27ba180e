"""Evidence classes per persona x campaign cell, and the risk-aware send rule."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from personasim.config.campaign import Campaign
from personasim.core.types import ABCounts, Diagnostics, Posterior
from personasim.ranking.evidence import evidence_table, evidence_warnings
from personasim.ranking.plan_table import (
    benefit_of_doubt,
    pair_evidence,
    risk_adjusted,
    table_matrices,
)


def _posterior(persona_ids: tuple[str, ...], campaign_ids: tuple[str, ...],
               spread: float) -> Posterior:
    rng = np.random.default_rng(0)
    draws = np.clip(rng.normal(0.1, spread, (2000, len(persona_ids), len(campaign_ids))),
                    1e-4, 1)
    return Posterior(persona_ids, campaign_ids, draws.astype(np.float32),
                     Diagnostics("test", 1.0, 2000.0, 0, 0.0))


def test_cells_are_tested_thin_or_untested_and_warned(caplog: pytest.LogCaptureFixture) -> None:
    counts = ABCounts(("a", "b"), ("ctl", "sale"), np.array([[500, 500], [40, 500]]),
                      np.array([[50, 60], [4, 3]]))
    posterior = _posterior(("a", "b", "new"), ("ctl", "sale", "vip"), 0.01)
    table = evidence_table(counts, posterior)
    kind = table.set_index(["persona_id", "campaign_id"])["evidence"]
    assert kind["a", "sale"] == "tested"
    assert kind["b", "ctl"] == "thin"  # 40 exposures
    assert kind["b", "sale"] == "thin"  # 3 responses
    assert kind["a", "vip"] == kind["new", "sale"] == "untested"
    # a Beta-like spread of 0.01 around 0.1 is worth about 900 observations
    assert table["effective_sample_size"].between(700, 1100).all()
    with caplog.at_level(logging.WARNING):
        warnings = evidence_warnings(table, control="ctl")
    assert warnings[0] == "campaign 'vip' has no A/B results: its estimate is the prior"
    assert "rest on thin or no A/B evidence" in warnings[1]
    assert "plan.send_rule" in caplog.text


def test_send_rules_value_weak_estimates_at_their_lower_bound() -> None:
    campaigns = [Campaign(id="ctl", control=True), Campaign(id="sale", value=10.0, cost=0.1),
                 Campaign(id="vip", value=30.0, cost=0.5)]
    recipients = pd.DataFrame({"recipient_id": ["r0", "r1"], "persona_id": ["a", "a"],
                               "consent": True})
    table = pd.DataFrame({
        "recipient_id": ["r0", "r0", "r1", "r1"], "campaign_id": ["sale", "vip"] * 2,
        "p_response": [0.2, 0.3] * 2, "uplift": [0.1, 0.2] * 2,
        "priority_low": [0.05 * 10 - 0.1, -0.1 * 30 - 0.5] * 2,
        "priority_high": [0.15 * 10 - 0.1, 0.5 * 30 - 0.5] * 2,
    })
    matrices = table_matrices(table, recipients, campaigns)
    assert np.allclose(matrices.p_control, 0.1)
    assert np.allclose(matrices.uplift_low, [[0.05, -0.1]] * 2)
    assert np.allclose(matrices.uplift_high, [[0.15, 0.5]] * 2)
    evidence = pd.DataFrame({"persona_id": ["a", "a"], "campaign_id": ["sale", "vip"],
                             "evidence": ["tested", "untested"]})
    kinds = pair_evidence(recipients, ["sale", "vip"], evidence)
    assert kinds.tolist() == [["tested", "untested"]] * 2
    mean = risk_adjusted(matrices, kinds, "mean")
    assert np.allclose(mean, [[0.2, 0.0]] * 2)  # vip at 0.1 - 0.1 (its lower bound)
    assert np.allclose(risk_adjusted(matrices, kinds, "lower_bound"), [[0.15, 0.0]] * 2)
    assert np.allclose(risk_adjusted(matrices, kinds, "explore"), matrices.p_response)
    assert pair_evidence(recipients, ["sale"], None).tolist() == [["tested"]] * 2


def test_benefit_of_doubt_needs_a_tested_cell_whose_interval_reaches_a_profit() -> None:
    campaigns = [Campaign(id="ctl", control=True), Campaign(id="a", value=10.0, cost=1.0),
                 Campaign(id="b", value=10.0, cost=1.0)]
    recipients = pd.DataFrame({"recipient_id": ["r0", "r1"], "persona_id": ["p", "q"],
                               "consent": True})
    # uplift means 0.05 (below the 0.1 that pays) with tops 0.2 (pays) or 0.08 (does not)
    table = pd.DataFrame({
        "recipient_id": ["r0", "r0", "r1", "r1"], "campaign_id": ["a", "b", "a", "b"],
        "p_response": 0.15, "uplift": 0.05, "priority_low": -1.0,
        "priority_high": [1.0, -0.2, 1.0, 1.0],
    })
    matrices = table_matrices(table, recipients, campaigns)
    evidence = pd.DataFrame({"persona_id": ["p", "p", "q", "q"],
                             "campaign_id": ["a", "b", "a", "b"],
                             "evidence": ["tested", "tested", "untested", "thin"]})
    kinds = pair_evidence(recipients, ["a", "b"], evidence)
    assert benefit_of_doubt(matrices, kinds).tolist() == [[True, False], [False, True]]
