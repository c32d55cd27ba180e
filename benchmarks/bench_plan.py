"""The message plan (issue 12): constraints, the simulation, Hillstrom budgets and scale.

Prints one JSON object per line; the last has the keys ``max_budget_overrun``,
``max_cap_violations``, ``plan_vs_calendar``, ``plan_vs_greedy_fatigue``,
``plan_vs_greedy_budget``, ``hillstrom_25pct_diff_vs_random``,
``hillstrom_25pct_diff_ci95``, ``plan_seconds_1m`` and ``plan_peak_gb_1m``.

Parts (``--parts``, all by default):

``constraints``
    random audiences and constraint sets (sizes, caps, gaps, capacities, quiet weeks,
    consent, holdout, fatigue, events, pacing quotas, benefit-of-the-doubt pairs, dual
    prices); each plan is checked by an independent count of the budget and every cap.
``simulation``
    full runs of the quickstart, fatigue and budget configs; their ``plan_evaluation.csv``
    (the plan beside the policy's calendar, the greedy table, the A/B winner and the myopic
    oracle, same budget and seeds, 95% intervals). The ratios compare
    ``plan_without_holdout`` (the same allocation with nobody held out), since no other
    strategy holds anyone out; ``plan_with_holdout_vs_calendar`` is the plan as shipped.
``hillstrom``
    a run of ``configs/hillstrom.yaml`` (needs ``PERSONASIM_DATA``); its
    ``budget_targeting.csv`` at 10%, 25% and 50% of held-out customers e-mailed.
``scale``
    ``personasim plan`` (:func:`personasim.experiments.replan.replan`) for 1,000,000
    recipients x 20 campaigns x 12 weeks on a synthetic finished run, in a subprocess
    (wall seconds and peak resident memory).

Usage: ``python benchmarks/bench_plan.py [--parts constraints simulation hillstrom scale]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("constraints", "simulation", "hillstrom", "scale")
SIMULATED = ("quickstart", "fatigue", "budget")


def emit(record: dict[str, Any]) -> None:
    """Print one JSON line."""
    print(json.dumps(record), flush=True)


def _violations(plan: pd.DataFrame, inputs: Any, config: Any, budget: float,
                holdout: np.ndarray) -> tuple[float, int]:
    """An independent count: budget overrun (dollars) and broken caps in one plan."""
    overrun = max(0.0, math.fsum(plan["cost"]) - budget)
    if plan.empty:
        return overrun, 0
    broken = 0
    per_week = plan.groupby(["recipient_id", "week"]).size()
    broken += int((per_week > config.max_per_week).sum())
    per_recipient = plan.groupby("recipient_id").size()
    if config.max_per_horizon is not None:
        broken += int((per_recipient > config.max_per_horizon).sum())
    weeks = per_week.reset_index().sort_values(["recipient_id", "week"])
    same = weeks["recipient_id"].eq(weeks["recipient_id"].shift())
    broken += int((same & (weeks["week"].diff() <= config.min_gap_weeks)).sum())
    for cid, cap in config.capacity.items():
        broken += int(max(0, (plan["campaign_id"] == cid).sum() - cap))
    broken += int(plan["week"].isin(config.quiet_weeks).sum())
    held = set(np.asarray(inputs.recipient_ids)[holdout])
    broken += int(plan["recipient_id"].isin(held).sum())
    row = pd.Index(inputs.recipient_ids).get_indexer(plan["recipient_id"])
    col = pd.Index(inputs.campaign_ids).get_indexer(plan["campaign_id"])
    broken += int((~inputs.allowed[row, col]).sum())
    return overrun, broken


def constraints(worlds: int, seed: int) -> dict[str, Any]:
    """Random audiences and constraint sets; the worst overrun and cap count."""
    from personasim.config.sections import PlanConfig
    from personasim.ranking.plan import PlanInputs, allocate, choose_dual_price, holdout_mask
    from personasim.ranking.plan_values import ResponseValues

    rng = np.random.default_rng(seed)
    worst_overrun, worst_broken, messages = 0.0, 0, 0
    for world in range(worlds):
        n, k, h, g = (int(rng.integers(5, 400)), int(rng.integers(1, 7)),
                      int(rng.integers(1, 13)), int(rng.integers(1, 4)))
        values = ResponseValues(
            logit=rng.normal(-2.5, 1.0, (n, k)), p_control=rng.uniform(0, 0.05, n),
            value=rng.uniform(1, 30, k), cost=rng.choice([0.0, 0.05, 0.2, 1.0], k),
            group=rng.integers(0, g, n), week_shift=rng.normal(0, 0.4, (g, h, k)),
            fatigue_rate=rng.uniform(0, 0.6, (g, h)), fatigue_weight=float(rng.uniform(0, 3)),
            fatigue_recovery=float(rng.uniform(0.05, 1)))
        quota = (np.floor(rng.uniform(0, n / 2, (g, h, k))) if rng.random() < 0.3 else None)
        doubt = rng.random((n, k)) < 0.3 if rng.random() < 0.5 else None
        inputs = PlanInputs(np.array([f"r{i}" for i in range(n)], dtype=object),
                            tuple(f"c{j}" for j in range(k)), tuple("email" for _ in range(k)),
                            rng.random((n, k)) > 0.2, values, quota, doubt)
        per_week = int(rng.integers(1, 3))
        config = PlanConfig(
            max_per_week=per_week,
            max_per_horizon=None if rng.random() < 0.4 else int(rng.integers(per_week, 6)),
            min_gap_weeks=int(rng.integers(0, 3)),
            capacity={f"c{j}": int(rng.integers(0, n)) for j in range(k) if rng.random() < 0.3},
            quiet_weeks=sorted({int(w) for w in rng.integers(1, h + 1, rng.integers(0, 3))}),
            holdout_fraction=float(rng.choice([0.0, 0.05, 0.2])))
        budget = float(rng.choice([0.0, 1.0, n * 0.1, n * 0.5, n * 5.0]))
        holdout = holdout_mask(n, config.holdout_fraction, world)
        price = choose_dual_price(inputs, config, budget, holdout, world)
        plan = allocate(inputs, config, budget, holdout, price, warn_empty=False)
        overrun, broken = _violations(plan, inputs, config, budget, holdout)
        worst_overrun, worst_broken = max(worst_overrun, overrun), max(worst_broken, broken)
        messages += len(plan)
    return {"part": "constraints", "worlds": worlds, "messages": messages,
            "max_budget_overrun": worst_overrun, "max_cap_violations": worst_broken}


def simulation(name: str, work: Path) -> dict[str, Any]:
    """A full run of a bundled config; its plan evaluation."""
    from personasim.config.loading import load_config
    from personasim.experiments.runner import run_experiment

    start = time.perf_counter()
    config = load_config(ROOT / "configs" / f"{name}.yaml", ["output.plots=false"])
    run_experiment(config, work / name)
    table = pd.read_csv(work / name / "plan_evaluation.csv").set_index("strategy")
    calendar = next(s for s in table.index if s.startswith("policy_calendar"))
    mean = table["mean_return"]
    record = {"part": "simulation", "config": name, "seconds": round(time.perf_counter() -
                                                                      start, 1)}
    for strategy, row in table.iterrows():
        record[str(strategy)] = [round(float(row[c]), 1) for c in
                                 ("mean_return", "ci_low", "ci_high")]
    like = "plan_without_holdout"  # like for like: no other strategy holds anyone out
    record |= {"plan_vs_calendar": round(float(mean[like] / mean[calendar]), 4),
               "plan_with_holdout_vs_calendar": round(float(mean["plan"] / mean[calendar]), 4),
               "plan_vs_greedy": round(float(mean[like] / mean["greedy_table"]), 4),
               "plan_vs_ab_winner": round(float(mean[like] / mean["ab_winner"]), 4),
               "plan_within_calendar_interval": bool(
                   table.loc[like, "ci_high"] >= table.loc[calendar, "ci_low"])}
    return record


def hillstrom(work: Path) -> list[dict[str, Any]]:
    """A run of the bundled Hillstrom config; the budget-targeting rows."""
    from personasim.config.loading import load_config
    from personasim.experiments.runner import run_experiment

    config = load_config(ROOT / "configs" / "hillstrom.yaml", ["output.plots=false"])
    run_experiment(config, work / "hillstrom")
    table = pd.read_csv(work / "hillstrom" / "budget_targeting.csv")
    records = []
    for row in table.itertuples(index=False):
        records.append({"part": "hillstrom", "budget_share": row.budget_share,
                        "policy": row.policy, "metric": row.metric,
                        "per_1000": [round(1000 * v, 2) for v in
                                     (row.value, row.ci_low, row.ci_high)],
                        "plan_minus_per_1000": [round(1000 * v, 2) for v in
                                                (row.plan_minus, row.diff_low,
                                                 row.diff_high)]})
    return records


def _bench_rank() -> Any:
    spec = importlib.util.spec_from_file_location("bench_rank", ROOT / "benchmarks" /
                                                  "bench_rank.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scale_child(run: Path, recipients: Path, out: Path, budget: float) -> None:
    """Re-plan in this process; print wall seconds and peak memory."""
    from personasim.experiments.replan import replan

    start = time.perf_counter()
    result = replan(run, recipients, out, budget)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    print(json.dumps({"seconds": round(wall, 1), "peak_gb": round(peak, 2),
                      "messages": result.summary["messages"]}))


def scale(n: int, work: Path) -> dict[str, Any]:
    """``personasim plan`` for ``n`` recipients x 20 campaigns x 12 weeks, in a subprocess."""
    rank = _bench_rank()
    run = work / "scale_run"
    rank.build_run(run, personas=8, campaigns=20, draws=1000, covariates=0, seed=7)
    personas = [{"id": f"p{j}"} for j in range(8)]
    (run / "personas_posterior.yaml").write_text(yaml.safe_dump(personas))
    recipients = work / "scale_recipients.parquet"
    rank.build_recipients(recipients, n, personas=8, covariates=0, hard=True, seed=7)
    done = subprocess.run(
        [sys.executable, __file__, "--scale-child", str(run), str(recipients),
         str(work / "plan.parquet"), str(2.0 * n)],
        capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"part": "scale", "recipients": n, "campaigns": 20, "weeks": 12, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--worlds", type=int, default=300)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--scale-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.scale_child:
        run, recipients, out, budget = args.scale_child
        scale_child(Path(run), Path(recipients), Path(out), float(budget))
        return
    last: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_plan_") as tmp:
        work = Path(tmp)
        if "constraints" in args.parts:
            record = constraints(args.worlds, args.seed)
            emit(record)
            last |= {k: record[k] for k in ("max_budget_overrun", "max_cap_violations")}
        if "simulation" in args.parts:
            for name in SIMULATED:
                record = simulation(name, work)
                emit(record)
                if name == "quickstart":
                    last["plan_vs_calendar"] = record["plan_vs_calendar"]
                last[f"plan_vs_calendar_{name}"] = record["plan_vs_calendar"]
                if name in ("fatigue", "budget"):
                    last[f"plan_vs_greedy_{name}"] = record["plan_vs_greedy"]
        if "hillstrom" in args.parts:
            records = hillstrom(work)
            for record in records:
                emit(record)
            for record in records:
                if (record["budget_share"] == 0.25 and record["policy"] == "random_best_arm"
                        and record["metric"] == "visit"):
                    diff = record["plan_minus_per_1000"]
                    last["hillstrom_25pct_diff_vs_random"] = diff[0]
                    last["hillstrom_25pct_diff_ci95"] = diff[1:]
        if "scale" in args.parts:
            record = scale(args.recipients, work)
            emit(record)
            last |= {"plan_seconds_1m": record["seconds"], "plan_peak_gb_1m": record["peak_gb"]}
    emit(last)


if __name__ == "__main__":
    main()
