"""``synthesis.columns``: column roles for persona descriptions, checked when a config loads."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, one_line_error, write_yaml
from typer.testing import CliRunner

from personasim.cli import app
from personasim.config.columns import ColumnRole
from personasim.config.loading import load_config
from personasim.core.errors import ConfigError

runner = CliRunner()

ROLES = {
    "monthly_fee": {"role": "money", "template": "who pay {range} a month"},
    "tenure_months": {"role": "duration", "label": "tenure"},
    "plan": {"role": "category", "place": "before", "levels": {"prem": "premium"}},
    "churn_risk": {"role": "share", "label": "at risk of churning"},
}


def with_roles(tmp_path: Path, columns: dict[str, Any], noun: str = "subscribers") -> Path:
    payload = copy.deepcopy(TINY_CONFIG)
    payload["synthesis"] = {"noun": noun, "columns": columns}
    return write_yaml(tmp_path / "roles.yaml", payload)


def test_declared_roles_load(tmp_path: Path) -> None:
    config = load_config(with_roles(tmp_path, ROLES))
    assert config.synthesis.noun == "subscribers"
    fee = config.synthesis.columns["monthly_fee"]
    assert isinstance(fee, ColumnRole) and fee.role == "money" and fee.place == "after"
    assert config.synthesis.columns["plan"].levels == {"prem": "premium"}
    assert load_config(write_yaml(tmp_path / "plain.yaml", TINY_CONFIG)).synthesis.columns == {}


BAD_ROLES = [
    ({"fee": {"role": "money", "template": "who pay {lo} a month"}},
     ["synthesis.columns.fee.template", "unknown field {lo}", "{range}"]),
    ({"fee": {"role": "money", "template": "who pay {range"}},
     ["synthesis.columns.fee.template", "not a valid template"]),
    ({"fee": {"role": "money", "template": "{range.__class__}"}},
     ["synthesis.columns.fee.template", "unknown field {range.__class__}"]),
    ({"fee": {"role": "money", "template": "{low:.0f} dollars"}},
     ["synthesis.columns.fee.template", "not a valid template", "a number format"]),
    ({"fee": {"role": "money", "template": "pay {}"}},
     ["synthesis.columns.fee.template", "unknown field {}"]),
    ({"plan": {"role": "category", "template": "from {low}"}},
     ["synthesis.columns.plan.template", "a category column has {label}, {level}"]),
    ({"fee": {"role": "currency"}}, ["synthesis.columns.fee.role", "'money'", "'share'"]),
    ({"fee": {"label": "fee"}}, ["synthesis.columns.fee.role", "required field is missing"]),
    ({"fee": {"role": "money", "levels": {"a": "b"}}},
     ["synthesis.columns.fee", "levels: only a category column"]),
    ({"fee": {"role": "money", "group": "on"}}, ["synthesis.columns.fee", "group: only a share"]),
    ({"fee": {"role": "money", "lable": "fee"}}, ["synthesis.columns.fee", "unknown key 'lable'"]),
]


@pytest.mark.parametrize(("columns", "needles"), BAD_ROLES)
def test_a_bad_role_is_one_line(tmp_path: Path, columns: dict[str, Any],
                                needles: list[str]) -> None:
    path = with_roles(tmp_path, columns)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = info.value.one_line()
    assert "\n" not in message and message.startswith(str(path))
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(("columns", "needles"), [BAD_ROLES[0], BAD_ROLES[6]])
def test_validate_refuses_a_bad_role_in_one_line(tmp_path: Path, columns: dict[str, Any],
                                                 needles: list[str]) -> None:
    result = runner.invoke(app, ["validate", str(with_roles(tmp_path, columns))])
    one_line_error(result, "roles.yaml", *needles)


def write_subscribers(tmp_path: Path, columns: dict[str, Any]) -> Path:
    """A data-mode config over 90 subscribers, with ``columns`` as its roles."""
    rng = np.random.default_rng(3)
    n = 90
    kind = np.arange(n) % 2
    pd.DataFrame({
        "recipient_id": [f"s{i}" for i in range(n)],
        "tenure_months": np.where(kind == 1, rng.integers(24, 48, n), rng.integers(1, 6, n)),
        "monthly_fee": np.where(kind == 1, 45.0, 12.0) + rng.normal(0, 1, n).round(2),
        "plan": np.where(kind == 1, "prem", "basic"),
        "churn_risk": (rng.random(n) < np.where(kind == 1, 0.1, 0.6)).astype(int),
    }).to_csv(tmp_path / "subscribers.csv", index=False)
    return write_yaml(tmp_path / "subs.yaml", {
        "name": "subs", "seed": 1, "data": {"recipients": "subscribers.csv"},
        "campaigns": [{"id": "mail", "value": 5, "cost": 0.1}],
        "synthesis": {"k": 2, "noun": "subscribers", "columns": columns}})


def test_validate_accepts_roles_that_fit_the_data(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(write_subscribers(tmp_path, ROLES))])
    assert result.exit_code == 0, result.output
    assert "2 personas" in result.output


def test_validate_refuses_a_role_for_a_missing_column_in_one_line(tmp_path: Path) -> None:
    columns = {**ROLES, "tenure": {"role": "duration"}}
    result = runner.invoke(app, ["validate", str(write_subscribers(tmp_path, columns))])
    one_line_error(result, "subscribers.csv", "column 'tenure'", "synthesis.columns")
