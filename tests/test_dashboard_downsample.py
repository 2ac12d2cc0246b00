"""The dashboard's downsampling (M4) keeps every spike and real rows; its window helper."""

from __future__ import annotations

import numpy as np
import pytest

from distlog.dashboard.downsample import downsample, m4_indices, window


def test_few_rows_pass_unchanged():
    x = np.arange(10.0)
    cols = {"step": x, "value": x * 2, "min": x, "max": x * 3}
    out = downsample(cols, width=5)
    for k in cols:
        np.testing.assert_array_equal(out[k], cols[k])


def test_a_single_spike_among_a_million_rows_survives():
    rng = np.random.default_rng(0)
    n = 1_000_000
    x = np.arange(n, dtype=float)
    y = rng.normal(size=n)
    y[654_321] = 1e6
    y[123_457] = -1e6
    keep = m4_indices(x, y, width=800)
    assert len(keep) <= 4 * 800
    assert 654_321 in keep and 123_457 in keep
    assert keep[0] == 0 and keep[-1] == n - 1
    assert np.all(np.diff(keep) > 0)  # sorted, no duplicates
    # every bucket's extremes are there: the drawn envelope equals the full data's
    ids = np.minimum((x * 800 / (n - 1)).astype(int), 799)  # the same pixel columns
    for b in (0, 17, 399, 799):
        sel = ids == b
        assert y[keep][ids[keep] == b].max() == y[sel].max()
        assert y[keep][ids[keep] == b].min() == y[sel].min()


def test_nan_rows_are_never_extremes_and_band_is_the_bucket_envelope():
    n = 10_000
    x = np.arange(n, dtype=float)
    y = np.sin(x / 100)
    y[5000:5100] = np.nan
    lo, hi = y - 1, y + 1
    lo[7777] = -50.0
    out = downsample({"step": x, "value": y, "min": lo, "max": hi}, width=50)
    assert len(out["step"]) <= 200
    assert np.nanmin(out["min"]) == -50.0  # a dip of the band is kept even off the kept rows
    assert np.nanmax(out["max"]) == pytest.approx(np.nanmax(hi))
    kept = np.isin(x, out["step"])
    np.testing.assert_array_equal(out["value"], y[kept])  # real rows, not averages


def test_unsorted_x_buckets_by_position():
    x = np.r_[np.arange(500.0), np.arange(250.0, 750.0)]  # a resumed run repeats steps
    y = np.zeros(len(x))
    y[700] = 9.0
    keep = m4_indices(x, y, width=10)
    assert 700 in keep and len(keep) <= 40


def test_window_includes_one_row_either_side():
    x = np.arange(0.0, 100.0, 2.0)
    assert window(x, 10.0, 20.0) == (4, 12)
    assert window(x, None, None) == (0, 50)
    assert window(x, 1000.0, 2000.0)[1] == 50
    with pytest.raises(ValueError, match="width"):
        m4_indices(x, x, 0)


def test_each_bucket_keeps_its_first_non_finite_row_so_the_chart_shows_a_gap():
    n = 60_000
    x = np.arange(n, dtype=float)
    y = 1.0 + (x % 7) * 0.01
    bad = {1000: np.nan, 1001: np.nan, 1002: np.nan, 20_001: -np.inf, 40_005: np.inf}
    for i, v in bad.items():
        y[i] = v
    out = downsample({"step": x, "value": y}, width=300)
    gaps = out["step"][~np.isfinite(out["value"])].tolist()
    assert gaps == [1000.0, 20_001.0, 40_005.0]  # the first of each bucket's run of NaNs
    assert len(out["step"]) <= 5 * 300
    np.testing.assert_array_equal(out["value"], y[out["step"].astype(int)])  # real rows
