"""The recipients file: recipient_id, attributes and optional consent columns."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.core.errors import DataError
from personasim.core.types import (
    CONSENT,
    RECIPIENT_ID,
)
from personasim.data.tables import (
    column_name,
    id_column,
    parse_bool,
    read_table,
    require_columns,
    row_name,
)

logger = logging.getLogger(__name__)


def load_recipients(path: Path | str) -> pd.DataFrame:
    """Load a recipients file: ``recipient_id`` + attribute columns (+ optional ``consent``).

    Rows in error messages are 1-based data rows, header excluded.

    Returns
    -------
    pandas.DataFrame
        ``recipient_id`` (str) first, then ``consent`` (bool; all True when the file has no
        such column), then the attribute columns in file order.

    Raises
    ------
    DataError
        Missing ``recipient_id`` column, blank or duplicate ids, an unparseable consent
        value, or a missing attribute value.
    """
    source = str(path)
    df = read_table(Path(path), str_columns=(RECIPIENT_ID,))
    require_columns(df, (RECIPIENT_ID,), source)
    df[RECIPIENT_ID] = id_column(df, RECIPIENT_ID, source, unique=True)
    if CONSENT in df.columns:
        df[CONSENT] = parse_bool(df[CONSENT], source, CONSENT)
    else:
        df[CONSENT] = True
    attributes = [c for c in df.columns if c not in (RECIPIENT_ID, CONSENT)]
    if attributes:
        missing = df[attributes].isna().to_numpy()
        if missing.any():
            i, j = (int(v) for v in np.argwhere(missing)[0])
            raise DataError(source, f"{row_name(i)}, {column_name(attributes[j])}", "missing value")
    logger.info("loaded %d recipients with %d attributes from %s", len(df), len(attributes), path)
    return df[[RECIPIENT_ID, CONSENT, *attributes]]


