"""Recipient-level response: personasim's ranking table against scikit-learn meta-learners.

For every synthetic world of ``uplift_worlds`` (known true response probability per
recipient x campaign; half the recipients held out):

1. The training half is written as data-mode files with a default config (``config.yaml``:
   only ``name``, ``description``, ``seed`` and ``data``; ``--set`` adds overrides,
   ``--quick`` small sampler settings). personasim's stages ``inputs``, ``ab_test`` and
   ``inference`` run as ``personasim run`` would run them (no policy training; the
   inference stage is timed), and the held-out recipients are ranked as ``personasim rank``
   ranks a new recipients file: ``audience_from_recipients`` + ``prioritize``. Each
   recipient's choice is its rank-1 campaign when its ``action`` is ``send``; its
   ``priority`` is the estimated net value.
2. Three baselines get the same A/B rows: logistic T-learner, gradient-boosting T-learner
   and gradient-boosting X-learner (``uplift_learners``); each sends the campaign of highest
   estimated ``uplift x value - cost`` when that is positive and the recipient consents.
3. Every ranking is scored with the true probabilities over consenting held-out recipients:
   ``captured = (V - V_random) / (V_oracle - V_random)``, and ``captured_at_20pct``, the
   same when only 20% of them may be contacted (each ranking its top 20% by its own
   estimated net value; the oracle its top 20% by true net value; random a random 20%).
   ``best_single`` (the campaign with the highest true total, to everyone) is a reference.
   ``uplift_coverage_90``: share of held-out recipient x campaign pairs whose true uplift
   lies in the table's 90% interval ``((priority_low + cost) / value, (priority_high + cost)
   / value)`` (``priority = uplift x value - cost`` per draw, see
   ``personasim/ranking/prioritization.py``).

One JSON line per world on stdout, then a summary line; logs go to stderr. Usage::

    python benchmarks/bench_uplift.py [--recipients 20000] [--worlds mixed strong]
        [--seed 7] [--quick] [--set inference.draws=500 ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))

from uplift_learners import (  # noqa: E402
    BASELINES,
    Ranking,
    captured,
    ranking_from_uplift,
    references,
    true_net,
)
from uplift_worlds import (  # noqa: E402
    ATTRIBUTES,
    CAMPAIGN_ROWS,
    WORLDS,
    K,
    World,
    make_world,
    write_data_mode,
)

from personasim.audience.membership import audience_from_recipients  # noqa: E402
from personasim.config.loading import load_config  # noqa: E402
from personasim.core.interrupts import StopFlag  # noqa: E402
from personasim.data.recipients import load_recipients  # noqa: E402
from personasim.experiments.stage import RunContext  # noqa: E402
from personasim.experiments.stages import ab_test, inference, inputs  # noqa: E402
from personasim.ranking.prioritization import prioritize  # noqa: E402

logger = logging.getLogger("bench_uplift")

TOP_SHARE = 0.2  #: share of consenting recipients that may be contacted in ``*_at_20pct``
FULL_SIZE = 20_000  #: ``fit_seconds_20k_5c`` is reported at this many recipients
QUICK = {"recipients": 3_000,
         "overrides": ["inference.draws=200", "inference.tune=200", "inference.chains=2"]}
SENDABLE = [row[0] for row in CAMPAIGN_ROWS[1:]]
VALUE = np.array([row[2] for row in CAMPAIGN_ROWS[1:]])
COST = np.array([row[3] for row in CAMPAIGN_ROWS[1:]])


def emit(record: dict[str, Any]) -> None:
    """Print one JSON line to stdout (floats rounded to 4 decimals)."""

    def tidy(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: tidy(v) for k, v in value.items()}
        if isinstance(value, list):
            return [tidy(v) for v in value]
        if isinstance(value, float | np.floating):
            return None if not np.isfinite(value) else round(float(value), 4)
        if isinstance(value, np.integer):
            return int(value)
        return value

    print(json.dumps(tidy(record)), flush=True)


def _ignore_progress(_: int) -> None:
    """The ``advance`` callback of the stages: progress is not shown."""


def run_personasim(world: World, folder: Path, seed: int,
                   overrides: list[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit personasim on the training files and rank the held-out recipients.

    Returns
    -------
    tuple
        The prioritization table of the held-out recipients, and facts about the fit
        (seconds of the inference stage, personas, covariates, sampler diagnostics).
    """
    config_path = write_data_mode(world, folder, seed)
    config = load_config(config_path, overrides)
    ctx = RunContext(config, str(config_path), folder / "run", StopFlag())
    started = time.perf_counter()
    loaded = inputs.run(ctx, _ignore_progress)
    ab = ab_test.run(ctx, _ignore_progress, loaded)
    inputs_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fitted = inference.run(ctx, _ignore_progress, loaded, ab)
    bayes_seconds = time.perf_counter() - started
    started = time.perf_counter()
    heldout = load_recipients(folder / "heldout_recipients.csv")
    posterior = fitted.posterior
    audience = audience_from_recipients(heldout, posterior.persona_ids, loaded.profiles,
                                        config.prioritization.membership_temperature, "heldout")
    table = prioritize(audience, posterior, loaded.campaigns, config.prioritization)
    diagnostics = posterior.diagnostics
    covariates = fitted.outcome.covariates
    return table, {
        "bayes_seconds": bayes_seconds,
        "inputs_seconds": inputs_seconds,
        "rank_seconds": time.perf_counter() - started,
        "personas": len(loaded.personas),
        "covariates": list(covariates.names) if covariates else [],
        "sampler": diagnostics.sampler,
        "sampler_seconds": diagnostics.seconds,  # compile included
        "compile_seconds": getattr(diagnostics, "compile_seconds", None),
        "rhat_max": diagnostics.rhat_max,
        "ess_bulk_min": diagnostics.ess_bulk_min,
        "divergences": diagnostics.divergences,
    }


