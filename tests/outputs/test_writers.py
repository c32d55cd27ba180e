"""Tests for table export and reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from personasim.core.registry import UnknownNameError
from personasim.outputs.writers import EXPORTERS, READERS, export_table, read_table_any


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame({
        "recipient_id": ["007", "r2", "r3"],
        "campaign_id": ["spring", "autumn", "spring"],
        "rank": np.array([1, 2, 1], dtype=np.int32),
        "priority": [0.123456, -0.5, 2.0],
        "action": ["send", "suppress", "send"],
    })


def test_registered_formats() -> None:
    assert EXPORTERS.names() == ["csv", "parquet"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip(table: pd.DataFrame, tmp_path: Path, fmt: str) -> None:
    (path,) = export_table(table, tmp_path / "out", "ranking", [fmt])
    assert path == tmp_path / "out" / f"ranking.{fmt}"
    assert path.is_file()
    back = read_table_any(path)
    assert list(back.columns) == list(table.columns)
    pd.testing.assert_frame_equal(back, table, check_dtype=(fmt == "parquet"))
    assert back["recipient_id"].tolist() == ["007", "r2", "r3"]


def test_both_formats_and_csv_bytes(table: pd.DataFrame, tmp_path: Path) -> None:
    paths = export_table(table, tmp_path, "t", ["csv", "parquet", "csv"])
    assert [p.name for p in paths] == ["t.csv", "t.parquet"]
    raw = paths[0].read_bytes()
    assert b"\r" not in raw
    assert raw.startswith(b"recipient_id,campaign_id,rank,priority,action\n007,spring,1,")
    export_table(table, tmp_path, "t", ["csv"])
    assert paths[0].read_bytes() == raw


def test_exporter_keeps_dots_in_stem(table: pd.DataFrame, tmp_path: Path) -> None:
    path = EXPORTERS.get("csv")(table, tmp_path / "run.v1")
    assert path.name == "run.v1.csv"


def test_unknown_format_lists_known(table: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError) as err:
        export_table(table, tmp_path, "t", ["csv", "xlsx"])
    assert "xlsx" in str(err.value)
    assert "csv" in str(err.value) and "parquet" in str(err.value)
    assert not (tmp_path / "t.csv").exists()


def test_read_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text("{}")
    with pytest.raises(ValueError, match="csv"):
        read_table_any(path)


def test_readers_are_registered_by_suffix(table: pd.DataFrame, tmp_path: Path) -> None:
    assert {"csv", "parquet", "pq"} <= set(READERS.names())
    (path,) = export_table(table, tmp_path, "t", ["parquet"])
    alias = path.rename(tmp_path / "t.PQ")
    pd.testing.assert_frame_equal(read_table_any(alias), table)
