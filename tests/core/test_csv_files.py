"""Every CSV the project writes is safe to open in a spreadsheet (CSV/formula injection)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import one_line_error, write_yaml  # noqa: F401
from typer.testing import CliRunner

from personasim.cli import app
from personasim.core.csv_files import FORMULA_STARTS, neutralize, write_csv

ROOT = Path(__file__).resolve().parents[2]
ATTACKS = ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "@SUM(A1)", "+1234", "-5",
           "\tTAB"]


def _cells(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def test_text_cells_are_quoted_and_numbers_kept(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ATTACKS + ["plain"], "score": np.arange(-4.0, 3.0),
                          "mixed": [-3, "=1+1", None, 2.5, "ok", "@x", "-"]})
    path = write_csv(frame, tmp_path / "t.csv")
    back = pd.read_csv(path, keep_default_na=False, dtype=str)
    assert back["id"].tolist() == ["'" + a for a in ATTACKS] + ["plain"]
    assert back["score"].tolist()[0] == "-4.0"  # a negative number is not text
    assert back["mixed"].tolist()[:2] == ["-3", "'=1+1"]
    assert frame["id"].iloc[0] == ATTACKS[0]  # the caller's frame is untouched
    assert neutralize(pd.DataFrame({"id": ["\rCR"]}))["id"].iloc[0] == "'\rCR"
    safe = pd.DataFrame({"id": ["a", "b"], "x": [1, 2]})
    assert neutralize(safe) is safe


def test_no_library_module_writes_csv_another_way() -> None:
    """One writer for every CSV file: any other ``to_csv`` call would skip the quoting."""
    offenders = []
    for folder in ("personasim", "agents", "envs", "experiments"):
        for module in (ROOT / folder).rglob("*.py"):
            if module.name == "csv_files.py":
                continue
            if re.search(r"\.to_csv\(|csv\.writer\(", module.read_text()):
                offenders.append(str(module.relative_to(ROOT)))
    assert offenders == []


def test_every_csv_of_a_run_and_of_rank_is_neutralized(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ids = ATTACKS[:5] + [f"r{i}" for i in range(295)]
    recipients = pd.DataFrame({"recipient_id": ids,
                               "region": rng.choice(["n", "s"], len(ids)),
                               "tenure": rng.integers(1, 60, len(ids))})
    recipients.to_csv(tmp_path / "recipients.csv", index=False)
    ab = pd.DataFrame({"recipient_id": ids, "campaign_id": rng.choice(["none", "mail"], len(ids)),
                       "outcome": rng.integers(0, 2, len(ids))})
    ab.to_csv(tmp_path / "ab.csv", index=False)
    config = {"name": "inject", "seed": 3,
              "data": {"recipients": "recipients.csv", "ab_results": "ab.csv"},
              "campaigns": [{"id": "none", "control": True}, {"id": "mail", "value": 5,
                                                             "cost": 0.1}],
              "population": {"size": 300}, "inference": {"self_check": 0.3},
              "policy": {"total_timesteps": 64, "eval_seeds": 2, "validation_episodes": 1,
                         "baselines": ["random"]},
              "output": {"plots": False}}
    path = write_yaml(tmp_path / "inject.yaml", config)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    ranked = tmp_path / "ranked.csv"
    result = CliRunner().invoke(app, ["rank", "--run", str(out), "--recipients",
                                      str(tmp_path / "recipients.csv"), "--out", str(ranked)])
    assert result.exit_code == 0, result.output
    written = sorted(out.rglob("*.csv")) + [ranked]
    assert len(written) >= 10
    for csv_path in written:
        bad = [c for c in _cells(csv_path) if c.startswith(FORMULA_STARTS)
               and not re.fullmatch(r"-\d+(\.\d+)?(e-?\d+)?", c)]
        assert bad == [], f"{csv_path.name}: {bad[:3]}"
    cells = set(_cells(out / "prioritization.csv"))
    assert "'" + ATTACKS[0] in cells and "'@SUM(A1)" in cells
    parquet = pd.read_parquet(out / "prioritization.parquet")
    assert ATTACKS[0] in set(parquet["recipient_id"])  # Parquet keeps the raw value


@pytest.mark.parametrize("attack", ATTACKS[:3])
def test_reading_back_a_quoted_cell_keeps_the_text(tmp_path: Path, attack: str) -> None:
    path = write_csv(pd.DataFrame({"id": [attack]}), tmp_path / "one.csv")
    assert _cells(path) == ["id", "'" + attack]
