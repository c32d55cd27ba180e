"""The hierarchical logistic model of persona x campaign response rates.

``logit p = baseline + persona + campaign + campaign features . beta + persona x campaign
+ recipient covariates . gamma[campaign]``, with a binomial likelihood on aggregated cells.

The inputs are :class:`~personasim.bayes.cells.ModelInputs`. Every input lives in a
``pm.Data`` container (see :func:`model_data`), so a compiled model is
reused whenever only the data change (the number of aggregated cells may change too).

Prior knowledge: each persona x campaign cell has a prior mean and a prior scale on the logit
scale (from the personas' trait distributions, or from an earlier run's posterior). The
prior mean is a fixed offset; the deviations from it are scaled by the prior scale, so a
confident prior moves little and a vague one lets the data speak.

Geometry: a hierarchical term ``theta = sigma * eps`` is sampled in a *variable-rate*
parameterization (Gorinova, Moore and Hoffman, 2020): ``raw ~ Normal(0, sigma**lam)`` and
``theta = sigma**(1 - lam) * raw``. ``lam = 0`` is the non-centered and ``lam = 1`` the
centered form; any ``lam`` in [0, 1] gives the same model. ``lam`` is chosen per term from
how much data informs it (:func:`centering`): centered where data are rich, non-centered
where they are sparse.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from personasim.bayes.cells import ModelInputs
from personasim.core.numeric import logit, sigmoid

#: The centering weights use each effect scale's moment estimate times this factor: the
#: posterior of a scale reaches well below its estimate, where a centered term would form a
#: funnel, so the choice leans non-centered (tuned on simulated worlds; any value gives the
#: same model, only the sampler's geometry changes).
CENTERING_SHRINK = 0.7
#: Floor of the scale used for the centering weights (logit units).
MIN_GEOMETRY_SCALE = 0.05
#: Typical spread of covariate slopes between campaigns, for their centering weights.
GAMMA_GEOMETRY_SCALE = 0.05


def _moment_variance(resid: np.ndarray, noise: np.ndarray, iterations: int = 20) -> float:
    """Between-unit variance of ``resid`` net of its sampling variance ``noise`` (>= 0)."""
    if resid.size < 2:
        return 0.0
    tau2 = max(float(np.var(resid) - np.mean(noise)), 0.0)
    for _ in range(iterations):
        w = 1.0 / (noise + tau2) ** 2
        tau2 = max(float(np.sum(w * (resid**2 - noise)) / np.sum(w)), 0.0)
    return tau2


def effect_scales(inputs: ModelInputs) -> dict[str, float]:
    """Rough moment estimates of the persona, campaign and cell effect scales (logit).

    Used only to choose the parameterization: deviations of the observed logits from the
    prior are split into a common shift, persona and campaign means and a residual, and
    each part's variance net of binomial noise is estimated.
    """
    counts = inputs.grid_counts()
    e = counts.exposures.astype(np.float64)
    seen = e > 0
    if not seen.any():
        return {"persona": 0.0, "campaign": 0.0, "cell": 0.0}
    rate = (counts.responses + 0.5) / (e + 1.0)
    dev = np.where(seen, logit(rate) - inputs.prior_logit, 0.0)
    noise = np.where(seen, 1.0 / np.maximum(e * rate * (1 - rate), 1e-9), np.inf)
    w = np.where(seen, 1.0 / (noise + 0.25), 0.0)
    shift = float(np.sum(w * dev) / np.sum(w))
    dev = np.where(seen, dev - shift, 0.0)

    def means(axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        total = w.sum(axis=axis)
        has = total > 0
        m = np.where(has, (w * dev).sum(axis=axis) / np.where(has, total, 1.0), 0.0)
        return m, np.where(has, 1.0 / np.where(has, total, 1.0), np.inf), has

    row, row_noise, row_has = means(1)
    col, col_noise, col_has = means(0)
    resid = dev - row[:, None] - col[None, :]
    return {
        "persona": _moment_variance(row[row_has], row_noise[row_has]) ** 0.5,
        "campaign": _moment_variance(col[col_has], col_noise[col_has]) ** 0.5,
        "cell": _moment_variance(resid[seen], noise[seen]) ** 0.5,
    }


def centering(inputs: ModelInputs) -> dict[str, np.ndarray]:
    """Per-term centering weights ``lam`` in [0, 1] from how much data inform each term.

    A term of scale ``sigma`` with Fisher information ``I`` (logit scale) has a posterior
    dominated by its data when ``I * sigma**2 >> 1`` (centered is best) and by its prior when
    ``I * sigma**2 << 1`` (non-centered is best): ``lam = I s2 / (1 + I s2)``, with ``s2``
    from :func:`effect_scales` times :data:`CENTERING_SHRINK` (floored at
    :data:`MIN_GEOMETRY_SCALE`).
    """
    p_hat = sigmoid(inputs.prior_logit)[inputs.persona, inputs.campaign]
    observed = (inputs.responses + 1.0) / (inputs.exposures + 2.0)
    p_hat = np.where(inputs.exposures > 0, 0.5 * (p_hat + observed), p_hat)
    info = np.zeros(inputs.shape)
    np.add.at(info, (inputs.persona, inputs.campaign), inputs.exposures * p_hat * (1 - p_hat))
    scales = effect_scales(inputs)
    floor = MIN_GEOMETRY_SCALE

    def lam(i: np.ndarray, sd: float) -> np.ndarray:
        iv = i * max(CENTERING_SHRINK * sd, MIN_GEOMETRY_SCALE) ** 2
        return iv / (1.0 + iv)

    # persona and campaign effects (in units of each cell's prior scale, relative to the
    # mean scale) see the data through the cell layer's noise
    relative = inputs.prior_scale / np.mean(inputs.prior_scale)
    cell_sd = max(scales["cell"], floor)
    through = 1.0 / (1.0 / np.maximum(info * relative**2, 1e-12) + cell_sd**2)
    weights = {
        "lam_cell": lam(info, scales["cell"]),
        "lam_persona": lam(through.sum(axis=1), scales["persona"]),
        "lam_campaign": np.asarray(float(np.median(lam(through.sum(axis=0),
                                                       scales["campaign"])))),
    }
    if inputs.covariates.shape[1]:
        cell_info = inputs.exposures * p_hat * (1 - p_hat)
        gamma_info = np.zeros((inputs.shape[1], inputs.covariates.shape[1]))
        np.add.at(gamma_info, inputs.campaign, cell_info[:, None] * inputs.covariates**2)
        weights["lam_gamma"] = lam(gamma_info, GAMMA_GEOMETRY_SCALE)
    return weights


def model_data(inputs: ModelInputs) -> dict[str, np.ndarray]:
    """Values of the model's ``pm.Data`` containers, keyed by container name."""
    data: dict[str, np.ndarray] = {
        "cell_persona": inputs.persona.astype(np.int64),
        "cell_campaign": inputs.campaign.astype(np.int64),
        "exposures": inputs.exposures.astype(np.float64),
        "observed_responses": inputs.responses.astype(np.float64),
        "prior_logit": inputs.prior_logit.astype(np.float64),
        "prior_scale": inputs.prior_scale.astype(np.float64),
        "log_prior_scale": np.log(inputs.prior_scale.astype(np.float64)),
    }
    if inputs.features.shape[1]:
        data["features"] = inputs.features.astype(np.float64)
    if inputs.covariates.shape[1]:
        data["covariates"] = inputs.covariates.astype(np.float64)
        data["centers"] = inputs.centers.astype(np.float64)
    data |= centering(inputs)
    return data


