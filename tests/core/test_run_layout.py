"""The run layout names every file once, and the README's outputs table is generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from personasim.core import run_layout
from personasim.core.run_layout import RUN_FILES, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- run-files:start", "<!-- run-files:end -->"


def test_readme_outputs_table_matches_the_layout() -> None:
    text = README.read_text()
    block = text[text.index(START):text.index(END)]
    table = block[block.index("\n") + 1:]
    assert table == markdown_table(), "regenerate the README table from run_layout"


def test_every_run_file_is_listed_once() -> None:
    names = [f.name for f in RUN_FILES]
    assert len(names) == len(set(names))
    constants = [v for k, v in vars(run_layout).items()
                 if k.isupper() and isinstance(v, run_layout.RunFile)]
    assert set(constants) == set(RUN_FILES), "a RunFile constant is missing from RUN_FILES"


def test_family_names_need_their_helper(tmp_path: Path) -> None:
    assert run_layout.persona_card(tmp_path, "vip") == tmp_path / "card_vip.png"
    assert run_layout.algorithm_curve(tmp_path, "dqn") == tmp_path / "learning_curve_dqn.png"
    with pytest.raises(ValueError, match="family"):
        run_layout.PERSONA_CARD.path(tmp_path)
