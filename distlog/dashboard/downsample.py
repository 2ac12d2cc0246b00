"""Server-side downsampling of a series to a chart's width, without hiding a spike.

M4 aggregation (Jugel et al., VLDB 2014): the x range is cut into ``width`` buckets and each
bucket keeps the rows of its first x, last x, smallest and largest value. A line drawn
through those rows at ``width`` pixels is the same picture as the line through every row: a
single NaN-free spike among a million points always survives, because it is its bucket's
maximum. A bucket's first non-finite row (NaN, inf) is kept too, so the chart shows a gap
there instead of a line drawn across it. Kept rows are real rows (no averaging), so the
values the chart shows exist in the store. Band columns (a series' per-step ``min``/``max`` across ranks) are widened to the
bucket's envelope, so the band never looks narrower than it is.

Pure NumPy functions, O(rows), no I/O.
"""

from __future__ import annotations

import numpy as np


def is_sorted(x: np.ndarray) -> bool:
    return len(x) < 2 or bool(np.all(x[1:] >= x[:-1]))


def bucket_starts(x: np.ndarray, width: int) -> np.ndarray:
    """First row of each non-empty bucket: equal x ranges when x never decreases (so a bucket
    is a pixel column), else equal row counts."""
    n = len(x)
    if n and is_sorted(x) and x[-1] > x[0]:
        edges = x[0] + (x[-1] - x[0]) * (np.arange(width) / width)
        starts = np.searchsorted(x, edges, side="left")
    else:
        starts = (np.arange(width, dtype=np.int64) * n) // max(width, 1)
    starts = np.unique(starts)
    return starts[starts < n]


def m4_indices(x: np.ndarray, y: np.ndarray, width: int, starts: np.ndarray | None = None) -> np.ndarray:
    """Sorted row indices to keep: per bucket the first, last, arg-min and arg-max of ``y``,
    and its first non-finite row when it has one (non-finite values are never a bucket's min
    or max; that row keeps the gap visible). At most 5 rows per bucket; all rows when there
    are no more than ``4 * width``."""
    n = len(x)
    if width < 1:
        raise ValueError(f"width must be at least 1 pixel, got {width}")
    if n <= 4 * width:
        return np.arange(n, dtype=np.int64)
    starts = bucket_starts(x, width) if starts is None else starts
    ends = np.r_[starts[1:], n]
    finite = np.isfinite(y)
    lo = np.where(finite, y, np.inf)
    hi = np.where(finite, y, -np.inf)
    keep = [starts, ends - 1]
    # one argmin/argmax per bucket on a view: ~width small calls, no per-row temporaries
    amin = [a + int(lo[a:b].argmin()) for a, b in zip(starts.tolist(), ends.tolist())]
    amax = [a + int(hi[a:b].argmax()) for a, b in zip(starts.tolist(), ends.tolist())]
    keep += [np.asarray(amin, dtype=np.int64), np.asarray(amax, dtype=np.int64)]
    bad = np.flatnonzero(~finite)
    if len(bad):  # each bucket's first non-finite row: the chart draws a gap there
        bucket = np.searchsorted(starts, bad, side="right") - 1
        keep.append(bad[np.r_[True, bucket[1:] != bucket[:-1]]])
    return np.unique(np.concatenate(keep))


def envelope(keep: np.ndarray, starts: np.ndarray, column: np.ndarray, how: str) -> np.ndarray:
    """``column`` at the kept rows, widened to its bucket's min (``how="min"``) or max."""
    if how == "min":
        vals = np.fmin.reduceat(column, starts)
    elif how == "max":
        vals = np.fmax.reduceat(column, starts)
    else:
        raise ValueError(f"how must be 'min' or 'max', got {how!r}")
    return vals[np.searchsorted(starts, keep, side="right") - 1]


def downsample(columns: dict[str, np.ndarray], width: int, x: str = "step", y: str = "value",
               band: tuple[str, str] = ("min", "max"), peaks: tuple[str, ...] = ("skipped",)
               ) -> dict[str, np.ndarray]:
    """Every column of ``columns`` at the M4 rows of ``y`` over ``x``; the ``band`` columns
    (when present) hold their bucket envelope, the ``peaks`` columns their bucket's largest
    value (a count no kept row has is not lost). No more than ``4 * width`` rows pass
    unchanged."""
    xs = columns[x]
    if len(xs) <= 4 * width:
        if width < 1:
            raise ValueError(f"width must be at least 1 pixel, got {width}")
        return dict(columns)
    starts = bucket_starts(xs, width)
    keep = m4_indices(xs, columns[y], width, starts)
    out = {name: col[keep] for name, col in columns.items()}
    lo, hi = band
    if lo in columns:
        out[lo] = envelope(keep, starts, columns[lo], "min")
    if hi in columns:
        out[hi] = envelope(keep, starts, columns[hi], "max")
    for c in peaks:
        if c in columns:
            out[c] = envelope(keep, starts, columns[c], "max")
    return out


def window(x: np.ndarray, x0: float | None, x1: float | None) -> tuple[int, int]:
    """Rows ``[lo, hi)`` covering ``x0 <= x <= x1`` plus one row either side (so a zoomed line
    runs to the edges); by position when x is not sorted."""
    n = len(x)
    if n == 0 or (x0 is None and x1 is None):
        return 0, n
    if not is_sorted(x):
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


def ema(y: np.ndarray, weight: float) -> np.ndarray:
    """The chart's smoothing over a whole column: a debiased exponential moving average
    (``s = weight * s + (1 - weight) * v``, shown as ``s / (1 - weight ** k)`` after ``k``
    finite values) that skips non-finite values, which stay NaN (a gap). The recurrence is
    scanned in ``log2(rows)`` vectorised doubling steps (a row adds its ``2**j``-th
    predecessor's partial sum times ``weight ** 2**j``), so a million rows take milliseconds."""
    y = np.asarray(y, dtype=np.float64)
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out = np.full(len(y), np.nan)
    finite = np.isfinite(y)
    s = (1.0 - weight) * y[finite]
    d, wd = 1, weight
    while d < len(s) and wd > 1e-18:  # (further terms are below a float's precision)
        s[d:] += wd * s[:-d]  # (the right side is computed whole before it is added)
        d, wd = 2 * d, wd * wd
    out[finite] = s / (1.0 - weight ** np.arange(1, len(s) + 1, dtype=np.float64))
    return out
