"""The run's honest self-check: the posterior's ranking against a T-learner on unseen A/B rows.

A seeded share of the A/B recipients (stratified by campaign) is held out. The posterior
model is refitted on the rest, and so is a scikit-learn T-learner (one gradient-boosting
model per campaign). Both rank the held-out recipients by their best campaign's estimated
net value, and each ranking is scored by inverse propensity weighting on what the held-out
recipients really did: the net value gained over sending nothing when the top 10%, 20% or
50% are contacted, and the Qini coefficient of the whole curve. The difference between the
two is paired (same recipients), with a 95% interval.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from personasim.config.campaign import Campaign
from personasim.core.types import CAMPAIGN_ID, OUTCOME, RECIPIENT_ID
from personasim.evaluation.offline import (
    HeldOut,
    gain_terms,
    mean_interval,
    qini_coefficient,
    t_learner,
    uplift_curve,
)

logger = logging.getLogger(__name__)

BUDGETS = (0.1, 0.2, 0.5)
"""Shares of the held-out recipients contacted."""
POSTERIOR, T_LEARNER = "posterior", "t_learner"
COLUMNS = ("model", "budget", "gain_per_1000", "ci_low", "ci_high", "minus_t_learner",
           "difference_low", "difference_high")

Scorer = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]
"""``(fit A/B rows, held-out recipients) -> (n, K) P(response)`` under every campaign."""


@dataclass(frozen=True)
class SelfCheck:
    """Both rankings on the held-out A/B rows.

    Attributes
    ----------
    table
        :data:`COLUMNS`: one row per model x budget (``budget`` 0 holds the Qini
        coefficient in ``gain_per_1000``).
    rows
        Held-out A/B recipients.
    posterior_loses
        The posterior's gain is below the T-learner's beyond doubt at some budget (the
        difference's 95% interval is below zero), or below it at every budget.
    """

    table: pd.DataFrame
    rows: int
    posterior_loses: bool

    def summary(self) -> dict[str, Any]:
        """For the manifest: gains per budget, the differences and the verdict."""
        out: dict[str, Any] = {"heldout_rows": self.rows, "posterior_loses": self.posterior_loses}
        for row in self.table.itertuples():
            key = "qini" if row.budget == 0 else f"gain_per_1000_at_{int(row.budget * 100)}pct"
            out.setdefault(str(row.model), {})[key] = round(float(row.gain_per_1000), 3)
            if row.model == POSTERIOR and row.budget > 0:
                out.setdefault("posterior_minus_t_learner", {})[f"{int(row.budget * 100)}pct"] = [
                    round(float(v), 3)
                    for v in (row.minus_t_learner, row.difference_low, row.difference_high)]
        return out


def split_rows(campaign_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """True for the A/B rows held out: a seeded share of each campaign's rows."""
    held = np.zeros(len(campaign_ids), dtype=bool)
    rng = np.random.default_rng(seed)
    for campaign in sorted(set(campaign_ids.tolist())):
        rows = np.flatnonzero(campaign_ids == campaign)
        held[rng.permutation(rows)[: int(round(fraction * len(rows)))]] = True
    return held


def _net(prob: np.ndarray, campaigns: list[Campaign], control: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """Best sendable campaign per recipient and its estimated net gain over the control."""
    value = np.array([c.value for c in campaigns])
    cost = np.array([0.0 if c.control else c.cost for c in campaigns])
    net = (prob - prob[:, [control]]) * value[None, :] - cost[None, :]
    net[:, control] = -np.inf
    best = net.argmax(axis=1)
    return best, net[np.arange(len(net)), best]


def run_self_check(ab_table: pd.DataFrame, recipients: pd.DataFrame, campaigns: list[Campaign],
                   attributes: list[str], held: np.ndarray, posterior_scorer: Scorer,
                   seed: int) -> SelfCheck:
    """Score the posterior's and a T-learner's rankings on the held-out A/B rows.

    Parameters
    ----------
    ab_table
        Per-recipient A/B rows: ``recipient_id, campaign_id, outcome`` (and ``propensity``).
    recipients
        Attributes by ``recipient_id``.
    campaigns
        The campaigns, one of them the control.
    attributes
        The attribute columns the T-learner reads.
    held
        Which A/B rows are held out (:func:`split_rows`).
    posterior_scorer
        Refits the posterior on the other rows and predicts the held-out recipients.
    seed
        Seed of the T-learner.
    """
    ids = tuple(c.id for c in campaigns)
    control = next(k for k, c in enumerate(campaigns) if c.control)
    fit, check = ab_table[~held].reset_index(drop=True), ab_table[held].reset_index(drop=True)
    attrs = recipients.set_index(RECIPIENT_ID)
    check_recipients = attrs.reindex(check[RECIPIENT_ID].astype(str)).reset_index()
    values = {c.id: c.value for c in campaigns}
    scored = check.assign(net_value=check[OUTCOME].to_numpy(np.float64)
                          * check[CAMPAIGN_ID].astype(str).map(values).to_numpy(np.float64))
    data = HeldOut.from_table(scored, ids, ids[control], {c.id: c.cost for c in campaigns},
                              {"value": "net_value"})
    arm = fit[CAMPAIGN_ID].astype(str).map({c: k for k, c in enumerate(ids)}).to_numpy()
    fit_x = attrs.reindex(fit[RECIPIENT_ID].astype(str))[attributes].reset_index(drop=True)
    expected = {
        POSTERIOR: posterior_scorer(fit, check_recipients).to_numpy(np.float64),
        T_LEARNER: t_learner(fit_x, arm, fit[OUTCOME].to_numpy(np.float64),
                             check_recipients[attributes], len(ids), seed, binary=True),
    }
    rankings = {name: _net(prob, campaigns, control) for name, prob in expected.items()}
    rows = []
    for budget in BUDGETS:
        terms = {name: gain_terms(score, best, data, "value", True, budget)
                 for name, (best, score) in rankings.items()}
        diff = mean_interval(terms[POSTERIOR] - terms[T_LEARNER])
        for name, term in terms.items():
            mean, low, high = mean_interval(term)
            gap = diff if name == POSTERIOR else (np.nan,) * 3
            rows.append((name, budget, 1000 * mean, 1000 * low, 1000 * high,
                         *(1000 * v for v in gap)))
    for name, (best, score) in rankings.items():
        curve = uplift_curve(score, best, data, "value", True)
        rows.append((name, 0.0, qini_coefficient(curve) * 1000, *(np.nan,) * 5))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    mine = table[(table["model"] == POSTERIOR) & (table["budget"] > 0)]
    gaps = mine["minus_t_learner"]
    loses = bool((mine["difference_high"] < 0).any() or (gaps < 0).all())
    if loses:
        worst = table.loc[gaps.idxmin()]
        logger.warning("self-check: on %d held-out A/B recipients the posterior's ranking "
                       "gains less than a T-learner's (%.1f per 1,000 at %d%% contacted, "
                       "95%% interval %.1f to %.1f); see self_check.csv", len(check),
                       worst["minus_t_learner"], int(worst["budget"] * 100),
                       worst["difference_low"], worst["difference_high"])
    return SelfCheck(table.round(4), len(check), loses)
