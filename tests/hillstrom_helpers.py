"""Synthetic files in the Hillstrom e-mail format, and the shared real copy (when present)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SEGMENTS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")
BANDS = ((0, 100, "1) $0 - $100"), (100, 200, "2) $100 - $200"), (200, 350, "3) $200 - $350"),
         (350, 500, "4) $350 - $500"), (500, 750, "5) $500 - $750"))


def shared_path(named: str | None) -> Path:
    """The real file's expected place, given ``$PERSONASIM_DATA`` (a file or a data folder)."""
    repo = Path(__file__).resolve().parents[1]
    path = Path(named) if named else repo.parent / "shared" / "data" / "hillstrom.csv"
    path = path if path.is_absolute() else (repo / path).resolve()
    return path / "hillstrom.csv" if path.is_dir() else path


SHARED = shared_path(os.environ.get("PERSONASIM_DATA"))
"""Where the real file should be, as the environment said when the tests started."""


def shared_hillstrom() -> Path:
    """The project's copy of the real file: ``$PERSONASIM_DATA`` or ``../shared/data``.

    Skips the calling test, with the reason, when the file is not there.
    """
    path = SHARED
    if not path.is_file():
        pytest.skip(f"the Hillstrom file is not at {path} (set PERSONASIM_DATA to a copy)")
    return path


def synthetic_hillstrom(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` customers in the Hillstrom columns; womens buyers answer the Womens e-mail best."""
    rng = np.random.default_rng(seed)
    history = np.round(rng.gamma(1.5, 160.0, n) + 29.99, 2)
    band = [next((b for lo, hi, b in BANDS if lo <= h < hi), "6) $750 - $1,000")
            for h in history]
    womens = (rng.random(n) < 0.55).astype(int)
    mens = np.where(womens == 1, (rng.random(n) < 0.2).astype(int), 1)
    segment = np.array(SEGMENTS)[rng.permutation(np.arange(n) % 3)]
    base = 0.10 + 0.08 * (segment == "Mens E-Mail") + np.where(
        segment == "Womens E-Mail", np.where(womens == 1, 0.12, 0.01), 0.0)
    visit = (rng.random(n) < base).astype(int)
    conversion = visit * (rng.random(n) < 0.08).astype(int)
    spend = np.where(conversion == 1, np.round(rng.uniform(30, 300, n), 2), 0.0)
    return pd.DataFrame({
        "recency": rng.integers(1, 13, n), "history_segment": band, "history": history,
        "mens": mens, "womens": womens,
        "zip_code": rng.choice(["Urban", "Surburban", "Rural"], n, p=[0.4, 0.45, 0.15]),
        "newbie": (rng.random(n) < 0.5).astype(int),
        "channel": rng.choice(["Phone", "Web", "Multichannel"], n, p=[0.44, 0.44, 0.12]),
        "segment": segment, "visit": visit, "conversion": conversion, "spend": spend,
    })


def write_hillstrom(path: Path, n: int = 600, seed: int = 0,
                    changes: Mapping[tuple[int, str], object] | None = None) -> Path:
    """Write a synthetic Hillstrom CSV; ``changes`` maps ``(row, column)`` to a new value."""
    frame = synthetic_hillstrom(n, seed).astype(object)
    for (row, column), value in (changes or {}).items():
        frame.loc[row, column] = value
    frame.to_csv(path, index=False)
    return path
