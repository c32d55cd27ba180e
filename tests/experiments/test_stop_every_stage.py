"""SIGTERM stops a run within 10 s whichever stage it is in (a tiny config, the real CLI).

The CLI prints a line as each stage ends; the signal is sent a set time after one of them, so
that it lands inside the next stage (the sampler, training) or at its start, and the time from
the signal to the exit is measured.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

STOP_WITHIN_SECONDS = 10.0
# (title of the stage that just ended, stage the signal lands in, seconds after the line)
BOUNDARIES = [
    ("Loading personas", "A/B test", 0.0),
    ("A/B test", "Bayesian update", 4.0),
    ("Bayesian update", "training", 3.0),
    ("Evaluating policies", "ranking", 0.0),
    ("Planning messages", "export", 0.0),
]


@pytest.mark.slow
@pytest.mark.parametrize(("after", "during", "delay"), BOUNDARIES)
def test_sigterm_stops_within_ten_seconds(after: str, during: str, delay: float,
                                          tmp_path: Path, tiny_config_path: Path) -> None:
    raw = yaml.safe_load(tiny_config_path.read_text())
    raw["inference"] |= {"draws": 2000, "tune": 1000}  # a sampler worth interrupting
    raw["policy"] |= {"total_timesteps": 4096}
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    env = os.environ | {"PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "personasim", "run", str(config), "--out",
                             str(tmp_path / "run")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    sent = None
    for line in proc.stdout:
        if "✓" in line and after in line:
            time.sleep(delay)
            assert proc.poll() is None, f"the run ended {delay} s after {after!r}"
            proc.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            break
    assert sent is not None, f"the run ended before {after!r} finished"
    try:
        proc.wait(timeout=120)
    finally:
        proc.kill()
    waited = time.monotonic() - sent
    assert proc.returncode == 128 + signal.SIGTERM, proc.stdout.read()
    assert waited < STOP_WITHIN_SECONDS, f"stopped {waited:.1f} s into {during}"
    assert (tmp_path / "run.interrupted").is_dir() and not (tmp_path / "run").exists()