def table_ranking(table: pd.DataFrame, recipient_ids: pd.Series) -> Ranking:
    """The table's rank-1 campaign per recipient (``-1`` unless ``send``) and its priority."""
    top = table[table["rank"] == 1].set_index("recipient_id").loc[recipient_ids.astype(str)]
    index = top["campaign_id"].map({c: i for i, c in enumerate(SENDABLE)}).to_numpy(np.intp)
    send = top["action"].to_numpy() == "send"
    return Ranking(np.where(send, index, -1), top["priority"].to_numpy(np.float64))


def uplift_coverage(table: pd.DataFrame, world: World) -> dict[str, float | None]:
    """Coverage and mean width of the uplift interval derived from the priority interval.

    ``None`` when the table has no ``priority_low``/``priority_high`` columns.
    """
    if not {"priority_low", "priority_high"} <= set(table.columns):
        return {"uplift_coverage_90": None, "uplift_interval_width": None}
    row = pd.Series(np.arange(len(world.heldout)),
                    index=world.heldout["recipient_id"].astype(str))
    r = row.loc[table["recipient_id"].astype(str)].to_numpy()
    c = table["campaign_id"].map({cid: i for i, cid in enumerate(SENDABLE)}).to_numpy(np.intp)
    low = (table["priority_low"].to_numpy() + COST[c]) / VALUE[c]
    high = (table["priority_high"].to_numpy() + COST[c]) / VALUE[c]
    true = world.truth[r, c + 1] - world.truth[r, 0]
    return {"uplift_coverage_90": float(((low <= true) & (true <= high)).mean()),
            "uplift_interval_width": float((high - low).mean())}


def baseline_rankings(world: World, seed: int) -> tuple[dict[str, Ranking], dict[str, float]]:
    """Fit each scikit-learn baseline on the A/B rows and rank the held-out recipients."""
    train = world.train.set_index("recipient_id").loc[world.ab["recipient_id"]]
    arm = world.ab["campaign_id"].map({row[0]: i for i, row in enumerate(CAMPAIGN_ROWS)})
    y, arm = world.ab["outcome"].to_numpy(np.int64), arm.to_numpy(np.intp)
    consent = world.heldout["consent"].to_numpy(bool)
    rankings, seconds = {}, {}
    for name, learner in BASELINES.items():
        started = time.perf_counter()
        # one OpenMP thread: on a shared 2-core machine parallel boosting can stall 10-50x
        with threadpool_limits(limits=1):
            uplift = learner(train, y, arm, world.heldout, list(ATTRIBUTES), K, seed)
        rankings[name] = ranking_from_uplift(uplift, VALUE, COST, consent)
        seconds[name] = time.perf_counter() - started
    return rankings, seconds


