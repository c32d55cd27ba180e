"""A/B results, per recipient or aggregated into counts per segment and campaign."""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.core.errors import DataError
from personasim.core.types import (
    CAMPAIGN_ID,
    OUTCOME,
    PERSONA_ID,
    RECIPIENT_ID,
    ABCounts,
    ABResults,
)
from personasim.data.tables import (
    column_name,
    id_column,
    parse_flags,
    parse_numbers,
    read_table,
    require_columns,
    require_known,
    row_name,
)

logger = logging.getLogger(__name__)

OUTCOMES = {"true": 1, "false": 0, "1": 1, "0": 0}

def load_ab_results(
    path: Path | str, campaign_ids: set[str], recipient_ids: set[str] | None = None
) -> pd.DataFrame:
    """Load per-recipient A/B results: ``recipient_id, campaign_id, outcome``.

    ``outcome`` must be 0/1 (true/false accepted). Optional ``value`` (float; blank = 0)
    and ``propensity`` (the assignment probability, in (0, 1]). Other columns are kept.
    Rows in error messages are 1-based data rows, header excluded.

    Parameters
    ----------
    path
        The results file.
    campaign_ids
        Known campaign ids; any other id is an error.
    recipient_ids
        Known recipient ids, or ``None`` to accept any.

    Returns
    -------
    pandas.DataFrame
        Ids as str, ``outcome`` as int8, ``value``/``propensity`` as float64 when present.

    Raises
    ------
    DataError
        Missing column, bad outcome, unknown campaign or recipient, bad value/propensity.
    """
    source = str(path)
    df = read_table(Path(path), str_columns=(RECIPIENT_ID, CAMPAIGN_ID))
    require_columns(df, (RECIPIENT_ID, CAMPAIGN_ID, OUTCOME), source)
    df[RECIPIENT_ID] = id_column(df, RECIPIENT_ID, source, unique=False)
    df[CAMPAIGN_ID] = id_column(df, CAMPAIGN_ID, source, unique=False)
    df[OUTCOME] = parse_flags(df[OUTCOME], OUTCOMES, source, OUTCOME, "0/1 or true/false")
    df[OUTCOME] = df[OUTCOME].astype(np.int8)
    require_known(df, CAMPAIGN_ID, campaign_ids, source, "campaign")
    if recipient_ids is not None:
        require_known(df, RECIPIENT_ID, recipient_ids, source, "recipient",
                      hint=" (not in the recipients file)")
    if "value" in df.columns:
        df["value"] = parse_numbers(df["value"], source, "value", allow_missing=True).fillna(0.0)
    if "propensity" in df.columns:
        prop = parse_numbers(df["propensity"], source, "propensity")
        bad = ((prop <= 0) | (prop > 1)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                source,
                f"{row_name(i)}, {column_name('propensity')}",
                f"must be in (0, 1], got {prop.iloc[i]:g}",
            )
        df["propensity"] = prop
    logger.info("loaded %d A/B outcomes from %s", len(df), path)
    return df


SEGMENT = "segment"
COUNT_COLUMNS = (SEGMENT, CAMPAIGN_ID, "exposures", "responses")


def load_ab_counts(
    path: Path | str, segment_ids: Collection[str], campaign_ids: Collection[str]
) -> pd.DataFrame:
    """Load aggregated A/B results: ``segment, campaign_id, exposures, responses``.

    A segment is a persona id. Rows for the same segment and campaign are summed (several
    waves may be listed). Rows in error messages are 1-based data rows, header excluded.

    Returns
    -------
    pandas.DataFrame
        ``segment, campaign_id`` (str) and ``exposures, responses`` (int64), one row per
        segment x campaign present, sorted.

    Raises
    ------
    DataError
        Missing column, unknown segment or campaign, a non-integer or negative count, or
        responses greater than exposures.
    """
    source = str(path)
    df = read_table(Path(path), str_columns=(SEGMENT, CAMPAIGN_ID))
    require_columns(df, COUNT_COLUMNS, source)
    for column, known, what in ((SEGMENT, segment_ids, "segment (persona)"),
                                (CAMPAIGN_ID, campaign_ids, "campaign")):
        df[column] = id_column(df, column, source, unique=False)
        require_known(df, column, known, source, what)
    for column in ("exposures", "responses"):
        numbers = parse_numbers(df[column], source, column)
        bad = ((numbers < 0) | (numbers != np.round(numbers))).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            kind = "negative count" if numbers.iloc[i] < 0 else "count must be a whole number"
            raise DataError(source, f"{row_name(i)}, {column_name(column)}",
                            f"{kind}, got {numbers.iloc[i]:g}")
        df[column] = numbers.astype(np.int64)
    over = (df["responses"] > df["exposures"]).to_numpy()
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise DataError(source, f"{row_name(i)}, {column_name('responses')}",
                        f"responses ({df['responses'].iloc[i]}) exceed exposures "
                        f"({df['exposures'].iloc[i]})")
    out = df.groupby([SEGMENT, CAMPAIGN_ID], sort=True, as_index=False)[
        ["exposures", "responses"]].sum()
    logger.info("loaded %d aggregated A/B cells (%d exposures) from %s", len(out),
                int(out["exposures"].sum()), path)
    return out


def counts_to_ab(frame: pd.DataFrame, persona_ids: tuple[str, ...],
                 campaign_ids: tuple[str, ...], source: str) -> ABResults:
    """A/B results from :func:`load_ab_counts`' table (segments are persona ids)."""
    rows = frame[SEGMENT].map({p: j for j, p in enumerate(persona_ids)}).to_numpy(np.int64)
    cols = frame[CAMPAIGN_ID].map({c: k for k, c in enumerate(campaign_ids)}).to_numpy(np.int64)
    counts = ABCounts.from_cells(tuple(persona_ids), tuple(campaign_ids), (rows, cols),
                                 frame["exposures"].to_numpy(np.int64),
                                 frame["responses"].to_numpy(np.int64))
    table = frame.rename(columns={SEGMENT: PERSONA_ID})
    return ABResults(table=table, counts=counts, source=source)


