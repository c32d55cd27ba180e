"""Offline evaluation of targeting policies on held-out customers of a randomized experiment.

A policy is an ``(n_customers, n_arms)`` matrix of action probabilities. Because each held-out
customer got an arm at random with a known propensity ``e`` (1/3 in the Hillstrom
experiment), the value of any policy ``pi`` is estimated without bias by inverse propensity
weighting: ``V = mean_i pi(A_i | x_i) / e_i * Y_i``. Net value subtracts the e-mail cost the
policy would pay, which is known exactly: ``cost * P_pi(send | x_i)``. Intervals are normal
approximations over customers; the advantage of one policy over another is computed on the
same customers (paired), which is much tighter than comparing two separate intervals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from personasim.audience.profiles import PersonaProfiles
from personasim.core.types import CAMPAIGN_ID, RECIPIENT_ID

logger = logging.getLogger(__name__)

Z95 = 1.959963984540054
TABLE = "prioritization_table"
EVAL_COLUMNS = ("policy", "metric", "value", "ci_low", "ci_high", "share_emailed",
                "table_advantage", "advantage_low", "advantage_high")


@dataclass(frozen=True)
class HeldOut:
    """Held-out customers of a randomized test, aligned row by row.

    Attributes
    ----------
    recipient_ids
        Customer ids.
    arm
        Index into ``campaign_ids`` of the arm each customer got.
    propensity
        Probability of that arm under the randomization.
    outcomes
        Metric name -> ``(n,)`` float64 per-customer outcome (e.g. ``visit``, ``spend`` and
        ``value``, the config's outcome in currency).
    campaign_ids
        Arm labels; ``control`` is the index of the arm that sends nothing.
    control
        Index of the no-send arm.
    costs
        ``(n_arms,)`` cost of sending each arm (0 for the control).
    """

    recipient_ids: np.ndarray
    arm: np.ndarray
    propensity: np.ndarray
    outcomes: Mapping[str, np.ndarray]
    campaign_ids: tuple[str, ...]
    control: int
    costs: np.ndarray

    @property
    def n(self) -> int:
        """Number of held-out customers."""
        return len(self.arm)

    @classmethod
    def from_table(cls, table: pd.DataFrame, campaign_ids: tuple[str, ...], control: str,
                   costs: Mapping[str, float], outcomes: Mapping[str, str | tuple[str, float]]
                   ) -> HeldOut:
        """Build from A/B rows (``recipient_id, campaign_id, propensity`` + outcome columns).

        ``costs`` maps a campaign id to its send cost (missing: 0); ``outcomes`` maps a
        metric name to a column, or to ``(column, multiplier)``.
        """
        index = {c: k for k, c in enumerate(campaign_ids)}
        arm = table[CAMPAIGN_ID].astype(str).map(index)
        if arm.isna().any():
            bad = table[CAMPAIGN_ID].iloc[int(np.flatnonzero(arm.isna().to_numpy())[0])]
            raise ValueError(f"held-out arm {bad!r} is not one of {', '.join(campaign_ids)}")
        propensity = (table["propensity"].to_numpy(np.float64) if "propensity" in table
                      else np.full(len(table), 1.0 / len(campaign_ids)))
        values: dict[str, np.ndarray] = {}
        for name, spec in outcomes.items():
            column, scale = (spec, 1.0) if isinstance(spec, str) else spec
            values[name] = table[column].to_numpy(np.float64) * scale
        cost = np.array([0.0 if c == control else float(costs.get(c, 0.0))
                         for c in campaign_ids])
        return cls(table[RECIPIENT_ID].astype(str).to_numpy(), arm.to_numpy(np.int64),
                   propensity, values, tuple(campaign_ids), index[control], cost)


def one_hot(choice: np.ndarray, n_arms: int) -> np.ndarray:
    """A deterministic policy: ``(n, n_arms)`` with a 1 at each customer's chosen arm."""
    choice = np.asarray(choice, dtype=np.int64)
    out = np.zeros((len(choice), n_arms))
    out[np.arange(len(choice)), choice] = 1.0
    return out


def send_share(policy: np.ndarray, control: int) -> np.ndarray:
    """Per-customer probability that ``policy`` sends something (any arm but the control)."""
    return 1.0 - policy[:, control]


def ipw_terms(policy: np.ndarray, data: HeldOut, metric: str, net: bool = False) -> np.ndarray:
    """Per-customer IPW terms whose mean is the policy's value for ``metric``.

    With ``net`` the policy's known send cost is subtracted from each term.
    """
    rows = np.arange(data.n)
    terms = policy[rows, data.arm] / data.propensity * data.outcomes[metric]
    if net:
        terms = terms - policy @ data.costs
    return terms


def mean_interval(terms: np.ndarray) -> tuple[float, float, float]:
    """Mean of ``terms`` with a normal 95% interval."""
    mean = float(terms.mean())
    half = Z95 * float(terms.std(ddof=1)) / np.sqrt(len(terms)) if len(terms) > 1 else np.nan
    return mean, mean - half, mean + half


def policy_values(policies: Mapping[str, np.ndarray], data: HeldOut,
                  metrics: Mapping[str, tuple[str, bool]], reference: str = TABLE
                  ) -> pd.DataFrame:
    """IPW value of every policy for every metric, with 95% intervals.

    Parameters
    ----------
    policies
        Name -> ``(n, n_arms)`` action probabilities on ``data``'s customers.
    data
        The held-out customers.
    metrics
        Reported name -> ``(outcome, net)``: the outcome in ``data.outcomes`` and whether the
        send cost is subtracted.
    reference
        The policy whose paired advantage over each policy is reported (``value`` of the
        reference minus the policy's, with a 95% interval).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EVAL_COLUMNS`, one row per policy x metric.
    """
    rows = []
    for metric, (outcome, net) in metrics.items():
        ref = (ipw_terms(policies[reference], data, outcome, net)
               if reference in policies else None)
        for name, policy in policies.items():
            terms = ipw_terms(policy, data, outcome, net)
            value, low, high = mean_interval(terms)
            adv = mean_interval(ref - terms) if ref is not None else (np.nan,) * 3
            rows.append((name, metric, value, low, high,
                         float(send_share(policy, data.control).mean()), *adv))
    return pd.DataFrame(rows, columns=list(EVAL_COLUMNS))


def fixed_policies(data: HeldOut, seed: int) -> dict[str, np.ndarray]:
    """One arm to everyone (``<arm>_to_all``; the control is ``nothing``) and ``random``.

    ``random`` draws each customer's arm uniformly with a seeded generator.
    """
    k = len(data.campaign_ids)
    policies = {}
    for a, cid in enumerate(data.campaign_ids):
        name = "nothing" if a == data.control else f"{cid}_to_all"
        policies[name] = one_hot(np.full(data.n, a), k)
    policies["random"] = one_hot(np.random.default_rng(seed).integers(0, k, data.n), k)
    return policies


def t_learner(train_x: pd.DataFrame, train_arm: np.ndarray, train_y: np.ndarray,
              test_x: pd.DataFrame, n_arms: int, seed: int, binary: bool) -> np.ndarray:
    """A T-learner: one gradient-boosting model of the outcome per arm.

    Parameters
    ----------
    train_x, test_x
        Customer attributes (numeric, 0/1 or categorical columns).
    train_arm, train_y
        Arm index and outcome of the training customers.
    n_arms
        Number of arms.
    seed
        Seed of the models.
    binary
        Model ``P(y = 1)`` with a classifier, else ``E[y]`` with a regressor.

    Returns
    -------
    numpy.ndarray
        ``(n_test, n_arms)`` predicted outcome under each arm.

    Notes
    -----
    The models run on one OpenMP thread: on a busy 2-core machine the default thread pool
    made fitting ~50x slower (spin-waiting threads), and one thread takes well under a second.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        return _t_learner(train_x, train_arm, train_y, test_x, n_arms, seed, binary)


def _t_learner(train_x: pd.DataFrame, train_arm: np.ndarray, train_y: np.ndarray,
               test_x: pd.DataFrame, n_arms: int, seed: int, binary: bool) -> np.ndarray:
    """:func:`t_learner` without the thread limit."""
    encoder = PersonaProfiles.encoder(train_x, list(train_x.columns))
    xtr, xte = encoder.transform(train_x), encoder.transform(test_x)
    out = np.zeros((len(test_x), n_arms))
    settings = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 15,
                "min_samples_leaf": 100, "l2_regularization": 1.0, "early_stopping": True,
                "validation_fraction": 0.2, "n_iter_no_change": 10, "random_state": seed}
    for a in range(n_arms):
        rows = np.asarray(train_arm) == a
        y = np.asarray(train_y)[rows]
        if binary:
            if len(np.unique(y)) < 2:
                out[:, a] = float(y.mean()) if len(y) else 0.0
                continue
            model = HistGradientBoostingClassifier(**settings).fit(xtr[rows], y.astype(int))
            out[:, a] = model.predict_proba(xte)[:, 1]
        else:
            model = HistGradientBoostingRegressor(**settings).fit(xtr[rows], y)
            out[:, a] = np.maximum(model.predict(xte), 0.0)
    return out


def best_arm(expected: np.ndarray, value: float, costs: np.ndarray, control: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Choose ``argmax_a value * E[y | a] - cost_a`` (``costs[control]`` is ignored).

    Returns
    -------
    tuple of numpy.ndarray
        The chosen arm, the best sendable arm, and that arm's net gain over the control
        (the targeting score: positive means sending pays).
    """
    net = value * expected - np.asarray(costs, dtype=np.float64)[None, :]
    net[:, control] = value * expected[:, control]
    sendable = net.copy()
    sendable[:, control] = -np.inf
    best_send = np.argmax(sendable, axis=1)
    gain = sendable[np.arange(len(net)), best_send] - net[:, control]
    return np.where(gain > 0, best_send, control), best_send, gain


def _gains(score: np.ndarray, recommended: np.ndarray, data: HeldOut, metric: str,
           net: bool) -> tuple[np.ndarray, np.ndarray]:
    """Customers from the highest ``score`` down, and each one's IPW gain when targeted."""
    order = np.lexsort((np.arange(data.n), -np.asarray(score, dtype=np.float64)))
    arm, rec = data.arm[order], np.asarray(recommended)[order]
    y = data.outcomes[metric][order] / data.propensity[order]
    delta = ((arm == rec).astype(float) - (arm == data.control)) * y
    if net:
        delta = delta - np.where(rec != data.control, data.costs[rec], 0.0)
    return order, delta


def uplift_curve(score: np.ndarray, recommended: np.ndarray, data: HeldOut, metric: str,
                 net: bool, points: int = 51) -> pd.DataFrame:
    """Qini-style curve: IPW gain over sending nothing when the top share is targeted.

    Customers are sorted by ``score`` (highest first); the top share gets its
    ``recommended`` arm and everyone else the control. The gain per customer at each share
    is the IPW value of that policy minus the value of sending nothing.

    Returns
    -------
    pandas.DataFrame
        ``share_targeted, gain`` (``points`` rows, from 0 to 1).
    """
    _, delta = _gains(score, recommended, data, metric, net)
    cumulative = np.concatenate([[0.0], np.cumsum(delta)]) / data.n
    shares = np.linspace(0.0, 1.0, points)
    counts = np.round(shares * data.n).astype(np.int64)
    return pd.DataFrame({"share_targeted": shares, "gain": cumulative[counts]})


def gain_terms(score: np.ndarray, recommended: np.ndarray, data: HeldOut, metric: str,
               net: bool, share: float) -> np.ndarray:
    """Per-customer terms whose mean is the gain of targeting the top ``share``.

    The same gain as :func:`uplift_curve` at ``share``, kept per customer (in the data's
    order) so that two rankings can be compared on the same customers with an interval.
    """
    order, delta = _gains(score, recommended, data, metric, net)
    targeted = np.arange(data.n) < int(round(share * data.n))
    terms = np.zeros(data.n)
    terms[order] = np.where(targeted, delta, 0.0)
    return terms


def qini_coefficient(curve: pd.DataFrame) -> float:
    """Mean gap between a curve and the straight line to its end (random targeting order)."""
    x = curve["share_targeted"].to_numpy(np.float64)
    y = curve["gain"].to_numpy(np.float64)
    return float(np.mean(y - x * y[-1]))
