"""Every CSV file the project writes goes through :func:`write_csv` (or :class:`CsvStream`).

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or a
carriage return) as a formula, so a recipient id such as ``=HYPERLINK("http://x","y")`` in a
table a campaign team opens would execute. Following OWASP's advice on CSV injection, every
*text* cell that starts with one of those characters is written with a single quote in front
(``'=HYPERLINK(...)``); numbers, negative ones included, are written as they are, and
Parquet files keep the raw values. The same frame always gives the same bytes: no index,
Unix line endings, UTF-8.

The bytes are pandas' ``to_csv`` bytes. Large tables whose columns are all text, integers,
booleans or floats already rounded to 6 decimals are encoded with NumPy instead (about ten
times faster, the same bytes, see :func:`encode_table`); anything else goes through pandas.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from personasim.core.csv_encoder import encode_table, keep_buffers

logger = logging.getLogger(__name__)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""

FAST_MIN_ROWS = 10_000
"""Frames with fewer rows are always written by pandas (the encoder is not worth it)."""

_RISKY = "^[" + "".join("\\" + c if c in "-\\^]" else c for c in FORMULA_STARTS) + "]"


def neutralize(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell that could start a formula prefixed by a quote.

    Returns ``frame`` itself when no cell needs it (nothing is copied).
    """
    out = frame
    for column in frame.columns:
        values = frame[column]
        if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
            continue
        risky = values.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)
        if risky.any():
            if out is frame:
                out = frame.copy()
            out[column] = values.where(~risky, "'" + values.astype(str))
    return out


def _neutralize_strings(values: pa.Array) -> pa.Array:
    """A string array with the cells that could start a formula prefixed by a quote."""
    risky = pc.fill_null(pc.match_substring_regex(values, _RISKY), False)
    if not pc.any(risky).as_py():
        return values
    quote, nothing = pa.scalar("'", type=values.type), pa.scalar("", type=values.type)
    return pc.if_else(risky, pc.binary_join_element_wise(quote, values, nothing), values)


def neutralize_table(table: pa.Table) -> pa.Table:
    """:func:`neutralize` for a pyarrow table (text and dictionary-encoded text columns)."""
    columns = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type):
            chunks = [pa.DictionaryArray.from_arrays(c.indices, _neutralize_strings(c.dictionary))
                      for c in column.chunks]
            column = pa.chunked_array(chunks, type=kind)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            column = pa.chunked_array([_neutralize_strings(c) for c in column.chunks], type=kind)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _pandas_csv(frame: pd.DataFrame, header: bool) -> bytes:
    """Pandas' CSV bytes of an already neutralized frame."""
    text = frame.to_csv(index=False, header=header, lineterminator="\n", encoding="utf-8")
    return text.encode("utf-8")


def table_csv(table: pa.Table, header: bool) -> bytes | np.ndarray:
    """The CSV bytes of an already neutralized pyarrow table, as pandas writes them.

    Parameters
    ----------
    table
        The rows; text columns may be dictionary-encoded.
    header
        Start with the column names.

    Returns
    -------
    bytes or numpy.ndarray
        The bytes (a ``uint8`` array when encoded here: any buffer a file can write).
    """
    encoded = encode_table(table, header)
    if encoded is not None:
        return encoded
    plain = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c
             for c in table.columns]
    return _pandas_csv(pa.table(plain, names=table.column_names).to_pandas(), header)


def _encodable(frame: pd.DataFrame) -> bool:
    """Whether every column is text, integer, boolean or float64 as far as pandas knows.

    (An object column mixing ints and floats would become floats in pyarrow.)
    """
    for _, values in frame.items():
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            if pd.api.types.infer_dtype(dtype.categories, skipna=False) != "string":
                return False
        elif pd.api.types.is_object_dtype(dtype):
            if pd.api.types.infer_dtype(values, skipna=False) != "string":
                return False
        elif not (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
                  or pd.api.types.is_integer_dtype(dtype) or dtype == np.float64):
            return False
    return True


def frame_csv(frame: pd.DataFrame, header: bool = True) -> bytes | np.ndarray:
    """The bytes :func:`write_csv` writes for ``frame`` (neutralized here)."""
    frame = neutralize(frame)
    if len(frame) >= FAST_MIN_ROWS and frame.columns.is_unique and _encodable(frame):
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError):
            table = None
        if table is not None and table.column_names == [str(c) for c in frame.columns]:
            encoded = encode_table(table, header)
            if encoded is not None:
                return encoded
    return _pandas_csv(frame, header)


def write_csv(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` to ``path`` as CSV, safe to open in a spreadsheet; return the path."""
    with Path(path).open("wb") as handle:
        handle.write(frame_csv(frame))
    return Path(path)


class CsvStream:
    """Write a CSV file a chunk of rows at a time, safe to open in a spreadsheet.

    The file's bytes are those :func:`write_csv` writes for all the chunks concatenated.
    Chunks are encoded on ``workers`` threads and written in order.

    Parameters
    ----------
    path
        The file (created or truncated).
    workers
        Encoding threads.
    """

    def __init__(self, path: Path | str, workers: int = 2) -> None:
        self.path = Path(path)
        self.rows = 0
        self._handle: BinaryIO = self.path.open("wb")
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers),
                                        thread_name_prefix="personasim-csv",
                                        initializer=keep_buffers)
        self._pending: deque[Future[bytes | np.ndarray]] = deque()
        self._workers = max(1, workers)
        self._header = True

    def write(self, chunk: pa.Table | pd.DataFrame) -> None:
        """Append ``chunk``'s rows (the first chunk also writes the header)."""
        header, self._header = self._header, False
        self.rows += len(chunk)
        if isinstance(chunk, pd.DataFrame):
            future = self._pool.submit(frame_csv, chunk, header)
        else:
            future = self._pool.submit(lambda: table_csv(neutralize_table(chunk), header))
        self._pending.append(future)
        while len(self._pending) > self._workers:
            self._handle.write(self._pending.popleft().result())

    def close(self) -> None:
        """Write what is pending and close the file."""
        try:
            while self._pending:
                self._handle.write(self._pending.popleft().result())
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._handle.close()

    def __enter__(self) -> CsvStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is not None:
            self._pending.clear()
        self.close()
