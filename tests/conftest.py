"""Shared fixtures: tiny configs and data files that run in seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("MPLBACKEND", "Agg")

TINY_CONFIG = {
    "name": "tiny",
    "seed": 3,
    "personas": [
        {"id": "deal_seekers", "share": 0.6, "attributes": {"age": 30, "region": "urban"},
         "traits": {"propensity": {"default": {"dist": "beta", "a": 4, "b": 40}},
                    "organic": {"dist": "beta", "a": 1, "b": 100}}},
        {"id": "loyal", "share": 0.4, "attributes": {"age": 50, "region": "rural"},
         "traits": {"propensity": {"default": {"dist": "beta", "a": 8, "b": 40}},
                    "organic": {"dist": "beta", "a": 2, "b": 100}}},
    ],
    "campaigns": [
        {"id": "sale", "channel": "email", "cost": 0.05, "value": 10.0,
         "features": {"discount": 0.2}},
        {"id": "news", "channel": "email", "cost": 0.05, "value": 12.0},
        {"id": "holdout", "control": True},
    ],
    "population": {"size": 600},
    "simulation": {"horizon": 4, "budget": 200.0},
    "dynamics": {"influence": {"network": {"generator": "watts_strogatz",
                                           "params": {"k": 4, "p": 0.1}}}},
    "ab_test": {"sample_size": 600},
    "inference": {"draws": 200, "tune": 200, "chains": 2, "nuts_sampler": "pymc",
                  "ess_min": 100, "rhat_max": 1.05},
    "policy": {"total_timesteps": 64, "eval_seeds": 2,
               "hyperparameters": {"n_steps": 32, "batch_size": 16}},
}


def one_line_error(result, *needles: str) -> str:  # noqa: ANN001 - a typer/click Result
    """Assert a CLI result failed with exit code 2 and one line holding every needle."""
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert len(text.splitlines()) == 1 and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


def write_yaml(path: Path, payload: dict) -> Path:
    path.write_text(yaml.safe_dump(payload, sort_keys=False))
    return path


@pytest.fixture
def tiny_config_path(tmp_path: Path) -> Path:
    """A persona-mode config that runs end to end in seconds."""
    return write_yaml(tmp_path / "tiny.yaml", TINY_CONFIG)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of the tiny config (shared: several modules read it, none write)."""
    from typer.testing import CliRunner

    from personasim.cli import app

    base = tmp_path_factory.mktemp("tiny")
    config = write_yaml(base / "tiny.yaml", TINY_CONFIG)
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(base / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    return base / "run"
