"""tools/readme_numbers.py: README blocks are rewritten in place, with their measurement."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("readme_numbers", ROOT / "tools" /
                                              "readme_numbers.py")
assert spec is not None and spec.loader is not None
readme_numbers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_numbers)


def test_a_block_is_replaced_and_stamped() -> None:
    text = ("intro\n<!-- numbers:x:start -->\nold table\n<!-- numbers:x:end -->\nafter\n"
            "<!-- numbers:y:start -->\nkeep\n<!-- numbers:y:end -->\n")
    out = readme_numbers.rewrite(text, "x", "| new |")
    assert "old table" not in out and "| new |" in out and "keep" in out
    assert "Measured by `bash tools/readme-numbers x`" in out and "cores, load average" in out
    assert out.startswith("intro\n") and out.endswith("<!-- numbers:y:end -->\n")


def test_a_missing_block_is_refused() -> None:
    with pytest.raises(SystemExit, match="no block 'z'"):
        readme_numbers.rewrite("no markers here", "z", "body")


def test_the_readme_has_every_block() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in readme_numbers.GENERATORS:
        assert f"<!-- numbers:{name}:start -->" in text, name
        assert f"<!-- numbers:{name}:end -->" in text, name


def test_plan_table_rows() -> None:
    rows = [{"config": "quickstart", "plan": [1.0, 0.5, 1.5],
             "plan_without_holdout": [2.0, 1.0, 3.0], "policy_calendar (ppo)": [3.0, 2.0, 4.0],
             "plan_policy_pacing": [4.0, 3.0, 5.0], "ab_winner": [5.0, 4.0, 6.0],
             "myopic_oracle": [6.0, 5.0, 7.0], "greedy_table": [7.0, 6.0, 8.0]}]
    table = readme_numbers.plan_table(rows)
    assert "| plan paced by value | (the one chosen) |" in table
    assert "| PPO's calendar | 3 (2 – 4) |" in table
