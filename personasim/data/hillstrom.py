"""The Hillstrom (MineThatData) e-mail experiment as a registered dataset.

The Hillstrom file holds 64,000 customers randomly split into three equal arms (Mens E-Mail,
Womens E-Mail, No E-Mail) with their visits, conversions and spend over two weeks.
:func:`load_hillstrom` finds a local copy (``path=``, then ``$PERSONASIM_DATA``: the file or a
data folder holding ``hillstrom.csv``; then the user cache, downloading the public file there
on first use), checks it, and returns the tidy
data-mode tables: recipients, campaigns (No E-Mail is the control) and A/B results.
Every problem is a one-line :class:`~personasim.core.errors.DataError`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from personasim.config.campaign import Campaign
from personasim.config.sections import DatasetConfig
from personasim.core.errors import DataError
from personasim.core.types import CAMPAIGN_ID, CONSENT, OUTCOME, RECIPIENT_ID
from personasim.data.datasets import (
    DATA_ENV,
    DATASETS,
    DatasetTables,
    cache_dir,
    download,
    local_copy,
    split_customers,
)

logger = logging.getLogger(__name__)

HILLSTROM_URL = (
    "http://www.minethatdata.com/"
    "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv"
)
HILLSTROM_FILE = "hillstrom.csv"
HILLSTROM_ROWS = 64_000

ATTRIBUTES = ("recency", "history", "mens", "womens", "zip_code", "newbie", "channel")
"""Customer attributes (pre-treatment); ``history_segment`` is a band of ``history``."""
HILLSTROM_COLUMNS = (
    "recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie",
    "channel", "segment", "visit", "conversion", "spend",
)
ARMS = {"Mens E-Mail": "mens_email", "Womens E-Mail": "womens_email", "No E-Mail": "no_email"}
"""Arm name in the file -> campaign id."""
CONTROL = "no_email"
OUTCOMES = ("visit", "conversion", "spend")
_FLAGS = ("mens", "womens", "newbie", "visit", "conversion")
_CATEGORIES = {"zip_code": ("Urban", "Surburban", "Rural"),
               "channel": ("Phone", "Web", "Multichannel")}


def locate_hillstrom(path: str | Path | None = None, *, url: str = HILLSTROM_URL,
                     fetch: bool = True) -> Path:
    """Find the Hillstrom file: ``path``, else ``$PERSONASIM_DATA``, else the cache.

    ``path`` and ``$PERSONASIM_DATA`` may each name the file or a data folder holding
    ``hillstrom.csv`` (as ``SCIKIT_LEARN_DATA`` names scikit-learn's data home).

    Parameters
    ----------
    path
        A local copy (or a folder holding ``hillstrom.csv``); wins over everything else.
    url
        Where to download from when neither a path nor a cached copy exists.
    fetch
        Download into the cache when needed (``False``: fail instead).

    Raises
    ------
    DataError
        If a named file is missing, or the file is not cached and cannot be downloaded.
    """
    if path is None and os.environ.get(DATA_ENV):
        path, named = os.environ[DATA_ENV], f"${DATA_ENV}"
    else:
        named = "dataset.path"
    if path is not None:
        return local_copy(path, HILLSTROM_FILE, named)
    cached = cache_dir() / HILLSTROM_FILE
    if cached.is_file():
        return cached
    if not fetch:
        raise DataError(str(cached), None, f"not downloaded yet; set {DATA_ENV} to a local copy")
    return download(url, cached)


def _fail(source: str, mask: np.ndarray, column: str, message: str) -> None:
    if mask.any():
        row = int(np.flatnonzero(mask)[0])
        raise DataError(source, f"row {row + 1}, column {column!r}", message)


def read_hillstrom(path: str | Path, expected_rows: int | None = HILLSTROM_ROWS) -> pd.DataFrame:
    """Read and check a Hillstrom CSV.

    Parameters
    ----------
    path
        The file.
    expected_rows
        Required number of customer rows (``None``: any).

    Returns
    -------
    pandas.DataFrame
        The file's columns, with ``segment`` mapped to campaign ids.

    Raises
    ------
    DataError
        A missing column, the wrong row count, an unknown arm, a flag that is not 0/1, a
        negative or non-numeric number, or an unknown area or channel (row and column named).
    """
    source = str(path)
    try:
        raw = pd.read_csv(path, dtype={c: str for c in ("history_segment", "zip_code",
                                                         "channel", "segment")})
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(source, None, f"could not read as CSV: {exc}") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    for column in HILLSTROM_COLUMNS:
        if column not in raw.columns:
            raise DataError(source, f"column {column!r}", "required column is missing "
                            "(not a Hillstrom e-mail file?)")
    if expected_rows is not None and len(raw) != expected_rows:
        raise DataError(source, None, f"expected {expected_rows:,} customer rows, found "
                        f"{len(raw):,} (truncated or not the Hillstrom file?)")
    if raw.empty:
        raise DataError(source, None, "file has no customer rows")
    frame = raw[list(HILLSTROM_COLUMNS)].copy()
    arm = frame["segment"].astype(str).str.strip().map(ARMS)
    _fail(source, arm.isna().to_numpy(), "segment",
          f"unknown arm; expected one of {', '.join(ARMS)}")
    frame["segment"] = arm.astype(str)
    for column in ("recency", "history", "spend", *_FLAGS):
        values = pd.to_numeric(frame[column], errors="coerce")
        _fail(source, values.isna().to_numpy(), column, "expected a number")
        _fail(source, (values < 0).to_numpy(), column, "must be >= 0")
        if column in _FLAGS:
            _fail(source, ~values.isin((0, 1)).to_numpy(), column, "expected 0 or 1")
            values = values.astype(np.int8)
        frame[column] = values
    for column, levels in _CATEGORIES.items():
        text = frame[column].astype(str).str.strip()
        _fail(source, ~text.isin(levels).to_numpy(), column,
              f"unknown value; expected one of {', '.join(levels)}")
        frame[column] = text
    _fail(source, ((frame["spend"] > 0) & (frame["conversion"] == 0)).to_numpy(), "spend",
          "spend without a conversion")
    return frame


def response_value(ab_results: pd.DataFrame, outcome: str) -> float:
    """Default value of one response: $1 a visit; else the mean spend per conversion."""
    if outcome == "visit":
        return 1.0
    spenders = ab_results.loc[ab_results["conversion"] > 0, "spend"]
    return round(float(spenders.mean()), 2) if len(spenders) else 0.0


def hillstrom_campaigns(value: float, cost: float) -> list[Campaign]:
    """The two e-mails (``value`` per response, ``cost`` per send) and the no-e-mail control."""
    return [
        Campaign(id="mens_email", channel="email", offer="Mens E-Mail",
                 value=value, cost=cost),
        Campaign(id="womens_email", channel="email", offer="Womens E-Mail",
                 value=value, cost=cost),
        Campaign(id=CONTROL, channel="email", offer="No E-Mail", value=value,
                 control=True),
    ]


def hillstrom_tables(frame: pd.DataFrame, outcome: str = "visit", value: float | None = None,
                     cost: float = 0.05, source: str = "hillstrom") -> DatasetTables:
    """Turn a checked Hillstrom frame into data-mode tables.

    Parameters
    ----------
    frame
        As returned by :func:`read_hillstrom`.
    outcome
        ``visit``, ``conversion`` or ``spend``; the binary ``outcome`` column is the visit or
        the conversion (spend is modelled as conversion times the value of a conversion).
    value
        Value of one response (default :func:`response_value`).
    cost
        Cost of one e-mail.
    source
        Recorded as the tables' source.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    width = max(len(str(len(frame))), 5)
    ids = [f"c{i:0{width}d}" for i in range(1, len(frame) + 1)]
    recipients = frame[list(ATTRIBUTES)].copy()
    recipients.insert(0, RECIPIENT_ID, ids)
    recipients.insert(1, CONSENT, True)
    recipients["log_history"] = np.log1p(recipients["history"]).round(6)
    binary = "visit" if outcome == "visit" else "conversion"
    ab = pd.DataFrame({
        RECIPIENT_ID: ids,
        CAMPAIGN_ID: frame["segment"].to_numpy(),
        OUTCOME: frame[binary].to_numpy(np.int8),
        "value": frame["spend"].to_numpy(np.float64),
        "propensity": np.full(len(frame), 1.0 / len(ARMS)),
        "visit": frame["visit"].to_numpy(np.int8),
        "conversion": frame["conversion"].to_numpy(np.int8),
        "spend": frame["spend"].to_numpy(np.float64),
    })
    worth = response_value(ab, outcome) if value is None else float(value)
    return DatasetTables(recipients.reset_index(drop=True), hillstrom_campaigns(worth, cost), ab,
                         source)


def load_hillstrom(path: str | Path | None = None, outcome: str = "visit",
                   value: float | None = None, cost: float = 0.05,
                   expected_rows: int | None = HILLSTROM_ROWS) -> DatasetTables:
    """Locate (downloading if needed), check and tidy the Hillstrom e-mail experiment.

    Parameters
    ----------
    path
        A local copy (default ``$PERSONASIM_DATA``, else the cached download).
    outcome, value, cost
        See :func:`hillstrom_tables`.
    expected_rows
        Required number of customer rows (``None``: any, for samples).

    Raises
    ------
    DataError
        One line naming the file and the column or row at fault.
    """
    located = locate_hillstrom(path)
    frame = read_hillstrom(located, expected_rows)
    logger.info("loaded %d Hillstrom customers from %s", len(frame), located)
    return hillstrom_tables(frame, outcome, value, cost, str(located))


def with_holdout(tables: DatasetTables, fraction: float, seed: int,
                 value: float | None, outcome: str) -> DatasetTables:
    """Hold out a stratified share of customers; the default value comes from the rest."""
    held = split_customers(tables.ab_results[CAMPAIGN_ID].to_numpy(), fraction, seed)
    train = tables.ab_results.loc[~held].reset_index(drop=True)
    holdout = tables.ab_results.loc[held].reset_index(drop=True) if held.any() else None
    campaigns = tables.campaigns
    if value is None:
        cost = next(c.cost for c in campaigns if not c.control)
        campaigns = hillstrom_campaigns(response_value(train, outcome), cost)
    return DatasetTables(tables.recipients, campaigns, train, tables.source, holdout)


@DATASETS.register("hillstrom")
def hillstrom_dataset(config: DatasetConfig, seed: int) -> DatasetTables:
    """The registered loader: :func:`load_hillstrom`, an optional sample, then the split."""
    located = locate_hillstrom(config.path)
    frame = read_hillstrom(located)
    rng = np.random.default_rng(seed)
    if config.sample is not None and config.sample < len(frame):
        keep = np.sort(rng.choice(len(frame), config.sample, replace=False))
        frame = frame.iloc[keep].reset_index(drop=True)
    tables = hillstrom_tables(frame, config.outcome, config.value, config.cost, str(located))
    split_seed = int(rng.integers(0, 2**31 - 1))
    return with_holdout(tables, config.holdout_fraction, split_seed, config.value,
                        config.outcome)
