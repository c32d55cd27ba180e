"""Every CSV file the project writes goes through :func:`write_csv`.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or a
carriage return) as a formula, so a recipient id such as ``=HYPERLINK("http://x","y")`` in a
table a campaign team opens would execute. Following OWASP's advice on CSV injection, every
*text* cell that starts with one of those characters is written with a single quote in front
(``'=HYPERLINK(...)``); numbers, negative ones included, are written as they are, and
Parquet files keep the raw values. The same frame always gives the same bytes: no index,
Unix line endings, UTF-8.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""


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


def write_csv(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write ``frame`` to ``path`` as CSV, safe to open in a spreadsheet; return the path."""
    neutralize(frame).to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
    return Path(path)
