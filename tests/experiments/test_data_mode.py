"""Data mode end to end: personas synthesized from a customer file, real A/B results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import write_yaml
from data_mode_helpers import write_data_files
from typer.testing import CliRunner

from personasim.cli import app


@pytest.fixture(scope="module")
def data_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two customer groups: young urban ones answer the sale, older rural ones the news."""
    base = tmp_path_factory.mktemp("data")
    write_data_files(base)
    config = write_yaml(base / "exp.yaml", {
        "name": "data-mode", "seed": 7,
        "data": {"recipients": "recipients.csv", "campaigns": "campaigns.csv",
                 "ab_results": "ab.parquet"},
        "inference": {"nuts_sampler": "pymc", "draws": 200, "tune": 200, "ess_min": 50,
                      "rhat_max": 1.1},
        "simulation": {"horizon": 3},
        "policy": {"total_timesteps": 64, "eval_seeds": 2,
                   "hyperparameters": {"n_steps": 32, "batch_size": 16}},
    })
    result = CliRunner().invoke(app, ["run", str(config), "--out", str(base / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    return base / "run"


def test_personas_are_synthesized_from_the_customer_file(data_run: Path) -> None:
    personas = pd.read_csv(data_run / "personas.csv")
    assert len(personas) == 2
    assert personas["size"].sum() == 800


def test_each_group_gets_its_own_best_campaign(data_run: Path) -> None:
    table = pd.read_csv(data_run / "prioritization.csv")
    top = table[table["rank"] == 1].set_index("recipient_id")["campaign_id"]
    recipients = pd.read_csv(data_run.parent / "recipients.csv").set_index("recipient_id")
    young = recipients["region"] == "urban"
    assert (top[young[young].index] == "sale").mean() > 0.95
    assert (top[young[~young].index] == "news").mean() > 0.95


def test_no_consent_is_never_sent(data_run: Path) -> None:
    table = pd.read_csv(data_run / "prioritization.csv")
    refused = {f"c{i:04d}" for i in range(0, 800, 10)}
    assert set(table.loc[table["recipient_id"].isin(refused), "action"]) == {"suppress"}
    assert (table["action"] == "send").any()


def test_recipient_attributes_move_the_score_within_a_persona(data_run: Path) -> None:
    table = pd.read_csv(data_run / "prioritization.csv")
    sale = table[table["campaign_id"] == "sale"]
    spread = sale.groupby("persona_id")["p_response"].std()
    assert (spread > 0).all()  # soft membership: not one number per persona