def bench_world(name: str, n_recipients: int, seed: int, overrides: list[str],
                workdir: Path) -> dict[str, Any]:
    """Build, fit and score one world; return its JSON record."""
    world = make_world(name, n_recipients, seed)
    logger.info("world %s: %d training A/B rows, %d held out", name, len(world.ab),
                len(world.heldout))
    table, fit = run_personasim(world, workdir / name, seed, overrides)
    rankings = {"personasim": table_ranking(table, world.heldout["recipient_id"])}
    baselines, baseline_seconds = baseline_rankings(world, seed)
    rankings.update(baselines)
    consent = world.heldout["consent"].to_numpy(bool)
    net = true_net(world.truth, VALUE, COST)
    refs = references(net, consent, TOP_SHARE)
    rankings["best_single"] = refs.best_single
    scores = {key: captured(net, ranking, consent, refs) for key, ranking in rankings.items()}
    n_consent = int(consent.sum())
    record = {
        "world": name,
        "description": world.description,
        "recipients": n_recipients,
        "train": len(world.train),
        "ab_rows": len(world.ab),
        "heldout": len(world.heldout),
        "heldout_consenting": n_consent,
        "captured": {k: s["captured"] for k, s in scores.items()},
        "captured_at_20pct": {k: s["captured_at_20pct"] for k, s in scores.items()},
        "value_per_1000": {
            **{k: s["value_per_1000"] for k, s in scores.items()},
            "random": 1000 * refs.random / n_consent, "oracle": 1000 * refs.oracle / n_consent},
        "sends": {k: s["sends"] for k, s in scores.items()},
        "best_single_campaign": SENDABLE[int(refs.best_single.choice[consent][0])]
        if refs.best_single.choice[consent][0] >= 0 else None,
        **uplift_coverage(table, world),
        **fit,
        "baseline_seconds": baseline_seconds,
        "facts": world.facts,
    }
    emit(record)
    return record


def summary(records: list[dict[str, Any]], n_recipients: int) -> dict[str, Any]:
    """The last line: personasim's means, its worst margin to the best baseline, and more."""

    def mean(metric: str, key: str) -> float:
        return float(np.mean([r[metric][key] for r in records]))

    margins = [r["captured"]["personasim"] - max(r["captured"][b] for b in BASELINES)
               for r in records]
    coverage = [r["uplift_coverage_90"] for r in records if r["uplift_coverage_90"] is not None]
    first = records[0]
    out: dict[str, Any] = {
        "worlds": [r["world"] for r in records],
        "recipients": n_recipients,
        "captured_mean": mean("captured", "personasim"),
        "captured_min_minus_tlearner": min(margins),
        "captured_min_minus_tlearner_world": records[int(np.argmin(margins))]["world"],
        "captured_at_20pct_mean": mean("captured_at_20pct", "personasim"),
        "uplift_coverage_90": float(np.mean(coverage)) if coverage else None,
        "fit_seconds_20k_5c": first["bayes_seconds"] if n_recipients == FULL_SIZE else None,
        "fit_seconds_first_world": first["bayes_seconds"],
    }
    for key in [*BASELINES, "best_single"]:
        out[f"{key}_captured_mean"] = mean("captured", key)
        out[f"{key}_captured_at_20pct_mean"] = mean("captured_at_20pct", key)
    return out


def main() -> None:
    """Parse the flags, run every chosen world and print the summary line last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=None,
                        help=f"recipients per world, half held out (default {FULL_SIZE:,}; "
                             f"--quick: {QUICK['recipients']:,})")
    parser.add_argument("--worlds", nargs="+", choices=list(WORLDS), default=list(WORLDS),
                        help="worlds to run (default all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true",
                        help="small worlds and " + ", ".join(QUICK["overrides"]))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override passed to load_config (repeatable)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="write each world's files under this folder instead of a temp dir")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logger.setLevel(logging.INFO)
    n_recipients = args.recipients or (QUICK["recipients"] if args.quick else FULL_SIZE)
    overrides = (QUICK["overrides"] if args.quick else []) + args.set
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_uplift-") as tmp:
        workdir = args.keep or Path(tmp)
        records = [bench_world(name, n_recipients, args.seed, overrides, workdir)
                   for name in args.worlds]
    emit({**summary(records, n_recipients), "overrides": overrides,
          "seconds_total": time.perf_counter() - started})


if __name__ == "__main__":
    main()
