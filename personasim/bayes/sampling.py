"""Running the hierarchical model: nutpie or PyMC NUTS, or ADVI for very large models.

nutpie models are compiled once per model structure (personas, campaigns, features,
covariates) and kept in a :class:`CompiledModelCache` that the caller owns (one per run;
:func:`personasim.bayes.update.infer_stage` makes it). A cached model is reused through
``with_data`` whenever only the data change, including the number of aggregated cells.
There is no module-level state: the seconds a fit spent compiling come back with the fit.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import numpy as np

from personasim.bayes.cells import ModelInputs
from personasim.bayes.model import build_model, model_data
from personasim.config.sections import InferenceConfig
from personasim.core.interrupts import active_stop
from personasim.core.log_filters import below_error, filtered_logger

logger = logging.getLogger(__name__)


class CompiledModelCache:
    """nutpie-compiled models by model structure, least recently used dropped first.

    Parameters
    ----------
    max_models
        How many compiled models to keep.
    """

    def __init__(self, max_models: int = 8) -> None:
        if max_models < 1:
            raise ValueError("max_models must be >= 1")
        self.max_models = max_models
        self._models: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._models)

    def clear(self) -> None:
        """Forget every compiled model."""
        self._models.clear()

    def get(self, key: tuple[int, ...]) -> Any | None:
        """The model compiled for structure ``key`` (now the most recent), or ``None``."""
        model = self._models.get(key)
        if model is not None:
            self._models.move_to_end(key)
        return model

    def put(self, key: tuple[int, ...], model: Any) -> None:
        """Keep ``model`` for structure ``key``, dropping the oldest beyond ``max_models``."""
        self._models[key] = model
        self._models.move_to_end(key)
        while len(self._models) > self.max_models:
            self._models.popitem(last=False)


def nutpie_available() -> bool:
    """Return True when nutpie can be imported."""
    return importlib.util.find_spec("nutpie") is not None


def resolve_sampler(name: str) -> str:
    """``"nutpie"`` or ``"pymc"`` for ``inference.nuts_sampler`` (``auto``: nutpie if there).

    Raises
    ------
    ImportError
        If ``name`` is ``"nutpie"`` and nutpie is not installed.
    """
    if name == "auto":
        return "nutpie" if nutpie_available() else "pymc"
    if name == "nutpie" and not nutpie_available():
        raise ImportError(
            "inference.nuts_sampler is 'nutpie' but nutpie is not installed; "
            "install personasim[fast] or set inference.nuts_sampler to 'pymc' or 'auto'"
        )
    return name


def resolve_algorithm(config: InferenceConfig, inputs: ModelInputs) -> str:
    """``"nuts"`` or ``"advi"``, as ``config.algorithm`` says.

    ``auto`` picks ADVI above ``config.advi_above_cells`` aggregated cells, else NUTS.
    """
    if config.algorithm != "auto":
        return config.algorithm
    return "advi" if inputs.exposures.size > config.advi_above_cells else "nuts"


def _quiet_fusion_errors() -> AbstractContextManager[None]:
    """Silence pytensor's non-fatal rewrite failures while compiling.

    pytensor 2.38's elementwise-fusion rewrite raises a ``KeyError`` on this model's
    likelihood; pytensor logs it at ERROR with a traceback and compiles the graph without
    that fusion (correct, slightly slower). Fatal compilation errors still raise.
    """
    return filtered_logger("pytensor.graph.rewriting.basic", below_error)


def compiled_nutpie(
    inputs: ModelInputs, cache: CompiledModelCache | None = None
) -> tuple[Any, float]:
    """A nutpie-compiled model holding ``inputs``, and the seconds spent compiling it.

    A model of the same structure in ``cache`` is reused (0.0 seconds); a new one is added
    to ``cache``. Without a cache the model is compiled and not kept.
    """
    import nutpie

    key = inputs.structure
    cached = None if cache is None else cache.get(key)
    if cached is not None:
        logger.debug("reusing compiled nutpie model %s", key)
        inputs.validate()
        data = model_data(inputs)
        return cached.with_data(**{k: v for k, v in data.items() if k in cached.shared_data}), 0.0
    start = time.perf_counter()
    with _quiet_fusion_errors():
        compiled = interruptible(lambda: nutpie.compile_pymc_model(build_model(inputs)),
                                 "Bayesian update (compiling the model)")
    seconds = time.perf_counter() - start
    logger.info("compiled nutpie model %s in %.1f s", key, seconds)
    if cache is not None:
        cache.put(key, compiled)
    return compiled, seconds


def sample_nuts(
    sampler: str,
    inputs: ModelInputs,
    config: InferenceConfig,
    seed: int,
    progress: bool,
    cache: CompiledModelCache | None = None,
) -> tuple[Any, float]:
    """Run NUTS (``sampler`` is ``"nutpie"`` or ``"pymc"``).

    Returns
    -------
    idata, compile_seconds
        ``arviz.InferenceData``, and the seconds spent compiling a nutpie model (0.0 when
        one in ``cache`` was reused, and for PyMC, whose compilation is not timed apart).
    """
    if sampler == "nutpie":
        import nutpie

        compiled, compile_seconds = compiled_nutpie(inputs, cache)
        sampler = nutpie.sample(
            compiled,
            draws=config.draws,
            tune=config.tune,
            chains=config.chains,
            seed=seed,
            save_warmup=False,
            progress_bar=progress,
            target_accept=config.target_accept,
            blocking=False,
        )
        return _wait(sampler), compile_seconds
    import pymc as pm

    stop_check = _stop_callback()

    def sample() -> Any:
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
                callback=stop_check,
            )

    # PyTensor compiles the model before the first draw; in a thread, a stop is seen at once
    idata = interruptible(sample, "Bayesian update")
    return idata, 0.0


STOP_POLL_SECONDS = 0.2
T = TypeVar("T")


def interruptible(work: Callable[[], T], where: str) -> T:
    """Run ``work``; with a run's stop flag active, stop waiting for it when a stop comes.

    The work runs in a daemon thread that the main thread polls, so a stop request is
    answered within :data:`STOP_POLL_SECONDS` even while C code (a compiler) runs; the
    abandoned thread ends with the process.
    """
    flag = active_stop()
    if flag is None:
        return work()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="personasim-interruptible", daemon=True)
    thread.start()
    while thread.is_alive():
        flag.check(where)
        thread.join(STOP_POLL_SECONDS)
    if "error" in box:
        raise box["error"]
    return box["value"]
"""How often a background nutpie sampler is checked for a stop request."""


def _wait(sampler: Any) -> Any:
    """The finished trace of a background nutpie sampler, cancelled on a stop request."""
    flag = active_stop()
    try:
        while flag is not None and not _finished(sampler):
            if flag.requested:
                sampler.cancel()
                flag.check("Bayesian update")
            time.sleep(STOP_POLL_SECONDS)
        return sampler.wait()
    except BaseException:
        sampler.cancel()
        raise


def _finished(sampler: Any) -> bool:
    """Whether a background nutpie sampler is done (a property or a method by version).

    Some versions answer "not yet" by raising ``TimeoutError``.
    """
    try:
        done = sampler.is_finished
        return bool(done() if callable(done) else done)
    except TimeoutError:
        return False


def _stop_callback() -> Callable[..., None] | None:
    """A per-draw PyMC callback that ends sampling when a stop is requested, or None.

    nutpie samples in native threads and returns to Python between progress updates, where
    the stop is seen; PyMC's own sampler needs this callback to stop within a draw.
    """
    flag = active_stop()
    if flag is None:
        return None

    def check(trace: Any = None, draw: Any = None) -> None:
        flag.check("Bayesian update")

    return check


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
