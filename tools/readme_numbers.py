"""Rerun the figures the README quotes and rewrite their blocks in README.md.

Each block sits between ``<!-- numbers:NAME:start -->`` and ``<!-- numbers:NAME:end -->``
and is produced by one generator below, which runs the command behind the numbers and
renders them; the first line of every block says when, on what machine and under what load
they were measured. ``bash tools/readme-numbers`` reruns every block (tens of minutes);
``bash tools/readme-numbers quickstart plan-simulation`` reruns some. Blocks not named keep
their text. Figures outside these blocks (scenario, simulation-speed, Bayesian and uplift
benchmarks) name the benchmark script that prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"_Measured by `bash tools/readme-numbers {{name}}` on {time.strftime('%Y-%m-%d')}: "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, load average "
            f"{load:.1f} when it started._")


def _money(x: float) -> str:
    return f"{x:,.0f}"


def quickstart() -> str:
    """The quickstart's stage times, policy returns and plan line."""
    from personasim.config.loading import load_config
    from personasim.experiments.runner import run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        summary = run_experiment(load_config(ROOT / "configs" / "quickstart.yaml"),
                                 Path(tmp) / "run")
        plan_eval = pd.read_csv(Path(tmp) / "run" / "plan_evaluation.csv")
    m = summary.manifest
    stages = m["stage_seconds"]
    names = [("ab_test", "simulated A/B test (4,000 recipients)"),
             ("inference", "Bayesian update (4 chains x 1,000 draws; 3 more simulated waves)"),
             ("training", "PPO training (12,000 steps)"),
             ("evaluation", "evaluation (5 policies x 5 seeds)"),
             ("prioritization", "prioritization (10,000 recipients x 3 campaigns)"),
             ("plan", "plan (two pacings played in the simulation)"),
             ("export", "tables and plots")]
    lines = ["| stage | seconds |", "|---|---|"]
    lines += [f"| {label} | {stages.get(key, float('nan')):.1f} |" for key, label in names]
    lines.append(f"| whole command, start to finish | {m['wall_seconds']:.1f} |")
    d = m["diagnostics"]
    lines += ["", f"Sampler diagnostics: R-hat {d['rhat_max']:.3f}, minimum bulk ESS "
              f"{d['ess_bulk_min']:,.0f}, {d['divergences']} divergences. Policy returns per "
              "12-week episode (dollars, mean and 95% interval over 5 evaluation seeds):", "",
              "| policy | mean return | 95% interval |", "|---|---|---|"]
    evaluation = summary.evaluation.sort_values("mean_return")
    lines += [f"| {r.policy} | {_money(r.mean_return)} | {_money(r.ci_low)} – "
              f"{_money(r.ci_high)} |" for r in evaluation.itertuples()]
    plan = m["plan"]
    by = plan_eval.set_index("strategy")
    lines += ["", f"The plan: {plan['messages']:,} messages to {plan['recipients_messaged']:,} "
              f"of {plan['recipients']:,} recipients, ${plan['spend']:,.2f} of the "
              f"${plan['budget']:,.2f} budget; in the simulation it returns "
              f"{_money(by.loc['plan', 'mean_return'])} with its 5% holdout and "
              f"{_money(by.loc['plan_without_holdout', 'mean_return'])} without it."]
    return "\n".join(lines)


def plan_simulation() -> str:
    """The plan against the alternatives on the quickstart, fatigue and budget configs."""
    return plan_table([r for r in _bench_plan("simulation") if r.get("part") == "simulation"])


