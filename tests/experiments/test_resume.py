"""Checkpoints, stop signals and ``personasim run --resume``: nothing lost, nothing done twice."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from small_envs import tiny_env_factory

from personasim.config.sections import PolicyConfig
from personasim.core.errors import ConfigError
from personasim.core.interrupts import GracefulInterrupt, RunInterrupted, StopFlag
from personasim.core.run_layout import CHECKPOINTS, STAGE_RESULTS
from personasim.experiments.resume import (
    ResumableRunDirectory,
    RunSession,
    interrupted_path,
    read_saved_run,
)
from personasim.experiments.run_dir import StageTimer
from personasim.policies.checkpointing import POINTER, TrainingInterrupted
from personasim.policies.training import train_policy


def _parameters(model: object) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()])  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("algorithm", "hyperparameters"),
    [("ppo", {"n_steps": 32, "batch_size": 16}), ("dqn", {"learning_starts": 50})],
)
def test_interrupted_training_resumes_to_the_same_model(
    algorithm: str, hyperparameters: dict, tmp_path: Path
) -> None:
    config = PolicyConfig(algorithm=algorithm, total_timesteps=320, n_envs=2,
                          checkpoint_every=64, hyperparameters=hyperparameters)
    straight = train_policy(tiny_env_factory(), config, seed=5, log_dir=None)

    stop = StopFlag()

    def request_stop(done: int, total: int) -> None:
        if done >= 130:
            stop.request(signal.SIGTERM)

    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(TrainingInterrupted) as info:
        train_policy(tiny_env_factory(), config, seed=5, log_dir=tmp_path / "log",
                     progress=request_stop, checkpoint_dir=checkpoints, stop=stop)
    assert info.value.exit_code == 143
    saved_at = json.loads((checkpoints / POINTER).read_text())["timesteps"]
    assert 130 <= saved_at < 320

    resumed = train_policy(tiny_env_factory(), config, seed=5, log_dir=tmp_path / "log",
                           checkpoint_dir=checkpoints)
    assert resumed.resumed_from == saved_at
    assert resumed.timesteps == straight.timesteps == 320
    assert torch.equal(_parameters(resumed.model), _parameters(straight.model))
    assert resumed.curve.equals(straight.curve)  # no episode lost or counted twice
    assert (tmp_path / "log" / "progress.csv").is_file()
    assert (tmp_path / "log" / f"progress-from-{saved_at}.csv").is_file()


def test_env_state_replays_the_episode_in_progress() -> None:
    env = tiny_env_factory()()
    env.reset(seed=4)
    for action in ([1, 2], [0, 1]):
        env.step(np.array(action))
    state = env.get_state()
    twin = tiny_env_factory()()
    twin.set_state(state)
    for action in ([2, 2], [1, 0]):
        a = env.step(np.array(action))
        b = twin.step(np.array(action))
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1:4] == b[1:4]
    assert env.np_random.integers(1 << 30) == twin.np_random.integers(1 << 30)


def test_first_signal_requests_a_stop_and_second_aborts() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with GracefulInterrupt() as flag:
        signal.raise_signal(signal.SIGTERM)
        assert flag.requested and flag.signum == signal.SIGTERM
        with pytest.raises(RunInterrupted, match="SIGTERM during training"):
            flag.check("training")
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_session_reuses_finished_stages(tmp_path: Path, tiny_config_path: Path) -> None:
    from personasim.config.loading import load_config

    config = load_config(tiny_config_path)
    calls: list[str] = []

    def compute() -> dict[str, int]:
        calls.append("ab_test")
        return {"responses": 7}

    final = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        with ResumableRunDirectory(final) as out, \
                RunSession(out, config, "tiny.yaml", final, False, StageTimer()) as session:
            assert session.stage("ab_test", compute) == {"responses": 7}
            session.stop.request(signal.SIGINT)
            session.stage("inference", lambda: 1)  # saved, then the stop is honoured
    kept = interrupted_path(final)
    assert kept.is_dir() and not final.exists()
    saved = read_saved_run(final)  # the final path finds its interrupted folder
    assert saved.directory == kept and saved.config == config

    timer = StageTimer()
    with ResumableRunDirectory(final, resume=kept) as out, \
            RunSession(out, saved.config, "tiny.yaml", final, False, timer) as session:
        assert session.stage("ab_test", compute) == {"responses": 7}
        assert session.stage("inference", lambda: 2) == 1
        assert session.summary() == {"sessions": 2, "reused_stages": ["ab_test", "inference"]}
    assert calls == ["ab_test"]
    assert final.is_dir() and not kept.exists() and not (final / CHECKPOINTS.name).exists()


class _Payload:
    """Unpickling this opens (creates) ``target``: what a tampered stage file would do."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


