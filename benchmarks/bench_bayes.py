"""Bayesian updating: calibration, pooling, speed and targeting value, on simulated worlds.

1. **Grid worlds** (``--worlds``, default 50; see ``bayes_worlds.grid_world``): 8 personas x
   6 campaigns with known true rates. The hierarchical model (default ``InferenceConfig``:
   nutpie, 4 chains x 1,000 draws after 1,000 tuning, target_accept 0.99) is fitted to each
   world's counts with the stated prior and a discount feature; the compiled model is reused
   across worlds (``pm.Data`` + nutpie ``with_data``; each part owns a ``CompiledModelCache``).
   ``coverage_90`` is the share of true rates inside the 90% intervals;
   ``rmse_ratio_sparse``/``_dense`` compare the posterior mean's RMSE to the truth with that
   of the independent Beta-Binomial estimator (``ESTIMATORS.get("beta_binomial")``: the same
   prior mean, worth 2 observations) on cells with <= 50 and >= 1,000 exposures.
2. **Speed**: a 50 x 20 grid is compiled once (``compile_seconds_50x20``) and a second 50 x 20
   world fitted with the compiled model (``fit_seconds_50x20``, warm, sampling included).
3. **Targeting worlds** (``--target-worlds``, default 10; ``bayes_worlds.targeting_world``):
   response depends on recipient attributes in ways the k-means personas do not capture. The
   run's Bayesian stage (``personasim.bayes.update.infer_stage``: covariates ranked by score
   test, all four kept by default, binned cells, hierarchical fit) feeds ``prioritize``
   (soft membership + covariates); each of 20,000 fresh recipients gets its top campaign if
   its priority is positive. A
   per-campaign scikit-learn logistic-regression T-learner gets the same A/B data and rule.
   Values are true incremental value net of cost; ``captured`` = (ours - random) / (oracle -
   random), summed over worlds, where random sends each recipient a random campaign and the
   oracle knows the true probabilities.

Prints one JSON object per line; the last line holds the headline numbers. About 15 minutes
on 2 cores. Usage: ``python benchmarks/bench_bayes.py [--worlds N] [--target-worlds N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bayes_worlds import (  # noqa: E402
    PERSONA_FEATURES,
    grid_world,
    net_of,
    net_values,
    targeting_world,
    value_of,
)

from personasim.audience.profiles import PersonaProfiles  # noqa: E402
from personasim.bayes.cells import grid_inputs  # noqa: E402
from personasim.bayes.estimators import ESTIMATORS, EstimationRequest, fit_model  # noqa: E402
from personasim.bayes.sampling import CompiledModelCache  # noqa: E402
from personasim.bayes.update import infer_stage  # noqa: E402
from personasim.config.distributions import Beta, Constant  # noqa: E402
from personasim.config.persona import Persona, PersonaTraits  # noqa: E402
from personasim.config.schema import PrioritizationConfig  # noqa: E402
from personasim.config.sections import InferenceConfig
from personasim.core.types import ABCounts, ABResults, Audience  # noqa: E402
from personasim.ranking.prioritization import prioritize  # noqa: E402

SPARSE, DENSE = 50, 1000
N_PERSONAS_TARGETING = 5  #: k-means personas in the targeting worlds


def emit(record: dict[str, Any]) -> None:
    """Print one JSON line."""
    print(json.dumps(record), flush=True)


def grid_part(n_worlds: int, config: InferenceConfig, seed: int) -> dict[str, Any]:
    """Coverage and RMSE ratios over ``n_worlds`` grid worlds."""
    rng = np.random.default_rng(seed)
    bb = ESTIMATORS.get("beta_binomial")
    cache = CompiledModelCache()
    inside, exposures, err_h, err_b = [], [], [], []
    clean, seconds = 0, []
    for w in range(n_worlds):
        world = grid_world(rng, 8, 6)
        inputs = grid_inputs(world.counts, world.prior_mean, world.prior_scale, world.features,
                             ("discount",))
        start = time.perf_counter()
        post = fit_model(inputs, config, seed=w, cache=cache)
        seconds.append(time.perf_counter() - start)
        base = bb(EstimationRequest.from_counts(world.counts, config, w, world.prior_mean))
        low, high = post.interval(0.9)
        inside.append(((low <= world.truth) & (world.truth <= high)).ravel())
        exposures.append(world.counts.exposures.ravel())
        err_h.append((post.mean() - world.truth).ravel())
        err_b.append((base.mean() - world.truth).ravel())
        d = post.diagnostics
        clean += d.ok
        emit({"part": "grid", "world": w, "seconds": round(seconds[-1], 2),
              "rhat_max": round(d.rhat_max, 4), "ess_bulk_min": round(d.ess_bulk_min),
              "divergences": d.divergences, "coverage_90": float(inside[-1].mean())})
    inside_a, n = np.concatenate(inside), np.concatenate(exposures)
    eh, eb = np.concatenate(err_h), np.concatenate(err_b)

    def ratio(mask: np.ndarray) -> float:
        return float(np.sqrt(np.mean(eh[mask] ** 2)) / np.sqrt(np.mean(eb[mask] ** 2)))

    summary = {
        "part": "grid_summary", "worlds": n_worlds, "cells": int(n.size),
        "coverage_90": float(inside_a.mean()),
        "coverage_90_sparse": float(inside_a[n <= SPARSE].mean()),
        "coverage_90_dense": float(inside_a[n >= DENSE].mean()),
        "rmse_ratio_sparse": ratio(n <= SPARSE), "rmse_ratio_dense": ratio(n >= DENSE),
        "sparse_cells": int((n <= SPARSE).sum()), "dense_cells": int((n >= DENSE).sum()),
        "worlds_with_clean_diagnostics": clean,
        "fit_seconds_median": float(np.median(seconds)),
    }
    emit(summary)
    return summary


def speed_part(config: InferenceConfig, seed: int) -> dict[str, float]:
    """Compile seconds and warm fit seconds for a 50 x 20 model."""
    rng = np.random.default_rng(seed)
    cache = CompiledModelCache()
    first, second = grid_world(rng, 50, 20), grid_world(rng, 50, 20)
    start = time.perf_counter()
    cold_post = fit_model(grid_inputs(first.counts, first.prior_mean, first.prior_scale),
                          config, seed, cache=cache)
    cold = time.perf_counter() - start
    compile_seconds = getattr(cold_post.diagnostics, "compile_seconds", 0.0)
    start = time.perf_counter()
    post = fit_model(grid_inputs(second.counts, second.prior_mean, second.prior_scale),
                     config, seed + 1, cache=cache)
    warm = time.perf_counter() - start
    d = post.diagnostics
    record = {"part": "speed_50x20", "compile_seconds": compile_seconds,
              "cold_fit_seconds": cold, "warm_fit_seconds": warm,
              "rhat_max": d.rhat_max, "ess_bulk_min": d.ess_bulk_min,
              "divergences": d.divergences}
    emit(record)
    return record


def _tlearner_picks(world: Any, x_ab: np.ndarray, x_pop: np.ndarray) -> np.ndarray:
    """Per-campaign logistic regressions; send the best positive-priority campaign."""
    from sklearn.linear_model import LogisticRegression

    ids = [c.id for c in world.campaigns]
    prob = np.zeros((x_pop.shape[0], len(ids)))
    for k, cid in enumerate(ids):
        rows = (world.ab_table["campaign_id"] == cid).to_numpy()
        model = LogisticRegression(max_iter=2000).fit(x_ab[rows],
                                                      world.ab_table["outcome"][rows])
        prob[:, k] = model.predict_proba(x_pop)[:, 1]
    priority = net_of(world.campaigns, prob)
    best = priority.argmax(axis=1)
    return np.where(priority.max(axis=1) > 0, best, -1)


def _vague_persona(persona_id: str) -> Persona:
    """A persona whose traits say only: a few percent respond, give or take a lot."""
    return Persona(id=persona_id, traits=PersonaTraits(
        propensity={"default": Beta(a=1, b=24)}, organic=Beta(a=1, b=30),
        price_sensitivity=Constant(value=0.0)))


def _our_picks(world: Any, config: InferenceConfig, seed: int,
               cache: CompiledModelCache) -> tuple[np.ndarray, Any]:
    """The run's Bayesian stage and prioritization; the top campaign per recipient, or -1."""
    from sklearn.cluster import KMeans

    profiles = PersonaProfiles.encoder(world.ab_recipients, PERSONA_FEATURES)
    labels = KMeans(N_PERSONAS_TARGETING, n_init=4, random_state=seed).fit_predict(
        profiles.transform(world.ab_recipients))
    ids = [f"p{j}" for j in range(N_PERSONAS_TARGETING)]
    profiles = profiles.with_centroids(profiles.transform(world.ab_recipients), labels, ids)
    persona_of = dict(zip(world.ab_recipients["recipient_id"], np.array(ids)[labels],
                          strict=True))
    table = world.ab_table.assign(persona_id=world.ab_table["recipient_id"].map(persona_of))
    campaign_ids = tuple(c.id for c in world.campaigns)
    ab = ABResults(table, ABCounts.from_table(table, tuple(ids), campaign_ids), "simulated")
    outcome = infer_stage(config, [_vague_persona(i) for i in ids], world.campaigns, ab, seed,
                          world.ab_recipients, cache=cache)
    membership = profiles.membership(world.population)
    audience = Audience(world.population.assign(
        persona_id=np.array(ids)[membership.argmax(axis=1)]), membership, tuple(ids))
    ranked = prioritize(audience, outcome.posterior, world.campaigns, PrioritizationConfig())
    top = ranked[ranked["rank"] == 1].set_index("recipient_id").loc[
        world.population["recipient_id"]]
    sendable = [c.id for c in world.campaigns if not c.control]
    picks = top["campaign_id"].map({c: i for i, c in enumerate(sendable)}).to_numpy()
    return np.where(top["action"].to_numpy() == "send", picks, -1), outcome


