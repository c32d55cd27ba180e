"""Vectorized training on 2 cores: DummyVecEnv against SubprocVecEnv, and torch threads.

Trains PPO for a fixed budget on ``configs/fatigue.yaml``'s world (its personas as written,
no Bayesian update) with each combination of vectorization, number of environments and torch
threads, and reports environment steps per second, wall-clock and per CPU second of the
main process (subprocess workers' CPU is counted through ``RUSAGE_CHILDREN`` where they
exist). Ratios within one run are what to read: the machine is shared and noisy.

Prints one JSON object per combination, then a summary naming the fastest combination.

Usage: ``python benchmarks/bench_vec_env.py [--steps 3072]`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from personasim.behaviour.network import GraphCache
from personasim.config.loading import load_config
from personasim.envs import CampaignEnv
from personasim.experiments.stages.inputs import load_inputs

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "fatigue.yaml"


class _Factory:
    """A picklable environment factory (SubprocVecEnv sends it to its workers)."""

    def __init__(self) -> None:
        self.config = load_config(CONFIG)
        self.graph_cache = GraphCache()
        self.inputs = load_inputs(self.config, str(CONFIG), 0)

    def __call__(self) -> CampaignEnv:
        return CampaignEnv.from_config(self.config, self.inputs.personas, self.inputs.campaigns,
                                       self.inputs.events, graph_cache=self.graph_cache)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(kind: str, n_envs: int, threads: int, steps: int) -> dict[str, Any]:
    """Train PPO for ``steps`` and time it."""
    torch.set_num_threads(threads)
    vec_cls = SubprocVecEnv if kind == "subproc" else DummyVecEnv
    vec_env = make_vec_env(_Factory(), n_envs=n_envs, seed=0, vec_env_cls=vec_cls)
    n_steps = max(steps // (4 * n_envs), 12)
    model = PPO("MlpPolicy", vec_env, n_steps=n_steps, batch_size=64, seed=0, device="cpu",
                verbose=0)
    cpu, wall = _cpu_seconds(), time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - wall
    cpu = _cpu_seconds() - cpu
    vec_env.close()
    return {"vec_env": kind, "n_envs": n_envs, "torch_threads": threads,
            "steps": model.num_timesteps, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "steps_per_s": round(model.num_timesteps / wall, 1)}


def main() -> None:
    """Run every combination and print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3072, help="PPO timesteps per case.")
    args = parser.parse_args()
    cases = [("dummy", 1, 1), ("dummy", 4, 1), ("dummy", 8, 1), ("dummy", 8, 2),
             ("subproc", 2, 1), ("subproc", 4, 1), ("subproc", 8, 1)]
    results = []
    for kind, n_envs, threads in cases:
        result = measure(kind, n_envs, threads, args.steps)
        results.append(result)
        print(json.dumps(result), flush=True)
    best = max(results, key=lambda r: r["steps_per_s"])
    dummy8 = next(r for r in results if r["vec_env"] == "dummy" and r["n_envs"] == 8
                  and r["torch_threads"] == 1)
    subproc8 = next(r for r in results if r["vec_env"] == "subproc" and r["n_envs"] == 8)
    print(json.dumps({
        "summary": True, "fastest": {k: best[k] for k in ("vec_env", "n_envs",
                                                           "torch_threads")},
        "dummy8_over_subproc8": round(dummy8["steps_per_s"] / subproc8["steps_per_s"], 2),
        "cores": len(os.sched_getaffinity(0)),
    }), flush=True)


if __name__ == "__main__":
    main()
