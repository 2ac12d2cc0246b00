"""The committed rows of recently charted series, kept so that zooming and live polls do not
re-read a million rows: an LRU bounded in bytes, keyed by (run, rank, key, committed rows).

A live run's series grows: a request for more rows than the cached copy reads only the new
rows (``MetricsReader.read(start=...)``) and extends the copy.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from ..query.run_reader import RunReader

#: the columns a chart uses (the others stay in the store)
CHART_COLUMNS = ("step", "time", "value", "min", "max")


class SeriesCache:
    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._reading: dict[tuple, threading.Lock] = {}

    @staticmethod
    def _size(cols: dict[str, np.ndarray]) -> int:
        return sum(c.nbytes for c in cols.values())

    def get(self, run: RunReader, key: str, rank: int | None, n: int) -> dict[str, np.ndarray]:
        """Rows ``[0, n)`` of ``key`` as ``{column: array}`` (the chart columns only)."""
        ident = (run.url, rank or 0, key)
        with self._lock:
            reading = self._reading.setdefault(ident, threading.Lock())
        with reading:  # one read per series at a time: a second asker waits, then hits
            return self._get(run, key, rank, n, ident)

    def _get(self, run: RunReader, key: str, rank: int | None, n: int, ident: tuple) -> dict[str, np.ndarray]:
        with self._lock:
            have = self._items.get(ident)
            if have is not None:
                self._items.move_to_end(ident)
        have_n = len(have["step"]) if have is not None else 0
        if have is not None and have_n == n:
            return have
        if have is not None and have_n < n:
            new = _pick(run.metrics.read(key, rank, start=have_n, stop=n))
            cols = {c: np.concatenate([have[c], new[c]]) for c in have}
        else:
            cols = _pick(run.metrics.read(key, rank, stop=n))
        self._put(ident, cols, have)
        return cols

    def _put(self, ident: tuple, cols: dict[str, np.ndarray], old: dict | None) -> None:
        with self._lock:
            prev = self._items.pop(ident, None)
            if prev is not None:
                self._bytes -= self._size(prev)
            self._items[ident] = cols
            self._bytes += self._size(cols)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= self._size(dropped)


def _pick(series) -> dict[str, np.ndarray]:
    return {c: np.ascontiguousarray(series[c]) for c in CHART_COLUMNS if c in series.columns}
