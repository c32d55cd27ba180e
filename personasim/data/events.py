"""The events file: weeks in which behaviour shifts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from personasim.config.sections import EventConfig
from personasim.core.errors import DataError
from personasim.core.suggest import did_you_mean
from personasim.data.tables import (
    column_name,
    quoted,
    read_table,
    require_columns,
    row_name,
)

logger = logging.getLogger(__name__)

_EVENT_LISTS = ("personas", "channels")

def _plain(value: Any) -> Any:
    """Turn NumPy scalars into Python ones so pydantic validates them as usual."""
    return value.item() if isinstance(value, np.generic) else value


def load_events(path: Path | str) -> list[EventConfig]:
    """Load an events calendar whose columns are :class:`EventConfig` field names.

    ``personas`` and ``channels`` are ``;``-separated lists; a blank cell takes the field's
    default. Rows in error messages are 1-based data rows, header excluded.

    Raises
    ------
    DataError
        An unknown or missing column, or a row that does not validate (naming the field).
    """
    source = str(path)
    df = read_table(Path(path), str_columns=("name", *_EVENT_LISTS))
    known = list(EventConfig.model_fields)
    for c in df.columns:
        if c not in known:
            raise DataError(source, column_name(c), f"unknown column{did_you_mean(c, known)}")
    require_columns(df, ("name", "start_week", "end_week"), source)
    events: list[EventConfig] = []
    for i, record in enumerate(df.to_dict(orient="records")):
        fields: dict[str, Any] = {}
        for key, value in record.items():
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                continue
            if key in _EVENT_LISTS:
                items = [s.strip() for s in str(value).split(";") if s.strip()]
                fields[key] = items or None
            else:
                fields[key] = _plain(value)
        try:
            events.append(EventConfig.model_validate(fields))
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "end_week"
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "required value is missing"
            elif err["loc"] and isinstance(err.get("input"), str | int | float):
                msg = f"{msg}, got {quoted(err['input'])}"
            raise DataError(source, f"{row_name(i)}, {column_name(field)}", msg) from None
    logger.info("loaded %d events from %s", len(events), path)
    return events
