"""Sampler health: R-hat, bulk ESS and divergences, each failure a warning string."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from personasim.bayes.model import DIAGNOSED_VARS
from personasim.config.sections import InferenceConfig
from personasim.core.types import Diagnostics

logger = logging.getLogger(__name__)


@dataclass
class FitDiagnostics(Diagnostics):
    """Diagnostics of a hierarchical fit, with the time it spent compiling.

    Attributes
    ----------
    compile_seconds
        Seconds spent compiling a nutpie model for this fit (included in ``seconds``); 0.0
        when a model from the caller's
        :class:`~personasim.bayes.sampling.CompiledModelCache` was reused, and for PyMC
        NUTS and ADVI, whose compilation is not timed apart. Not written by
        :func:`~personasim.bayes.storage.save_posterior`.
    """

    compile_seconds: float = 0.0


def diagnose(
    idata: Any, config: InferenceConfig, sampler: str, seconds: float,
    compile_seconds: float = 0.0,
) -> FitDiagnostics:
    """Compute R-hat, bulk ESS and divergences of a NUTS run, with a warning per failure.

    The checked variables are :data:`~personasim.bayes.model.DIAGNOSED_VARS` (the free
    parameters and the response rates ``p``). Warnings are logged and kept in the result,
    beside ``compile_seconds`` (see :class:`FitDiagnostics`).
    """
    import arviz as az

    posterior = idata.posterior[[v for v in DIAGNOSED_VARS if v in idata.posterior]]
    rhat_values = az.rhat(posterior).to_array().values
    ess_values = az.ess(posterior, method="bulk").to_array().values
    rhat_max = float(np.nanmax(rhat_values)) if np.isfinite(rhat_values).any() else math.nan
    ess_min = float(np.nanmin(ess_values)) if np.isfinite(ess_values).any() else math.nan
    divergences = int(np.asarray(idata.sample_stats["diverging"]).sum())
    warnings: list[str] = []
    if not math.isfinite(rhat_max) or rhat_max > config.rhat_max:
        warnings.append(
            f"R-hat {rhat_max:.3f} exceeds {config.rhat_max}: chains disagree; "
            "raise inference.tune/draws"
        )
    if not math.isfinite(ess_min) or ess_min < config.ess_min:
        warnings.append(
            f"bulk ESS {ess_min:.0f} is below {config.ess_min:.0f}: too few effective "
            "draws; raise inference.draws or chains"
        )
    if divergences > 0:
        warnings.append(
            f"{divergences} divergent transitions: the posterior may be biased; "
            "raise inference.target_accept"
        )
    for message in warnings:
        logger.warning("%s sampler: %s", sampler, message)
    return FitDiagnostics(sampler, rhat_max, ess_min, divergences, seconds, warnings,
                          compile_seconds)


def advi_diagnostics(
    relative_change: float, n_draws: int, seconds: float, tolerance: float
) -> FitDiagnostics:
    """Diagnostics of an ADVI fit: no R-hat (NaN), ESS = draws, a warning if not converged.

    ADVI's mean-field approximation tends to understate posterior spread (logged at INFO).
    """
    logger.info("advi: the mean-field approximation tends to understate posterior spread")
    warnings: list[str] = []
    if not math.isfinite(relative_change) or relative_change > tolerance:
        warnings.append(
            f"ADVI did not converge (ELBO still moving by {relative_change:.1%}); "
            "raise inference.advi_iterations"
        )
    for message in warnings:
        logger.warning("advi: %s", message)
    return FitDiagnostics("advi", math.nan, float(n_draws), 0, seconds, warnings)


def fallback_diagnostics(reason: str, n_draws: int, seconds: float) -> Diagnostics:
    """Diagnostics of the Beta-Binomial fallback used because sampling failed."""
    message = (
        f"hierarchical sampling failed ({reason}); used the closed-form Beta-Binomial "
        "update instead (no pooling between cells)"
    )
    logger.warning("%s", message)
    return Diagnostics("beta-binomial", 1.0, float(n_draws), 0, seconds, [message])
