"""Exact order statistics and credible intervals without a float64 sort."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from personasim.ranking import scoring_select
from personasim.ranking.prioritization import equal_tailed
from personasim.ranking.scoring_select import interval, order_statistics


@pytest.fixture
def always_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the packed-key path even for tiny arrays."""
    monkeypatch.setattr(scoring_select, "FAST_MIN_VALUES", 0)


def _rows(draw: st.DrawFn) -> np.ndarray:
    n_rows = draw(st.integers(1, 6))
    n_draws = draw(st.integers(1, 700))
    values = draw(st.sampled_from(["normal", "ties", "tiny", "wide"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(size=(n_rows, n_draws))
    if values == "ties":
        x = np.round(x, 1)
    elif values == "tiny":
        x = 0.05 + x * 1e-12  # closer than the key resolution: every rank is a tie
    elif values == "wide":
        x = x * 10.0 ** rng.integers(-300, 300, size=(n_rows, 1))
    return x


def _sorted_interval(x: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The interval as it was computed before: sort each row, interpolate linearly."""
    n = x.shape[1]
    tail = (1.0 - level) / 2.0
    ordered = np.sort(x, axis=1)
    bounds = []
    for pos in (tail * (n - 1), (1.0 - tail) * (n - 1)):
        i = int(np.floor(pos))
        a, b = ordered[:, i], ordered[:, min(i + 1, n - 1)]
        bounds.append(a + (b - a) * (pos - i))
    return bounds[0], bounds[1]


@settings(max_examples=150, deadline=None)
@given(data=st.data(), level=st.floats(0.01, 0.999))
def test_equal_tailed_is_numpy_linear_quantile(data: st.DataObject, level: float) -> None:
    scoring_select.FAST_MIN_VALUES, saved = 0, scoring_select.FAST_MIN_VALUES
    try:
        x = _rows(data.draw)
        low, high = equal_tailed(x, level)
    finally:
        scoring_select.FAST_MIN_VALUES = saved
    tail = (1 - level) / 2
    ref_low, ref_high = np.quantile(x, [tail, 1 - tail], axis=1, method="linear")
    scale = np.abs(x).max(axis=1)
    np.testing.assert_array_less(np.abs(low - ref_low), 1e-14 * scale + 1e-300)
    np.testing.assert_array_less(np.abs(high - ref_high), 1e-14 * scale + 1e-300)
    # and bit for bit what a full sort and the same interpolation give (the old method)
    sorted_low, sorted_high = _sorted_interval(x, level)
    np.testing.assert_array_equal(low, sorted_low)
    np.testing.assert_array_equal(high, sorted_high)


@settings(max_examples=100, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
                    elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
       data=st.data())
def test_order_statistics_equal_a_full_sort(x: np.ndarray, data: st.DataObject) -> None:
    ranks = data.draw(st.lists(st.integers(0, x.shape[1] - 1), min_size=1, max_size=5))
    scoring_select.FAST_MIN_VALUES, saved = 0, scoring_select.FAST_MIN_VALUES
    try:
        got = order_statistics(np.ascontiguousarray(x), np.array(ranks))
    finally:
        scoring_select.FAST_MIN_VALUES = saved
    want = np.sort(x, axis=1)[:, ranks]
    np.testing.assert_array_equal(got, want)
    # 0.0 and -0.0 compare equal; the bits must match too
    assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.usefixtures("always_fast")
@pytest.mark.parametrize("n_draws", [1, 2, 3, 41, 400, 513, 4000])
def test_large_and_small_rows(n_draws: int) -> None:
    rng = np.random.default_rng(n_draws)
    x = rng.beta(2, 20, size=(300, n_draws))
    x[:10] = 0.25  # constant rows
    x[10:20, ::3] = np.nan
    x[20:30, :2] = [-np.inf, np.inf][: min(2, n_draws)]
    x[30:40] = rng.integers(0, 3, size=(10, n_draws)) * 5e-324  # spans too small to invert
    x[40:50] = rng.normal(size=(10, n_draws)) * 1e300  # spans that overflow
    ranks = np.unique(np.array([0, n_draws // 20, n_draws // 2, n_draws - 1]))
    np.testing.assert_array_equal(order_statistics(x, ranks), np.sort(x, axis=1)[:, ranks])


def test_scratch_buffers_and_overwrite_give_the_same_result() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 400))
    plain = interval(x, 0.9)
    scratch = (np.empty(x.size, dtype=np.float32), np.empty(x.size, dtype=np.uint32))
    again = interval(x.copy(), 0.9, overwrite=True, scratch=scratch)
    for a, b in zip(plain, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert x.size >= scoring_select.FAST_MIN_VALUES  # the fast path ran


def test_input_is_left_alone_unless_overwrite() -> None:
    x = np.random.default_rng(4).normal(size=(300, 400))
    before = x.copy()
    equal_tailed(x, 0.8)
    np.testing.assert_array_equal(x, before)
