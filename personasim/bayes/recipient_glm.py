"""Recipient-level response: a hierarchical Bayesian logistic model of each campaign's lift.

For recipient ``i`` with design row ``x_i`` (:class:`~personasim.bayes.design.Design`: coded
attributes, then their pairwise interactions ``z_i``) the logit of responding to campaign
``k`` is::

    b_k + x_i . (w + v_k) + z_i . (w_z + t_k u_z)

``b_k`` is the campaign's rate, ``w`` and ``w_z`` how attributes move the response to
everything (the control included), ``v_k`` how they move campaign ``k``'s lift, and ``u_z``
how interactions move the lift of any campaign sent (``t_k`` is 1 for a sent campaign, 0 for
the control). Every coefficient has a normal prior whose scale is shared by its group (one
group per attribute or interaction pair and block), so a weak attribute is shrunk towards
"no difference"; the four block scales are chosen by empirical Bayes, the largest Laplace
approximation to the marginal likelihood on a small grid.

The posterior is the Laplace approximation at the mode: the mode is found by scikit-learn's
L2-penalized logistic regression on prior-scaled columns (an L2 penalty on ``beta / s`` is a
``N(0, s^2)`` prior), with recipients aggregated to distinct (design row, campaign) cells, and
the covariance is the inverse Hessian. Draws are exact multivariate normal samples of that
approximation, so the fit costs a few seconds where NUTS on the same model costs minutes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from personasim.bayes.covariates import CovariatePosterior
from personasim.bayes.design import Design
from personasim.bayes.request import EstimationRequest
from personasim.core.errors import DataError
from personasim.core.types import (
    CAMPAIGN_ID,
    CONSENT,
    OUTCOME,
    PERSONA_ID,
    RECIPIENT_ID,
    Diagnostics,
    is_consent_column,
)

logger = logging.getLogger(__name__)

INTERCEPT_SCALE = 3.0
"""Prior scale of a campaign's logit rate ``b_k``."""
START_SCALE = 0.3
"""Every group's prior scale before empirical Bayes moves it."""
MIN_SCALE, MAX_SCALE = 0.01, 3.0
"""Bounds of a group's prior scale (log-odds per unit of a centred column)."""
EB_ITERATIONS = 8
"""Empirical-Bayes (EM) updates of the group scales."""


@dataclass(frozen=True)
class GlmPosterior:
    """The Laplace posterior of the recipient model.

    Attributes
    ----------
    b
        ``(S, K)`` campaign logits at the average recipient.
    gamma
        ``(S, K, D)`` per-campaign coefficients on the design's columns.
    scales
        The chosen block scales.
    log_evidence
        Laplace log marginal likelihood at those scales.
    """

    b: np.ndarray
    gamma: np.ndarray
    scales: dict[str, float]
    log_evidence: float


