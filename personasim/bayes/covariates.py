"""Recipient covariates in the Bayesian model: selection, aggregation and scoring.

Candidates (numeric or boolean recipient attributes) are ranked by a score test of whether
they explain A/B outcomes beyond the persona x campaign rates (:func:`select_covariates`);
the ``max_covariates`` most significant with a p-value at most ``covariate_alpha`` enter.
By default (alpha 1) every candidate may enter: the personas are often clustered on the
same attributes, which leaves the within-persona test little power, and the model's
hierarchical, per-campaign slopes shrink a covariate without signal towards zero. On the
benchmark's targeting worlds alpha 0.01 captured 85% of the oracle's lift (five worlds, an
earlier version of the model) and alpha 1 captured 92% (ten worlds).

Kept covariates are standardized and quantile-binned, and A/B rows are aggregated to
persona x campaign x bin cells whose covariate value is the cell's mean
(:func:`covariate_inputs`): the likelihood stays binomial on aggregated cells, so its cost is
bounded by the number of cells, not recipients.

Each campaign ``k`` has its own slopes ``gamma[k]`` (pooled towards a common slope), so a
recipient's logit for ``k`` is ``eta[persona, k] + x . gamma[k]``; see
:class:`CovariatePosterior`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from personasim.bayes.cells import ModelInputs
from personasim.bayes.design import Design
from personasim.bayes.priors import PriorGrid
from personasim.core.errors import DataError
from personasim.core.types import (
    CAMPAIGN_ID,
    CONSENT,
    OUTCOME,
    PERSONA_ID,
    RECIPIENT_ID,
    Posterior,
    is_consent_column,
)

logger = logging.getLogger(__name__)

_NOT_COVARIATES = (RECIPIENT_ID, CONSENT, PERSONA_ID, CAMPAIGN_ID, OUTCOME, "value", "propensity")


@dataclass(frozen=True)
class CovariateSpec:
    """Standardization of the covariates the model uses.

    Attributes
    ----------
    names
        Recipient columns, in model order.
    means, stds
        Their standardization (``(x - mean) / std``).
    """

    names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]

    def transform(self, frame: pd.DataFrame, source: str = "recipients") -> np.ndarray:
        """``(n_rows, n_covariates)`` standardized float64 covariates.

        Raises
        ------
        DataError
            A covariate column is missing or holds a non-number.
        """
        columns = []
        for name, mean, std in zip(self.names, self.means, self.stds, strict=True):
            if name not in frame.columns:
                raise DataError(source, f"column {name!r}", "covariate column is missing")
            values = pd.to_numeric(frame[name].astype("float64", errors="ignore"),
                                   errors="coerce").to_numpy(np.float64)
            if np.isnan(values).any():
                row = int(np.flatnonzero(np.isnan(values))[0]) + 1
                raise DataError(source, f"row {row}, column {name!r}", "expected a number")
            columns.append((values - mean) / std)
        if not columns:
            return np.zeros((len(frame), 0))
        return np.column_stack(columns)

    @property
    def n_columns(self) -> int:
        """Columns of :meth:`transform`'s result: one per covariate."""
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form."""
        return {"names": list(self.names), "means": list(self.means), "stds": list(self.stds)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CovariateSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(d["names"]), tuple(map(float, d["means"])), tuple(map(float, d["stds"])))


@dataclass(frozen=True)
class CovariatePosterior(Posterior):
    """A posterior whose response rates also depend on recipient covariates.

    ``draws`` holds each persona's average rate over its A/B recipients (so persona-level
    consumers work unchanged). A recipient with standardized covariates ``x`` and persona
    ``j`` responds to ``k`` with probability ``sigmoid(eta[s, j, k] + x . gamma[s, k])``.

    Attributes
    ----------
    eta
        ``(n_draws, P, K)`` float32 cell logits at covariates zero (their mean).
    gamma
        ``(n_draws, K, n_covariates)`` float32 per-campaign slopes.
    spec
        How covariates are read and standardized.
    """

    eta: np.ndarray
    gamma: np.ndarray
    spec: CovariateSpec | Design


def candidate_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric or boolean attribute columns that vary."""
    names = []
    for column in frame.columns:
        if column in _NOT_COVARIATES or is_consent_column(column):
            continue
        series = frame[column]
        if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
            if series.astype(np.float64).std() > 1e-12:
                names.append(str(column))
    return names


