"""Sampler health of the Bayesian update on every bundled config.

For each ``configs/*.yaml`` this loads the inputs, runs the config's A/B test (simulated, or
its data) and fits the posterior exactly as ``personasim run`` does (no further A/B waves,
no policy training), then prints one JSON line with R-hat, bulk ESS, divergences, cells and
seconds. The last line is a summary: ``all_ok`` is true when every config met R-hat <= 1.01,
bulk ESS >= 400 and zero divergences.

The Hillstrom config needs the dataset: set ``PERSONASIM_DATA`` to a local copy, or it is
skipped. Usage: ``python benchmarks/bench_diagnostics.py [CONFIG ...]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from personasim.config.loading import load_config
from personasim.core.interrupts import StopFlag
from personasim.experiments.stage import RunContext
from personasim.experiments.stages import ab_test
from personasim.experiments.stages.inference import infer
from personasim.experiments.stages.inputs import load_inputs

ROOT = Path(__file__).resolve().parent.parent


def check(path: Path) -> dict[str, Any]:
    """Fit one config's posterior and return its diagnostics record."""
    config = load_config(path, ["ab_test.waves=0"])
    start = time.perf_counter()
    inputs = load_inputs(config, str(path), config.seed)
    ctx = RunContext(config, str(path), Path("."), StopFlag())
    ab = ab_test.run(ctx, lambda done: None, inputs)
    outcome = infer(ctx, inputs, ab)
    d = outcome.posterior.diagnostics
    return {
        "config": path.name, "sampler": d.sampler, "rhat_max": round(d.rhat_max, 4),
        "ess_bulk_min": round(d.ess_bulk_min, 1), "divergences": d.divergences,
        "ok": d.ok, "cells": outcome.manifest()["cells"],
        "covariates": outcome.manifest()["covariates"],
        "sampling_seconds": round(d.seconds, 1),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    """Check the named configs (default: every bundled one)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    paths = args.configs or sorted((ROOT / "configs").glob("*.yaml"))
    records = []
    for path in paths:
        if "hillstrom" in path.name and "PERSONASIM_DATA" not in os.environ:
            print(json.dumps({"config": path.name, "skipped": "set PERSONASIM_DATA"}))
            continue
        records.append(check(path))
        print(json.dumps(records[-1]), flush=True)
    print(json.dumps({
        "configs": len(records), "all_ok": all(r["ok"] for r in records),
        "rhat_max": max(r["rhat_max"] for r in records),
        "ess_bulk_min": min(r["ess_bulk_min"] for r in records),
        "divergences": sum(r["divergences"] for r in records),
    }))


if __name__ == "__main__":
    main()
