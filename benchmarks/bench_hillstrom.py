"""The Hillstrom e-mail experiment end to end, scored on held-out customers, over several seeds.

Runs ``configs/hillstrom.yaml`` (the real 64,000 customers; ``$PERSONASIM_DATA`` or the
cached download) once per seed; the seed moves the held-out split, the personas, the sampler
and PPO. The first seed runs the config exactly as written (its wall time is the number the
README reports); later seeds may shorten PPO with ``--timesteps``, which does not touch the
held-out numbers (they come from the posterior and the ranking, not the policy).

Prints one JSON object per seed (held-out values, paired advantages, sim-to-real coverage,
seconds per stage) and a final summary line with the goals checked:

- ``table_vs_best_arm_ok``: the table's visit and net value are no worse than the best single
  arm's within the paired 95% interval (the interval's upper end is >= 0);
- ``table_vs_t_learner_ok``: the same against the T-learner;
- ``sim_to_real_ok``: at least 80% of persona x arm cells inside the simulated 90% interval;
- ``wall_ok``: the first (full) run took at most 600 s.

Usage: ``python benchmarks/bench_hillstrom.py [--seeds 2008 1 2] [--timesteps 512]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "hillstrom.yaml"


def run_once(seed: int, timesteps: int | None, out: Path) -> dict[str, Any]:
    """One run of the config; returns the manifest's held-out summary and timings."""
    from personasim.config.loading import load_config
    from personasim.experiments.runner import run_experiment

    overrides = [f"seed={seed}"]
    if timesteps is not None:
        overrides.append(f"policy.total_timesteps={timesteps}")
    config = load_config(CONFIG, overrides)
    start = time.perf_counter()
    summary = run_experiment(config, out / f"seed-{seed}", config_source=str(CONFIG))
    wall = time.perf_counter() - start
    held = summary.manifest["heldout"]
    record: dict[str, Any] = {"seed": seed, "full_config": timesteps is None,
                              "wall_seconds": round(wall, 1),
                              "stage_seconds": summary.manifest["stage_seconds"],
                              "sim_to_real_inside_share": held["sim_to_real_inside_share"],
                              "cells": held["cells"],
                              "diagnostics_ok": summary.manifest["diagnostics"]["ok"]}
    for metric in ("visit", "spend", "net_value"):
        m = held[metric]
        record[metric] = {"table": m["table"][0], "table_ci": m["table"][1:],
                          "best_single_arm": m["best_single_arm"],
                          "table_minus_best_arm": m["table_minus_best_arm"],
                          "table_minus_t_learner": m["table_minus_t_learner"]}
    return record


def main() -> None:
    """Run every seed and print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2008, 1, 2])
    parser.add_argument("--timesteps", type=int, default=512,
                        help="PPO timesteps for seeds after the first (the first runs as is).")
    args = parser.parse_args()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, seed in enumerate(args.seeds):
            record = run_once(seed, None if i == 0 else args.timesteps, Path(tmp))
            records.append(record)
            print(json.dumps(record), flush=True)

    def no_worse(key: str) -> bool:
        return all(r[m][key][2] >= 0 for r in records for m in ("visit", "net_value"))

    print(json.dumps({
        "summary": True, "seeds": args.seeds,
        "table_vs_best_arm_ok": no_worse("table_minus_best_arm"),
        "table_vs_t_learner_ok": no_worse("table_minus_t_learner"),
        "sim_to_real_ok": all(r["sim_to_real_inside_share"] >= 0.8 for r in records),
        "sim_to_real_inside_shares": [r["sim_to_real_inside_share"] for r in records],
        "wall_ok": records[0]["wall_seconds"] <= 600,
        "full_run_wall_seconds": records[0]["wall_seconds"],
    }), flush=True)


if __name__ == "__main__":
    main()