def targeting_part(n_worlds: int, config: InferenceConfig, seed: int) -> dict[str, float]:
    """Captured share of the oracle's lift over random, ours and the T-learner's."""
    rng = np.random.default_rng(seed)
    totals = {"ours": 0.0, "tlearner": 0.0, "oracle": 0.0, "random": 0.0}
    cache = CompiledModelCache()  # worlds of the same structure reuse the compiled model
    for w in range(n_worlds):
        world = targeting_world(rng)
        net = net_values(world)
        start = time.perf_counter()
        ours, outcome = _our_picks(world, config, seed + w, cache)
        ours_seconds = time.perf_counter() - start
        cols = list(world.features)
        mean = world.ab_recipients[cols].astype(float).mean()
        std = world.ab_recipients[cols].astype(float).std()
        x_ab = ((world.ab_recipients[cols].astype(float) - mean) / std).to_numpy()
        x_pop = ((world.population[cols].astype(float) - mean) / std).to_numpy()
        values = {
            "ours": value_of(ours, net),
            "tlearner": value_of(_tlearner_picks(world, x_ab, x_pop), net),
            "oracle": float(np.maximum(net, 0).max(axis=1).sum()),
            "random": float(net.mean(axis=1).sum()),
        }
        for key, value in values.items():
            totals[key] += value
        lift = values["oracle"] - values["random"]
        d = outcome.posterior.diagnostics
        emit({"part": "targeting", "world": w, **{k: round(v, 1) for k, v in values.items()},
              "captured": (values["ours"] - values["random"]) / lift,
              "tlearner_captured": (values["tlearner"] - values["random"]) / lift,
              "covariates": list(outcome.covariates.names) if outcome.covariates else [],
              "rhat_max": round(d.rhat_max, 4), "ess_bulk_min": round(d.ess_bulk_min),
              "divergences": d.divergences, "seconds": round(ours_seconds, 1)})
    lift = totals["oracle"] - totals["random"]
    summary = {"part": "targeting_summary", "worlds": n_worlds,
               "captured_vs_oracle": (totals["ours"] - totals["random"]) / lift,
               "tlearner_captured_vs_oracle": (totals["tlearner"] - totals["random"]) / lift,
               **{f"total_{k}": round(v, 1) for k, v in totals.items()}}
    emit(summary)
    return summary


def main() -> None:
    """Run the three parts and print the headline line last."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", type=int, default=50)
    parser.add_argument("--target-worlds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    pd.options.mode.chained_assignment = None
    config = InferenceConfig()
    started = time.perf_counter()
    grid = grid_part(args.worlds, config, args.seed)
    speed = speed_part(config, args.seed + 1)
    targeting = targeting_part(args.target_worlds, config, args.seed + 2)
    emit({
        "coverage_90": round(grid["coverage_90"], 4),
        "rmse_ratio_sparse": round(grid["rmse_ratio_sparse"], 4),
        "rmse_ratio_dense": round(grid["rmse_ratio_dense"], 4),
        "fit_seconds_50x20": round(speed["warm_fit_seconds"], 2),
        "compile_seconds_50x20": round(speed["compile_seconds"], 2),
        "captured_vs_oracle": round(targeting["captured_vs_oracle"], 4),
        "tlearner_captured_vs_oracle": round(targeting["tlearner_captured_vs_oracle"], 4),
    })
    logging.getLogger(__name__).info("total %.0f s", time.perf_counter() - started)


if __name__ == "__main__":
    main()
