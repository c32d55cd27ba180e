"""Reading data-mode tables (CSV or Parquet) and parsing their columns.

The helpers here raise the one-line DataErrors of :mod:`personasim.data`; :func:`row_name`
numbers rows as that convention says.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from personasim.core.errors import DataError
from personasim.core.suggest import did_you_mean

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".parquet")
TRUTHY = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def row_name(i: int) -> str:
    """Name the 0-based data row ``i`` as the 1-based row a person would count."""
    return f"row {i + 1}"


def column_name(name: str) -> str:
    """Name a column as error messages do."""
    return f"column {name!r}"


def quoted(value: Any) -> str:
    """Quote a cell's value as the user wrote it (no NumPy scalar reprs)."""
    return repr(str(value.item() if isinstance(value, np.generic) else value))


def read_table(path: Path | str, str_columns: Collection[str] = ()) -> pd.DataFrame:
    """Read a ``.csv`` or ``.parquet`` file into a frame with a 0-based RangeIndex.

    Parameters
    ----------
    path
        The file; its suffix picks the reader.
    str_columns
        Columns to keep as text (so ids like ``007`` survive); missing cells stay NaN.

    Returns
    -------
    pandas.DataFrame
        The table, column names stripped of surrounding whitespace.

    Raises
    ------
    DataError
        If the file is missing, has another suffix, is empty, is not UTF-8 or cannot be
        parsed.
    """
    path = Path(path)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            source, None, f"unsupported file type {path.suffix!r}; use .csv or .parquet"
        )
    if not path.is_file():
        raise DataError(source, None, "file not found")
    if path.stat().st_size == 0:
        raise DataError(source, None, "file is empty")
    try:
        if suffix == ".csv":
            # only a blank cell is missing: "n/a", "NA" or "null" stay text, so a stray one in
            # a numeric column is named as it was written (and "NA" can be a region)
            df = pd.read_csv(path, dtype={c: str for c in str_columns}, skipinitialspace=True,
                             keep_default_na=False, na_values=[""])
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(source, None, "file is empty") from None
    except UnicodeDecodeError:
        raise DataError(source, *_not_utf8(path)) from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        # pyarrow's ArrowInvalid is a ValueError; ParserError covers malformed CSV.
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise DataError(source, None, f"could not read as {kind}: {exc}") from None
    if df.empty:
        raise DataError(source, None, "file is empty")
    if suffix == ".csv" and df.shape[1] == 1:
        header = str(df.columns[0])
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "bar")):
            if sep in header:
                raise DataError(source, None, f"the header {header[:60]!r} is one column with "
                                f"{name}s in it: the file looks {name}-separated; save it "
                                "with commas")
    df.columns = [str(c).strip() for c in df.columns]
    df = df.reset_index(drop=True)
    for c in str_columns:
        if c in df.columns:
            df[c] = df[c].astype(str).str.strip()
    return df


def _not_utf8(path: Path) -> tuple[str | None, str]:
    """Where a file stops being UTF-8: ``(line N, message)`` for a :class:`DataError`."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (f"line {line}", f"not UTF-8 text (byte {data[exc.start]:#04x}); save the file "
                "as UTF-8")
    return None, "not UTF-8 text; save the file as UTF-8"


def require_columns(df: pd.DataFrame, columns: Collection[str], source: str) -> None:
    """Fail with a one-line DataError naming the first missing column."""
    for c in columns:
        if c not in df.columns:
            raise DataError(
                source, column_name(c),
                f"required column is missing{did_you_mean(c, list(df.columns))}",
            )


def require_known(
    df: pd.DataFrame,
    column: str,
    known: Collection[str],
    source: str,
    what: str,
    hint: str | None = None,
) -> None:
    """Fail with a one-line DataError at the first row whose ``column`` is not in ``known``.

    The message reads ``unknown <what> '<id>'`` followed by ``hint``, or by a suggestion
    from ``known`` when ``hint`` is ``None``.
    """
    unknown = (~df[column].isin(known)).to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        name = df[column].iloc[i]
        after = did_you_mean(name, known) if hint is None else hint
        raise DataError(source, f"{row_name(i)}, {column_name(column)}",
                        f"unknown {what} {name!r}{after}")


def id_column(df: pd.DataFrame, column: str, source: str, unique: bool) -> pd.Series:
    """Return ``df[column]`` as str, rejecting blanks (and duplicates when ``unique``)."""
    ids = df[column]
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(source, f"{row_name(i)}, {column_name(column)}", "missing id")
    ids = ids.astype(str).str.strip()
    if unique:
        dup = ids.duplicated(keep="first").to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            first = int(np.flatnonzero((ids == ids.iloc[i]).to_numpy())[0])
            raise DataError(
                source,
                row_name(i),
                f"duplicate {column} {ids.iloc[i]!r} (first seen in {row_name(first)})",
            )
    return ids


def parse_flags(
    values: pd.Series,
    mapping: Mapping[str, Any],
    source: str,
    column: str,
    expected: str,
    default: Any = None,
) -> pd.Series:
    """Map each cell's lower-cased text through ``mapping``; blanks take ``default``."""
    text = values.astype(str).str.strip().str.lower()
    text = text.str.replace(r"^([01])\.0+$", r"\1", regex=True)  # 1.0 / 0.0 from numeric columns
    parsed = text.map(mapping)
    blank = values.isna() | (text == "")
    if default is not None:
        parsed = parsed.where(~blank, default)
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        got = "a missing value" if blank.iloc[i] else quoted(values.iloc[i])
        raise DataError(source, f"{row_name(i)}, {column_name(column)}",
                        f"expected {expected}, got {got}")
    return parsed


def parse_bool(
    values: pd.Series, source: str, column: str, default: bool | None = None
) -> pd.Series:
    """Parse true/false/1/0/yes/no (any case) into a bool Series."""
    parsed = parse_flags(values, TRUTHY, source, column, "true/false, 1/0 or yes/no", default)
    return parsed.astype(bool)


def parse_numbers(
    values: pd.Series, source: str, column: str, allow_missing: bool = False
) -> pd.Series:
    """Convert a column to float64, naming the first non-numeric (or missing) row."""
    numbers = pd.to_numeric(values, errors="coerce").astype(np.float64)
    blank = values.isna().to_numpy()
    bad = numbers.isna().to_numpy() & ~(blank & allow_missing)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        got = "a missing value" if blank[i] else quoted(values.iloc[i])
        raise DataError(source, f"{row_name(i)}, {column_name(column)}",
                        f"expected a number, got {got}")
    return numbers


