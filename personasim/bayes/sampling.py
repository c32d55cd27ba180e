"""Running the hierarchical model: nutpie or PyMC NUTS, or ADVI for very large models.

nutpie models are compiled once per model structure (personas, campaigns, features,
covariates) in this process and reused through ``with_data`` whenever only the data change,
including the number of aggregated cells.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections import OrderedDict
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from personasim.bayes.cells import ModelInputs
from personasim.bayes.model import build_model, model_data
from personasim.config.schema import InferenceConfig
from personasim.core.log_filters import below_error, filtered_logger

logger = logging.getLogger(__name__)

_MAX_CACHED_MODELS = 8
_COMPILED_CACHE: OrderedDict[tuple[int, ...], Any] = OrderedDict()
#: Seconds the last nutpie compilation took in this process (0.0 when reused).
LAST_COMPILE_SECONDS: list[float] = [0.0]


def nutpie_available() -> bool:
    """Return True when nutpie can be imported."""
    return importlib.util.find_spec("nutpie") is not None


def resolve_sampler(name: str) -> str:
    """``"nutpie"`` or ``"pymc"`` for a configured sampler name (``auto``: nutpie if there).

    Raises
    ------
    ImportError
        If ``name`` is ``"nutpie"`` and nutpie is not installed.
    """
    if name == "auto":
        return "nutpie" if nutpie_available() else "pymc"
    if name == "nutpie" and not nutpie_available():
        raise ImportError(
            "inference.sampler is 'nutpie' but nutpie is not installed; "
            "install personasim[fast] or set inference.sampler to 'pymc' or 'auto'"
        )
    return name


def resolve_method(config: InferenceConfig, inputs: ModelInputs) -> str:
    """``"nuts"`` or ``"advi"``: ``auto`` picks ADVI above ``config.advi_above_cells`` cells."""
    if config.method != "auto":
        return config.method
    return "advi" if inputs.exposures.size > config.advi_above_cells else "nuts"


def _quiet_fusion_errors() -> AbstractContextManager[None]:
    """Silence pytensor's non-fatal rewrite failures while compiling.

    pytensor 2.38's elementwise-fusion rewrite raises a ``KeyError`` on this model's
    likelihood; pytensor logs it at ERROR with a traceback and compiles the graph without
    that fusion (correct, slightly slower). Fatal compilation errors still raise.
    """
    return filtered_logger("pytensor.graph.rewriting.basic", below_error)


def compiled_nutpie(inputs: ModelInputs) -> Any:
    """A nutpie-compiled model holding ``inputs``; reuses one of the same structure."""
    import nutpie

    key = inputs.structure
    cached = _COMPILED_CACHE.get(key)
    if cached is not None:
        _COMPILED_CACHE.move_to_end(key)
        logger.debug("reusing compiled nutpie model %s", key)
        inputs.validate()
        LAST_COMPILE_SECONDS[0] = 0.0
        data = model_data(inputs)
        return cached.with_data(**{k: v for k, v in data.items() if k in cached.shared_data})
    start = time.perf_counter()
    with _quiet_fusion_errors():
        compiled = nutpie.compile_pymc_model(build_model(inputs))
    LAST_COMPILE_SECONDS[0] = time.perf_counter() - start
    logger.info("compiled nutpie model %s in %.1f s", key, LAST_COMPILE_SECONDS[0])
    _COMPILED_CACHE[key] = compiled
    while len(_COMPILED_CACHE) > _MAX_CACHED_MODELS:
        _COMPILED_CACHE.popitem(last=False)
    return compiled


def clear_model_cache() -> None:
    """Forget the nutpie models compiled in this process."""
    _COMPILED_CACHE.clear()


def sample_nuts(
    sampler: str, inputs: ModelInputs, config: InferenceConfig, seed: int, progress: bool
) -> Any:
    """Run NUTS (``sampler`` is ``"nutpie"`` or ``"pymc"``); return ``arviz.InferenceData``."""
    if sampler == "nutpie":
        import nutpie

        return nutpie.sample(
            compiled_nutpie(inputs),
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            seed=seed,
            save_warmup=False,
            progress_bar=progress,
            target_accept=config.target_accept,
        )
    import pymc as pm

    with _quiet_fusion_errors(), build_model(inputs):
        return pm.sample(
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            cores=1,
            random_seed=seed,
            target_accept=config.target_accept,
            progressbar=progress,
            compute_convergence_checks=False,
            return_inferencedata=True,
        )


#: ADVI counts as converged when the mean loss of its last tenth of steps differs from the
#: tenth before by less than this relative amount, or by less than three standard errors
#: (the loss is a noisy Monte-Carlo estimate).
ADVI_TOLERANCE = 0.01


def elbo_change(loss: np.ndarray) -> float:
    """Relative change of the mean loss over the last tenth of steps; 0.0 if within noise."""
    loss = np.asarray(loss, dtype=np.float64)
    loss = loss[np.isfinite(loss)]
    tenth = max(len(loss) // 10, 2)
    if len(loss) < 2 * tenth:
        return float("inf")
    last, before = loss[-tenth:], loss[-2 * tenth : -tenth]
    diff = abs(last.mean() - before.mean())
    noise = np.sqrt(last.var() / last.size + before.var() / before.size)
    if diff <= 3 * noise:
        return 0.0
    return float(diff / max(abs(before.mean()), 1e-12))


def sample_advi(
    inputs: ModelInputs, config: InferenceConfig, seed: int, progress: bool
) -> tuple[Any, float]:
    """Fit mean-field ADVI and draw ``chains * draws`` samples from the approximation.

    Returns
    -------
    idata, relative_change
        The draws (one chain) and the ELBO's relative change over the last tenth of the
        optimization (small means converged).
    """
    import pymc as pm

    with _quiet_fusion_errors(), build_model(inputs):
        approx = pm.fit(
            n=config.advi_iterations,
            method="advi",
            random_seed=seed,
            progressbar=progress,
        )
        idata = approx.sample(draws=config.chains * config.draws, random_seed=seed)
    return idata, elbo_change(np.asarray(approx.hist))