def _cells(x: np.ndarray, campaign: np.ndarray, y: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Aggregate recipients to distinct (design row, campaign) cells."""
    keyed = np.column_stack([campaign.astype(np.float64), x])
    unique, inverse = np.unique(keyed, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    exposures = np.bincount(inverse).astype(np.float64)
    responses = np.bincount(inverse, weights=y.astype(np.float64))
    return unique[:, 1:], unique[:, 0].astype(np.int64), exposures, responses


def _blocks(x: np.ndarray, campaign: np.ndarray, n_main: int, n_campaigns: int,
            treated: np.ndarray) -> np.ndarray:
    """The full design: campaign one-hot | x | z | x per campaign | z if sent."""
    onehot = np.eye(n_campaigns)[campaign]
    main, pairs = x[:, :n_main], x[:, n_main:]
    lift = (onehot[:, :, None] * main[:, None, :]).reshape(len(x), -1)
    sent = treated[campaign][:, None] * pairs
    return np.column_stack([onehot, main, pairs, lift, sent])


def _coefficient_groups(design: Design, n_main: int, n_campaigns: int) -> np.ndarray:
    """Each coefficient's prior group: 0 the campaign rates, then per block and attribute.

    Blocks: attributes on every response, interaction pairs on every response, attributes
    on each campaign's lift (one group per attribute, shared by the campaigns), interaction
    pairs on the lift of a sent campaign.
    """
    column_group = design.groups()  # attribute (or pair) of each design column
    main, pairs = column_group[:n_main], column_group[n_main:]
    n = int(column_group.max()) + 1 if column_group.size else 0
    return np.concatenate([
        np.zeros(n_campaigns, dtype=np.int64), 1 + main, 1 + pairs,
        1 + n + np.tile(main, n_campaigns), 1 + n + pairs,
    ]).astype(np.int64)


def _scale_summary(scale: np.ndarray, groups: np.ndarray, n_main: int,
                   n_campaigns: int) -> dict[str, float]:
    """The largest chosen scale of each block, for the log and the manifest."""
    blocks = {"main": groups[n_campaigns:n_campaigns + n_main]}
    n_pairs = (len(groups) - n_campaigns - n_main * (1 + n_campaigns)) // 2
    start = n_campaigns + n_main
    blocks["interaction"] = groups[start:start + n_pairs]
    blocks["lift"] = groups[start + n_pairs:start + n_pairs + n_campaigns * n_main]
    blocks["lift_interaction"] = groups[len(groups) - n_pairs:]
    return {name: round(float(scale[np.unique(g)].max()), 4) if g.size else 0.0
            for name, g in blocks.items()}


def _mode(design: np.ndarray, exposures: np.ndarray, responses: np.ndarray,
          prior: np.ndarray, start: np.ndarray | None) -> np.ndarray:
    """The posterior mode, by L2-penalized logistic regression on prior-scaled columns."""
    scaled = design * prior
    y = np.concatenate([np.ones(len(design)), np.zeros(len(design))])
    weight = np.concatenate([responses, exposures - responses])
    keep = weight > 0
    model = LogisticRegression(C=1.0, fit_intercept=False, max_iter=2000, tol=1e-8,
                               warm_start=start is not None)
    if start is not None:
        model.coef_ = (start / prior)[None, :]
        model.intercept_ = np.zeros(1)
        model.classes_ = np.array([0.0, 1.0])
    model.fit(np.vstack([scaled, scaled])[keep], y[keep], sample_weight=weight[keep])
    return model.coef_.ravel() * prior


def _laplace(design: np.ndarray, exposures: np.ndarray, beta: np.ndarray,
             prior: np.ndarray, responses: np.ndarray) -> tuple[np.ndarray, float]:
    """Cholesky factor of the Hessian at the mode, and the Laplace log evidence."""
    eta = design @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    hessian = (design * (exposures * p * (1 - p))[:, None]).T @ design
    hessian[np.diag_indices_from(hessian)] += 1.0 / prior**2
    chol = linalg.cholesky(hessian, lower=True)
    loglik = float(np.sum(responses * eta - exposures * np.logaddexp(0.0, eta)))
    logprior = float(-0.5 * np.sum((beta / prior) ** 2) - np.sum(np.log(prior)))
    logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
    return chol, loglik + logprior - 0.5 * logdet


def fit_recipient_glm(x: np.ndarray, campaign: np.ndarray, y: np.ndarray, design: Design,
                      n_campaigns: int, control: int | None, n_draws: int,
                      seed: int) -> tuple[GlmPosterior, Diagnostics]:
    """Fit the recipient model and draw ``n_draws`` posterior samples.

    Parameters
    ----------
    x
        ``(n, D)`` design rows of the A/B recipients (``design.transform``).
    campaign, y
        Each recipient's campaign index and 0/1 outcome.
    design
        The design (its interaction columns follow its attribute columns).
    n_campaigns, control
        Campaigns in the model, and the control's index (``None``: no control).
    n_draws, seed
        Posterior samples to draw, and their seed.
    """
    start = time.perf_counter()
    n_pairs = int(sum(1 for g in design.groups() if g >= len(design.codings)))
    n_main = x.shape[1] - n_pairs
    cell_x, cell_k, exposures, responses = _cells(x, campaign, y)
    treated = np.ones(n_campaigns)
    if control is not None:
        treated[control] = 0.0
    full = _blocks(cell_x, cell_k, n_main, n_campaigns, treated)
    groups = _coefficient_groups(design, n_main, n_campaigns)
    n_groups = int(groups.max()) + 1
    scale = np.full(n_groups, START_SCALE)
    scale[0] = INTERCEPT_SCALE
    beta: np.ndarray | None = None
    with threadpool_limits(1, user_api="blas"):
        for _ in range(EB_ITERATIONS):
            prior = scale[groups]
            beta = _mode(full, exposures, responses, prior, beta)
            chol, evidence = _laplace(full, exposures, beta, prior, responses)
            variance = np.diag(linalg.cho_solve((chol, True), np.eye(len(beta))))
            # MacKay's update: each coefficient counts by how much the data determine it
            determined = np.clip(1.0 - variance / prior**2, 0.0, 1.0)
            squares = np.bincount(groups, weights=beta**2, minlength=n_groups)
            counted = np.bincount(groups, weights=determined, minlength=n_groups)
            scale[1:] = np.clip(np.sqrt(squares[1:] / np.maximum(counted[1:], 1e-3)),
                                MIN_SCALE, MAX_SCALE)
        prior = scale[groups]
        beta = _mode(full, exposures, responses, prior, beta)
        chol, evidence = _laplace(full, exposures, beta, prior, responses)
    mode = beta
    scales = _scale_summary(scale, groups, n_main, n_campaigns)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(mode), n_draws))
    samples = (mode[:, None] + linalg.solve_triangular(chol.T, noise, lower=False)).T
    b, rest = samples[:, :n_campaigns], samples[:, n_campaigns:]
    w, w_z = rest[:, :n_main], rest[:, n_main:n_main + n_pairs]
    v = rest[:, n_main + n_pairs:n_main + n_pairs + n_campaigns * n_main]
    u_z = rest[:, n_main + n_pairs + n_campaigns * n_main:]
    v = v.reshape(n_draws, n_campaigns, n_main)
    gamma_main = w[:, None, :] + v
    gamma_pairs = w_z[:, None, :] + treated[None, :, None] * u_z[:, None, :]
    gamma = np.concatenate([gamma_main, gamma_pairs], axis=2)
    seconds = time.perf_counter() - start
    logger.info("recipient model: %d cells x %d coefficients, scales %s (%.1f s)",
                len(cell_k), full.shape[1], scales, seconds)
    diagnostics = Diagnostics("laplace", float("nan"), float("nan"), 0, seconds)
    return GlmPosterior(b.astype(np.float32), gamma.astype(np.float32), scales,
                        evidence), diagnostics


def persona_rates(b: np.ndarray, gamma: np.ndarray, x: np.ndarray, persona: np.ndarray,
                  n_personas: int) -> np.ndarray:
    """Each persona's average response rate over its A/B recipients, ``(S, P, K)`` float32."""
    n_draws, n_campaigns = b.shape
    out = np.empty((n_draws, n_personas, n_campaigns), dtype=np.float32)
    for j in range(n_personas):
        rows = x[persona == j]
        if len(rows) == 0:
            out[:, j] = 1.0 / (1.0 + np.exp(-b))
            continue
        rows = rows[np.linspace(0, len(rows) - 1, min(len(rows), 500)).astype(np.intp)]
        logits = b[:, :, None] + np.einsum("skd,nd->skn", gamma, rows)
        out[:, j] = (1.0 / (1.0 + np.exp(-logits))).mean(axis=2)
    return out




ATTRIBUTE_EXCLUDED = (RECIPIENT_ID, CONSENT, PERSONA_ID)
"""Recipient columns that are never attributes of the model."""
POSTERIOR_DRAWS = 1000
"""Laplace draws kept (exact samples: no chains, no warm-up)."""


def attribute_columns(recipients: pd.DataFrame, requested: list[str] | str | None) -> list[str]:
    """The attributes the model reads: every attribute column for ``auto``, or the list."""
    if requested is None:
        return []
    if requested == "auto":
        return [str(c) for c in recipients.columns if c not in ATTRIBUTE_EXCLUDED
                and not is_consent_column(c)]
    missing = [c for c in requested if c not in recipients.columns]
    if missing:
        raise DataError("recipients", f"column {missing[0]!r}",
                        "inference.covariates names a column the recipients file lacks")
    return list(requested)


def recipient_posterior(request: EstimationRequest) -> CovariatePosterior:
    """Fit the recipient model to a request's per-recipient A/B rows.

    The result's ``eta`` is each campaign's logit at the average recipient (the same for
    every persona), ``gamma`` the coefficients on the design's columns and ``draws`` each
    persona's average rate over its A/B recipients, for persona-level readers.
    """
    assert request.ab is not None and request.recipients is not None
    table = request.ab.table
    inputs = request.inputs
    attrs = request.recipients.set_index(RECIPIENT_ID)
    frame = attrs.reindex(table[RECIPIENT_ID].astype(str).to_numpy()).reset_index(drop=True)
    columns = attribute_columns(request.recipients, request.config.covariates)
    design = Design.fit(frame, columns, n_bins=request.config.covariate_bins)
    x = design.transform(frame, "A/B results")
    c_index = {cid: k for k, cid in enumerate(inputs.campaign_ids)}
    p_index = {pid: j for j, pid in enumerate(inputs.persona_ids)}
    campaign = table[CAMPAIGN_ID].astype(str).map(c_index).to_numpy(np.int64)
    persona = table[PERSONA_ID].astype(str).map(p_index).to_numpy(np.int64)
    y = table[OUTCOME].to_numpy(np.float64)
    fit, diagnostics = fit_recipient_glm(x, campaign, y, design, len(c_index), request.control,
                                         POSTERIOR_DRAWS, request.seed)
    n_personas = len(p_index)
    eta = np.repeat(fit.b[:, None, :], n_personas, axis=1)
    rates = persona_rates(fit.b, fit.gamma, x, persona, n_personas)
    return CovariatePosterior(inputs.persona_ids, inputs.campaign_ids, rates, diagnostics,
                              eta, fit.gamma, design)
