"""How recipient attributes become model columns."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from personasim.bayes.design import OTHER, Design
from personasim.core.errors import DataError


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "tenure": rng.gamma(2.0, 10.0, n),
        "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2]),
        "tier": rng.choice([1, 2, 3], n),
        "app": rng.random(n) < 0.4,
    })


def test_kinds_columns_and_centring() -> None:
    frame = _frame()
    frame.loc[:4, "region"] = "islands"  # 5 rows: rarer than min_level_count
    design = Design.fit(frame, ["tenure", "region", "tier", "app"], n_bins=4,
                        min_level_count=25, interactions=False)
    kinds = {c.name: c.kind for c in design.codings}
    assert kinds == {"tenure": "number", "region": "category", "tier": "category",
                     "app": "flag"}
    region = next(c for c in design.codings if c.name == "region")
    assert OTHER in region.levels and "islands" not in region.levels
    x = design.transform(frame)
    assert x.shape == (len(frame), design.n_columns) == (len(frame), len(design.labels()))
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-9)  # centred on the A/B rows


def test_interactions_multiply_pairs_of_attributes() -> None:
    frame = _frame()
    plain = Design.fit(frame, ["region", "app"], interactions=False)
    paired = Design.fit(frame, ["region", "app"], interactions=True)
    assert paired.interactions == ((0, 1),)
    assert paired.n_columns == plain.n_columns + 3  # three region levels x one flag
    assert set(np.unique(paired.groups())) == {0, 1, 2}


def test_unseen_level_gets_the_pooled_effect_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    frame = _frame()
    design = Design.fit(frame, ["region", "tenure"], min_level_count=1, interactions=False)
    new = frame.head(3).copy()
    new["region"] = ["north", "mars", "south"]
    with caplog.at_level(logging.WARNING):
        x = design.transform(new, "new.csv")
    region_columns = [i for i, label in enumerate(design.labels()) if label.startswith("region")]
    assert np.all(x[1, region_columns] == 0.0)  # the average region
    assert np.any(x[0, region_columns] != 0.0)
    assert "new.csv" in caplog.text and "'region'" in caplog.text and "mars" in caplog.text


def test_round_trip_and_missing_column() -> None:
    frame = _frame()
    design = Design.fit(frame, ["tenure", "region", "tier", "app"])
    again = Design.from_dict(design.to_dict())
    np.testing.assert_array_equal(again.transform(frame), design.transform(frame))
    with pytest.raises(DataError, match="column 'app'"):
        design.transform(frame.drop(columns="app"), "new.csv")
    bad = frame.astype({"tenure": object})
    bad.loc[3, "tenure"] = "-"
    with pytest.raises(DataError, match="row 4, column 'tenure'"):
        design.transform(bad, "new.csv")
