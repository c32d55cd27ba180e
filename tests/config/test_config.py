"""Config validation: bad configs fail with one line naming the file and the field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from conftest import TINY_CONFIG, write_yaml

from personasim.config.loading import load_config
from personasim.core.errors import ConfigError


def _bad(tmp_path: Path, mutate) -> str:  # noqa: ANN001
    payload = copy.deepcopy(TINY_CONFIG)
    mutate(payload)
    path = write_yaml(tmp_path / "bad.yaml", payload)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.one_line()
    assert "\n" not in message and str(path) in message
    return message


def test_valid_config_loads_with_defaults(tiny_config_path: Path) -> None:
    config = load_config(tiny_config_path)
    assert config.policy.algorithm == "ppo"
    assert config.dynamics.fatigue.enabled
    assert [c.id for c in config.campaigns] == ["sale", "news", "holdout"]


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    message = _bad(tmp_path, lambda c: c["personas"][0].update(sahre=0.2))
    assert "personas.0.sahre" in message and "did you mean 'share'" in message


def test_wrong_type_names_the_field(tmp_path: Path) -> None:
    message = _bad(tmp_path, lambda c: c["campaigns"][0].update(cost="cheap"))
    assert "campaigns.0.cost" in message


def test_campaign_referenced_but_not_defined(tmp_path: Path) -> None:
    def mutate(c: dict) -> None:
        c["personas"][0]["traits"]["affinity"] = {"salee": {"dist": "normal", "sd": 0.1}}

    message = _bad(tmp_path, mutate)
    assert "personas.0.traits.affinity" in message and "'salee' is not defined" in message


def test_missing_data_file_names_field(tmp_path: Path) -> None:
    message = _bad(tmp_path, lambda c: c.update(data={"ab_results": "nowhere.csv"}))
    assert "data.ab_results" in message and "nowhere.csv" in message


def test_bad_distribution_tag(tmp_path: Path) -> None:
    message = _bad(tmp_path, lambda c: c["personas"][0]["traits"].update(
        fatigue_rate={"dist": "betta", "a": 1, "b": 2}))
    assert "personas.0.traits.fatigue_rate" in message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_overrides_apply_before_validation(tiny_config_path: Path) -> None:
    config = load_config(tiny_config_path, ["policy.total_timesteps=128", "campaigns.0.cost=0.2"])
    assert config.policy.total_timesteps == 128 and config.campaigns[0].cost == 0.2
    with pytest.raises(ConfigError, match="policy.total_timestep"):
        load_config(tiny_config_path, ["policy.total_timestep=5"])


def test_duplicate_ids_and_two_controls_rejected(tmp_path: Path) -> None:
    assert "duplicate" in _bad(tmp_path, lambda c: c["campaigns"].append({"id": "sale"}))
    assert "control" in _bad(
        tmp_path, lambda c: c["campaigns"].append({"id": "h2", "control": True}))


def test_plugin_names_are_plain_strings_checked_later(tiny_config_path: Path) -> None:
    """The schema sits below the registries: any name loads; validate/preflight check it."""
    config = load_config(tiny_config_path, ["output.formats=[csv, feather]",
                                            "simulation.response_model=my_model"])
    assert config.output.formats == ["csv", "feather"]
    assert config.simulation.response_model == "my_model"
    field = type(config.output).model_fields["formats"]
    assert field.annotation == list[str] and "Registered" in (field.description or "")


def test_written_shares_must_sum_to_one_unless_declared_relative(tmp_path: Path) -> None:
    import copy

    from conftest import TINY_CONFIG, write_yaml

    from personasim.config.loading import load_config
    from personasim.core.errors import ConfigError

    payload = copy.deepcopy(TINY_CONFIG)
    payload["personas"][0]["share"] = 0.5  # 0.5 + 0.4
    path = write_yaml(tmp_path / "shares.yaml", payload)
    with pytest.raises(ConfigError, match=r"shares sum to 0\.9, not 1.*relative_shares"):
        load_config(path)
    config = load_config(path, ["population.relative_shares=true"])
    assert [p.share for p in config.personas] == [0.5, 0.4]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("name: a\nseed 1\npolicy: {}\n", 2, "could not find expected ':'"),  # key without colon
        ("name: a\nseed: 1\npolicy: {algorithm: ppo\n", 3, "expected ',' or '}'"),  # at the end
        ("name: a\nbaselines: [random, thompson\nseed: 1\n", 2, "expected ',' or ']'"),
        ('name: "tiny\nseed: 1\n\n\n', 1, "unexpected end of stream"),  # unclosed quote
        ("name: a\nseed: 1: 2\npolicy: {}\n", 2, "mapping values are not allowed"),
        ("name: a\npolicy:\n  algorithm: ppo\n seed: 1\n", 4, "expected <block end>"),
        ("name: a\n\tseed: 1\n", 2, "'\\t'"),
        ("name: a\nseed: 1\nname: b\n", 3, "duplicate key 'name'"),
    ],
)
def test_yaml_errors_name_the_line_at_fault(tmp_path: Path, text: str, line: int,
                                            problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.one_line()
    assert message.startswith(f"{path}: line {line}: not valid YAML"), message
    assert problem in message
