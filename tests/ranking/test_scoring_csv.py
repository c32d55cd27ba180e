"""The fast CSV encoder writes pandas' bytes, and keeps neutralizing formula-like text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personasim.core import csv_files
from personasim.core.csv_files import (
    FORMULA_STARTS,
    CsvStream,
    encode_table,
    frame_csv,
    neutralize,
    write_csv,
)

ATTACKS = ['=HYPERLINK("http://x","y")', "=cmd", "@SUM(A1)", "+1234", "-5", "\tTAB", "\rCR"]


def _pandas_bytes(frame: pd.DataFrame) -> bytes:
    """What write_csv wrote before the encoder existed."""
    return neutralize(frame).to_csv(index=False, lineterminator="\n").encode("utf-8")


@pytest.fixture
def always_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csv_files, "FAST_MIN_ROWS", 0)


def _floats(draw: st.DrawFn, n: int) -> np.ndarray:
    scale = draw(st.sampled_from([1e-6, 1e-4, 1e-2, 1.0, 100.0, 1e5, 2e6]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = np.round(rng.normal(0, scale, n), 6) + 0.0
    edge = [0.0, 1.0, -1.0, 1e-6, -1e-6, 9.9e-5, 1e-4, -1e-4, 1.5e-5, 999999.999999, 0.5, 10.0]
    if draw(st.booleans()):
        values[: min(n, len(edge))] = edge[: min(n, len(edge))]
    if draw(st.integers(0, 9)) == 0:
        values[0] = draw(st.sampled_from([np.nan, np.inf, -0.0, 0.1 + 1e-9, 1e7]))
    return values


@settings(max_examples=120, deadline=None)
@given(data=st.data(), n=st.integers(1, 60))
def test_fast_bytes_are_pandas_bytes(data: st.DataObject, n: int) -> None:
    text = st.text(alphabet=st.sampled_from(list("ab=+-@ ,\"'\t\r\né€0")), max_size=6)
    frame = pd.DataFrame({
        "id": data.draw(st.lists(text, min_size=n, max_size=n)),
        "x": _floats(data.draw, n),
        "k": data.draw(st.lists(st.integers(-999_999, 999_999), min_size=n, max_size=n)),
        "flag": data.draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "y": _floats(data.draw, n),
    })
    frame["label"] = pd.Categorical(frame["id"].map(lambda v: "c" + v[:1]))
    frame["k32"] = frame["k"].astype(np.int32)
    if data.draw(st.integers(0, 9)) == 0:
        frame.loc[0, "k"] = 10**7  # too wide for the encoder: pandas writes the frame
    csv_files.FAST_MIN_ROWS, saved = 0, csv_files.FAST_MIN_ROWS
    try:
        assert bytes(frame_csv(frame)) == _pandas_bytes(frame)
    finally:
        csv_files.FAST_MIN_ROWS = saved


@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.0, 0.1234567, 1e6, 1e-7])
def test_encoder_declines_what_it_cannot_write_exactly(bad: float) -> None:
    table = pa.table({"a": ["x", "y"], "v": [0.5, bad]})
    assert encode_table(table, True) is None
    assert encode_table(pa.table({"a": ['he said "hi"', "y"], "v": [0.5, 1.0]}), True) is None
    assert encode_table(pa.table({"a": ["x", None], "v": [0.5, 1.0]}), True) is None
    assert bytes(encode_table(pa.table({"a": ["x", "y"], "v": [0.5, 1.0]}), True)) == (
        b"a,v\nx,0.5\ny,1.0\n")


@pytest.mark.usefixtures("always_fast")
def test_formula_text_is_neutralized_by_the_fast_path(tmp_path: Path) -> None:
    n = 400
    # no quotes or commas (pandas would quote those cells, so the encoder passes them on),
    # and no bare carriage return (csv.reader would split the row)
    attacks = ["=HYPERLINK(1)", "=cmd|' /C calc'!A0", "@SUM(A1)", "+1234", "-5", "\tTAB"]
    frame = pd.DataFrame({"recipient_id": [attacks[i % len(attacks)] + str(i) for i in range(n)],
                          "score": np.round(np.linspace(-4, 3, n), 6),
                          "campaign_id": pd.array(["-x", "ok"] * (n // 2), dtype=str)})
    table = pa.Table.from_pandas(neutralize(frame), preserve_index=False)
    assert encode_table(table, True) is not None  # the fast path writes this frame
    path = write_csv(frame, tmp_path / "t.csv")
    assert path.read_bytes() == _pandas_bytes(frame)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    for row in rows:
        assert not row[0].startswith(FORMULA_STARTS) and row[0].startswith("'")
        assert row[2] in ("'-x", "ok")
    assert rows[0][1] == "-4.0"  # negative numbers are numbers, not text
    assert frame["recipient_id"].iloc[0] == "=HYPERLINK(1)0"  # the caller's frame is untouched


def test_stream_of_arrow_chunks_is_the_whole_frame_written_at_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    n = 25_000
    safe = ["=cmd", "@SUM(A1)", "+1234", "-5", "\tTAB"]  # fast path; a quote: pandas
    ids = [safe[i % len(safe)] + str(i) if i % 50 == 0 else f"r{i:06d}" for i in range(n)]
    ids[21_001] = ATTACKS[0]  # only the last chunk needs pandas
    frame = pd.DataFrame({
        "recipient_id": pd.array(ids, dtype=str),
        "campaign_id": pd.array(rng.choice(["=a", "b", "c"], n), dtype=str),
        "rank": np.tile(np.arange(1, 6, dtype=np.int32), n // 5),
        "p": np.round(rng.beta(2, 20, n), 6),
        "priority": np.round(rng.normal(0, 3, n), 6) + 0.0,
        "action": pd.array(rng.choice(["send", "suppress"], n), dtype=str),
    })
    whole = write_csv(frame, tmp_path / "whole.csv").read_bytes()
    assert whole == _pandas_bytes(frame)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with CsvStream(tmp_path / "stream.csv") as stream:
        for start in range(0, n, 7_000):
            chunk = table.slice(start, 7_000)
            columns = [c.dictionary_encode() if pa.types.is_string(c.type) else c
                       for c in chunk.columns]
            stream.write(pa.table(columns, names=chunk.column_names))
    assert (tmp_path / "stream.csv").read_bytes() == whole
    assert stream.rows == n
    back = pd.read_csv(io.BytesIO(whole), dtype=str, keep_default_na=False)
    assert back["recipient_id"].iloc[0] == "'" + safe[0] + "0"
    assert back["recipient_id"].iloc[21_001] == "'" + ATTACKS[0]


def test_a_failing_stream_closes_its_file(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), CsvStream(tmp_path / "x.csv") as stream:
        stream.write(pd.DataFrame({"a": [1], "b": ["x"]}))
        raise RuntimeError("boom")
    assert (tmp_path / "x.csv").exists()
