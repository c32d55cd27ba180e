"""The comparison of policies: every algorithm on several seeds, every policy on the same episodes.

:func:`train_all` trains ``policy.training_seeds`` runs of each algorithm in
``algorithm_names(policy)`` (skipping, with the reason logged, an algorithm the action space
does not allow), each resumable from its checkpoint. :func:`evaluate_all` plays the
baselines and every trained model on the same evaluation seeds (common random numbers),
summarizes them with intervals that count both training-run and audience spread
(:func:`~personasim.policies.rollouts.summarize_protocol`), and picks each algorithm's best run on
separate validation seeds, so the deployed policy is not chosen on the episodes that report
it. Finished runs and evaluations are saved as they complete, so a resumed run does neither
twice.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from personasim.config.sections import PolicyConfig
from personasim.core.csv_files import write_csv
from personasim.core.interrupts import StopFlag
from personasim.core.run_layout import CHECKPOINTS
from personasim.policies.baselines import Policy, SB3Policy
from personasim.policies.rollouts import run_episodes, summarize, summarize_protocol
from personasim.policies.training import (
    SB3_POLICY,
    TrainResult,
    algorithm_names,
    hyperparameters_for,
    load_policy,
    save_policy,
    train_policy,
    unsupported_reason,
)

logger = logging.getLogger(__name__)

POLICY_DIR = "policies"
"""Run-folder subfolder with every trained model: ``<algorithm>-seed<k>.zip`` (+ ``.json``)."""

CURVE_COLUMNS = ("algorithm", "run", "seed", "timesteps", "mean_return", "n_episodes")
RUN_COLUMNS = ("policy", "run", "training_seed", "timesteps", "training_seconds",
               "validation_return", "mean_return", "ci_low", "ci_high", "selected")

EnvFactory = Callable[[], gym.Env[Any, Any]]
Progress = Callable[[int], None]


def run_key(algorithm: str, run: int) -> str:
    """Name of one training run: ``<algorithm>-seed<run>``."""
    return f"{algorithm}-seed{run}"


@dataclass
class TrainedPolicies:
    """Every training run of every algorithm.

    Attributes
    ----------
    runs
        Algorithm -> its runs, in training-seed order.
    skipped
        Algorithm -> why it was not trained.
    curve
        :data:`CURVE_COLUMNS`; returns in dollars per episode.
    """

    runs: dict[str, list[TrainResult]]
    skipped: dict[str, str]
    curve: pd.DataFrame

    def seconds(self, algorithm: str) -> float:
        """Training seconds of ``algorithm``, summed over its runs."""
        return float(sum(r.seconds for r in self.runs.get(algorithm, [])))

    def manifest(self) -> dict[str, Any]:
        """Per algorithm: seeds, timesteps, seconds and hyperparameters; skipped ones."""
        return {
            "algorithms": {
                name: {
                    "seeds": [r.seed for r in results],
                    "timesteps": [r.timesteps for r in results],
                    # only a resumed run says where each training run resumed from
                    **({"resumed_from": [r.resumed_from for r in results]}
                       if any(r.resumed_from for r in results) else {}),
                    "seconds": [round(r.seconds, 3) for r in results],
                    "hyperparameters": results[0].hyperparameters if results else {},
                }
                for name, results in self.runs.items()
            },
            "skipped": dict(self.skipped),
        }


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def _save_run(out: Path, key: str, result: TrainResult) -> None:
    """Keep a finished run (model, curve, then the ``.json`` that marks it finished)."""
    folder = out / POLICY_DIR
    save_policy(result.model, folder / f"{key}.zip")
    write_csv(result.curve, folder / f"{key}.curve.csv")
    _write_json(folder / f"{key}.json", {
        "algorithm": result.algorithm, "seed": result.seed, "timesteps": result.timesteps,
        "seconds": result.seconds, "resumed_from": result.resumed_from,
        "hyperparameters": result.hyperparameters,
    })
    shutil.rmtree(out / CHECKPOINTS.name / key, ignore_errors=True)


def _load_run(out: Path, key: str, env_factory: EnvFactory,
              policy: PolicyConfig) -> TrainResult | None:
    """A run finished by an earlier session, or ``None`` (its zip is read without pickles)."""
    folder = out / POLICY_DIR
    marker = folder / f"{key}.json"
    if not marker.is_file():
        return None
    info = json.loads(marker.read_text())
    algorithm = str(info["algorithm"])
    model = load_policy(algorithm, folder / f"{key}.zip", env_factory(),
                        str(hyperparameters_for(policy, algorithm).get("policy", SB3_POLICY)),
                        dict(info["hyperparameters"]))
    curve = pd.read_csv(folder / f"{key}.curve.csv")
    logger.info("training run %s: finished in an earlier session", key)
    return TrainResult(model, curve, float(info["seconds"]), info["algorithm"],
                       dict(info["hyperparameters"]), int(info["seed"]), int(info["timesteps"]),
                       int(info["resumed_from"]))


def train_all(
    env_factory: EnvFactory,
    policy: PolicyConfig,
    seeds: Sequence[int],
    out: Path,
    *,
    reward_scale: float,
    stop: StopFlag | None = None,
    progress: Progress | None = None,
) -> TrainedPolicies:
    """Train every algorithm once per seed in ``seeds``; reuse runs finished earlier.

    Parameters
    ----------
    env_factory
        Builds one training environment.
    policy
        The policy config (algorithms, budget per run, checkpoints, threads).
    seeds
        One training seed per run.
    out
        The run folder: models go to ``policies/``, TensorBoard logs to ``tensorboard/<run>``,
        checkpoints to ``checkpoints/<run>``.
    reward_scale
        The environment's reward scale; curves are reported in dollars.
    stop
        Stop flag, polled between and during runs.
    progress
        Called with the timesteps done over all runs.
    """
    action_space = env_factory().action_space
    runs: dict[str, list[TrainResult]] = {}
    skipped: dict[str, str] = {}
    curves: list[pd.DataFrame] = []
    done = 0
    for algorithm in algorithm_names(policy):
        reason = unsupported_reason(algorithm, action_space)
        if reason is not None and algorithm == policy.algorithm:
            raise ValueError(f"policy.algorithm: {reason}; deploy a MultiDiscrete-capable "
                             "algorithm (ppo, a2c) and compare this one")
        if reason is not None:
            logger.warning("skipping %s: %s", algorithm, reason)
            skipped[algorithm] = reason
            continue
        runs[algorithm] = []
        for k, seed in enumerate(seeds):
            key = run_key(algorithm, k)
            result = _load_run(out, key, env_factory, policy)
            if result is None:
                if stop is not None:
                    stop.check(f"training {key}")
                offset = done

                def report(steps: int, total: int, offset: int = offset) -> None:
                    if progress is not None:
                        progress(offset + steps)

                result = train_policy(
                    env_factory, policy, int(seed), out / "tensorboard" / key, report,
                    algorithm=algorithm, checkpoint_dir=out / CHECKPOINTS.name / key, stop=stop,
                )
                _save_run(out, key, result)
            done += policy.total_timesteps
            if progress is not None:
                progress(done)
            runs[algorithm].append(result)
            curves.append(result.curve.assign(
                algorithm=algorithm, run=k, seed=int(seed),
                mean_return=result.curve["mean_return"] / reward_scale,
            ))
    curve = (pd.concat(curves, ignore_index=True)[list(CURVE_COLUMNS)] if curves
             else pd.DataFrame(columns=list(CURVE_COLUMNS)))
    return TrainedPolicies(runs, skipped, curve)


@dataclass
class ProtocolEvaluation:
    """What :func:`evaluate_all` measured.

    Attributes
    ----------
    summary
        ``evaluation.csv``: :data:`~personasim.policies.rollouts.PROTOCOL_COLUMNS`, then
        ``training_seconds`` and ``selected_run_return`` (the deployed run's mean).
    episodes
        ``policy, seed, return, weeks, training_seed`` (NaN for untrained policies).
    runs
        :data:`RUN_COLUMNS`: every trained model on its own, and which one was selected.
    best
        Algorithm -> index of the run selected on the validation seeds.
    """

    summary: pd.DataFrame
    episodes: pd.DataFrame
    runs: pd.DataFrame
    best: dict[str, int]


def _episodes(
    cache: Path, key: str, env_factory: EnvFactory, name: str, policy: Policy,
    seeds: Sequence[int],
) -> pd.DataFrame:
    """Episodes of ``policy`` on ``seeds``, saved under ``cache`` and reused when there."""
    path = cache / f"{key}.csv"
    if path.is_file():
        return pd.read_csv(path)
    episodes, _ = run_episodes(env_factory, {name: policy}, list(seeds))
    cache.mkdir(parents=True, exist_ok=True)
    tmp = cache / f".{key}.tmp"
    write_csv(episodes, tmp)
    os.replace(tmp, path)
    return episodes


def evaluate_all(
    env_factory: EnvFactory,
    baselines: dict[str, Policy],
    trained: TrainedPolicies,
    eval_seeds: Sequence[int],
    validation_seeds: Sequence[int],
    out: Path,
    *,
    stop: StopFlag | None = None,
    progress: Progress | None = None,
) -> ProtocolEvaluation:
    """Play every baseline and every trained model on ``eval_seeds``; pick the best runs.

    Each algorithm's best run is the one with the highest mean return on
    ``validation_seeds`` (skipped when it has one run). Baselines come first in the summary,
    then the algorithms in training order.
    """
    cache = out / CHECKPOINTS.name / "evaluation"
    frames: list[pd.DataFrame] = []
    count = 0

    def tick() -> None:
        nonlocal count
        count += 1
        if progress is not None:
            progress(count)
        if stop is not None:
            stop.check("evaluation")

    for name, policy in baselines.items():
        frames.append(_episodes(cache, name, env_factory, name, policy, eval_seeds)
                      .assign(training_seed=np.nan))
        tick()
    rows: list[dict[str, Any]] = []
    best: dict[str, int] = {}
    for algorithm, results in trained.runs.items():
        validation: list[float] = []
        for k, result in enumerate(results):
            key = run_key(algorithm, k)
            trained_policy = SB3Policy(result.model)
            episodes = _episodes(cache, key, env_factory, algorithm, trained_policy, eval_seeds)
            frames.append(episodes.assign(training_seed=result.seed))
            score = float("nan")
            if len(results) > 1:
                score = float(_episodes(cache, f"{key}.validation", env_factory, algorithm,
                                        trained_policy, validation_seeds)["return"].mean())
            validation.append(score)
            own = summarize(episodes).iloc[0]
            rows.append({"policy": algorithm, "run": k, "training_seed": result.seed,
                         "timesteps": result.timesteps, "training_seconds": result.seconds,
                         "validation_return": score, "mean_return": own["mean_return"],
                         "ci_low": own["ci_low"], "ci_high": own["ci_high"]})
            tick()
        best[algorithm] = int(np.nanargmax(validation)) if len(results) > 1 else 0
    runs = pd.DataFrame(rows, columns=[c for c in RUN_COLUMNS if c != "selected"])
    runs["selected"] = [best.get(p) == r for p, r in zip(runs["policy"], runs["run"],
                                                         strict=True)]
    episodes = pd.concat(frames, ignore_index=True)
    summary = summarize_protocol(episodes)
    summary["training_seconds"] = [trained.seconds(p) if p in trained.runs else np.nan
                                   for p in summary["policy"]]
    chosen = runs[runs["selected"]].set_index("policy")["mean_return"]
    summary["selected_run_return"] = [float(chosen[p]) if p in chosen.index else np.nan
                                      for p in summary["policy"]]
    return ProtocolEvaluation(summary, episodes, runs[list(RUN_COLUMNS)], best)