def score_statistics(
    table: pd.DataFrame, frame: pd.DataFrame, names: list[str]
) -> dict[str, float]:
    """Score-test p-value of each candidate covariate beyond the persona x campaign rates.

    For covariate ``x`` and campaign ``k``, ``U_k = sum x_c (y - p_cell)`` over ``k``'s rows,
    with ``x_c`` centred within each persona x campaign cell; under the null (no effect)
    ``U_k^2 / Var(U_k)`` is chi-square(1), and the campaigns' sum is chi-square(K).
    """
    cells = table[PERSONA_ID].astype(str) + "\x1f" + table[CAMPAIGN_ID].astype(str)
    y = table[OUTCOME].to_numpy(np.float64)
    p = y.copy()
    p[:] = pd.Series(y).groupby(cells.to_numpy()).transform("mean").to_numpy()
    var_y = p * (1 - p)
    result = {}
    for name in names:
        x = pd.to_numeric(frame[name].astype(np.float64)).to_numpy(np.float64)
        xc = x - pd.Series(x).groupby(cells.to_numpy()).transform("mean").to_numpy()
        chi2, dof = 0.0, 0
        for _, rows in table.groupby(CAMPAIGN_ID, sort=True).indices.items():
            u = float(np.sum(xc[rows] * (y[rows] - p[rows])))
            v = float(np.sum(xc[rows] ** 2 * var_y[rows]))
            if v > 1e-12:
                chi2 += u * u / v
                dof += 1
        result[name] = float(stats.chi2.sf(chi2, dof)) if dof else 1.0
    return result


def select_covariates(
    table: pd.DataFrame,
    recipients: pd.DataFrame,
    requested: list[str] | None,
    max_covariates: int,
    alpha: float = 1.0,
) -> CovariateSpec | None:
    """Choose the covariates that carry signal in the A/B results.

    Parameters
    ----------
    table
        A/B rows with ``recipient_id, persona_id, campaign_id, outcome``.
    recipients
        Recipient attributes by ``recipient_id``.
    requested
        Candidate columns, or ``None`` for every numeric/boolean attribute.
    max_covariates
        Keep at most this many (the most significant).
    alpha
        Keep a candidate when its score-test p-value is at most ``alpha``.

    Returns
    -------
    CovariateSpec or None
        ``None`` when no candidate carries signal.
    """
    attrs = recipients.set_index(RECIPIENT_ID)
    frame = attrs.reindex(table[RECIPIENT_ID].astype(str).to_numpy()).reset_index(drop=True)
    candidates = candidate_columns(frame) if requested is None else list(requested)
    missing = [c for c in candidates if c not in frame.columns]
    if missing:
        raise DataError("recipients", f"column {missing[0]!r}", "covariate column is missing")
    if not candidates or max_covariates < 1:
        return None
    pvalues = score_statistics(table.reset_index(drop=True), frame, candidates)
    kept = sorted((p, name) for name, p in pvalues.items() if p <= alpha)[:max_covariates]
    logger.info("covariate score tests: %s", {k: f"{v:.2g}" for k, v in pvalues.items()})
    if not kept:
        return None
    names = tuple(name for _, name in kept)
    values = attrs[list(names)].astype(np.float64)
    means = tuple(float(values[n].mean()) for n in names)
    stds = tuple(float(values[n].std()) or 1.0 for n in names)
    return CovariateSpec(names, means, stds)


def _bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Quantile bin index of each value (at most ``n_bins`` distinct bins)."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, x, side="right")


