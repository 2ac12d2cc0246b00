"""The committed rows of recently charted series, kept so that zooming and live polls do not
re-read a million rows: an LRU bounded in bytes, keyed by (run, rank, key).

A live run's series grows: a request for more rows than the cached copy reads only the new
rows (``MetricsReader.read(start=...)``) and extends the copy. A resumed attempt may instead
rewind a series (drop its tail, then write other rows there), so the read of new rows starts
one row early, at the cached copy's last row: when the store holds another row there (another
step or time), the series was rewound and is read again whole. A request for as many rows as
cached is a hit while the table's commit record is the one the copy was checked against
(``stamp``, its commit time); after a commit it costs a one-row check.

Every whole read gets a new ``generation``: a page that holds rows of another generation holds
rows the series may no longer have, and must drop them instead of appending.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..query.run_reader import RunReader
from .downsample import ema

#: the columns a chart uses (the others stay in the store)
CHART_COLUMNS = ("step", "time", "value", "min", "max", "nonfinite")


@dataclass
class Cached:
    """A series' first ``len(cols["step"])`` rows, checked against the commit record ``stamp``."""

    cols: dict[str, np.ndarray]
    generation: str
    stamp: Any = None
    _smoothed: dict[float, np.ndarray] = field(default_factory=dict, repr=False)
    _skipped: Any = field(default=False, repr=False)  # (False: not computed yet)

    @property
    def rows(self) -> int:
        return len(self.cols["step"])

    def skipped(self) -> np.ndarray | None:
        """Per row, the NaN/±inf values its statistics left out while its value is a number
        (a flush window where one value went NaN: its mean reads healthy); None when no row
        has any (the chart then gets no such column)."""
        if self._skipped is False:
            nf = self.cols.get("nonfinite")
            out = None if nf is None else np.where(np.isfinite(self.cols["value"]), np.nan_to_num(nf), 0.0)
            self._skipped = out if out is not None and out.any() else None
        return self._skipped

    def smoothed(self, weight: float) -> np.ndarray:
        """The values' EMA over all these rows (``downsample.ema``), kept with the rows for
        the last weight asked (a slider's every position is not kept)."""
        out = self._smoothed.get(weight)
        if out is None:
            out = ema(self.cols["value"], weight)
            self._smoothed = {weight: out}
        return out


def same_row(have: dict[str, np.ndarray], i: int, row: dict[str, np.ndarray]) -> bool:
    """Whether row ``i`` of ``have`` is row 0 of ``row`` (step and time; NaN equals NaN)."""
    return all(c in row and len(row[c]) and np.array_equal(have[c][i:i + 1], row[c][:1], equal_nan=True)
               for c in ("step", "time") if c in have)


class SeriesCache:
    def __init__(self, max_bytes: int = 256 << 20) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, Cached] = OrderedDict()
        self._bytes = 0
        self._reading: dict[tuple, threading.Lock] = {}
        self._epoch = secrets.token_hex(4)  # generations of another server never match
        self._count = itertools.count(1)

    @staticmethod
    def _size(c: Cached) -> int:
        return sum(a.nbytes for a in c.cols.values())

    def get(self, run: RunReader, key: str, rank: int | None, n: int, stamp: Any = None) -> dict[str, np.ndarray]:
        """Rows ``[0, n)`` of ``key`` as ``{column: array}`` (the chart columns only)."""
        return self.entry(run, key, rank, n, stamp).cols

    def entry(self, run: RunReader, key: str, rank: int | None, n: int, stamp: Any = None) -> Cached:
        """``get`` with the rows' ``generation``. ``stamp``: what identifies the commit record
        ``n`` was taken from (its time); None checks the last cached row on every call."""
        ident = (run.url, rank or 0, key)
        with self._lock:
            reading = self._reading.setdefault(ident, threading.Lock())
        with reading:  # one read per series at a time: a second asker waits, then hits
            return self._get(run, key, rank, n, stamp, ident)

    def _get(self, run: RunReader, key: str, rank: int | None, n: int, stamp: Any, ident: tuple) -> Cached:
        with self._lock:
            have = self._items.get(ident)
            if have is not None:
                self._items.move_to_end(ident)
        if have is not None and have.rows == n and stamp is not None and stamp == have.stamp:
            return have
        out = None
        if have is not None and 0 < have.rows <= n:
            new = _pick(run.metrics.read(key, rank, start=have.rows - 1, stop=n))
            if same_row(have.cols, have.rows - 1, new):  # appended to: no rewind
                if have.rows == n:
                    have.stamp = stamp
                    return have
                out = Cached({c: np.concatenate([have.cols[c], new[c][1:]]) for c in have.cols},
                             have.generation, stamp)
        if out is None:
            out = Cached(_pick(run.metrics.read(key, rank, stop=n)), self._generation(), stamp)
        self._put(ident, out)
        return out

    def _generation(self) -> str:
        return f"{self._epoch}.{next(self._count)}"

    def _put(self, ident: tuple, c: Cached) -> None:
        with self._lock:
            prev = self._items.pop(ident, None)
            if prev is not None:
                self._bytes -= self._size(prev)
            self._items[ident] = c
            self._bytes += self._size(c)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= self._size(dropped)


def _pick(series) -> dict[str, np.ndarray]:
    return {c: np.ascontiguousarray(series[c]) for c in CHART_COLUMNS if c in series.columns}
