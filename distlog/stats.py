"""Rolling statistics over the values this process saw (the design document's ScalarCache)."""

from __future__ import annotations

import threading
from typing import Any
from dataclasses import dataclass

import numpy as np

from .entries import Window, reduce_windows, window_rows

#: the design document's percentiles
PERCENTILES = (0, 1, 5, 10, 20, 25, 40, 50, 60, 75, 80, 90, 95, 99, 100)


def summary_frequencies(up_to: int = 10**7) -> list[int]:
    """1, 5, 10, 15, 20, 25, 30, 40, 50, 75, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600,
    1000, 1200, ... — the design document's list, continued by decades."""
    out = [1, 5, 10, 15, 20, 25, 30, 40, 50, 75, 80]
    decade = 100
    while decade <= up_to:
        out += [int(decade * m) for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6)]
        decade *= 10
    return [f for f in out if f <= up_to]


@dataclass(frozen=True)
class Stats:
    """Statistics of a key over the points in the window.

    ``mean``, ``min``, ``max`` and ``count`` describe the raw values behind the points: for
    reduced rows (``flush``) the mean is Σsum/Σcount, ``min`` the lowest ``min`` column and
    ``max`` the highest ``max`` column, ``count`` the number of finite values; for values
    logged directly each point is one value. ``var`` and ``std`` are of the points' headline
    values (one per row, ddof 0), and ``rows`` counts those points.
    """

    mean: float
    var: float
    std: float
    min: float
    max: float
    count: int
    rows: int = 0


# one point: step, headline value, sum, count, min, max (of the finite raw values behind it)
_P_STEP, _P_VALUE, _P_SUM, _P_COUNT, _P_MIN, _P_MAX = range(6)
# flush results taken this few at a time (a query every flush or so) become a tuple per point
# (no NumPy call per key); more, a block per key; a key's tuples become a block this many at once
_FEW, _TAIL = 8, 256
#: flush windows waiting unreduced, at most: rank 0's writer reduces them, a poll interval
#: (``rowstore.ENTRY_POLL``) and its own work behind: thousands at a flush every step
WAITING_MAX = 8192


