"""Synthetic data-mode worlds with known recipient-level response, for ``bench_uplift.py``.

Every world shares one audience generator (numeric, categorical string and boolean
attributes, ~90% consent) and five campaigns (a control and four sendable ones), and differs
in its true response probability ``p(x, c) = sigmoid(eta0(x) + tau_c(x))``: ``eta0`` is the
organic (control) logit and ``tau_c`` the campaign's lift on the logit scale (``tau`` of the
control is 0). All randomness comes from a seeded :class:`numpy.random.Generator`.

A world is split in half: the training half becomes the data-mode files a campaign team
has (``recipients.csv``, ``campaigns.csv``, ``ab_results.csv`` with a uniformly random arm
for every consenting training recipient); the held-out half keeps its true probabilities
for scoring and is written as ``heldout_recipients.csv`` (attributes only) for ranking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from personasim.config.campaign import Campaign

#: Categorical string attributes: levels and their shares (``islands`` is the rare level).
CATEGORICAL: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "region": (("north", "south", "east", "west", "islands"), (0.30, 0.27, 0.22, 0.19, 0.02)),
    "device": (("mobile", "desktop", "tablet"), (0.55, 0.35, 0.10)),
    "plan": (("basic", "plus", "premium"), (0.60, 0.30, 0.10)),
}
NUMERIC = ("tenure_months", "past_purchases", "avg_order")
BOOLEAN = ("app_installed", "newsletter")
ATTRIBUTES = (*NUMERIC, *CATEGORICAL, *BOOLEAN)

#: (campaign_id, channel, value, cost, control, discount); the control comes first.
CAMPAIGN_ROWS = (
    ("holdout", "email", 0.0, 0.0, True, 0.0),
    ("email_discount", "email", 12.0, 0.10, False, 0.20),
    ("email_new", "email", 15.0, 0.10, False, 0.0),
    ("sms_flash", "sms", 10.0, 0.25, False, 0.15),
    ("push_app", "push", 6.0, 0.02, False, 0.0),
)
K = len(CAMPAIGN_ROWS)  #: campaigns, control included (index 0)
BASE_LOGIT = -2.0  #: organic response about 12%


def campaigns() -> list[Campaign]:
    """The five campaigns, control first (the order of every probability matrix here)."""
    return [Campaign(id=cid, channel=ch, value=v, cost=c, control=ctrl,
                     features={"discount": d} if d else {})
            for cid, ch, v, c, ctrl, d in CAMPAIGN_ROWS]


def audience(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` recipients: ``recipient_id``, numeric, categorical and boolean attributes, consent."""
    tenure = rng.gamma(1.5, 16.0, n)
    frame = pd.DataFrame({
        "recipient_id": [f"r{i:06d}" for i in range(n)],
        "tenure_months": np.round(tenure, 1),
        "past_purchases": rng.poisson(1.0 + tenure / 12.0),
        "avg_order": np.round(rng.lognormal(np.log(55.0), 0.5, n), 2),
    })
    for name, (levels, shares) in CATEGORICAL.items():
        frame[name] = np.asarray(levels, dtype=object)[rng.choice(len(levels), n, p=shares)]
    frame["app_installed"] = rng.random(n) < 0.4
    frame["newsletter"] = rng.random(n) < 0.5
    frame["consent"] = rng.random(n) < 0.9
    return frame


# --- shared building blocks of the true logits -----------------------------------------------

def _numeric(frame: pd.DataFrame) -> np.ndarray:
    """Centred numeric/boolean design ``(n, 5)``: tenure, purchases, log order, app, newsletter."""
    return np.column_stack([
        (frame["tenure_months"].to_numpy(float) - 24.0) / 20.0,
        (frame["past_purchases"].to_numpy(float) - 3.0) / 2.0,
        (np.log(frame["avg_order"].to_numpy(float)) - np.log(55.0)) / 0.5,
        frame["app_installed"].to_numpy(float) - 0.4,
        frame["newsletter"].to_numpy(float) - 0.5,
    ])


def _codes(frame: pd.DataFrame, name: str) -> np.ndarray:
    levels = CATEGORICAL[name][0]
    return pd.Categorical(frame[name], categories=levels).codes.astype(np.intp)


def _level_effects(rng: np.random.Generator, name: str, sd: float) -> np.ndarray:
    """Per-campaign effects of each level of ``name``, ``(K - 1, n_levels)``, share-centred."""
    levels, shares = CATEGORICAL[name]
    raw = rng.normal(0.0, sd, (K - 1, len(levels)))
    return raw - (raw @ np.asarray(shares))[:, None]


