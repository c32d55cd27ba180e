"""A small data-mode world: a customer file, campaigns and A/B results with known groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_data_files(base: Path, n: int = 800) -> None:
    """Two customer groups: young urban ones answer the sale, older rural ones the news.

    Writes ``recipients.csv``, ``campaigns.csv`` and ``ab.parquet`` into ``base``.
    """
    rng = np.random.default_rng(5)
    young = rng.random(n) < 0.5
    recipients = pd.DataFrame({
        "recipient_id": [f"c{i:04d}" for i in range(n)],
        "age": np.where(young, rng.normal(27, 3, n), rng.normal(58, 4, n)).round(1),
        "region": np.where(young, "urban", "rural"),
        "consent": np.where(np.arange(n) % 10 == 0, "false", "true"),
    })
    recipients.to_csv(base / "recipients.csv", index=False)
    pd.DataFrame({
        "campaign_id": ["sale", "news", "holdout"], "value": [10.0, 10.0, 0.0],
        "cost": [0.2, 0.2, 0.0], "control": [False, False, True], "discount": [0.3, 0.0, 0.0],
    }).to_csv(base / "campaigns.csv", index=False)
    arm = rng.integers(0, 3, n)
    rate = np.select(
        [arm == 2, (arm == 0) & young, (arm == 1) & ~young], [0.01, 0.30, 0.25], default=0.03
    )
    pd.DataFrame({
        "recipient_id": recipients["recipient_id"],
        "campaign_id": np.array(["sale", "news", "holdout"])[arm],
        "outcome": (rng.random(n) < rate).astype(int),
    }).to_parquet(base / "ab.parquet", index=False)