class ScalarCache:
    """Keeps the last ``window`` points per key (a point is one stored row), as blocks of
    points per key: waiting flush results are taken many at once (every key's points in one
    pass, no Python per point), and a key's points are its last ones by step whatever their
    source."""

    def __init__(self, window: int = 1_000) -> None:
        self.window = window
        # a key's points beyond its last ``window`` are trimmed once this many are kept: half
        # a window more, not twice as many (memory per key is what wide runs pay: 1,000 keys at
        # 10,000 points held up to 1 GB, and each trim copied as much on the training thread)
        self._keep_max = window + max(window // 2, 64)
        self._blocks: dict[str, list[np.ndarray]] = {}  # per key: (n, 6) point blocks
        self._tails: dict[str, list[tuple]] = {}  # per key: points after its blocks, as tuples
        self._n: dict[str, int] = {}  # per key: the points its blocks and tail hold
        # flush results wait here until a query needs them, or until this many wait (their
        # points are then taken at once: a key's points never depend on other keys' flushes)
        self._pending: list[Any] = []  # reduced rows ``(keys, step, rows)``, and windows
        self._pending_max = max(64, min(window, 1024))
        self._take_at = self._pending_max  # the next look at what waits
        # log() values from the writer thread, per key: [(steps, values)] (under the lock;
        # trimmed there to the last `window` points, so memory stays bounded)
        self._logged: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._logged_n: dict[str, int] = {}
        self._lock = threading.Lock()

    def add_logged(self, keys: tuple[str, ...], steps: np.ndarray, values: np.ndarray) -> None:
        """n directly logged steps of K keys (``values`` is ``(n, K)``); any thread."""
        w = self.window
        with self._lock:
            for j, k in enumerate(keys):
                parts = self._logged.get(k)
                if parts is None:
                    parts = self._logged[k] = []
                    self._logged_n[k] = 0
                parts.append((steps, values[:, j]))
                n = self._logged_n[k] = self._logged_n[k] + len(steps)
                if n > self._keep_max:  # only the last `window` points of a key can matter
                    st = np.concatenate([p[0] for p in parts])[-w:]
                    vs = np.concatenate([p[1] for p in parts])[-w:]
                    parts[:] = [(st, vs)]
                    self._logged_n[k] = len(st)

    def _take_logged(self) -> None:
        with self._lock:
            logged, self._logged, self._logged_n = self._logged, {}, {}
        for k, parts in logged.items():
            st = np.concatenate([p[0] for p in parts])[-self.window:]
            vs = np.concatenate([p[1] for p in parts])[-self.window:]
            fin = np.isfinite(vs)
            edge = np.where(fin, vs, np.nan)
            self._add_points(k, np.column_stack([st, vs, np.where(fin, vs, 0.0), fin, edge, edge]))

    def add_batch(self, keys: tuple[str, ...], step: float, rows: np.ndarray) -> None:
        """Reduced rows of many keys at one step (a flush), in ``reduce.STAT_COLUMNS`` order;
        kept as one item until a query needs them."""
        self._pending.append((keys, step, rows))
        if len(self._pending) >= self._take_at:
            self._take_waiting()

    def add_window(self, window: Window) -> None:
        """A flush window at its ``step`` (one process, or a steady flush of several ranks),
        reduced only when a query needs it (or by the writer)."""
        window.cached = True; self._pending.append(window)  # noqa: E702 (see Window.cached)
        if len(self._pending) >= self._take_at:
            self._take_waiting()

    def _take_waiting(self) -> None:
        """Bound what waits, on the caller's (training) thread: the leading results already
        reduced (by rank 0's writer, which reduces every window it writes within a poll or
        two, or by ``MetricsCore.settle`` on the other ranks) are taken with no reduction
        here; windows nobody reduced are reduced here once ``WAITING_MAX`` wait."""
        pending = self._pending
        n = next((i for i, p in enumerate(pending) if p.__class__ is not tuple and not p.done), len(pending))
        if n:
            self._materialize(n)
        elif len(pending) >= WAITING_MAX:
            self._materialize()
        self._take_at = max(self._pending_max, len(self._pending) + 64)

    def _materialize(self, upto: int | None = None) -> None:
        """Take the first ``upto`` waiting results (all of them if None)."""
        if self._logged:
            self._take_logged()
        if upto is None:
            pending, self._pending = self._pending, []
        else:
            pending, self._pending = self._pending[:upto], self._pending[upto:]
        windows = [p for p in pending if p.__class__ is not tuple]
        if windows:  # at once: windows reduced together are one block
            reduce_windows(windows)
        i, n = 0, len(pending)
        while i < n:  # runs of windows over one union, and of reduced rows over one key tuple
            first = pending[i]
            j = i + 1
            if first.__class__ is not tuple:  # a window
                keys = first.union
                while j < n and pending[j].__class__ is not tuple and pending[j].union == keys:
                    j += 1
                run = pending[i:j]
                rows, present = window_rows(run)
                steps = np.fromiter((w.step for w in run), np.float64, j - i)
            else:  # (the keys of each flush, every one present)
                keys = first[0]
                while j < n and pending[j].__class__ is tuple and (pending[j][0] is keys or pending[j][0] == keys):
                    j += 1
                rows, present = np.stack([p[2] for p in pending[i:j]]), None
                steps = np.fromiter((p[1] for p in pending[i:j]), np.float64, j - i)
            self._take(keys, steps, rows, present)
            i = j

    def _take(self, keys: tuple[str, ...], steps: np.ndarray, rows: np.ndarray,
              present: np.ndarray | None) -> None:
        """Points of flushes at ``steps`` over ``keys`` (``rows``: ``(n, K, STAT_COLUMNS)``;
        ``present``: which keys each flush had, None for all)."""
        if len(steps) <= _FEW:  # STAT_COLUMNS: value, mean, min, max, sum, count, ...
            for f, step in enumerate(steps.tolist()):
                here = None if present is None else present[f].tolist()
                for u, (value, _mean, mn, mx, total, count, *_rest) in enumerate(rows[f].tolist()):
                    if here is None or here[u]:
                        self._add_tuple(keys[u], (step, value, total, count, mn, mx))
            return
        # every key's points at once, key-major: a key's block is a view of its rows
        pts = np.empty((len(keys), len(steps), 6))
        pts[:, :, _P_STEP] = steps
        pts[:, :, _P_VALUE:] = rows[:, :, [0, 4, 5, 2, 3]].transpose(1, 0, 2)  # value, sum, count, min, max
        if present is None:
            for u, key in enumerate(keys):
                self._add_points(key, pts[u])
            return
        full = present.all(axis=0).tolist()
        for u in np.flatnonzero(present.any(axis=0)).tolist():
            self._add_points(keys[u], pts[u] if full[u] else pts[u][present[:, u]])

    def _add_points(self, key: str, pts: np.ndarray) -> None:
        blocks = self._blocks.get(key)
        if blocks is None:
            blocks = self._blocks[key] = []
            self._n[key] = 0
        self._seal_tail(key)  # (a key's points stay in arrival order)
        blocks.append(pts)
        self._n[key] += len(pts)
        if self._n[key] > self._keep_max:  # only the last `window` points can matter
            self._joined(key)

    def _add_tuple(self, key: str, point: tuple) -> None:
        tail = self._tails.get(key)
        if tail is None:
            tail = self._tails[key] = []
            if key not in self._blocks:
                self._blocks[key] = []
                self._n[key] = 0
        tail.append(point)
        n = self._n[key] = self._n[key] + 1
        if n > self._keep_max:  # only the last `window` points can matter
            self._joined(key)
        elif len(tail) >= _TAIL:
            self._seal_tail(key)

    def _seal_tail(self, key: str) -> None:
        """``key``'s tuples, if any, become its last block."""
        tail = self._tails.get(key)
        if tail:
            self._blocks[key].append(np.array(tail, dtype=np.float64))
            tail.clear()

    def _joined(self, key: str) -> np.ndarray:
        """``key``'s last ``window`` points, by step (a key logged and flushed too gets its
        points from two sources: rows arrive out of step order there)."""
        self._seal_tail(key)
        blocks = self._blocks[key]
        pts = blocks[0] if len(blocks) == 1 else np.concatenate(blocks) if blocks else np.zeros((0, 6))
        st = pts[:, _P_STEP]
        if len(st) > 1 and not (st[1:] >= st[:-1]).all():
            pts = pts[np.argsort(st, kind="stable")]
        pts = pts[-self.window:]
        blocks[:] = [pts]
        self._n[key] = len(pts)
        return pts

    def keys(self) -> list[str]:
        self._materialize()
        return sorted(self._blocks)

    def _points(self, key: str, window: int | None) -> np.ndarray:
        if window is not None and (isinstance(window, bool) or not isinstance(window, (int, np.integer))
                                   or window < 1):
            raise ValueError(f"window must be a number of points, at least 1 (or None: every point "
                             f"kept, up to the logger's window={self.window}); got {window!r}")
        if window is not None and window > self.window:  # (it can never get more: said once a minute)
            from .report import warn

            warn(f"window={window} asks for more points than the logger keeps a key ({self.window}: "
                 f"get_logger(window={self.window})): statistics over at most {self.window}; pass "
                 f"get_logger(window={window}) to keep more", key=f"stats window {window}")
        self._materialize()
        if key not in self._blocks:
            raise KeyError(f"no values for metric {key!r}; known: {', '.join(self.keys()) or 'none yet'}")
        pts = self._joined(key)
        return pts if window is None else pts[len(pts) - min(window, len(pts)):]

    def _values(self, key: str, window: int | None) -> np.ndarray:
        v = self._points(key, window)[:, _P_VALUE]
        return v[np.isfinite(v)]

    def stats(self, key: str, window: int | None = None) -> Stats:
        pts = self._points(key, window)
        v = pts[:, _P_VALUE]
        v = v[np.isfinite(v)]
        count = float(pts[:, _P_COUNT].sum())
        nan = float("nan")
        if count == 0:
            return Stats(nan, nan, nan, nan, nan, 0, len(pts))
        with np.errstate(invalid="ignore"):
            var = float(v.var()) if v.size else nan
        return Stats(float(pts[:, _P_SUM].sum() / count), var, float(np.sqrt(var)),
                     float(np.nanmin(pts[:, _P_MIN])), float(np.nanmax(pts[:, _P_MAX])),
                     int(count), len(pts))

    def percentile(self, key: str, p: float, window: int | None = None) -> float:
        """The ``p``-th percentile of the points' headline values (one per row)."""
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be within 0..100, got {p!r}")
        v = self._values(key, window)
        return float(np.percentile(v, p)) if v.size else float("nan")

    def summary(self, key: str, frequency: int) -> list[dict[str, float]]:
        """Per-window summaries: one entry per ``frequency`` consecutive steps, over the raw
        values behind the points (count, Σsum/Σcount, lowest min, highest max)."""
        allowed = summary_frequencies(max(frequency, 1))
        if frequency not in allowed:
            raise ValueError(f"frequency must be one of {allowed[:20]}...; got {frequency!r}")
        pts = self._points(key, None)
        out = []
        bins = np.floor(pts[:, _P_STEP] / frequency)
        nan = float("nan")
        for b in np.unique(bins):
            p = pts[bins == b]
            n = float(p[:, _P_COUNT].sum())
            out.append({
                "step": float(b * frequency), "count": int(n),
                "mean": float(p[:, _P_SUM].sum() / n) if n else nan,
                "min": float(np.nanmin(p[:, _P_MIN])) if n else nan,
                "max": float(np.nanmax(p[:, _P_MAX])) if n else nan,
            })
        return out
