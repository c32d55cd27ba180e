"""Targeting under a budget on held-out customers: the plan against simple ways to spend it.

At each budget (a share of the held-out customers e-mailed), three policies send the same
number of e-mails ``m`` (the plan's):

- ``plan``: the plan's choice for each customer (one message at most);
- ``random_best_arm``: ``m`` customers at random, sent the arm that did best in training
  (a stochastic policy: every customer gets it with probability ``m / n``);
- ``t_learner``: the ``m`` customers with the highest T-learner gain, sent their best arm.

Values are inverse-propensity-weighted over the randomized arms, per customer, with normal
95% intervals; the plan's paired differences against the other two have their own intervals.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from personasim.evaluation.offline import HeldOut, ipw_terms, mean_interval, one_hot

#: Budgets evaluated, as the share of held-out customers e-mailed.
BUDGET_SHARES: tuple[float, ...] = (0.10, 0.25, 0.50)
#: Columns of ``budget_targeting.csv``.
BUDGET_COLUMNS: tuple[str, ...] = (
    "budget_share", "policy", "metric", "emailed_share", "value", "ci_low", "ci_high",
    "plan_minus", "diff_low", "diff_high",
)
PLAN, RANDOM, T_LEARNER = "plan", "random_best_arm", "t_learner"


def budget_policies(plan_choice: np.ndarray, t_gain: np.ndarray, t_best: np.ndarray,
                    best_arm: int, data: HeldOut) -> dict[str, np.ndarray]:
    """The three policies at the plan's number of e-mails (see the module notes)."""
    k = len(data.campaign_ids)
    sent = plan_choice != data.control
    m = int(sent.sum())
    random = np.zeros((data.n, k))
    random[:, best_arm] = m / data.n
    random[:, data.control] += 1.0 - m / data.n
    order = np.argsort(-t_gain, kind="stable")[:m]
    t_choice = np.full(data.n, data.control, dtype=np.int64)
    t_choice[order] = t_best[order]
    return {PLAN: one_hot(plan_choice, k), RANDOM: random, T_LEARNER: one_hot(t_choice, k)}


def budget_rows(share: float, policies: Mapping[str, np.ndarray], data: HeldOut,
                metrics: Mapping[str, tuple[str, bool]]) -> pd.DataFrame:
    """Rows of :data:`BUDGET_COLUMNS` for one budget."""
    rows = []
    for metric, (outcome, net) in metrics.items():
        plan_terms = ipw_terms(policies[PLAN], data, outcome, net)
        for name, policy in policies.items():
            terms = ipw_terms(policy, data, outcome, net)
            value, low, high = mean_interval(terms)
            diff = mean_interval(plan_terms - terms) if name != PLAN else (np.nan,) * 3
            emailed = float(1.0 - policy[:, data.control].mean())
            rows.append((share, name, metric, emailed, value, low, high, *diff))
    return pd.DataFrame(rows, columns=list(BUDGET_COLUMNS))


def training_best_arm(arm: np.ndarray, outcome: np.ndarray, costs: np.ndarray, value: float,
                      control: int) -> int:
    """The sendable arm with the highest mean net value in the training data."""
    best, best_value = -1, -np.inf
    for a in range(len(costs)):
        if a == control or not np.any(arm == a):
            continue
        net = float(outcome[arm == a].mean()) * value - float(costs[a])
        if net > best_value:
            best, best_value = a, net
    if best < 0:
        raise ValueError("no sendable arm in the training data")
    return best
