"""Server-side downsampling of a series to a chart's width, without hiding a spike.

M4 aggregation (Jugel et al., VLDB 2014): the x range is cut into ``width`` buckets and each
bucket keeps the rows of its first x, last x, smallest and largest value. A line drawn
through those rows at ``width`` pixels is the same picture as the line through every row: a
single NaN-free spike among a million points always survives, because it is its bucket's
maximum. Kept rows are real rows (no averaging), so the values the chart shows exist in the
store. Band columns (a series' per-step ``min``/``max`` across ranks) are widened to the
bucket's envelope, so the band never looks narrower than it is.

Pure NumPy functions, O(rows), no I/O.
"""

from __future__ import annotations

import numpy as np


def bucket_ids(x: np.ndarray, width: int) -> np.ndarray:
    """The bucket (0..width-1) of every row: by x when x never decreases, else by position."""
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n > 1 and np.all(np.diff(x) >= 0) and x[-1] > x[0]:
        span = float(x[-1] - x[0])
        ids = np.floor((x - x[0]) * (width / span)).astype(np.int64)
    else:
        ids = (np.arange(n, dtype=np.int64) * width) // n
    return np.minimum(ids, width - 1)


def _first_per_bucket(mask: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of the first row of each bucket where ``mask`` holds."""
    hits = np.flatnonzero(mask)
    _, first = np.unique(ids[hits], return_index=True)
    return hits[first]


def m4_indices(x: np.ndarray, y: np.ndarray, width: int) -> np.ndarray:
    """Sorted row indices to keep: per bucket the first, last, arg-min and arg-max of ``y``
    (non-finite values are never a bucket's min or max, but first/last rows are kept so a
    gap stays visible). All rows when there are no more than ``4 * width``."""
    n = len(x)
    if width < 1:
        raise ValueError(f"width must be at least 1 pixel, got {width}")
    if n <= 4 * width:
        return np.arange(n, dtype=np.int64)
    ids = bucket_ids(x, width)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], n] - 1
    finite = np.isfinite(y)
    lo = np.where(finite, y, np.inf)
    hi = np.where(finite, y, -np.inf)
    bmin = np.minimum.reduceat(lo, starts)
    bmax = np.maximum.reduceat(hi, starts)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    amin = _first_per_bucket(finite & (lo == bmin[seg]), seg)
    amax = _first_per_bucket(finite & (hi == bmax[seg]), seg)
    return np.unique(np.concatenate([starts, ends, amin, amax]))


def envelope(ids_kept: np.ndarray, x: np.ndarray, column: np.ndarray, width: int,
             how: str) -> np.ndarray:
    """``column`` at the kept rows, widened to its bucket's min (``how="min"``) or max."""
    if len(ids_kept) == len(x):
        return column.copy()
    ids = bucket_ids(x, width)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(x)]))
    if how == "min":
        vals = np.fmin.reduceat(column, starts)
    elif how == "max":
        vals = np.fmax.reduceat(column, starts)
    else:
        raise ValueError(f"how must be 'min' or 'max', got {how!r}")
    return vals[seg[ids_kept]]


def downsample(columns: dict[str, np.ndarray], width: int, x: str = "step", y: str = "value",
               band: tuple[str, str] = ("min", "max")) -> dict[str, np.ndarray]:
    """Every column of ``columns`` at the M4 rows of ``y`` over ``x``; the ``band`` columns
    (when present) hold their bucket envelope. Fewer than ``4 * width`` rows pass unchanged."""
    keep = m4_indices(columns[x], columns[y], width)
    out = {name: col[keep] for name, col in columns.items()}
    if len(keep) < len(columns[x]):
        lo, hi = band
        if lo in columns:
            out[lo] = envelope(keep, columns[x], columns[lo], width, "min")
        if hi in columns:
            out[hi] = envelope(keep, columns[x], columns[hi], width, "max")
    return out


def window(x: np.ndarray, x0: float | None, x1: float | None) -> tuple[int, int]:
    """Rows ``[lo, hi)`` covering ``x0 <= x <= x1`` plus one row either side (so a zoomed line
    runs to the edges); by position when x is not sorted."""
    n = len(x)
    if n == 0 or (x0 is None and x1 is None):
        return 0, n
    if n > 1 and not np.all(np.diff(x) >= 0):
        mask = np.ones(n, dtype=bool)
        if x0 is not None:
            mask &= x >= x0
        if x1 is not None:
            mask &= x <= x1
        hits = np.flatnonzero(mask)
        return (int(hits[0]), int(hits[-1]) + 1) if len(hits) else (0, 0)
    lo = 0 if x0 is None else max(0, int(np.searchsorted(x, x0, side="left")) - 1)
    hi = n if x1 is None else min(n, int(np.searchsorted(x, x1, side="right")) + 1)
    return lo, max(lo, hi)
