"""Simulated worlds with known truth for ``bench_bayes.py``.

``grid_world``: persona x campaign cells whose true rates stray from a stated prior (prior
mean and logit scale per cell) by a common shift, persona, campaign, campaign-feature and
cell effects, with exposures from 5 to 4,000 per cell (log-uniform), so that both sparse and
dense cells occur.

``targeting_world``: recipients with attributes, personas found by k-means on three of them,
and true response probabilities per campaign that depend on the attributes in ways the
personas do not capture (per-campaign slopes, a non-linear age effect, a mobile x SMS
interaction). A randomized A/B test, and a fresh population to target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from personasim.config.campaign import Campaign
from personasim.core.types import ABCounts


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class GridWorld:
    """Counts, the prior the analyst states, campaign features and the true rates."""

    counts: ABCounts
    prior_mean: np.ndarray
    prior_scale: np.ndarray
    features: np.ndarray
    truth: np.ndarray


def grid_world(rng: np.random.Generator, n_personas: int, n_campaigns: int) -> GridWorld:
    """One grid world (see the module docstring)."""
    p_, k_ = n_personas, n_campaigns
    prior_logit = (rng.normal(-3.0, 0.7, p_)[:, None] + rng.normal(0, 0.5, k_)[None, :]
                   + rng.normal(0, 0.3, (p_, k_)))
    scale = rng.uniform(0.3, 1.0, (p_, k_))
    discount = rng.choice([0.0, 0.1, 0.2, 0.3], k_)
    z = (discount - discount.mean()) / (discount.std() or 1.0)
    sd_persona, sd_campaign = rng.uniform(0.1, 0.5, 2)
    tau = rng.uniform(0.3, 1.2)
    eta = (prior_logit + rng.normal(0, 0.3)
           + sd_persona * rng.normal(size=p_)[:, None]
           + (sd_campaign * rng.normal(size=k_) + rng.normal(0, 0.2) * z)[None, :]
           + tau * scale * rng.normal(size=(p_, k_)))
    truth = _sigmoid(eta)
    exposures = np.round(np.exp(rng.uniform(np.log(5), np.log(4000), (p_, k_)))).astype(np.int64)
    responses = rng.binomial(exposures, truth)
    counts = ABCounts(tuple(f"p{j}" for j in range(p_)), tuple(f"c{k}" for k in range(k_)),
                      exposures, responses)
    return GridWorld(counts, _sigmoid(prior_logit), scale, discount[:, None], truth)


@dataclass(frozen=True)
class TargetingWorld:
    """An A/B test and a population to target, with true response probabilities."""

    campaigns: list[Campaign]
    ab_recipients: pd.DataFrame
    ab_table: pd.DataFrame
    population: pd.DataFrame
    truth: np.ndarray  # (n_population, n_campaigns), campaign order of ``campaigns``
    features: tuple[str, ...]


ATTRIBUTES = ("age", "income", "tenure", "mobile")
PERSONA_FEATURES = ["age", "income", "tenure"]


def _recipients(rng: np.random.Generator, n: int, prefix: str) -> pd.DataFrame:
    return pd.DataFrame({
        "recipient_id": [f"{prefix}{i:06d}" for i in range(n)],
        "consent": True,
        "age": rng.normal(40, 12, n).round(1),
        "income": rng.normal(0, 1, n).round(3),
        "tenure": rng.exponential(3, n).round(2),
        "mobile": rng.random(n) < 0.4,
    })


def _true_probability(frame: pd.DataFrame, params: dict[str, np.ndarray]) -> np.ndarray:
    age = (frame["age"].to_numpy() - 40) / 12
    x = np.column_stack([age, frame["income"].to_numpy(),
                         (frame["tenure"].to_numpy() - 3) / 3,
                         frame["mobile"].to_numpy(np.float64)])
    eta = params["base"][None, :] + x @ params["slopes"].T
    eta += params["curve"] * np.sin(2 * age)[:, None]  # personas see age only coarsely
    eta[:, 3] += params["mobile_sms"] * x[:, 3]
    return _sigmoid(eta)


def targeting_world(rng: np.random.Generator, n_ab: int = 4000,
                    n_population: int = 20_000) -> TargetingWorld:
    """One targeting world: a control and three campaigns (see the module docstring)."""
    campaigns = [
        Campaign(id="holdout", control=True),
        Campaign(id="email_sale", channel="email", cost=0.10, value=12.0,
                 features={"discount": 0.2}),
        Campaign(id="email_new", channel="email", cost=0.10, value=15.0),
        Campaign(id="sms_flash", channel="sms", cost=0.25, value=10.0,
                 features={"discount": 0.15}),
    ]
    params = {
        "base": np.array([-3.4, -2.9, -3.1, -3.0]) + rng.normal(0, 0.2, 4),
        "slopes": np.vstack([rng.normal(0, 0.15, 4)]
                            + [rng.normal(0, 0.45, 4) for _ in range(3)]),
        "curve": rng.uniform(0.2, 0.5),
        "mobile_sms": rng.uniform(0.5, 1.0),
    }
    ab_recipients = _recipients(rng, n_ab, "a")
    truth_ab = _true_probability(ab_recipients, params)
    arm = rng.integers(0, len(campaigns), n_ab)
    outcome = (rng.random(n_ab) < truth_ab[np.arange(n_ab), arm]).astype(np.int8)
    ab_table = pd.DataFrame({
        "recipient_id": ab_recipients["recipient_id"],
        "campaign_id": np.array([c.id for c in campaigns], dtype=object)[arm],
        "outcome": outcome,
    })
    population = _recipients(rng, n_population, "r")
    return TargetingWorld(campaigns, ab_recipients, ab_table, population,
                          _true_probability(population, params), ATTRIBUTES)


def net_of(campaigns: list[Campaign], probability: np.ndarray) -> np.ndarray:
    """Incremental value net of cost of each sendable campaign, ``(n, n_sendable)``.

    ``probability`` is ``(n, n_campaigns)`` response probabilities in ``campaigns`` order.
    """
    control = next(i for i, c in enumerate(campaigns) if c.control)
    sendable = [i for i, c in enumerate(campaigns) if not c.control]
    value = np.array([campaigns[i].value for i in sendable])
    cost = np.array([campaigns[i].cost for i in sendable])
    uplift = probability[:, sendable] - probability[:, [control]]
    return uplift * value[None, :] - cost[None, :]


def net_values(world: TargetingWorld) -> np.ndarray:
    """True incremental value net of cost of each sendable campaign, ``(n, n_sendable)``."""
    return net_of(world.campaigns, world.truth)


def value_of(picks: np.ndarray, net: np.ndarray) -> float:
    """Total true net value of ``picks`` (index into sendable campaigns, -1 = no send)."""
    rows = np.flatnonzero(picks >= 0)
    return float(net[rows, picks[rows]].sum())
