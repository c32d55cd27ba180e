"""Load and validate data-mode files: recipients, campaigns, A/B results and events.

Every problem becomes a one-line :class:`~personasim.core.errors.DataError` naming the file and
the column or row at fault. Rows are numbered as a person counts data rows in the file: the
first row under the header is ``row 1`` (the header itself is not counted).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from personasim.config.campaign import Campaign
from personasim.config.schema import EventConfig
from personasim.core.errors import DataError
from personasim.core.suggest import did_you_mean
from personasim.core.types import (
    CAMPAIGN_ID,
    CONSENT,
    OUTCOME,
    PERSONA_ID,
    RECIPIENT_ID,
    ABCounts,
    ABResults,
)

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".parquet")
TRUTHY = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
OUTCOMES = {"true": 1, "false": 0, "1": 1, "0": 0}
_CAMPAIGN_FIXED = (CAMPAIGN_ID, "value", "cost", "control", "channel", "offer", "copy")
_EVENT_LISTS = ("personas", "channels")


def _row(i: int) -> str:
    """Name the 0-based data row ``i`` as the 1-based row a person would count."""
    return f"row {i + 1}"


def _col(name: str) -> str:
    return f"column {name!r}"


def _show(value: Any) -> str:
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
        If the file is missing, has another suffix, is empty or cannot be parsed.
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
            df = pd.read_csv(path, dtype={c: str for c in str_columns}, skipinitialspace=True)
        else:
            df = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DataError(source, None, "file is empty") from None
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        # pyarrow's ArrowInvalid is a ValueError; ParserError covers malformed CSV.
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise DataError(source, None, f"could not read as {kind}: {exc}") from None
    if df.empty:
        raise DataError(source, None, "file is empty")
    df.columns = [str(c).strip() for c in df.columns]
    df = df.reset_index(drop=True)
    for c in str_columns:
        if c in df.columns:
            df[c] = df[c].astype(str).str.strip()
    return df


def _require(df: pd.DataFrame, columns: Collection[str], source: str) -> None:
    for c in columns:
        if c not in df.columns:
            raise DataError(
                source, _col(c), f"required column is missing{did_you_mean(c, list(df.columns))}"
            )


def _ids(df: pd.DataFrame, column: str, source: str, unique: bool) -> pd.Series:
    """Return ``df[column]`` as str, rejecting blanks (and duplicates when ``unique``)."""
    ids = df[column]
    missing = ids.isna() | (ids.astype(str).str.strip() == "")
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(source, f"{_row(i)}, {_col(column)}", "missing id")
    ids = ids.astype(str).str.strip()
    if unique:
        dup = ids.duplicated(keep="first").to_numpy()
        if dup.any():
            i = int(np.flatnonzero(dup)[0])
            first = int(np.flatnonzero((ids == ids.iloc[i]).to_numpy())[0])
            raise DataError(
                source,
                _row(i),
                f"duplicate {column} {ids.iloc[i]!r} (first seen in {_row(first)})",
            )
    return ids


def _parse_flags(
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
        got = "a missing value" if blank.iloc[i] else _show(values.iloc[i])
        raise DataError(source, f"{_row(i)}, {_col(column)}", f"expected {expected}, got {got}")
    return parsed


def _parse_bool(
    values: pd.Series, source: str, column: str, default: bool | None = None
) -> pd.Series:
    """Parse true/false/1/0/yes/no (any case) into a bool Series."""
    parsed = _parse_flags(values, TRUTHY, source, column, "true/false, 1/0 or yes/no", default)
    return parsed.astype(bool)


def _parse_numbers(
    values: pd.Series, source: str, column: str, allow_missing: bool = False
) -> pd.Series:
    """Convert a column to float64, naming the first non-numeric (or missing) row."""
    numbers = pd.to_numeric(values, errors="coerce").astype(np.float64)
    blank = values.isna().to_numpy()
    bad = numbers.isna().to_numpy() & ~(blank & allow_missing)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        got = "a missing value" if blank[i] else _show(values.iloc[i])
        raise DataError(source, f"{_row(i)}, {_col(column)}", f"expected a number, got {got}")
    return numbers


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
    _require(df, (RECIPIENT_ID,), source)
    df[RECIPIENT_ID] = _ids(df, RECIPIENT_ID, source, unique=True)
    if CONSENT in df.columns:
        df[CONSENT] = _parse_bool(df[CONSENT], source, CONSENT)
    else:
        df[CONSENT] = True
    attributes = [c for c in df.columns if c not in (RECIPIENT_ID, CONSENT)]
    if attributes:
        missing = df[attributes].isna().to_numpy()
        if missing.any():
            i, j = (int(v) for v in np.argwhere(missing)[0])
            raise DataError(source, f"{_row(i)}, {_col(attributes[j])}", "missing value")
    logger.info("loaded %d recipients with %d attributes from %s", len(df), len(attributes), path)
    return df[[RECIPIENT_ID, CONSENT, *attributes]]


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
    _require(df, (CAMPAIGN_ID, "value", "cost"), source)
    ids = _ids(df, CAMPAIGN_ID, source, unique=True)
    money = {c: _parse_numbers(df[c], source, c) for c in ("value", "cost")}
    for c, numbers in money.items():
        negative = (numbers < 0).to_numpy()
        if negative.any():
            i = int(np.flatnonzero(negative)[0])
            raise DataError(
                source, f"{_row(i)}, {_col(c)}", f"must be >= 0, got {numbers.iloc[i]:g}"
            )
    control = (
        _parse_bool(df["control"], source, "control", default=False)
        if "control" in df.columns
        else pd.Series(False, index=df.index)
    )
    controls = np.flatnonzero(control.to_numpy())
    if len(controls) > 1:
        a, b = (int(v) for v in controls[:2])
        raise DataError(
            source,
            _row(b),
            f"more than one control campaign ({ids.iloc[a]!r} in {_row(a)} and "
            f"{ids.iloc[b]!r} in {_row(b)})",
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
            raise DataError(source, f"{_row(i)}, {_col(field)}", err["msg"]) from None
    logger.info("loaded %d campaigns from %s", len(campaigns), path)
    return campaigns


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
    _require(df, (RECIPIENT_ID, CAMPAIGN_ID, OUTCOME), source)
    df[RECIPIENT_ID] = _ids(df, RECIPIENT_ID, source, unique=False)
    df[CAMPAIGN_ID] = _ids(df, CAMPAIGN_ID, source, unique=False)
    df[OUTCOME] = _parse_flags(df[OUTCOME], OUTCOMES, source, OUTCOME, "0/1 or true/false")
    df[OUTCOME] = df[OUTCOME].astype(np.int8)
    unknown = (~df[CAMPAIGN_ID].isin(campaign_ids)).to_numpy()
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        cid = df[CAMPAIGN_ID].iloc[i]
        raise DataError(
            source,
            f"{_row(i)}, {_col(CAMPAIGN_ID)}",
            f"unknown campaign {cid!r}{did_you_mean(cid, campaign_ids)}",
        )
    if recipient_ids is not None:
        unknown = (~df[RECIPIENT_ID].isin(recipient_ids)).to_numpy()
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            rid = df[RECIPIENT_ID].iloc[i]
            raise DataError(
                source,
                f"{_row(i)}, {_col(RECIPIENT_ID)}",
                f"unknown recipient {rid!r} (not in the recipients file)",
            )
    if "value" in df.columns:
        df["value"] = _parse_numbers(df["value"], source, "value", allow_missing=True).fillna(0.0)
    if "propensity" in df.columns:
        prop = _parse_numbers(df["propensity"], source, "propensity")
        bad = ((prop <= 0) | (prop > 1)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                source,
                f"{_row(i)}, {_col('propensity')}",
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
    _require(df, COUNT_COLUMNS, source)
    for column, known, what in ((SEGMENT, segment_ids, "segment (persona)"),
                                (CAMPAIGN_ID, campaign_ids, "campaign")):
        df[column] = _ids(df, column, source, unique=False)
        unknown = (~df[column].isin(set(known))).to_numpy()
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            name = df[column].iloc[i]
            raise DataError(source, f"{_row(i)}, {_col(column)}",
                            f"unknown {what} {name!r}{did_you_mean(name, known)}")
    for column in ("exposures", "responses"):
        numbers = _parse_numbers(df[column], source, column)
        bad = ((numbers < 0) | (numbers != np.round(numbers))).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            kind = "negative count" if numbers.iloc[i] < 0 else "count must be a whole number"
            raise DataError(source, f"{_row(i)}, {_col(column)}",
                            f"{kind}, got {numbers.iloc[i]:g}")
        df[column] = numbers.astype(np.int64)
    over = (df["responses"] > df["exposures"]).to_numpy()
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise DataError(source, f"{_row(i)}, {_col('responses')}",
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
    shape = (len(persona_ids), len(campaign_ids))
    rows = frame[SEGMENT].map({p: j for j, p in enumerate(persona_ids)}).to_numpy(np.int64)
    cols = frame[CAMPAIGN_ID].map({c: k for k, c in enumerate(campaign_ids)}).to_numpy(np.int64)
    exposures = np.zeros(shape, dtype=np.int64)
    responses = np.zeros(shape, dtype=np.int64)
    np.add.at(exposures, (rows, cols), frame["exposures"].to_numpy(np.int64))
    np.add.at(responses, (rows, cols), frame["responses"].to_numpy(np.int64))
    table = frame.rename(columns={SEGMENT: PERSONA_ID})
    counts = ABCounts(tuple(persona_ids), tuple(campaign_ids), exposures, responses)
    return ABResults(table=table, counts=counts, source=source)


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
            raise DataError(source, _col(c), f"unknown column{did_you_mean(c, known)}")
    _require(df, ("name", "start_week", "end_week"), source)
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
                msg = f"{msg}, got {_show(err['input'])}"
            raise DataError(source, f"{_row(i)}, {_col(field)}", msg) from None
    logger.info("loaded %d events from %s", len(events), path)
    return events
