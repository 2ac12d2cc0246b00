"""The hot path's units, turned into rows off the training thread.

* ``Window``: a one-process flush window, reduced once, by whichever thread asks first.
* ``logged_entries_handler``: on the writer thread, the rows of ``log()`` calls (each call's
  keyword dict, as the training thread appended it), many steps at once.

A one-process ``flush()`` (``metrics._flush_one_process``) does no NumPy on the training
thread: it moves the window's ``collect()`` values (local key ids and values, as the hot path
appended them) into a ``Window`` and hands it to the writer thread, which reduces it for the
stored rows; the training thread reduces it only if the script reads flush()'s result, asks
for statistics, or needs the keys' last flushed steps (``_Core.flushed_steps``).
"""

from __future__ import annotations

import itertools
import threading
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import reduce as R

if TYPE_CHECKING:
    from .stats import ScalarCache
    from .writers.rowstore import RowTable


class Window:
    """One flush window of one process over the agreed ``union``: ``collect(**kw)`` dicts per
    view (``entry_lists``: ``(prefix, [dict])``) and ``collector()`` values as local key ids
    (``ids[j]`` is the local id of ``values[j]``, ``positions`` maps local ids to the union).
    ``columns`` caches each ``(prefix, key tuple)``'s union positions (the union is fixed)."""

    def __init__(self, union: tuple[str, ...], columns: dict[Any, np.ndarray],
                 entry_lists: list[tuple[str, list[dict[str, Any]]]], ids: list[int],
                 values: list[float], positions: np.ndarray, aggregation: str) -> None:
        self.union, self.aggregation, self._columns = union, aggregation, columns
        self._entry_lists, self._ids, self._values, self._positions = entry_lists, ids, values, positions
        self._lock = threading.Lock()
        self._reduced: R.Reduced | None = None
        self._present: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None

    @property
    def done(self) -> bool:
        """Reduced already (by the writer, or by a reader of the result)."""
        return self._reduced is not None

    def reduced(self) -> R.Reduced:
        with self._lock:
            if self._reduced is None:
                ids, vals = self._arrays()
                self._reduced = R.reduce_window(self.union, ids, vals)
                self._entry_lists, self._ids, self._values = [], [], []  # not needed any more
            return self._reduced

    def present(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """``(keys, STAT_COLUMNS rows, mask over the union)`` of the keys with any value."""
        p = self._present
        if p is None:
            p = self._present = R.present_rows(self.reduced(), self.aggregation)
        return p

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every value of the window and its key's position in the union. Dicts come in runs
        with one key tuple (one call site): a run is one matrix, its columns mapped once."""
        id_parts, val_parts = [], []
        for prefix, entries in self._entry_lists:
            i, n = 0, len(entries)
            while i < n:
                kt = tuple(entries[i])
                j = i + 1
                while j < n and tuple(entries[j]) == kt:
                    j += 1
                cols = self._columns.get((prefix, kt))
                if cols is None:
                    index = {k: p for p, k in enumerate(self.union)}
                    cols = self._columns[(prefix, kt)] = np.array([index[prefix + k] for k in kt], dtype=np.intp)
                m, k = j - i, len(kt)
                chain = itertools.chain.from_iterable(map(dict.values, itertools.islice(entries, i, j)))
                val_parts.append(np.fromiter(chain, np.float64, m * k))
                id_parts.append(np.tile(cols, m))
                i = j
        if self._ids:
            n = len(self._ids)
            id_parts.append(self._positions[np.fromiter(self._ids, np.intp, n)])
            val_parts.append(np.fromiter(self._values, np.float64, n))
        if not id_parts:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        return np.concatenate(id_parts), np.concatenate(val_parts)


def window_writer(table: str, window: Window, step: float, now: float) -> Callable[[dict[str, Any]], None]:
    """What the writer thread runs for a one-process flush: the window's rows into ``table``."""

    def write(tables: dict[str, "RowTable"]) -> None:
        keys, stats, _ = window.present()
        if not len(keys):
            return
        rows = np.empty((len(keys), 2 + stats.shape[1]))
        rows[:, 0] = step
        rows[:, 1] = now
        rows[:, 2:] = stats
        tables[table].add_many(keys, rows)

    return write


_step, _time, _values = itemgetter(1), itemgetter(2), itemgetter(3)


def logged_entries_handler(table: str, cache: "ScalarCache", logged: dict[str, float]
                           ) -> Callable[[list[Any], dict[str, "RowTable"]], None]:
    """The writer-thread side of ``log()``: items are ``(prefix, step, time, values)`` in call
    order. A run of calls with one key tuple (one call site) becomes one matrix: rows for
    each series, the values for the stats cache, and each key's last logged step in
    ``logged`` (read by the training thread after ``BackgroundWriter.sync_entries``)."""
    key_cache: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}

    def handle(items: list[Any], tables: dict[str, "RowTable"]) -> None:
        t = tables[table]
        i, n = 0, len(items)
        while i < n:
            prefix = items[i][0]
            kt = tuple(items[i][3])
            j = i + 1
            while j < n and items[j][0] == prefix and tuple(items[j][3]) == kt:
                j += 1
            group = items[i:j]
            keys = key_cache.get((prefix, kt))
            if keys is None:
                keys = key_cache[(prefix, kt)] = tuple(prefix + k for k in kt)
            m, k = len(group), len(kt)
            steps = np.fromiter(map(_step, group), np.float64, m)
            times = np.fromiter(map(_time, group), np.float64, m)
            values = np.fromiter(itertools.chain.from_iterable(map(dict.values, map(_values, group))),
                                 np.float64, m * k).reshape(m, k)
            last = float(steps[-1])
            for key, rows in zip(keys, R.logged_rows(steps, times, values)):
                logged[key] = last
                t.add(key, rows)
            cache.add_logged(keys, steps, values)
            i = j

    return handle
