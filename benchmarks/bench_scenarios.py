"""Where reinforcement learning earns its keep: run the three scenario configs for real.

Runs ``personasim run`` on ``configs/fatigue.yaml``, ``configs/budget.yaml`` and
``configs/social.yaml`` (5 training seeds x PPO, A2C and DQN, 20 evaluation episodes each),
each in its own subprocess, and reads back ``evaluation.csv``. Wall-clock seconds depend on
whatever else the machine runs; CPU seconds (user + system of the run's process tree) are
what a quiet 2-core machine would need, since every stage runs on one core at a time except
the sampler's chains.

Prints one JSON object per scenario x policy (mean return, 95% interval, relative to the
myopic oracle, training seconds) and one per scenario with the goals checked:
``ppo_beats_thompson_and_ab_winner_ci`` (non-overlapping 95% intervals) and
``ppo_beats_myopic_oracle`` for fatigue, ``best_sb3_beats_thompson`` for all, and
``under_10_minutes`` (wall and CPU).

Usage: ``python benchmarks/bench_scenarios.py [--out runs/scenarios] [--only fatigue]
[--reuse]`` (``--reuse`` summarizes existing run folders without running; about 10-20
minutes on 2 cores for all three).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("fatigue", "budget", "social")
SB3 = ("ppo", "a2c", "dqn")
LIMIT_S = 600.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(name: str, out: Path) -> dict[str, float]:
    """Run one scenario config into ``out``; return wall and CPU seconds."""
    cpu, wall = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "personasim", "run", str(ROOT / "configs" /
                    f"{name}.yaml"), "--out", str(out), "--overwrite", "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)
    return {"wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(_children_cpu() - cpu, 1)}


def _separated(table: pd.DataFrame, better: str, worse: str) -> bool:
    return bool(table.loc[better, "ci_low"] > table.loc[worse, "ci_high"])


def report(name: str, out: Path, seconds: dict[str, float] | None) -> dict[str, Any]:
    """Print one line per policy and return the scenario's summary line."""
    table = pd.read_csv(out / "evaluation.csv").set_index("policy")
    manifest = json.loads((out / "manifest.json").read_text())
    for policy, row in table.iterrows():
        print(json.dumps({
            "scenario": name, "policy": policy, "mean_return": round(row["mean_return"], 1),
            "ci_low": round(row["ci_low"], 1), "ci_high": round(row["ci_high"], 1),
            "relative_to_myopic_oracle": round(row["relative_to_myopic_oracle"], 3),
            "training_seconds": (None if pd.isna(row["training_seconds"])
                                 else round(row["training_seconds"], 1)),
            "n_training_seeds": int(row["n_training_seeds"]),
            "n_episodes": int(row["n_episodes"]),
        }), flush=True)
    trained = [p for p in SB3 if p in table.index]
    best = max(trained, key=lambda p: table.loc[p, "mean_return"])
    summary: dict[str, Any] = {
        "scenario": name, "summary": True, "best_sb3": best,
        "best_sb3_beats_thompson": bool(table.loc[best, "mean_return"]
                                        > table.loc["thompson", "mean_return"]),
        "best_sb3_vs_thompson_ci_separated": _separated(table, best, "thompson"),
        "stage_seconds": manifest["stage_seconds"],
        "skipped": manifest["policy_training"]["skipped"],
    }
    if name == "fatigue":
        summary["ppo_beats_thompson_and_ab_winner_ci"] = (
            _separated(table, "ppo", "thompson") and _separated(table, "ppo", "ab_winner"))
        summary["ppo_beats_myopic_oracle"] = bool(
            table.loc["ppo", "mean_return"] > table.loc["myopic_oracle", "mean_return"])
    if seconds is not None:
        summary |= seconds
        summary["under_10_minutes_wall"] = seconds["wall_s"] < LIMIT_S
        summary["under_10_minutes_cpu"] = seconds["cpu_s"] < LIMIT_S
    return summary


def main() -> None:
    """Run (or reuse) each scenario and print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "scenarios")
    parser.add_argument("--only", choices=SCENARIOS, action="append")
    parser.add_argument("--reuse", action="store_true", help="Summarize existing runs only.")
    args = parser.parse_args()
    for name in args.only or SCENARIOS:
        out = args.out / name
        seconds = None if args.reuse else run(name, out)
        print(json.dumps(report(name, out, seconds)), flush=True)


if __name__ == "__main__":
    main()