def covariate_inputs(
    table: pd.DataFrame,
    recipients: pd.DataFrame,
    spec: CovariateSpec,
    prior: PriorGrid,
    features: np.ndarray,
    feature_names: tuple[str, ...],
    n_bins: int,
) -> tuple[ModelInputs, np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate A/B rows to persona x campaign x covariate-bin cells.

    Covariates are standardized by ``spec`` and then centred on each persona's mean over
    its A/B rows, so the model's ``eta[j, k]`` is persona ``j``'s logit at its own mean
    covariates (which keeps persona effects and slopes from trading off in the sampler).

    Returns
    -------
    inputs
        Model inputs whose cells carry their mean persona-centred covariates.
    group_x, group_weight
        Per persona, the (centred) covariates and A/B shares of its covariate groups, as
        ``(P, G, n_covariates)`` and ``(P, G)`` arrays (zero-weight padding), used to average
        rates over a persona's recipients (:func:`persona_average`).
    centers
        ``(P, n_covariates)`` each persona's mean standardized covariates.
    """
    attrs = recipients.set_index(RECIPIENT_ID)
    frame = attrs.reindex(table[RECIPIENT_ID].astype(str).to_numpy()).reset_index(drop=True)
    x = spec.transform(frame, "A/B results")
    p_index = {pid: j for j, pid in enumerate(prior.persona_ids)}
    c_index = {cid: k for k, cid in enumerate(prior.campaign_ids)}
    persona = table[PERSONA_ID].astype(str).map(p_index).to_numpy(np.int64)
    campaign = table[CAMPAIGN_ID].astype(str).map(c_index).to_numpy(np.int64)
    bins = np.column_stack([_bins(x[:, d], n_bins) for d in range(x.shape[1])])
    # centre within persona: persona effects and slopes are then nearly orthogonal
    size = np.maximum(np.bincount(persona, minlength=len(p_index)), 1).astype(np.float64)
    centers = np.column_stack(
        [np.bincount(persona, weights=x[:, d], minlength=len(p_index)) / size
         for d in range(x.shape[1])]
    )
    x = x - centers[persona]
    group = np.unique(bins, axis=0, return_inverse=True)[1].ravel()
    key = (persona * (group.max() + 1) + group) * len(c_index) + campaign
    cells, cell_of = np.unique(key, return_inverse=True)
    count = np.bincount(cell_of).astype(np.int64)
    outcome = table[OUTCOME].to_numpy(np.float64)
    responses = np.bincount(cell_of, weights=outcome).round().astype(np.int64)
    cell_x = np.column_stack(
        [np.bincount(cell_of, weights=x[:, d]) / count for d in range(x.shape[1])]
    )
    inputs = ModelInputs(
        persona_ids=prior.persona_ids,
        campaign_ids=prior.campaign_ids,
        persona=cells // len(c_index) // (group.max() + 1),
        campaign=cells % len(c_index),
        exposures=count,
        responses=responses,
        covariates=cell_x,
        prior_logit=np.log(prior.mean) - np.log1p(-prior.mean),
        prior_scale=prior.scale,
        features=features,
        feature_names=feature_names,
        covariate_names=spec.names,
        centers=centers,
    )
    pg = persona * (group.max() + 1) + group
    pgs, pg_of = np.unique(pg, return_inverse=True)
    pg_count = np.bincount(pg_of).astype(np.float64)
    pg_x = np.column_stack(
        [np.bincount(pg_of, weights=x[:, d]) / pg_count for d in range(x.shape[1])]
    )
    pg_persona = pgs // (group.max() + 1)
    n_groups = int(np.bincount(pg_persona, minlength=len(p_index)).max())
    group_x = np.zeros((len(p_index), n_groups, x.shape[1]))
    group_weight = np.zeros((len(p_index), n_groups))
    for j in range(len(p_index)):
        mine = np.flatnonzero(pg_persona == j)
        group_x[j, : mine.size] = pg_x[mine]
        group_weight[j, : mine.size] = pg_count[mine] / max(pg_count[mine].sum(), 1.0)
    return inputs, group_x, group_weight, centers


def persona_average(
    eta: np.ndarray, gamma: np.ndarray, group_x: np.ndarray, group_weight: np.ndarray
) -> np.ndarray:
    """Each persona's average rate over its covariate groups, ``(n_draws, P, K)`` float32.

    ``eta`` is ``(S, P, K)``, ``gamma`` ``(S, K, D)``; a persona with no groups gets
    ``sigmoid(eta)`` (its rate at the covariate means).
    """
    n_draws, n_p, n_k = eta.shape
    out = np.empty((n_draws, n_p, n_k), dtype=np.float32)
    for j in range(n_p):
        used = group_weight[j] > 0
        if not used.any():
            out[:, j] = 1.0 / (1.0 + np.exp(-eta[:, j]))
            continue
        shift = np.einsum("gd,skd->skg", group_x[j, used], gamma)  # (S, K, G)
        p = 1.0 / (1.0 + np.exp(-(eta[:, j, :, None] + shift)))
        out[:, j] = p @ group_weight[j, used]
    return out
