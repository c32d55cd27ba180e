"""Fuzzing ``personasim validate``: whatever the bytes, the answer is OK or one line, exit 0/2.

Hypothesis writes configs (random bytes, encodings, values of the wrong type at random
places) and data files (recipients, campaigns, A/B results, events: random bytes, or a valid
table with damaged cells, random columns, delimiters, quoting, encodings, CSV or Parquet);
the command must never crash (exit code 1) nor print a traceback.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import yaml
from conftest import TINY_CONFIG, write_yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from personasim.cli import app

runner = CliRunner()
FUZZ = settings(max_examples=75, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

ENCODINGS = ("utf-8", "utf-16", "latin-1", "cp1252", "utf-8-sig")
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", "-1", "0", "nan", "1e309", "n/a", "ppo", "random", "[", "{a: 1"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a config: mapping keys and list indexes."""
    found = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, child in items:
        found += _paths(child, (*prefix, key))
    return found


CONFIG_PATHS = _paths(TINY_CONFIG) + [("policy", "baselines"), ("simulation", "engine"),
                                      ("inference", "estimator"), ("output", "formats"),
                                      ("plan", "budget"), ("plan", "capacity"), ("data",)]


def _put(node: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set ``value`` at ``path`` where the path still leads somewhere (else do nothing)."""
    for key in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(key, {})
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
        else:
            return
    last = path[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value


def _validate(config: Path) -> None:
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 2:
        assert len(result.output.strip().splitlines()) == 1, result.output


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(CONFIG_PATHS), VALUES), max_size=3),
       encoding=st.sampled_from(ENCODINGS))
def test_configs_with_random_values(changes: list[tuple[tuple[Any, ...], Any]],
                                    encoding: str) -> None:
    payload = copy.deepcopy(TINY_CONFIG)
    for path, value in changes:
        _put(payload, path, value)
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "fuzz.yaml"
        config.write_bytes(yaml.safe_dump(payload, allow_unicode=True).encode(encoding,
                                                                                   "replace"))
        _validate(config)


@FUZZ
@given(payload=st.one_of(st.binary(max_size=200),
                         st.text(max_size=200).map(lambda t: t.encode("utf-8"))))
def test_configs_of_random_bytes(payload: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "fuzz.yaml"
        config.write_bytes(payload)
        _validate(config)


COLUMNS = st.sampled_from(["recipient_id", "age", "region", "consent", "consent_email",
                           "consent_fax", "persona_id", "campaign_id", "outcome", "value",
                           "cost", "control", "start_week", "", " ", "a,b", '"q"'])
CELLS = st.one_of(
    st.text(max_size=8), st.integers(-5, 500).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "true", "false", "yes", "maybe", "n/a", "NA", "null", '"', "\n",
                     ";", "\t", "é", "r1", "mail", "-1", "1e400"]),
)

RECIPIENTS = [f"r{i},{20 + 3 * i},{('north', 'south', 'east')[i % 3]},{i % 2 == 0}"
              for i in range(12)]
VALID: dict[str, tuple[str, list[str]]] = {
    "recipients": ("recipient_id,age,region,consent", RECIPIENTS),
    "campaigns": ("campaign_id,value,cost,control,channel",
                  ["mail,10,0.1,false,email", "sms,12,0.2,false,sms", "none,0,0,true,"]),
    "ab_results": ("recipient_id,campaign_id,outcome",
                   [f"r{i},{('mail', 'none')[i % 2]},{i % 3 == 0:d}" for i in range(12)]),
    "events": ("name,start_week,end_week,propensity_shift,channels",
               ["sale,1,2,0.3,email", "lull,3,3,-0.2,"]),
}
"""Per data file: a valid header and rows, which the fuzz then damages."""


@st.composite
def tables(draw: st.DrawFn, kind: str) -> list[list[str]]:
    """A header and rows: a valid ``kind`` table with a few cells gone wrong, or random
    columns and cells."""
    if draw(st.booleans()):
        columns = draw(st.lists(COLUMNS, min_size=1, max_size=5))
        return [columns, *draw(st.lists(st.lists(CELLS, min_size=len(columns),
                                                 max_size=len(columns) + 1), max_size=8))]
    header, rows = VALID[kind]
    table = [line.split(",") for line in [header, *rows]]
    for _ in range(draw(st.integers(0, 2))):
        row = draw(st.sampled_from(table))
        row[draw(st.integers(0, len(row) - 1))] = draw(CELLS)
    return table


def _parquet(table: list[list[str]], numbers: bool) -> bytes:
    import io

    import pandas as pd

    header, *rows = table
    if len(set(header)) < len(header):
        return b"PAR1"  # Parquet needs distinct column names
    frame = pd.DataFrame([r[:len(header)] + [""] * (len(header) - len(r)) for r in rows],
                         columns=header)
    for column in header if numbers else []:  # a column of numbers stored as numbers
        parsed = pd.to_numeric(frame[column], errors="coerce")
        if parsed.notna().all():
            frame[column] = parsed
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


@st.composite
def data_files(draw: st.DrawFn, kind: str, suffix: str) -> bytes:
    """A file: random bytes, or a table with a random delimiter, quoting, line ends and
    encoding (as CSV), or written as Parquet."""
    if draw(st.integers(0, 5)) == 0:
        return draw(st.binary(max_size=300))
    table = draw(tables(kind))
    if suffix == ".parquet":
        return _parquet(table, draw(st.booleans()))
    sep = draw(st.sampled_from([",", ",", ",", ";", "\t", "|"]))
    quote = draw(st.booleans())

    def line(cells: list[str]) -> str:
        return sep.join(f'"{c}"' if quote else c for c in cells)

    text = draw(st.sampled_from(["\n", "\r\n"])).join(line(r) for r in table)
    encoding = draw(st.sampled_from(("utf-8", "utf-8", *ENCODINGS)))
    return text.encode(encoding, errors="replace")


@FUZZ
@given(data=st.data(), kind=st.sampled_from(sorted(VALID)),
       suffix=st.sampled_from([".csv", ".csv", ".parquet"]))
def test_data_files(data: st.DataObject, kind: str, suffix: str) -> None:
    content = data.draw(data_files(kind, suffix))
    with tempfile.TemporaryDirectory() as folder:
        files = {name: "\n".join([header, *rows]) + "\n"
                 for name, (header, rows) in VALID.items()}
        for name, text in files.items():
            (Path(folder) / f"{name}.csv").write_text(text)
        (Path(folder) / f"{kind}{suffix}").write_bytes(content)
        named = {name: f"{name}{suffix if name == kind else '.csv'}" for name in VALID}
        config = write_yaml(Path(folder) / "fuzz.yaml", {
            "name": "fuzz", "seed": 1,
            "data": {"recipients": named["recipients"], "campaigns": named["campaigns"],
                     "ab_results": named["ab_results"]},
            "dynamics": {"events_file": named["events"]}})
        _validate(config)
