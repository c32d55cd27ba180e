"""Writing and reading output tables in the registered formats (CSV and Parquet).

Exporters are looked up by name in :data:`EXPORTERS`, so ``output.formats`` in the config
picks them (``personasim validate`` checks the names); an unknown name lists the known ones.
Readers are looked up by file suffix in :data:`READERS`. CSV is written with Unix line
endings and no index, so the same frame always gives the same bytes.

Tables too large to hold as one frame are written a chunk at a time by :func:`stream_table`
(CSV appended chunk by chunk, Parquet one row group per chunk); a CSV file written that way
has the same bytes as :func:`write_csv` of the whole frame.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from personasim.core import csv_files
from personasim.core.registry import Registry

logger = logging.getLogger(__name__)

Exporter = Callable[[pd.DataFrame, Path], Path]
"""``(df, path) -> written path``: write ``df`` to ``path`` (no suffix) + the format's suffix."""

Reader = Callable[[Path], pd.DataFrame]

#: Table writers by format name: ``(df, path_without_suffix) -> written path``.
EXPORTERS: Registry[Exporter] = Registry("exporter")

#: Table readers by lower-case file suffix without the dot (``csv``, ``parquet``, ``pq``).
READERS: Registry[Reader] = Registry("table reader")


def _with_suffix(path: Path, suffix: str) -> Path:
    """Append ``suffix`` to ``path`` (keeping dots already in the stem)."""
    return path.with_name(path.name + suffix)


def _write(path: Path, suffix: str, write: Callable[[Path], object]) -> Path:
    """Call ``write(target)`` for ``target = <path><suffix>`` and return ``target``."""
    target = _with_suffix(Path(path), suffix)
    write(target)
    return target


@EXPORTERS.register("csv")
def write_csv(df: pd.DataFrame, path: Path) -> Path:
    """Write ``<path>.csv``, safe to open in a spreadsheet (an :data:`Exporter`).

    See :func:`personasim.core.csv_files.write_csv`: no index, Unix line endings, and text
    cells that could start a formula prefixed with a quote.
    """
    return _write(path, ".csv", partial(csv_files.write_csv, df))


@EXPORTERS.register("parquet")
def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Write ``<path>.parquet`` with pyarrow, without the index (an :data:`Exporter`)."""
    return _write(path, ".parquet", partial(df.to_parquet, engine="pyarrow", index=False))


def _plain(table: pa.Table) -> pa.Table:
    """``table`` with dictionary-encoded columns decoded (Parquet keeps plain strings)."""
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c
               for c in table.columns]
    return pa.table(columns, names=table.column_names)


def stream_table(
    chunks: Iterable[pa.Table], fmt: str, path: Path, empty: pd.DataFrame
) -> tuple[Path, int]:
    """Write ``<path>.<fmt>`` from consecutive chunks of one table, without joining them.

    Parameters
    ----------
    chunks
        The table's rows in order, as pyarrow tables with the same columns (any of them
        may be dictionary-encoded; files hold the decoded values).
    fmt
        ``"csv"`` or ``"parquet"``.
    path
        Output path without the suffix.
    empty
        The zero-row frame to write when there are no chunks (gives the schema).

    Returns
    -------
    tuple
        The written path and its number of rows.

    Raises
    ------
    personasim.core.registry.UnknownNameError
        If ``fmt`` is not registered.
    """
    writer = EXPORTERS.get(fmt)
    target = _with_suffix(Path(path), "." + fmt)
    rows = 0
    if fmt == "csv":
        with csv_files.CsvStream(target) as stream:
            for chunk in chunks:
                stream.write(chunk)
            rows = stream.rows
    elif fmt == "parquet":
        parquet: pq.ParquetWriter | None = None
        try:
            for chunk in chunks:
                plain = _plain(chunk)
                if parquet is None:
                    # dictionary pages where the chunk repeats values (its dictionary
                    # columns); elsewhere they cost time and save nothing
                    repeated = [c for c, kind in zip(chunk.column_names, chunk.schema.types,
                                                     strict=True)
                                if pa.types.is_dictionary(kind)]
                    parquet = pq.ParquetWriter(target, plain.schema, use_dictionary=repeated)
                parquet.write_table(plain)
                rows += plain.num_rows
        finally:
            if parquet is not None:
                parquet.close()
    else:  # a plug-in format: join the chunks
        frames = [_plain(chunk).to_pandas() for chunk in chunks]
        frame = pd.concat(frames, ignore_index=True) if frames else empty
        return writer(frame, Path(path)), len(frame)
    if rows == 0:
        return writer(empty, Path(path)), 0
    logger.info("wrote %s (%d rows)", target, rows)
    return target, rows


def export_table(
    df: pd.DataFrame, directory: str | Path, stem: str, formats: Iterable[str]
) -> list[Path]:
    """Write ``df`` as ``<directory>/<stem>.<format>`` for each format.

    Parameters
    ----------
    df
        The table.
    directory
        Output folder (created if missing).
    stem
        File name without suffix.
    formats
        Registered exporter names, e.g. ``["csv", "parquet"]``; duplicates are written once.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order of ``formats``.

    Raises
    ------
    personasim.core.registry.UnknownNameError
        If a format is not registered (before anything is written).
    """
    names = list(dict.fromkeys(formats))
    writers = [EXPORTERS.get(name) for name in names]
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = [writer(df, folder / stem) for writer in writers]
    for path in written:
        logger.info("wrote %s (%d rows)", path, len(df))
    return written


def read_table_any(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`export_table`, choosing the reader by suffix.

    Parameters
    ----------
    path
        A ``.csv`` or ``.parquet`` file.

    Returns
    -------
    pandas.DataFrame
        The table; in CSV files, ``id`` and ``*_id`` columns are read as strings.

    Raises
    ------
    ValueError
        If no reader is registered for the suffix (the message lists the known ones).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix[1:] not in READERS:
        known = ", ".join("." + name for name in READERS.names())
        raise ValueError(f"{path}: unknown table format {suffix or '(no suffix)'!r}; "
                         f"known: {known}")
    return READERS.get(suffix[1:])(path)


@READERS.register("csv")
def read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV table; ``id`` and ``*_id`` columns are read as strings."""
    header = pd.read_csv(path, nrows=0).columns
    ids = {c: str for c in header if c == "id" or str(c).endswith("_id")}
    return pd.read_csv(path, dtype=ids, keep_default_na=True)


@READERS.register("parquet")
@READERS.register("pq")
def read_parquet(path: Path) -> pd.DataFrame:
    """Read a Parquet table with pyarrow."""
    return pd.read_parquet(path, engine="pyarrow")