def plan_table(rows: list[dict]) -> str:
    """The README's plan table from ``bench_plan.py``'s simulation lines."""
    names = {"plan": "plan (5% held out)", "plan_without_holdout": "plan without holdout",
             "plan_policy_pacing": "plan paced by the policy",
             "plan_value_pacing": "plan paced by value", "ab_winner": "A/B winner",
             "myopic_oracle": "myopic oracle", "greedy_table": "greedy table"}
    strategies = list(names)
    calendar = next(k for k in rows[0] if k.startswith("policy_calendar"))
    strategies.insert(2, calendar)
    names[calendar] = "PPO's calendar"
    lines = ["| strategy | " + " | ".join(r["config"] for r in rows) + " |",
             "|---|" + "---|" * len(rows)]
    for key in strategies:
        cells = []
        for r in rows:
            v = r.get(key)
            cells.append("(the one chosen)" if v is None and key.endswith("_pacing")
                         else "—" if v is None else f"{_money(v[0])} ({_money(v[1])} – "
                                                     f"{_money(v[2])})")
        lines.append(f"| {names[key]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _bench_plan(*parts: str) -> list[dict]:
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_plan.py"),
                          "--parts", *parts], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def hillstrom_budgets() -> str:
    """The plan against random and T-learner targeting at 10/25/50% on held-out Hillstrom."""
    rows = [r for r in _bench_plan("hillstrom")
            if r.get("part") == "hillstrom" and r["metric"] == "visit"]
    by = {(r["budget_share"], r["policy"]): r for r in rows}

    def cell(values: list[float]) -> str:
        return f"{values[0]:.1f} ({values[1]:.1f}–{values[2]:.1f})"

    def diff(values: list[float]) -> str:
        text = f"{values[0]:+.1f} ({values[1]:+.1f} to {values[2]:+.1f})"
        return f"**{text}**" if values[1] > 0 else text

    lines = ["| e-mailed | plan | random customers, best arm | T-learner's top | "
             "plan − random | plan − T-learner |", "|---|---|---|---|---|---|"]
    for share in sorted({r["budget_share"] for r in rows}):
        plan, rand, tl = (by[(share, p)] for p in ("plan", "random_best_arm", "t_learner"))
        lines.append(f"| {share:.0%} | {cell(plan['per_1000'])} | {cell(rand['per_1000'])} | "
                     f"{cell(tl['per_1000'])} | {diff(rand['plan_minus_per_1000'])} | "
                     f"{diff(tl['plan_minus_per_1000'])} |")
    return "\n".join(lines)


def scale() -> str:
    """``rank`` and ``plan`` at 1,000,000 recipients x 20 campaigns."""
    rows = []
    for fmt, cases in (("parquet", ("hard", "soft")), ("csv", ("hard",))):
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_rank.py"),
                              "--recipients", "1000000", "--format", fmt, "--cases", *cases],
                             capture_output=True, text=True, check=True)
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    plan = next(r for r in _bench_plan("scale") if r.get("part") == "scale")
    labels = {"hard": "recipients with `persona_id`", "soft": "soft membership (no `persona_id`)"}
    lines = ["| command, 1,000,000 recipients x 20 campaigns | wall | CPU | peak memory |",
             "|---|---|---|---|"]
    lines += [f"| `rank`, {labels[r['case']]}, {r['format']} | {r['wall_s']:.1f} s | "
              f"{r['cpu_s']:.1f} s | {r['peak_mb'] / 1024:.2f} GB |" for r in rows]
    lines.append(f"| `plan`, 12 weeks, $2 a recipient ({plan['messages']:,} messages) | "
                 f"{plan['seconds']:.1f} s | — | {plan['peak_gb']:.2f} GB |")
    return "\n".join(lines)


def tests() -> str:
    """How many tests the default suite collects."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=ROOT,
                         capture_output=True, text=True, check=False)
    found = re.search(r"(\d+)(?:/\d+)? tests? collected|(\d+) tests? selected", out.stdout)
    count = next(g for g in found.groups() if g) if found else "?"
    return f"The default suite collects {count} tests."


GENERATORS: dict[str, Callable[[], str]] = {
    "quickstart": quickstart, "plan-simulation": plan_simulation,
    "hillstrom-budgets": hillstrom_budgets, "scale": scale, "tests": tests,
}


def rewrite(text: str, name: str, body: str) -> str:
    """``text`` with the block ``name`` replaced by ``body`` (and its measurement line)."""
    start, end = f"<!-- numbers:{name}:start -->", f"<!-- numbers:{name}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no block {name!r} ({start} ... {end})")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    stamp = _machine().format(name=name)
    return f"{head}{start}\n{stamp}\n\n{body}\n{end}{tail}"


def main() -> None:
    """Rerun the named blocks (all by default) and rewrite README.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"blocks to rerun (default all: {', '.join(GENERATORS)})")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in GENERATORS]
    if unknown:
        parser.error(f"unknown block {unknown[0]!r}; known: {', '.join(GENERATORS)}")
    for name in args.names or list(GENERATORS):
        print(f"rerunning {name} ...", file=sys.stderr, flush=True)
        body = GENERATORS[name]()
        README.write_text(rewrite(README.read_text(encoding="utf-8"), name, body),
                          encoding="utf-8")
        print(f"rewrote the {name} block", file=sys.stderr)


if __name__ == "__main__":
    main()
