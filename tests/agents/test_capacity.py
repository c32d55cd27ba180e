"""Memory estimates before allocating, and one-line errors for configs that cannot run."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CONFIG, one_line_error, write_yaml
from typer.testing import CliRunner

from personasim.agents import CampaignModel
from personasim.agents.capacity import (
    BASE_BYTES,
    available_memory,
    check_capacity,
    estimate_memory,
    mean_degree,
)
from personasim.behaviour.network import build_adjacency
from personasim.cli import app
from personasim.config.loading import load_config
from personasim.config.schema import ExperimentConfig
from personasim.config.sections import NetworkConfig
from personasim.core.errors import ConfigError, DataError
from personasim.experiments.preflight import preflight

runner = CliRunner()


def tiny(**population: int) -> ExperimentConfig:
    payload = copy.deepcopy(TINY_CONFIG)
    payload["population"].update(population)
    return ExperimentConfig.model_validate(payload)


def test_estimate_is_linear_in_recipients_and_degree_and_engine_aware() -> None:
    small, big = estimate_memory(10_000, 4, 6), estimate_memory(1_000_000, 4, 6)
    assert big.total / small.total == pytest.approx(100, rel=1e-9)
    sparse_graph, dense_graph = estimate_memory(1000, 4, 2), estimate_memory(1000, 4, 24)
    assert dense_graph.state - sparse_graph.state == pytest.approx(8 * 22)
    assert estimate_memory(1000, 4, 6, "per_recipient").state > 10 * small.state
    assert estimate_memory(1000, 4, 6, generated_graph=False).graph_build == 0


def test_estimate_bounds_the_cohort_engines_actual_state() -> None:
    n = 30_000
    config = tiny(size=n)
    adjacency = build_adjacency(NetworkConfig(params={"k": 6}), n, np.random.default_rng(0))
    model = CampaignModel(config.personas, [n // 2, n - n // 2], config.campaigns,
                          config.dynamics, adjacency=adjacency, rng=0)
    model.send([0, 1])
    actual = model.state_nbytes / n
    estimate = estimate_memory(n, len(config.campaigns), adjacency.nnz / n).state
    assert actual <= estimate <= 2 * actual


def test_mean_degree_follows_the_generator_or_the_file(tmp_path: Path) -> None:
    assert mean_degree(NetworkConfig(), 1000) == 6
    assert mean_degree(NetworkConfig(generator="barabasi_albert", params={"m": 4}), 1000) == 8
    assert mean_degree(NetworkConfig(generator="erdos_renyi", params={"mean_degree": 3}), 10) == 3
    assert mean_degree(NetworkConfig(generator="none"), 1000) == 0
    assert mean_degree(NetworkConfig(params={"k": 50}), 5) == 4
    edges = tmp_path / "g.csv"
    edges.write_text("source,target\n" + "a,b\n" * 30)
    assert mean_degree(NetworkConfig(file=edges), 20) == 3


def test_check_capacity_names_population_size_when_it_does_not_fit() -> None:
    config = tiny(size=1_000_000)
    estimate = check_capacity(config, 1_000_000, "exp.yaml", available=100 * 2**30)
    assert BASE_BYTES < estimate.total < 100 * 2**30
    with pytest.raises(ConfigError) as info:
        check_capacity(config, 1_000_000, "exp.yaml", available=2 * 2**30)
    message = info.value.one_line()
    assert message.startswith("exp.yaml: population.size: 1,000,000 recipients need about")
    assert "2.0 GiB" in message and "\n" not in message


def test_available_memory_is_read_from_the_machine() -> None:
    available = available_memory()
    assert available is None or 0 < available < 2**50


def test_preflight_counts_a_recipients_file(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    rows = "".join(f"r{i},3\n" for i in range(49)) + "r49,3"  # no final newline
    (tmp_path / "r.csv").write_text("recipient_id,age\n" + rows)
    (tmp_path / "c.csv").write_text("campaign_id,value,cost\nmail,1,0.1\n")
    config = load_config(write_yaml(tmp_path / "d.yaml", {
        "name": "d", "data": {"recipients": "r.csv", "campaigns": "c.csv"}}))
    preflight(config, "d.yaml")  # fits
    monkeypatch.setattr("personasim.agents.capacity.available_memory", lambda: 2**20)
    with pytest.raises(ConfigError, match=r"d.yaml: data.recipients: 50 recipients need"):
        preflight(config, "d.yaml")


def test_cli_refuses_a_population_larger_than_memory(tmp_path: Path) -> None:
    payload = copy.deepcopy(TINY_CONFIG)
    payload["population"]["size"] = 10**13
    config = write_yaml(tmp_path / "huge.yaml", payload)
    for command in (["validate", config], ["run", config, "--out", tmp_path / "run", "--quiet"]):
        text = one_line_error(runner.invoke(app, [str(c) for c in command]), "huge.yaml",
                              "population.size", "10,000,000,000,000 recipients", "GiB")
        assert "available" in text
    assert not (tmp_path / "run").exists()


def _graph_config(tmp_path: Path, edges: str) -> Path:
    (tmp_path / "graph.csv").write_text(edges)
    payload = copy.deepcopy(TINY_CONFIG)
    payload["dynamics"] = {"influence": {"network": {"file": "graph.csv"}}}
    return write_yaml(tmp_path / "exp.yaml", payload)


def test_cli_refuses_a_graph_file_whose_nodes_are_not_recipients(tmp_path: Path) -> None:
    config = _graph_config(tmp_path, "source,target\ndeal_seekers-0000001,loyal-0000002\n0,1\n")
    result = runner.invoke(app, ["run", str(config), "--out", str(tmp_path / "run"), "--quiet"])
    one_line_error(result, "graph.csv", "row 2", "node '0' is not a known recipient_id",
                   "'deal_seekers-0000000'")
    assert not (tmp_path / "run").exists()
    one_line_error(runner.invoke(app, ["validate", str(config)]), "graph.csv", "row 2")


def test_cli_accepts_a_graph_file_over_known_recipients(tmp_path: Path) -> None:
    config = _graph_config(tmp_path, "source,target\ndeal_seekers-0000001,loyal-0000002\n")
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("text", ["", "from,to\na,b\n"])
def test_unreadable_graph_file_is_a_data_error(tmp_path: Path, text: str) -> None:
    config = _graph_config(tmp_path, text)
    with pytest.raises(DataError, match="graph.csv"):
        preflight(load_config(config), "exp.yaml")
