"""A stop signal ends NUTS sampling within seconds, with PyMC's sampler and with nutpie."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

from personasim.bayes.cells import grid_inputs
from personasim.bayes.sampling import nutpie_available, sample_nuts
from personasim.config.sections import InferenceConfig
from personasim.core.interrupts import GracefulInterrupt, RunInterrupted
from personasim.core.types import ABCounts

STOP_WITHIN_SECONDS = 10.0


@pytest.mark.parametrize("sampler", ["pymc", "nutpie"])
def test_a_stop_request_ends_sampling_promptly(sampler: str) -> None:
    if sampler == "nutpie" and not nutpie_available():
        pytest.skip("nutpie is not installed")
    rng = np.random.default_rng(0)
    exposures = rng.integers(200, 400, (6, 4))
    counts = ABCounts(tuple(f"p{j}" for j in range(6)), tuple(f"c{k}" for k in range(4)),
                      exposures, rng.binomial(exposures, 0.1))
    # far more draws than a test could wait for: only a stop can end it in time
    config = InferenceConfig(draws=200_000, tune=500, chains=2)
    with GracefulInterrupt() as flag:
        timer = threading.Timer(3.0, flag.request, args=(signal.SIGTERM,))
        timer.start()
        started = time.perf_counter()
        try:
            with pytest.raises(RunInterrupted, match="Bayesian update"):
                sample_nuts(sampler, grid_inputs(counts), config, seed=1, progress=False)
        finally:
            timer.cancel()
    waited = time.perf_counter() - started - 3.0
    assert waited < STOP_WITHIN_SECONDS, f"stopped {waited:.1f} s after the request"
