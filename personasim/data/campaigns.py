"""The campaigns file: campaign_id, value, cost, optional control, channel and features."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from personasim.config.campaign import Campaign
from personasim.core.errors import DataError
from personasim.core.types import (
    CAMPAIGN_ID,
)
from personasim.data.tables import (
    column_name,
    id_column,
    parse_bool,
    parse_numbers,
    read_table,
    require_columns,
    row_name,
)

logger = logging.getLogger(__name__)

_CAMPAIGN_FIXED = (CAMPAIGN_ID, "value", "cost", "control", "channel", "offer", "copy")

def _text(value: Any, default: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return default
    text = str(value).strip()
    return text or default


def load_campaigns(path: Path | str) -> list[Campaign]:
    """Load a campaigns file into :class:`~personasim.config.campaign.Campaign` models.

    Columns ``campaign_id, value, cost`` are required; ``control`` (true/false/1/0/yes/no,
    blank = false), ``channel`` (blank = ``email``), ``offer`` and ``copy`` are optional.
    Every other column becomes a feature: numeric columns as float, others as str (a blank
    cell leaves that feature out). Rows in error messages are 1-based data rows, header
    excluded.

    Raises
    ------
    DataError
        Missing required column, blank or duplicate id, non-numeric or negative value/cost,
        an unparseable control flag, or more than one control campaign.
    """
    source = str(path)
    df = read_table(Path(path), str_columns=(CAMPAIGN_ID, "channel", "offer", "copy"))
    require_columns(df, (CAMPAIGN_ID, "value", "cost"), source)
    ids = id_column(df, CAMPAIGN_ID, source, unique=True)
    money = {c: parse_numbers(df[c], source, c) for c in ("value", "cost")}
    for c, numbers in money.items():
        negative = (numbers < 0).to_numpy()
        if negative.any():
            i = int(np.flatnonzero(negative)[0])
            raise DataError(
                source, f"{row_name(i)}, {column_name(c)}", f"must be >= 0, got {numbers.iloc[i]:g}"
            )
    control = (
        parse_bool(df["control"], source, "control", default=False)
        if "control" in df.columns
        else pd.Series(False, index=df.index)
    )
    controls = np.flatnonzero(control.to_numpy())
    if len(controls) > 1:
        a, b = (int(v) for v in controls[:2])
        raise DataError(
            source,
            row_name(b),
            f"more than one control campaign ({ids.iloc[a]!r} in {row_name(a)} and "
            f"{ids.iloc[b]!r} in {row_name(b)})",
        )
    feature_cols = [c for c in df.columns if c not in _CAMPAIGN_FIXED]
    numeric = {c: pd.api.types.is_numeric_dtype(df[c]) for c in feature_cols}
    campaigns: list[Campaign] = []
    for i in range(len(df)):
        features: dict[str, float | str] = {}
        for c in feature_cols:
            v = df[c].iloc[i]
            if pd.isna(v):
                continue
            features[c] = float(v) if numeric[c] else str(v).strip()
        try:
            campaigns.append(
                Campaign(
                    id=ids.iloc[i],
                    channel=_text(df["channel"].iloc[i] if "channel" in df else None, "email"),
                    offer=_text(df["offer"].iloc[i] if "offer" in df else None, ""),
                    copy=_text(df["copy"].iloc[i] if "copy" in df else None, ""),
                    value=float(money["value"].iloc[i]),
                    cost=float(money["cost"].iloc[i]),
                    control=bool(control.iloc[i]),
                    features=features,
                )
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise DataError(source, f"{row_name(i)}, {column_name(field)}", err["msg"]) from None
    logger.info("loaded %d campaigns from %s", len(campaigns), path)
    return campaigns