def test_a_tampered_stage_file_cannot_run_code(tmp_path: Path, tiny_config_path: Path) -> None:
    from typer.testing import CliRunner

    from personasim.cli import app
    from personasim.config.loading import load_config

    final = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        with ResumableRunDirectory(final) as out, \
                RunSession(out, load_config(tiny_config_path), str(tiny_config_path), final,
                           False, StageTimer()) as session:
            session.stage("ab_test", lambda: {"responses": 7})
            session.stop.request(signal.SIGINT)
            session.stage("inference", lambda: 1)
    kept = interrupted_path(final)
    stages = kept / CHECKPOINTS.name / STAGE_RESULTS
    assert sorted(p.name for p in stages.iterdir()) == ["ab_test.npz", "inference.npz"]
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    (stages / "ab_test.npz").write_bytes(payload)
    (stages / "inputs.pkl").write_bytes(payload)  # the old format: never opened

    result = CliRunner().invoke(app, ["run", "--resume", str(kept), "--quiet"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    error = result.output.strip().splitlines()[-1]  # after the warnings, one line
    for needle in (str(stages / "ab_test.npz"), "not a saved stage result",
                   "pickled data, which personasim never loads", "delete it"):
        assert needle in error, error
    assert "(a pickle, never opened)" in " ".join(result.output.split())
    assert not marker.exists()
    assert kept.is_dir() and not final.exists()  # kept for another --resume


def test_a_tampered_run_state_cannot_send_the_run_elsewhere(
        tmp_path: Path, tiny_config_path: Path) -> None:
    from personasim.config.loading import load_config

    final = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        with ResumableRunDirectory(final) as out, \
                RunSession(out, load_config(tiny_config_path), "tiny.yaml", final, False,
                           StageTimer()) as session:
            session.stop.request(signal.SIGINT)
            session.stage("ab_test", lambda: 1)
    state_path = interrupted_path(final) / CHECKPOINTS.name / "run.json"
    state = json.loads(state_path.read_text())
    precious = tmp_path / "precious"
    precious.mkdir()
    state |= {"final": str(precious), "overwrite": True}  # would replace it on success
    state_path.write_text(json.dumps(state))
    saved = read_saved_run(final)
    assert (saved.final, saved.overwrite) == (final, False)
    state_path.write_text("{not json")
    with pytest.raises(ConfigError, match="run.json: damaged resume state"):
        read_saved_run(final)


def test_a_failed_fresh_run_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "run"
    with pytest.raises(ValueError), ResumableRunDirectory(final):
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(Exception, match="not a resumable run folder"):
        read_saved_run(final)


class _SignalDuringTraining:
    """A reporter that sends the process SIGINT once training has passed ``at`` steps."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.sent = False

    @contextmanager
    def stage(self, title: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        def advance(done: int) -> None:
            if title.startswith("Training") and done >= self.at and not self.sent:
                self.sent = True
                signal.raise_signal(signal.SIGINT)

        yield advance


TINY_RESUME_POLICY = {"total_timesteps": 512, "n_envs": 2, "training_seeds": 2,
                      "checkpoint_every": 128, "eval_seeds": 3, "validation_episodes": 2}


def test_interrupted_run_resumes_without_redoing_anything(
    tmp_path: Path, tiny_config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from personasim.config.loading import load_config
    from personasim.experiments import runner
    from personasim.experiments.stages import inference

    inferred: list[int] = []
    real_infer = inference.infer

    def counted_infer(*args: Any) -> Any:
        inferred.append(1)
        return real_infer(*args)

    monkeypatch.setattr(inference, "infer", counted_infer)
    overrides = [f"policy.{k}={v}" for k, v in TINY_RESUME_POLICY.items()]
    overrides += ["output.plots=false", "inference.draws=50", "inference.tune=50",
                  "inference.chains=1"]
    config = load_config(tiny_config_path, overrides)
    out = tmp_path / "run"
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when pytest runs in background
    with pytest.raises(RunInterrupted) as info:
        runner.run_experiment(config, out, reporter=_SignalDuringTraining(at=200))
    assert info.value.exit_code == 130
    assert info.value.resume_dir == interrupted_path(out)  # type: ignore[attr-defined]
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is handler_before

    summary = runner.resume_experiment(out)
    assert inferred == [1]  # the Bayesian update ran once
    manifest = summary.manifest
    ppo = manifest["policy_training"]["algorithms"]["ppo"]
    assert ppo["timesteps"] == [512, 512]
    assert 200 <= ppo["resumed_from"][0] < 512 and ppo["resumed_from"][1] == 0
    assert manifest["resume"] == {"sessions": 2,
                                  "reused_stages": ["inputs", "ab_test", "inference"]}
    curve = pd.read_csv(out / "learning_curve.csv")
    assert set(curve["run"]) == {0, 1}
    assert curve.groupby("run")["n_episodes"].sum().tolist() == [512 // 4] * 2  # horizon 4
    assert not interrupted_path(out).exists() and not (out / CHECKPOINTS.name).exists()
    evaluation = pd.read_csv(out / "evaluation.csv")
    assert evaluation.set_index("policy").loc["ppo", "n_episodes"] == 2 * 3


def test_cli_exits_with_the_signal_code_and_says_how_to_resume(
    tmp_path: Path, tiny_config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from personasim.cli import app
    from personasim.experiments import runner

    def stopped(*args: object, **kwargs: object) -> None:
        exc = RunInterrupted(signal.SIGTERM, "training at 128 steps")
        exc.resume_dir = tmp_path / "run.interrupted"  # type: ignore[attr-defined]
        raise exc

    monkeypatch.setattr(runner, "run_experiment", stopped)
    result = CliRunner().invoke(app, ["run", str(tiny_config_path), "--out",
                                      str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 143
    assert "--resume" in result.output and "run.interrupted" in result.output
    missing = CliRunner().invoke(app, ["run", "--resume", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a resumable run folder" in missing.output
    both = CliRunner().invoke(app, ["run", str(tiny_config_path), "--resume", str(tmp_path)])
    assert both.exit_code == 2 and "drop CONFIG" in both.output


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "personasim", *args, "--quiet"]


@pytest.mark.slow
def test_sigint_to_the_cli_then_resume(tmp_path: Path, tiny_config_path: Path) -> None:
    raw = yaml.safe_load(tiny_config_path.read_text())
    raw["policy"] |= TINY_RESUME_POLICY | {"total_timesteps": 1024}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cli("run", str(config), "--out", str(out)), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not list(tmp_path.glob(f".run.partial-*/{CHECKPOINTS.name}/ppo-seed0/{POINTER}")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 130, stderr
    kept = interrupted_path(out)
    assert "--resume" in stderr and kept.is_dir() and not out.exists()
    first = json.loads((kept / CHECKPOINTS.name / "run.json").read_text())
    assert set(first["stage_seconds"]) >= {"inputs", "ab_test", "inference", "training"}

    done = subprocess.run(_cli("run", "--resume", str(kept)), env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    ppo = manifest["policy_training"]["algorithms"]["ppo"]
    assert ppo["timesteps"] == [1024, 1024]
    assert ppo["resumed_from"][0] > 0 and ppo["resumed_from"][1] == 0
    assert manifest["resume"] == {"sessions": 2,
                                  "reused_stages": ["inputs", "ab_test", "inference"]}
    assert manifest["stage_seconds"]["inference"] == first["stage_seconds"]["inference"]
    assert not kept.exists() and not (out / CHECKPOINTS.name).exists()
    for name in ("evaluation.csv", "calendar.csv", "policy.zip", "learning_curve.png"):
        assert (out / name).is_file()


def test_stale_partial_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    import os

    from personasim.experiments.run_dir import RunDirectory, remove_stale_partials

    final = tmp_path / "run"
    dead = tmp_path / ".run.partial-999999999"  # no such process
    alive = tmp_path / f".run.partial-{os.getppid()}"  # the test runner's parent is alive
    other = tmp_path / ".other.partial-999999999"  # another run's folder
    for folder in (dead, alive, other):
        folder.mkdir()
    assert remove_stale_partials(final) == [dead]
    assert alive.exists() and other.exists()
    dead.mkdir()
    with RunDirectory(final) as partial:
        assert partial.exists() and not dead.exists()
