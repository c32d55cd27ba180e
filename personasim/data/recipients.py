"""The recipients file: recipient_id, attributes and optional consent columns."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.config.campaign import Campaign
from personasim.core.errors import DataError
from personasim.core.types import CONSENT, RECIPIENT_ID, is_consent_column
from personasim.data.tables import (
    column_name,
    id_column,
    parse_bool,
    quoted,
    read_table,
    require_columns,
    row_name,
)

logger = logging.getLogger(__name__)


MAX_LEVELS = 50
"""Default most distinct strings an attribute column may hold (``data.max_levels``)."""


def load_recipients(path: Path | str, max_levels: int | None = MAX_LEVELS) -> pd.DataFrame:
    """Load a recipients file: ``recipient_id`` + attribute columns (+ optional ``consent``).

    Rows in error messages are 1-based data rows, header excluded. ``max_levels=None``
    skips the checks that need a whole audience (constant columns, too many levels), for
    files scored with a finished run, which may hold a single recipient.

    Returns
    -------
    pandas.DataFrame
        ``recipient_id`` (str) first, then ``consent`` (bool; all True when the file has no
        such column), then the attribute columns in file order.

    Raises
    ------
    DataError
        Missing ``recipient_id`` column, blank or duplicate ids, an unparseable consent
        value, a missing attribute value, or an attribute that cannot describe recipients
        (see :func:`check_attribute`).
    """
    source = str(path)
    df = read_table(Path(path), str_columns=(RECIPIENT_ID,))
    require_columns(df, (RECIPIENT_ID,), source)
    df[RECIPIENT_ID] = id_column(df, RECIPIENT_ID, source, unique=True)
    if CONSENT in df.columns:
        df[CONSENT] = parse_bool(df[CONSENT], source, CONSENT)
    else:
        df[CONSENT] = True
    channel_consent = [c for c in df.columns if is_consent_column(c) and c != CONSENT]
    for column in channel_consent:
        df[column] = parse_bool(df[column], source, column)
    attributes = [c for c in df.columns if c not in (RECIPIENT_ID, CONSENT, *channel_consent)]
    if attributes:
        missing = df[attributes].isna().to_numpy()
        if missing.any():
            i, j = (int(v) for v in np.argwhere(missing)[0])
            raise DataError(source, f"{row_name(i)}, {column_name(attributes[j])}", "missing value")
        for column in attributes:
            df[column] = _numbers_read_as_text(df[column])
            check_attribute(df[column], source, column, max_levels)
    logger.info("loaded %d recipients with %d attributes from %s", len(df), len(attributes), path)
    return df[[RECIPIENT_ID, CONSENT, *channel_consent, *attributes]]


def check_channel_consent(recipients: pd.DataFrame, campaigns: Sequence[Campaign],
                          source: str) -> None:
    """Refuse a ``consent_<channel>`` column for a channel that no campaign uses.

    Raises
    ------
    DataError
        Naming the column and the channels the campaigns use.
    """
    channels = sorted({c.channel for c in campaigns if not c.control})
    for column in recipients.columns:
        if is_consent_column(column) and column != CONSENT:
            channel = column.removeprefix(CONSENT + "_")
            if channel not in channels:
                raise DataError(source, column_name(column),
                                f"consent for channel {channel!r}, which no campaign uses "
                                f"(channels: {', '.join(channels)})")




def _numbers_read_as_text(values: pd.Series) -> pd.Series:
    """A text column of numbers (e.g. from Parquet) as numbers, as a CSV reader gives it.

    Any other column is returned unchanged.
    """
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    numbers = pd.to_numeric(values.astype(str).str.strip(), errors="coerce")
    return numbers if numbers.notna().all() else values


def check_attribute(values: pd.Series, source: str, column: str,
                    max_levels: int | None) -> None:
    """Refuse an attribute column that cannot describe recipients.

    Raises
    ------
    DataError
        The column holds numbers stored as text with stray values (``"-"``, ``"?"``), naming
        the first stray row; or (unless ``max_levels`` is ``None``) it is constant, or holds
        more than ``max_levels`` distinct strings (likely an id).
    """
    distinct = values.nunique(dropna=False)
    if max_levels is not None and distinct <= 1:
        raise DataError(source, column_name(column), f"the column is constant (every row is "
                        f"{quoted(values.iloc[0])}): it cannot tell recipients apart; drop it")
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return
    text = values.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    parsed = numbers.notna().to_numpy()
    if 0.5 <= parsed.mean() < 1.0:
        i = int(np.flatnonzero(~parsed)[0])
        raise DataError(source, f"{row_name(i)}, {column_name(column)}",
                        f"expected a number like the column's other rows, got "
                        f"{quoted(values.iloc[i])}")
    if max_levels is not None and distinct > max_levels:
        raise DataError(source, column_name(column),
                        f"{distinct:,} distinct values, more than data.max_levels={max_levels}: "
                        "an id is not an attribute; drop the column or raise data.max_levels")
