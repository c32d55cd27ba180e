"""Simulation at scale: the cohort engine against one Mesa agent per recipient.

Runs ``configs/quickstart.yaml``'s personas, campaigns and dynamics (fatigue, word of mouth
over a networkx Watts-Strogatz graph with k=6, the downturn event) at several population
sizes, with every persona sent a rotating campaign (or nothing, or the holdout) each week and
no budget cap. Every measurement runs in a fresh subprocess so that peak RSS belongs to it;
the graph is generated once per size in its own subprocess and handed over as ``.npz``.
Throughput is recipients / median step time, which other jobs on a shared machine disturb
least, in wall-clock seconds and (``_cpu`` keys) in this process's CPU seconds, which
contention for the cores inflates much less (every workload here is single-threaded); totals
are plain wall-clock sums. ``mesa_scalar`` (``scalar_mesa.py``) is a hand-written
scalar-Python Mesa agent, the fastest one-agent-per-recipient floor, reported beside the
registered ``per_recipient`` engine.

Prints one JSON object per line: one per size, one with the linear-scaling slopes, one for
the Gymnasium env and SB3 PPO at 100,000 recipients, and a final summary with
``speedup_vs_mesa_agents``, ``recipient_steps_per_s_1m`` and ``bytes_per_recipient_1m``.

Usage: ``python benchmarks/bench_simulation.py [--quick]`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "quickstart.yaml"
GOAL_SPEEDUP, GOAL_RATE, GOAL_BYTES, GOAL_ENV_MS = 50.0, 20e6, 200.0, 5.0


def _status(key: str) -> int:
    """A ``/proc/self/status`` memory field in bytes (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _setup(n: int) -> tuple[Any, list[int]]:
    from personasim.config.loading import load_config
    from personasim.config.persona import cohort_sizes

    config = load_config(CONFIG, ["simulation.horizon=30"])
    return config, cohort_sizes(list(config.personas), n)


def _actions(week: int, n_personas: int, n_campaigns: int) -> list[int]:
    """Rotate every persona through nothing, each campaign and the holdout."""
    return [(week + j) % (n_campaigns + 1) - 1 for j in range(n_personas)]


def worker_graph(n: int, k: int, out: str) -> dict[str, Any]:
    """Generate the graph with networkx (timed) and save it for the engine workers."""
    from scipy import sparse

    from personasim.behaviour.network import build_adjacency

    config, _ = _setup(n)
    network = config.dynamics.influence.network.model_copy(update={"params": {"k": k, "p": 0.1}})
    base = _status("VmRSS")
    start = time.perf_counter()
    adjacency = build_adjacency(network, n, np.random.default_rng(config.seed))
    seconds = time.perf_counter() - start
    sparse.save_npz(out, adjacency, compressed=False)
    return {"graph_build_s": seconds, "edges": int(adjacency.nnz) // 2,
            "graph_build_peak_rss_bytes_per_recipient": (_status("VmHWM") - base) / n}


def worker_engine(engine: str, n: int, graph: str, steps: int) -> dict[str, Any]:
    """Build one engine on the saved graph and time ``steps`` weeks; memory from VmHWM."""
    from scipy import sparse

    from personasim.agents import ENGINES

    config, sizes = _setup(n)
    base = _status("VmRSS")
    adjacency = sparse.load_npz(graph).tocsr()
    start = time.perf_counter()
    if engine == "mesa_scalar":
        sys.path.insert(0, str(Path(__file__).parent))
        from scalar_mesa import ScalarModel

        model: Any = ScalarModel(config.personas, sizes, config.campaigns, config.dynamics,
                                 config.dynamics.events, adjacency, seed=1)
    else:
        model = ENGINES.get(engine)(
            config.personas, sizes, config.campaigns, config.dynamics, config.dynamics.events,
            config.simulation.response_model, None, adjacency, np.random.default_rng(1))
    build = time.perf_counter() - start
    n_campaigns = len(config.campaigns)
    wall, cpu = [], []
    for week in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.send(_actions(week, len(sizes), n_campaigns))
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    step, step_cpu = float(np.median(wall)), float(np.median(cpu))
    result = {"engine": engine, "model_build_s": build, "step_s": step, "step_cpu_s": step_cpu,
              "steps_total_s": float(np.sum(wall)), "recipient_steps_per_s": n / step,
              "recipient_steps_per_cpu_s": n / step_cpu,
              "peak_rss_bytes_per_recipient": (_status("VmHWM") - base) / n}
    if engine == "cohort":
        from personasim.agents.capacity import estimate_memory

        result["state_bytes_per_recipient"] = model.state_nbytes / n
        result["estimated_state_bytes_per_recipient"] = estimate_memory(
            n, n_campaigns, adjacency.nnz / n).state
    return result


def worker_edges(n: int, ks: list[int], steps: int) -> dict[str, Any]:
    """Cohort step time at a fixed population for graphs of increasing degree."""
    from personasim.agents import CampaignModel
    from personasim.behaviour.network import build_adjacency

    config, sizes = _setup(n)
    edges, times, cpu_times = [], [], []
    for k in ks:
        network = config.dynamics.influence.network.model_copy(
            update={"params": {"k": k, "p": 0.1}})
        adjacency = build_adjacency(network, n, np.random.default_rng(k))
        model = CampaignModel(config.personas, sizes, config.campaigns, config.dynamics,
                              config.dynamics.events, adjacency=adjacency, rng=1)
        wall, cpu = [], []
        for week in range(steps):
            start, start_cpu = time.perf_counter(), time.process_time()
            model.send(_actions(week, len(sizes), len(config.campaigns)))
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        edges.append(int(adjacency.nnz) // 2)
        times.append(float(np.median(wall)))
        cpu_times.append(float(np.median(cpu)))
    return {"edges": edges, "step_s": times, "step_cpu_s": cpu_times}


def worker_env(n: int, env_steps: int, ppo_steps: int) -> dict[str, Any]:
    """Gymnasium env steps per second and SB3 PPO frames per second at ``n`` recipients."""
    import gymnasium as gym

    from personasim.behaviour.network import GraphCache
    from personasim.config.loading import load_config
    from personasim.envs import CampaignEnv
    from personasim.policies.training import train_policy

    config = load_config(CONFIG, [f"population.size={n}",
                                  f"simulation.budget={4500 * n / 10_000}"])
    env = CampaignEnv.from_config(config, list(config.personas), list(config.campaigns),
                                  list(config.dynamics.events))
    env.action_space.seed(0)
    env.reset(seed=0)
    step_time = reset_time = 0.0
    resets = 0
    step_times, step_cpu = [], []
    for _ in range(env_steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        step_times.append(time.perf_counter() - start)
        step_cpu.append(time.process_time() - start_cpu)
        step_time += step_times[-1]
        if terminated or truncated:
            start = time.perf_counter()
            env.reset()
            reset_time += time.perf_counter() - start
            resets += 1
    sim_time = [0.0]

    class Timed(gym.Wrapper):  # type: ignore[type-arg]
        def step(self, action: Any) -> Any:
            start = time.perf_counter()
            out = self.env.step(action)
            sim_time[0] += time.perf_counter() - start
            return out

        def reset(self, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = self.env.reset(**kwargs)
            sim_time[0] += time.perf_counter() - start
            return out

    graph_cache = GraphCache()

    def factory() -> gym.Env:  # type: ignore[type-arg]
        return Timed(CampaignEnv.from_config(config, list(config.personas),
                                             list(config.campaigns), list(config.dynamics.events),
                                             graph_cache=graph_cache))

    policy = config.policy.model_copy(update={"total_timesteps": ppo_steps, "n_envs": 1})
    trained = train_policy(factory, policy, seed=0, log_dir=None)
    return {"env_step_ms": 1e3 * step_time / env_steps, "env_step_ms_median": 1e3 * float(
                np.median(step_times)), "env_step_cpu_ms_median": 1e3 * float(np.median(step_cpu)),
            "env_reset_ms": 1e3 * reset_time / max(resets, 1),
            "env_steps_per_s": env_steps / (step_time + reset_time),
            "ppo_fps": ppo_steps / trained.seconds,
            "ppo_simulator_share": sim_time[0] / trained.seconds}


def _run(*args: str) -> dict[str, Any]:
    """Run this script as a worker in a fresh interpreter; return its JSON line."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, __file__, "--worker", *args], capture_output=True,
                          text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fit(x: list[float], y: list[float]) -> dict[str, float]:
    """Least-squares line ``y = slope * x + intercept``, its R^2 and the log-log exponent."""
    xa, ya = np.asarray(x, float), np.asarray(y, float)
    slope, intercept = np.polyfit(xa, ya, 1)
    residual = ya - (slope * xa + intercept)
    r2 = 1 - residual.var() / ya.var() if ya.var() > 0 else 1.0
    exponent = float(np.polyfit(np.log(xa), np.log(ya), 1)[0])
    return {"slope": float(slope), "intercept": float(intercept), "r2": float(r2),
            "loglog_exponent": exponent}


def _short(value: Any) -> Any:
    """Floats to 6 significant digits, inside lists and dicts too."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, list):
        return [_short(v) for v in value]
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    return value


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(_short(record)), flush=True)


def main(argv: list[str] | None = None) -> None:
    """Run every measurement and print the JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--steps", type=int, default=30, help="Weeks per cohort run.")
    parser.add_argument("--reference-max", type=int, default=100_000,
                        help="Largest size the per-recipient engines run at.")
    parser.add_argument("--env-size", type=int, default=100_000)
    parser.add_argument("--edges-size", type=int, default=200_000)
    parser.add_argument("--ppo-steps", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="Tiny sizes: a smoke test.")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.steps, args.reference_max = [2_000, 5_000], 5, 5_000
        args.env_size, args.edges_size, args.ppo_steps = 5_000, 5_000, 256
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    rows: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            rows[n] = _size_row(n, args.steps, args.reference_max, str(Path(tmp) / f"g{n}.npz"))
            _emit(rows[n])
        sizes = sorted(rows)
        edges = _run("edges", str(args.edges_size), json.dumps([2, 6, 12, 24]), str(args.steps))
    scaling: dict[str, Any] = {"scaling": True}
    for suffix, key in (("", "step_s"), ("_cpu", "step_cpu_s")):
        by_n = _fit([float(n) for n in sizes], [rows[n][f"cohort_{key}"] for n in sizes])
        by_edges = _fit([float(e) for e in edges["edges"]], edges[key])
        scaling |= {f"step_ns_per_recipient{suffix}": 1e9 * by_n["slope"],
                    f"recipients_r2{suffix}": by_n["r2"],
                    f"recipients_intercept_s{suffix}": by_n["intercept"],
                    f"recipients_loglog_exponent{suffix}": by_n["loglog_exponent"],
                    f"step_ns_per_edge{suffix}": 1e9 * by_edges["slope"],
                    f"edges_r2{suffix}": by_edges["r2"],
                    f"edges_intercept_s{suffix}": by_edges["intercept"]}
    scaling |= {"edges_fixed_recipients": args.edges_size, "edges_tested": edges["edges"],
                "edges_step_s": edges["step_s"], "edges_step_cpu_s": edges["step_cpu_s"]}
    _emit(scaling)
    env = _run("env", str(args.env_size), "400", str(args.ppo_steps))
    _emit({"env_recipients": args.env_size, "env_steps_per_s_100k": env["env_steps_per_s"],
           "env_step_ms_100k": env["env_step_ms"],
           "env_step_ms_median_100k": env["env_step_ms_median"],
           "env_step_cpu_ms_median_100k": env["env_step_cpu_ms_median"],
           "env_reset_ms_100k": env["env_reset_ms"],
           "ppo_fps_100k": env["ppo_fps"],
           "ppo_simulator_time_share": env["ppo_simulator_share"]})
    reference = max((n for n in sizes if "speedup_vs_mesa_agents" in rows[n]), default=None)
    ref, big = rows.get(reference or -1, {}), rows[sizes[-1]]
    _emit({
        "summary": True,
        # CPU seconds: a long per-agent week waits for a shared core, a short cohort week
        # mostly does not, so the wall-clock ratio flatters the cohort engine under load
        "speedup_vs_mesa_agents": ref.get("speedup_vs_mesa_agents_cpu"),
        "speedup_vs_mesa_agents_wall": ref.get("speedup_vs_mesa_agents"),
        "speedup_vs_scalar_mesa_agents": ref.get("speedup_vs_scalar_mesa_agents_cpu"),
        "speedup_vs_scalar_mesa_agents_wall": ref.get("speedup_vs_scalar_mesa_agents"),
        "speedup_measured_at": reference,
        "recipient_steps_per_s_1m": big["cohort_recipient_steps_per_s"],
        "recipient_steps_per_cpu_s_1m": big["cohort_recipient_steps_per_cpu_s"],
        "bytes_per_recipient_1m": big["cohort_state_bytes_per_recipient"],
        "peak_rss_bytes_per_recipient_1m": big["cohort_peak_rss_bytes_per_recipient"],
        "seconds_1m_30_steps_build_included": big["total_s_build_and_steps"],
        "seconds_1m_30_steps_graph_included": big["total_s_with_graph"],
        "largest_size": sizes[-1],
        "goals_met": {  # on CPU time, like the speed-up
            "speedup_50x": ref.get("speedup_vs_mesa_agents_cpu", 0) >= GOAL_SPEEDUP,
            "rate_20m": big["cohort_recipient_steps_per_cpu_s"] >= GOAL_RATE,
            "state_200_bytes": big["cohort_state_bytes_per_recipient"] <= GOAL_BYTES,
            "env_step_5ms": env["env_step_cpu_ms_median"] <= GOAL_ENV_MS,
        },
        "load_average_1m": [load_start, os.getloadavg()[0]],
        "cpus": os.cpu_count(),
        "benchmark_seconds": time.perf_counter() - started,
    })


def _size_row(n: int, steps: int, reference_max: int, graph: str) -> dict[str, Any]:
    """One size: graph, cohort engine and (up to ``reference_max``) the per-agent engines."""
    row: dict[str, Any] = {"recipients": n, "steps": steps}
    row |= _run("graph", str(n), "6", graph)
    cohort = _run("cohort", str(n), graph, str(steps))
    row |= {f"cohort_{key}": cohort[key] for key in (
        "recipient_steps_per_s", "recipient_steps_per_cpu_s", "step_s", "step_cpu_s",
        "model_build_s", "peak_rss_bytes_per_recipient", "state_bytes_per_recipient")}
    row["estimated_state_bytes_per_recipient"] = cohort["estimated_state_bytes_per_recipient"]
    row["total_s_build_and_steps"] = cohort["model_build_s"] + cohort["steps_total_s"]
    row["total_s_with_graph"] = row["total_s_build_and_steps"] + row["graph_build_s"]
    if n > reference_max:
        return row
    ref_steps = max(2, min(10, 2_000_000 // (n * 4)))
    for name in ("per_recipient", "mesa_scalar"):
        ref = _run(name, str(n), graph, str(ref_steps))
        row |= {f"{name}_{key}": ref[key] for key in (
            "recipient_steps_per_s", "recipient_steps_per_cpu_s", "model_build_s",
            "peak_rss_bytes_per_recipient")}
        row[f"{name}_steps"] = ref_steps
    for suffix, key in (("", "recipient_steps_per_s"), ("_cpu", "recipient_steps_per_cpu_s")):
        row[f"speedup_vs_mesa_agents{suffix}"] = row[f"cohort_{key}"] / row[
            f"per_recipient_{key}"]
        row[f"speedup_vs_scalar_mesa_agents{suffix}"] = row[f"cohort_{key}"] / row[
            f"mesa_scalar_{key}"]
    return row


def _worker(argv: list[str]) -> None:
    kind, rest = argv[0], argv[1:]
    if kind == "graph":
        result = worker_graph(int(rest[0]), int(rest[1]), rest[2])
    elif kind == "edges":
        result = worker_edges(int(rest[0]), json.loads(rest[1]), int(rest[2]))
    elif kind == "env":
        result = worker_env(int(rest[0]), int(rest[1]), int(rest[2]))
    else:
        result = worker_engine(kind, int(rest[0]), rest[1], int(rest[2]))
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
    else:
        main()
