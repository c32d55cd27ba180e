"""One truth on every bundled config: the plan, the table, the calendar, the manifest and the
report of a finished run agree (:func:`personasim.experiments.run_check.disagreements`).

Each config runs end to end with a smaller audience, shorter training and fewer draws; what
is checked is that the files agree, which does not depend on those sizes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hillstrom_helpers import shared_hillstrom

from personasim.config.loading import load_config
from personasim.experiments.run_check import disagreements
from personasim.experiments.runner import run_experiment

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMALL = ["policy.total_timesteps=600", "policy.eval_seeds=2", "inference.draws=150",
         "inference.tune=150", "inference.chains=2", "ab_test.waves=0", "output.plots=false"]
SIMULATED = {"quickstart": ["population.size=1500", "ab_test.sample_size=900"],
             "fatigue": ["population.size=1500", "ab_test.sample_size=900"],
             "budget": ["population.size=1500", "ab_test.sample_size=900",
                        "simulation.budget=900"],
             "social": ["population.size=1500", "ab_test.sample_size=900"]}


@pytest.mark.parametrize("name", sorted(SIMULATED))
def test_bundled_simulated_configs_give_one_plan(name: str, tmp_path: Path) -> None:
    config = load_config(CONFIGS / f"{name}.yaml", SMALL + SIMULATED[name])
    summary = run_experiment(config, tmp_path / "run")
    assert disagreements(tmp_path / "run") == []
    assert len(summary.plan) == summary.manifest["plan"]["messages"] > 0
    evaluation = pd.read_csv(tmp_path / "run" / "plan_evaluation.csv")
    assert {"plan", "greedy_table", "ab_winner"} <= set(evaluation["strategy"])


def test_bundled_hillstrom_config_gives_one_plan(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "hillstrom.yaml",
                         [*SMALL, f"dataset.path={shared_hillstrom()}", "dataset.sample=3000",
                          "synthesis.k=3", "inference.self_check=0"])
    run_experiment(config, tmp_path / "run")
    assert disagreements(tmp_path / "run") == []
    assert not (tmp_path / "run" / "plan_evaluation.csv").exists()  # customers, not a simulation
