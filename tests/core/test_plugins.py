"""Plug-ins: entry-point loading, and every registered name in a config checked by validate."""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TINY_CONFIG, one_line_error, write_yaml
from typer.testing import CliRunner

from personasim.behaviour.response import RESPONSE_MODELS
from personasim.cli import app
from personasim.config.loading import load_config
from personasim.core.errors import ConfigError
from personasim.core.plugins import GROUP, load_plugins, plugins_loaded, reset_plugins
from personasim.experiments.preflight import check_registered_names, registered_names
from personasim.policies.baselines import POLICIES

runner = CliRunner()

PLUGIN_MODULE = '''
"""A tiny third-party plug-in: a saturating response model."""

import numpy as np

from personasim.behaviour.response import RESPONSE_MODELS, StaticResponse


@RESPONSE_MODELS.register("test_saturating")
class SaturatingResponse(StaticResponse):
    """Static response, capped at one half."""

    def probability(self, traits, fatigue, campaigns, assignment, context):
        return np.minimum(super().probability(traits, fatigue, campaigns, assignment, context),
                          np.float32(0.5))


def register_policy():
    from personasim.policies.baselines import POLICIES, RandomPolicy

    POLICIES.add("test_random_too", lambda env, context: RandomPolicy(context.seed))
'''

Installer = Callable[[dict[str, str]], Path]


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Installer]:
    """Install a plug-in distribution in ``tmp_path`` with the given entry points.

    The registries it writes to are restored afterwards, and the loader forgets it ran.
    """
    for registry in (RESPONSE_MODELS, POLICIES):
        monkeypatch.setattr(registry, "_items", dict(registry._items))

    def install(entries: dict[str, str]) -> Path:
        package = tmp_path / "ps_test_plugin"
        package.mkdir(exist_ok=True)
        (package / "__init__.py").write_text(PLUGIN_MODULE)
        dist = tmp_path / "ps_test_plugin-0.1.dist-info"
        dist.mkdir(exist_ok=True)
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: ps-test-plugin\nVersion: 0.1\n"
        )
        lines = [f"{name} = {target}" for name, target in entries.items()]
        (dist / "entry_points.txt").write_text(f"[{GROUP}]\n" + "\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        reset_plugins()
        return tmp_path

    yield install
    reset_plugins()
    sys.modules.pop("ps_test_plugin", None)


def _config(tmp_path: Path, mutate: Callable[[dict[str, Any]], None]) -> Path:
    payload = copy.deepcopy(TINY_CONFIG)
    mutate(payload)
    return write_yaml(tmp_path / "exp.yaml", payload)


def test_registry_read_loads_entry_points_once(install_plugin: Installer) -> None:
    install_plugin({"saturating": "ps_test_plugin"})
    assert not plugins_loaded()
    assert "test_saturating" in RESPONSE_MODELS  # the first read loads the plug-ins
    assert plugins_loaded()
    assert "test_saturating" in RESPONSE_MODELS.names()
    assert load_plugins() == []  # already loaded: nothing is imported twice


def test_callable_entry_point_is_called(install_plugin: Installer) -> None:
    install_plugin({"policy": "ps_test_plugin:register_policy"})
    assert "test_random_too" in POLICIES


def test_broken_plugin_warns_on_one_line(
    install_plugin: Installer, caplog: pytest.LogCaptureFixture
) -> None:
    install_plugin({"broken": "ps_test_missing_module", "saturating": "ps_test_plugin"})
    with caplog.at_level(logging.WARNING, logger="personasim.core.plugins"):
        assert "test_saturating" in RESPONSE_MODELS  # the good plug-in still loads
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "'broken'" in warnings[0] and "ps_test_missing_module" in warnings[0]
    assert load_plugins() == ["broken"]


def test_validate_knows_a_plugin_name(install_plugin: Installer, tmp_path: Path) -> None:
    install_plugin({"saturating": "ps_test_plugin"})
    config = _config(tmp_path, lambda c: c["simulation"].update(response_model="test_saturating"))
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_validate_rejects_an_unknown_name_with_a_hint(
    install_plugin: Installer, tmp_path: Path
) -> None:
    install_plugin({"saturating": "ps_test_plugin"})
    config = _config(tmp_path, lambda c: c["simulation"].update(response_model="test_saturatin"))
    one_line_error(runner.invoke(app, ["validate", str(config)]), "exp.yaml",
                   "simulation.response_model", "did you mean 'test_saturating'")


def _as_dataset(config: dict[str, Any], name: str) -> None:
    """Turn the tiny config into a dataset config naming ``name``."""
    del config["personas"], config["campaigns"]
    config["dataset"] = {"name": name}


@pytest.mark.parametrize(
    ("mutate", "location"),
    [
        (lambda c: c["simulation"].update(engine="cohrt"), "simulation.engine"),
        (lambda c: c["simulation"].update(response_model="logistc"),
         "simulation.response_model"),
        (lambda c: c["dynamics"]["influence"]["network"].update(generator="watts"),
         "dynamics.influence.network.generator"),
        (lambda c: c.update(synthesis={"method": "kmean"}), "synthesis.method"),
        (lambda c: c["inference"].update(estimator="hierarchal"), "inference.estimator"),
        (lambda c: c["policy"].update(algorithm="ppo2"), "policy.algorithm"),
        (lambda c: c["policy"].update(compare_algorithms={"a2c": {}, "sac": {}}),
         "policy.compare_algorithms.sac"),
        (lambda c: c["policy"].update(baselines=["random", "thomson"]), "policy.baselines.1"),
        (lambda c: c.update(output={"formats": ["csv", "xlsx"]}), "output.formats.1"),
        (lambda c: _as_dataset(c, "hilstrom"), "dataset.name"),
    ],
)
def test_validate_checks_every_registered_name(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], location: str
) -> None:
    config = _config(tmp_path, mutate)
    text = one_line_error(runner.invoke(app, ["validate", str(config)]), "exp.yaml", location,
                          "known: ")
    assert "unknown" in text


def test_check_registered_names_covers_every_plugin_field(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, lambda c: (
        c["policy"].update(compare_algorithms={"a2c": {}}),
        c.setdefault("inference", {}).update(estimator="beta_binomial"))))
    locations = {location for location, _, _ in registered_names(config)}
    assert {"simulation.engine", "simulation.response_model", "synthesis.method",
            "dynamics.influence.network.generator", "inference.estimator", "policy.algorithm",
            "policy.compare_algorithms.a2c", "policy.baselines.0", "output.formats.0"} <= locations
    check_registered_names(config, "exp.yaml")  # every name is known
    config.output.formats.append("xlsx")
    with pytest.raises(ConfigError, match=r"exp\.yaml: output\.formats\.2: unknown exporter"):
        check_registered_names(config, "exp.yaml")


def test_run_checks_names_before_creating_the_run_folder(tmp_path: Path) -> None:
    config = _config(tmp_path, lambda c: c.update(output={"formats": ["csv", "xlsx"]}))
    out = tmp_path / "run"
    one_line_error(runner.invoke(app, ["run", str(config), "--out", str(out), "--quiet"]),
                   "output.formats.1")
    assert not out.exists() and not list(tmp_path.glob(".run.partial-*"))