def _prognostic(rng: np.random.Generator, frame: pd.DataFrame, scale: float) -> np.ndarray:
    """Organic logit: base plus attribute effects shared by every arm."""
    eta = BASE_LOGIT + scale * (_numeric(frame) @ rng.normal(0.0, 0.3, 5))
    for name in CATEGORICAL:
        eta += scale * _level_effects(rng, name, 0.25)[0][_codes(frame, name)]
    return eta


def _logits(eta0: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Stack the control and campaign logits, ``(n, K)``."""
    return np.column_stack([eta0, eta0[:, None] + tau])


Truth = Callable[[np.random.Generator, pd.DataFrame], tuple[np.ndarray, dict[str, float]]]
"""Draw a world's parameters and return its logits ``(n, K)`` and facts about it."""


# --- the worlds ------------------------------------------------------------------------------

def _mixed(rng: np.random.Generator, frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """Linear numeric lift plus a region lift scaled to the same spread (half the lift)."""
    main = np.array([0.30, 0.25, 0.35, 0.30])
    numeric = _numeric(frame) @ rng.normal(0.0, 0.35, (5, K - 1))
    region = _level_effects(rng, "region", 1.0)[:, _codes(frame, "region")].T
    region *= numeric.std(axis=0) / region.std(axis=0)
    facts = {"string_share_of_lift_variance": float(
        (region.var(axis=0) / (region.var(axis=0) + numeric.var(axis=0))).mean())}
    return _logits(_prognostic(rng, frame, 1.0), main + numeric + region), facts


def _interactions(rng: np.random.Generator,
                  frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """Region x device, tenure > 24 months, plan tier and purchases >= 5, as steps."""
    region, device = _codes(frame, "region"), _codes(frame, "device")
    plan = _codes(frame, "plan")
    tenure = frame["tenure_months"].to_numpy(float)
    inter = rng.normal(0.0, 0.9, (len(CATEGORICAL["region"][0]), len(CATEGORICAL["device"][0])))
    inter -= inter.mean(axis=0, keepdims=True) + inter.mean(axis=1, keepdims=True) - inter.mean()
    tau = np.column_stack([
        np.where(plan == 0, 0.55, -0.25) + 0.3 * (frame["past_purchases"].to_numpy() >= 5),
        np.where(tenure > 24.0, 0.75, -0.35),
        0.15 + inter[region, device],
        np.where(frame["app_installed"].to_numpy() & (device != 1), 0.9, -0.6),
    ])
    return _logits(_prognostic(rng, frame, 1.0), tau), {}


def _heterogeneity(sd: float) -> Truth:
    """Linear numeric plus categorical lifts, all with spread ``sd`` around campaign means."""

    def truth(rng: np.random.Generator,
              frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
        main = np.array([0.28, 0.24, 0.30, 0.34])
        tau = main + _numeric(frame) @ rng.normal(0.0, sd, (5, K - 1))
        for name in CATEGORICAL:
            tau += _level_effects(rng, name, sd)[:, _codes(frame, name)].T
        return _logits(_prognostic(rng, frame, 1.0), tau), {"lift_sd": sd}

    return truth


def _campaign_only(rng: np.random.Generator,
                   frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """Nothing but the campaign matters: the best single campaign is the oracle."""
    eta0 = np.full(len(frame), BASE_LOGIT)
    return _logits(eta0, np.broadcast_to([0.30, 0.20, 0.25, 0.10], (len(frame), K - 1))), {}


def _rare_level(rng: np.random.Generator,
                frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """SMS pays only on the 2% islands, premium plans hate push; mild linear lift elsewhere."""
    region, plan = _codes(frame, "region"), _codes(frame, "plan")
    tau = np.array([0.25, 0.20, -0.40, 0.35]) + _numeric(frame) @ rng.normal(0.0, 0.15, (5, 4))
    tau[:, 2] += np.where(region == 4, 1.8, 0.0)
    tau[:, 3] += np.where(plan == 2, -1.2, 0.0)
    return _logits(_prognostic(rng, frame, 1.0), tau), {
        "islands_share": float((region == 4).mean())}


def _numeric_only(rng: np.random.Generator,
                  frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    """Only numeric and boolean attributes move the lift (linear on the logit scale)."""
    tau = np.array([0.28, 0.24, 0.30, 0.34]) + _numeric(frame) @ rng.normal(0.0, 0.45, (5, 4))
    eta0 = BASE_LOGIT + _numeric(frame) @ rng.normal(0.0, 0.3, 5)
    return _logits(eta0, tau), {}


#: name -> (truth, one-line description); the order fixes each world's seed.
WORLDS: dict[str, tuple[Truth, str]] = {
    "mixed": (_mixed, "numeric lift plus a region lift of equal spread (strings ~half)"),
    "interactions": (_interactions, "region x device, tenure > 24, plan tier, purchases >= 5"),
    "weak": (_heterogeneity(0.08), "weak heterogeneity (lift sd 0.08 logit per attribute)"),
    "strong": (_heterogeneity(0.6), "strong heterogeneity (lift sd 0.6 logit per attribute)"),
    "campaign_only": (_campaign_only, "no attribute matters; best single campaign = oracle"),
    "rare_level": (_rare_level, "SMS pays only on the 2% 'islands' level, premium hates push"),
    "numeric_only": (_numeric_only, "only numeric and boolean attributes move the lift"),
}


@dataclass(frozen=True)
class World:
    """One world, split into training files and a held-out half with its true probabilities.

    Attributes
    ----------
    name, description
        Which world.
    train
        Training recipients (``recipient_id``, attributes, ``consent``).
    ab
        The training half's A/B results (``recipient_id, campaign_id, outcome``).
    heldout
        Held-out recipients, same columns as ``train``.
    truth
        True response probabilities of the held-out recipients, ``(n_heldout, K)``.
    facts
        Construction facts worth reporting (e.g. the strings' share of the lift variance).
    """

    name: str
    description: str
    train: pd.DataFrame
    ab: pd.DataFrame
    heldout: pd.DataFrame
    truth: np.ndarray
    facts: dict[str, float] = field(default_factory=dict)


def make_world(name: str, n_recipients: int, seed: int) -> World:
    """Build world ``name`` with ``n_recipients`` recipients (half of them held out).

    Parameters
    ----------
    name
        A key of :data:`WORLDS`.
    n_recipients
        Recipients in the world, training and held-out halves together.
    seed
        Base seed; the world's own generator is ``default_rng([seed, position in WORLDS])``.
    """
    truth_fn, description = WORLDS[name]
    rng = np.random.default_rng([seed, list(WORLDS).index(name)])
    frame = audience(rng, n_recipients)
    logits, facts = truth_fn(rng, frame)
    prob = 1.0 / (1.0 + np.exp(-logits))
    is_train = np.zeros(n_recipients, dtype=bool)
    is_train[rng.permutation(n_recipients)[: n_recipients // 2]] = True
    train = frame[is_train].reset_index(drop=True)
    rows = np.flatnonzero(is_train & frame["consent"].to_numpy())  # only consenters are tested
    arm = rng.integers(0, K, len(rows))
    outcome = (rng.random(len(rows)) < prob[rows, arm]).astype(np.int8)
    ids = np.array([row[0] for row in CAMPAIGN_ROWS], dtype=object)
    ab = pd.DataFrame({"recipient_id": frame["recipient_id"].to_numpy()[rows],
                       "campaign_id": ids[arm], "outcome": outcome})
    facts = {**facts, "ab_response_rate": float(outcome.mean()),
             "heldout_control_rate": float(prob[~is_train, 0].mean())}
    return World(name, description, train, ab, frame[~is_train].reset_index(drop=True),
                 prob[~is_train], facts)


def write_data_mode(world: World, folder: Path, seed: int) -> Path:
    """Write the world's data-mode files and a default config; return the config's path.

    ``recipients.csv`` and ``ab_results.csv`` hold the training half only; the held-out
    recipients go to ``heldout_recipients.csv``, which the config does not name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    order = ["recipient_id", *ATTRIBUTES, "consent"]
    world.train[order].to_csv(folder / "recipients.csv", index=False)
    world.heldout[order].to_csv(folder / "heldout_recipients.csv", index=False)
    world.ab.to_csv(folder / "ab_results.csv", index=False)
    pd.DataFrame([{"campaign_id": cid, "value": v, "cost": c, "control": ctrl,
                   "channel": ch, "discount": d}
                  for cid, ch, v, c, ctrl, d in CAMPAIGN_ROWS]).to_csv(
        folder / "campaigns.csv", index=False)
    config = {
        "name": f"uplift-{world.name}",
        "description": world.description,
        "seed": seed,
        "data": {"recipients": "recipients.csv", "campaigns": "campaigns.csv",
                 "ab_results": "ab_results.csv"},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
