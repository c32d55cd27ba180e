"""``personasim rank`` at scale: wall time, CPU time and peak memory per case.

A finished run is built directly (no sampling): a config, ``campaigns`` campaigns plus a
control, persona profiles on four numeric features, and a synthetic posterior of
``personas`` x ``campaigns + 1`` with ``draws`` draws (a :class:`CovariatePosterior` with
``covariates`` slopes for the covariate cases). A recipients Parquet file of ``recipients``
rows is written for each case, then :func:`personasim.experiments.rank.rank_recipients`
ranks it exactly as ``personasim rank`` does, in a fresh subprocess per case so that the
peak resident memory (``ru_maxrss``) is the case's own.

Cases (``--cases``):

``hard``
    recipients carry ``persona_id`` (one-hot membership), persona rates only.
``soft``
    no ``persona_id``: soft membership from the profiles, persona rates only.
``hard_cov`` / ``soft_cov``
    the same with recipient covariates (``covariates`` columns).
``reference``
    the yardstick: a plain NumPy ``argsort`` of ``recipients x campaigns`` random priorities
    per recipient and a Parquet write of the same number of rows and columns.

Each case prints one JSON object on stdout: ``case, format, recipients, campaigns, rows,
wall_s, cpu_s, peak_mb`` and, when the reference ran in the same invocation,
``x_reference`` (wall time over the reference's wall time, measured within this run).
``--check-stable`` ranks each case twice and adds ``stable`` (the two files are
byte-identical). Usage::

    python benchmarks/bench_rank.py [--recipients 100000] [--campaigns 20]
        [--cases reference hard soft soft_cov] [--format parquet] [--check-stable]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

logger = logging.getLogger("bench_rank")

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ("f0", "f1", "f2", "f3")
CASES = ("reference", "hard", "soft", "hard_cov", "soft_cov")


def build_run(run_dir: Path, personas: int, campaigns: int, draws: int, covariates: int,
              seed: int) -> None:
    """Write the files ``personasim rank`` reads from a finished run into ``run_dir``."""
    from personasim.audience.profiles import PersonaProfiles
    from personasim.bayes.covariates import CovariatePosterior, CovariateSpec
    from personasim.bayes.storage import save_posterior
    from personasim.config.loading import load_config
    from personasim.core import run_layout as files
    from personasim.core.types import Diagnostics, Posterior

    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = load_config(ROOT / "configs" / "quickstart.yaml")
    resolved = config.model_dump(mode="json", by_alias=True, exclude_none=True)
    files.CONFIG.path(run_dir).write_text(yaml.safe_dump(resolved, sort_keys=False))
    ids = [f"c{k:02d}" for k in range(campaigns)]
    items = [{"id": "holdout", "control": True}] + [
        {"id": cid, "value": float(rng.uniform(5, 60)), "cost": float(rng.uniform(0, 1))}
        for cid in ids
    ]
    files.CAMPAIGNS.path(run_dir).write_text(yaml.safe_dump(items, sort_keys=False))
    persona_ids = [f"p{j}" for j in range(personas)]
    centroids = rng.normal(size=(personas, len(FEATURES)))
    profiles = PersonaProfiles(list(FEATURES), dict.fromkeys(FEATURES, 0.0),
                               dict.fromkeys(FEATURES, 1.0), {}, persona_ids, centroids)
    files.PROFILES.path(run_dir).write_text(json.dumps(profiles.to_dict()))
    campaign_ids = ("holdout", *ids)
    logits = rng.normal(-3.0, 0.4, size=(1, personas, len(campaign_ids)))
    eta = (logits + rng.normal(0, 0.15, size=(draws, personas, len(campaign_ids))))
    diag = Diagnostics(sampler="synthetic", rhat_max=1.0, ess_bulk_min=float(draws),
                       divergences=0, seconds=0.0)
    rates = (1 / (1 + np.exp(-eta))).astype(np.float32)
    if covariates:
        names = tuple(f"x{d}" for d in range(covariates))
        spec = CovariateSpec(names, (0.0,) * covariates, (1.0,) * covariates)
        gamma = rng.normal(0, 0.1, size=(draws, len(campaign_ids), covariates))
        posterior: Posterior = CovariatePosterior(
            tuple(persona_ids), campaign_ids, rates, diag, eta.astype(np.float32),
            gamma.astype(np.float32), spec)
    else:
        posterior = Posterior(tuple(persona_ids), campaign_ids, rates, diag)
    save_posterior(posterior, run_dir)


def build_recipients(path: Path, n: int, personas: int, covariates: int, hard: bool,
                     seed: int) -> None:
    """Write ``n`` recipients (ids in shuffled order) as Parquet."""
    rng = np.random.default_rng(seed + 1)
    columns: dict[str, Any] = {
        "recipient_id": np.array([f"r{i:08d}" for i in rng.permutation(n)], dtype=object),
        "consent": rng.random(n) > 0.1,
    }
    if hard:
        columns["persona_id"] = np.array([f"p{j}" for j in range(personas)],
                                         dtype=object)[rng.integers(0, personas, n)]
    for name in FEATURES:
        columns[name] = rng.normal(size=n)
    for d in range(covariates):
        columns[f"x{d}"] = rng.normal(size=n).round(2)
    pq.write_table(pa.table(columns), path)


def reference(n: int, campaigns: int, out: Path, seed: int) -> int:
    """A plain NumPy sort + Parquet write of the same rows: the yardstick. Returns rows."""
    rng = np.random.default_rng(seed)
    priority = rng.normal(size=(n, campaigns))
    order = np.argsort(-priority, axis=1, kind="stable")
    values = np.take_along_axis(priority, order, axis=1).ravel()
    ids = np.array([f"r{i:08d}" for i in range(n)], dtype=object)
    table = pa.table({
        "recipient_id": np.repeat(ids, campaigns),
        "persona_id": pa.array(np.repeat(ids, campaigns)).dictionary_encode(),
        "campaign_id": pa.DictionaryArray.from_arrays(
            pa.array(order.ravel().astype(np.int32)), pa.array([f"c{k:02d}" for k in
                                                                range(campaigns)])),
        "rank": np.tile(np.arange(1, campaigns + 1, dtype=np.int32), n),
        **{f"v{c}": values for c in range(8)},
        "action": pa.array(np.where(values > 0, "send", "suppress")),
    })
    pq.write_table(table, out)
    return n * campaigns


def child(args: argparse.Namespace) -> None:
    """Run one case in this process and print its JSON line."""
    start = time.perf_counter()
    cpu0 = time.process_time()
    out = Path(args.out)
    if args.case == "reference":
        rows = reference(args.recipients, args.campaigns, out, args.seed)
    else:
        from personasim.experiments.rank import rank_recipients

        table = rank_recipients(Path(args.run), Path(args.recipients_file), out)
        rows = int(table.attrs.get("rows", len(table)))
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": round(wall, 2), "cpu_s": round(time.process_time() - cpu0, 2),
                      "peak_mb": round(usage.ru_maxrss / 1024), "rows": rows}))


def _run_child(argv: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"case failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--personas", type=int, default=8)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--covariates", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--check-stable", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--recipients-file", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.child:
        child(args)
        return
    reference_wall = None
    with tempfile.TemporaryDirectory(prefix="bench_rank_") as tmp:
        work = Path(tmp)
        for case in args.cases:
            covariates = args.covariates if case.endswith("_cov") else 0
            common = ["--recipients", str(args.recipients), "--campaigns", str(args.campaigns),
                      "--seed", str(args.seed), "--case", case]
            record: dict[str, Any] = {"case": case, "format": args.format,
                                      "recipients": args.recipients,
                                      "campaigns": args.campaigns}
            outputs = []
            if case == "reference":
                out = work / "reference.parquet"
                record.update(_run_child([*common, "--out", str(out)]))
                reference_wall = record["wall_s"]
            else:
                run_dir = work / f"run_{case}"
                build_run(run_dir, args.personas, args.campaigns, args.draws, covariates,
                          args.seed)
                recipients = work / f"recipients_{case}.parquet"
                build_recipients(recipients, args.recipients, args.personas, covariates,
                                 case.startswith("hard"), args.seed)
                for attempt in range(2 if args.check_stable else 1):
                    out = work / f"ranked_{case}_{attempt}.{args.format}"
                    result = _run_child([*common, "--run", str(run_dir), "--recipients-file",
                                         str(recipients), "--out", str(out)])
                    outputs.append(hashlib.sha256(out.read_bytes()).hexdigest())
                    if attempt == 0:
                        record.update(result)
                    out.unlink()
                if args.check_stable:
                    record["stable"] = outputs[0] == outputs[1]
                record["sha256"] = outputs[0][:16]
                if reference_wall:
                    record["x_reference"] = round(record["wall_s"] / reference_wall, 1)
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