def _variable_rate(
    pm: Any, name: str, loc: Any, sigma: Any, log_sigma: Any, lam: Any, dims: Any
) -> Any:
    """``Normal(loc, sigma)`` sampled at centering ``lam`` (see the module docstring).

    ``log_sigma`` is ``log(sigma)``, passed in so that ``sigma**lam`` costs one ``exp`` and
    no ``pow`` per element (this term is evaluated at every gradient, for every cell).
    """
    sd = pm.math.exp(lam * log_sigma)
    raw = pm.Normal(f"{name}_raw", lam * loc, sd, dims=dims)
    return loc + (sigma / sd) * (raw - lam * loc)


def build_model(inputs: ModelInputs) -> Any:
    """Build the PyMC model for ``inputs`` (dims ``persona``, ``campaign``, ...).

    On the logit scale, with ``s[j, k]`` the prior scale of cell ``(j, k)``::

        baseline ~ Normal(0, 1)                        common shift from the prior
        persona[j] ~ Normal(baseline, sigma_persona)
        campaign[k] ~ ZeroSumNormal(sigma_campaign) + features[k] . beta
        eta[j, k] ~ Normal(prior_logit[j, k] + s[j, k] * (persona[j] + campaign[k]),
                           sigma_cell * s[j, k])
        logit p[cell] = eta[j, k] + covariates[cell] . gamma[k]   (with covariates)
        gamma[k, d] ~ Normal(gamma_mean[d], gamma_sd[d])

    Every effect is in units of the cell's prior scale ``s``: ``sigma_persona``,
    ``sigma_campaign`` ~ Gamma(2, 4) (mean 0.5) and ``sigma_cell`` ~ HalfNormal(0.5), so a
    cell's marginal prior spread is about ``s`` (cells stray from their prior by about what
    the prior says). The Gamma priors keep the shared scales off zero, where a hierarchy's
    funnel is hardest to sample.
    Every hierarchical term is sampled in the variable-rate form (:func:`centering`).
    Deterministics: ``eta`` (cell logit at covariates zero) and ``p = sigmoid(eta)``.
    """
    import pymc as pm

    inputs.validate()
    data = model_data(inputs)
    coords: dict[str, list[str]] = {
        "persona": list(inputs.persona_ids),
        "campaign": list(inputs.campaign_ids),
    }
    n_features, n_covariates = inputs.features.shape[1], inputs.covariates.shape[1]
    if n_features:
        coords["feature"] = list(inputs.feature_names) or [f"f{i}" for i in range(n_features)]
    if n_covariates:
        coords["covariate"] = list(inputs.covariate_names) or [
            f"x{i}" for i in range(n_covariates)
        ]
    grid = ("persona", "campaign")
    with pm.Model(coords=coords) as model:
        d = {name: pm.Data(name, value) for name, value in data.items()}
        baseline = pm.Normal("baseline", 0.0, 1.0)
        sigma_persona = pm.Gamma("sigma_persona", alpha=2.0, beta=4.0)
        sigma_campaign = pm.Gamma("sigma_campaign", alpha=2.0, beta=4.0)
        sigma_cell = pm.HalfNormal("sigma_cell", 0.5)
        persona = _variable_rate(
            pm, "persona", baseline, sigma_persona, pm.math.log(sigma_persona),
            d["lam_persona"], "persona",
        )
        # zero-sum campaign deviations: the common level lives in the persona effects alone
        lam_c = d["lam_campaign"]
        sd_c = pm.math.exp(lam_c * pm.math.log(sigma_campaign))
        campaign_raw = pm.ZeroSumNormal("campaign_raw", sigma=sd_c, dims="campaign")
        campaign = (sigma_campaign / sd_c) * campaign_raw
        if n_features:
            beta = pm.Normal("beta", 0.0, 0.5, dims="feature")
            campaign = campaign + pm.math.dot(d["features"], beta)
        # shared effects count in units of each cell's prior scale: a cell's marginal prior
        # spread stays proportional to what its prior says (a confident prior, e.g. an
        # earlier run's posterior, is not swept along by evidence from other cells)
        cell_loc = d["prior_logit"] + d["prior_scale"] * (persona[:, None] + campaign[None, :])
        if n_covariates:
            gamma_mean = pm.Normal("gamma_mean", 0.0, 0.5, dims="covariate")
            gamma_sd = pm.Gamma("gamma_sd", alpha=2.0, beta=5.0, dims="covariate")
            gamma = pm.Deterministic(
                "gamma",
                _variable_rate(
                    pm, "gamma", gamma_mean[None, :], gamma_sd[None, :],
                    pm.math.log(gamma_sd)[None, :], d["lam_gamma"], ("campaign", "covariate"),
                ),
                dims=("campaign", "covariate"),
            )
            # the prior is on the logit at the covariates' overall mean; the sampled cell term
            # is the logit at the persona's own mean (``centers``), which the data pin down
            cell_loc = cell_loc + pm.math.dot(d["centers"], gamma.T)
        eta = pm.Deterministic(
            "eta",
            _variable_rate(
                pm, "cell", cell_loc, sigma_cell * d["prior_scale"],
                pm.math.log(sigma_cell) + d["log_prior_scale"], d["lam_cell"], grid,
            ),
            dims=grid,
        )
        pm.Deterministic("p", pm.math.sigmoid(eta), dims=grid)
        if inputs.is_grid:  # one cell per persona x campaign, row-major: no gather needed
            eta_cells = eta.flatten()
        else:
            eta_cells = eta[d["cell_persona"], d["cell_campaign"]]
        if n_covariates:
            eta_cells = eta_cells + (d["covariates"] * gamma[d["cell_campaign"]]).sum(axis=1)
        # the binomial log-likelihood up to its constant binomial coefficients (cheaper than
        # pm.Binomial, whose coefficients are recomputed from the data at every gradient)
        pm.Potential(
            "loglik",
            pm.math.dot(d["observed_responses"], eta_cells)
            - pm.math.dot(d["exposures"], pm.math.log1pexp(eta_cells)),
        )
    return model


#: Free parameters whose R-hat and bulk ESS are checked (those present in a model), plus p.
DIAGNOSED_VARS: tuple[str, ...] = (
    "baseline",
    "sigma_persona",
    "sigma_campaign",
    "sigma_cell",
    "persona_raw",
    "campaign_raw",
    "cell_raw",
    "beta",
    "gamma_mean",
    "gamma_sd",
    "gamma_raw",
    "p",
)
