"""Meta-learner baselines and the scoring of rankings with true probabilities.

Baselines (fitted on the A/B rows of the training half, arms in ``uplift_worlds`` order,
control at index 0) each return an estimated uplift ``(n, K - 1)`` per held-out recipient
and sendable campaign:

- ``tlearner_logistic``: one ``LogisticRegression`` per arm on standardized numerics,
  booleans and one-hot categoricals; uplift = ``p_c(x) - p_control(x)``.
- ``tlearner_hgb``: one ``HistGradientBoostingClassifier`` per arm, categoricals native.
- ``xlearner_hgb``: the X-learner (Kuenzel et al. 2019) of each campaign against the
  control: imputed effects ``y - mu_0(x)`` on the campaign's rows and ``mu_c(x) - y`` on the
  control's, regressed by gradient boosting and mixed with ``g = e_c / (e_c + e_0)``, where
  the design propensity of every arm is ``1/K`` (so ``g = 1/2``).

A ranking is a choice per recipient (a sendable campaign, or ``-1`` for no send) and the
estimated net value of that choice; its worth is counted with the true net values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

#: Shared gradient-boosting settings (fixed for every world; early stopping on 20% of rows).
HGB_PARAMS = {"learning_rate": 0.05, "max_iter": 300, "max_depth": 3, "min_samples_leaf": 40,
              "l2_regularization": 1.0, "early_stopping": True, "validation_fraction": 0.2,
              "n_iter_no_change": 20}


@dataclass(frozen=True)
class Ranking:
    """What a ranking decides.

    Attributes
    ----------
    choice
        ``(n,)`` index into the sendable campaigns, ``-1`` for no send.
    score
        ``(n,)`` the ranking's own estimate of the chosen campaign's net value (orders the
        recipients when only a share of them may be contacted).
    """

    choice: np.ndarray
    score: np.ndarray


def ranking_from_uplift(uplift: np.ndarray, value: np.ndarray, cost: np.ndarray,
                        consent: np.ndarray) -> Ranking:
    """Send each consenting recipient its best estimated campaign when that pays.

    Parameters
    ----------
    uplift
        ``(n, K - 1)`` estimated ``p_c - p_control``.
    value, cost
        ``(K - 1,)`` per sendable campaign.
    consent
        ``(n,)`` bool.
    """
    net = uplift * value[None, :] - cost[None, :]
    best = net.argmax(axis=1)
    score = net.max(axis=1)
    return Ranking(np.where((score > 0) & consent, best, -1), score)


def _design(categorical: list[str], numeric: list[str], trees: bool) -> ColumnTransformer:
    """One-hot (+ standardized numerics) for linear models, ordinal codes for trees."""
    if trees:
        cat = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan)
        return ColumnTransformer([("cat", cat, categorical), ("num", "passthrough", numeric)])
    return ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                              ("num", StandardScaler(), numeric)])


def _columns(frame: pd.DataFrame, attributes: list[str]) -> tuple[list[str], list[str]]:
    """Split attributes into categorical strings and numbers (booleans count as numbers)."""
    categorical = [a for a in attributes if not (pd.api.types.is_numeric_dtype(frame[a])
                                                 or pd.api.types.is_bool_dtype(frame[a]))]
    return categorical, [a for a in attributes if a not in categorical]


def _prepare(x_train: pd.DataFrame, x_eval: pd.DataFrame,
             attributes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Attribute frames with booleans as floats, and the categorical/numeric column names."""
    categorical, numeric = _columns(x_train, attributes)

    def tidy(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[attributes].copy()
        out[numeric] = out[numeric].astype(np.float64)
        out[categorical] = out[categorical].astype(str)
        return out

    return tidy(x_train), tidy(x_eval), categorical, numeric


def _arm_masks(arm: np.ndarray, k: int) -> list[np.ndarray]:
    return [arm == a for a in range(k)]


def tlearner_logistic(x_train: pd.DataFrame, y: np.ndarray, arm: np.ndarray,
                      x_eval: pd.DataFrame, attributes: list[str], k: int,
                      seed: int) -> np.ndarray:
    """Logistic T-learner: uplift ``(n_eval, k - 1)`` of each campaign over arm 0."""
    train, evaluate, categorical, numeric = _prepare(x_train, x_eval, attributes)
    prob = np.empty((len(evaluate), k))
    for a, rows in enumerate(_arm_masks(arm, k)):
        model = Pipeline([("design", _design(categorical, numeric, trees=False)),
                          ("fit", LogisticRegression(max_iter=2000, random_state=seed))])
        prob[:, a] = model.fit(train[rows], y[rows]).predict_proba(evaluate)[:, 1]
    return prob[:, 1:] - prob[:, [0]]


def _hgb(categorical: list[str], numeric: list[str], seed: int, regressor: bool) -> Pipeline:
    mask = [True] * len(categorical) + [False] * len(numeric)
    cls = HistGradientBoostingRegressor if regressor else HistGradientBoostingClassifier
    return make_pipeline(_design(categorical, numeric, trees=True),
                         cls(categorical_features=mask, random_state=seed, **HGB_PARAMS))


def _hgb_arms(train: pd.DataFrame, y: np.ndarray, arm: np.ndarray, k: int,
              categorical: list[str], numeric: list[str], seed: int) -> list[Pipeline]:
    """One gradient-boosting classifier per arm."""
    return [_hgb(categorical, numeric, seed, regressor=False).fit(train[rows], y[rows])
            for rows in _arm_masks(arm, k)]


def tlearner_hgb(x_train: pd.DataFrame, y: np.ndarray, arm: np.ndarray, x_eval: pd.DataFrame,
                 attributes: list[str], k: int, seed: int) -> np.ndarray:
    """Gradient-boosting T-learner: uplift ``(n_eval, k - 1)`` of each campaign over arm 0."""
    train, evaluate, categorical, numeric = _prepare(x_train, x_eval, attributes)
    models = _hgb_arms(train, y, arm, k, categorical, numeric, seed)
    prob = np.column_stack([m.predict_proba(evaluate)[:, 1] for m in models])
    return prob[:, 1:] - prob[:, [0]]


def xlearner_hgb(x_train: pd.DataFrame, y: np.ndarray, arm: np.ndarray, x_eval: pd.DataFrame,
                 attributes: list[str], k: int, seed: int) -> np.ndarray:
    """Gradient-boosting X-learner against arm 0: uplift ``(n_eval, k - 1)``."""
    train, evaluate, categorical, numeric = _prepare(x_train, x_eval, attributes)
    models = _hgb_arms(train, y, arm, k, categorical, numeric, seed)
    masks = _arm_masks(arm, k)
    x0, y0 = train[masks[0]], y[masks[0]]
    mu0_on_treated = [models[0].predict_proba(train[masks[a]])[:, 1] for a in range(k)]
    propensity = np.full(k, 1.0 / k)  # the design's assignment probability per arm
    out = np.empty((len(evaluate), k - 1))
    for a in range(1, k):
        rows = masks[a]
        d_treated = y[rows] - mu0_on_treated[a]
        d_control = models[a].predict_proba(x0)[:, 1] - y0
        tau1 = _hgb(categorical, numeric, seed, regressor=True).fit(train[rows], d_treated)
        tau0 = _hgb(categorical, numeric, seed, regressor=True).fit(x0, d_control)
        g = propensity[a] / (propensity[a] + propensity[0])
        out[:, a - 1] = g * tau0.predict(evaluate) + (1.0 - g) * tau1.predict(evaluate)
    return out


BASELINES = {"tlearner_logistic": tlearner_logistic, "tlearner_hgb": tlearner_hgb,
             "xlearner_hgb": xlearner_hgb}


# --- scoring with the true probabilities ------------------------------------------------------

def true_net(truth: np.ndarray, value: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """True net value of each sendable campaign, ``(n, K - 1)`` (``truth`` is ``(n, K)``)."""
    return (truth[:, 1:] - truth[:, [0]]) * value[None, :] - cost[None, :]


def policy_value(net: np.ndarray, ranking: Ranking, consent: np.ndarray,
                 budget: int | None = None) -> float:
    """True net value of a ranking over consenting recipients.

    With ``budget``, only the ``budget`` consenting recipients with the highest ``score``
    among those the ranking would send to are contacted (ties in the recipients' order,
    which is random with respect to their attributes).
    """
    send = np.flatnonzero((ranking.choice >= 0) & consent)
    if budget is not None:
        send = send[np.argsort(-ranking.score[send], kind="stable")[:budget]]
    return float(net[send, ranking.choice[send]].sum())


@dataclass(frozen=True)
class References:
    """True values of the reference policies, all and top-share, over consenting recipients."""

    random: float
    oracle: float
    random_top: float
    oracle_top: float
    budget: int
    best_single: Ranking


def references(net: np.ndarray, consent: np.ndarray, share: float) -> References:
    """Random, oracle and best-single-campaign references (see the module docstring).

    Random sends a uniformly random campaign to every consenting recipient (expected value);
    the oracle sends each its best true campaign, or nothing when none pays; the best single
    campaign is the one with the highest true total (nothing, if none is positive).
    """
    n_consent = int(consent.sum())
    budget = int(round(share * n_consent))
    random = float(net[consent].mean(axis=1).sum())
    best = np.maximum(net[consent].max(axis=1), 0.0)
    totals = net[consent].sum(axis=0)
    single = int(totals.argmax()) if totals.max() > 0 else -1
    n = len(net)
    best_single = Ranking(np.where(consent, single, -1), np.zeros(n))
    return References(random, float(best.sum()), random * budget / max(n_consent, 1),
                      float(np.sort(best)[::-1][:budget].sum()), budget, best_single)


def captured(net: np.ndarray, ranking: Ranking, consent: np.ndarray,
             refs: References) -> dict[str, float]:
    """Share of the oracle's lift over random captured, with everyone and with the top share."""
    full = policy_value(net, ranking, consent)
    top = policy_value(net, ranking, consent, refs.budget)
    return {
        "captured": (full - refs.random) / (refs.oracle - refs.random),
        "captured_at_20pct": (top - refs.random_top) / (refs.oracle_top - refs.random_top),
        "value_per_1000": 1000.0 * full / max(int(consent.sum()), 1),
        "sends": int(((ranking.choice >= 0) & consent).sum()),
    }
