"""The hot path's units, turned into rows off the training thread.

* ``Window``: a one-process flush window, reduced once, by whichever thread asks first;
  ``reduce_windows`` reduces a run of them at once (one ``bincount`` over window × key).
* ``GatheredWindow``: a steady flush of several ranks as its all_gather left it (every
  rank's packed statistics), reduced the same way, many flushes per batch.
* ``EntryHandler``: the writer's entry list, in order: runs of ``log()`` calls
  (``logged_entries_handler``: each call's keyword dict, many steps at once) and runs of
  one-process flushes (windows with their ``step`` and ``time`` → ``write_windows``).

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
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

import numpy as np

from . import reduce as R
from .writers.rowstore import Packing

if TYPE_CHECKING:
    from .writers.rowstore import RowTable


class LoggedCache(Protocol):
    """What the writer-side handler feeds with logged values (``stats.ScalarCache``)."""

    def add_logged(self, keys: Any, steps: Any, values: Any) -> None: ...


#: about what a collected value costs until its window is reduced (its slot in a call site's
#: list or in a dict, and its float object)
VALUE_BYTES = 56
_RESULTS = threading.Lock()  # a window's flush() result is computed once, whichever thread asks


class Window:
    """One flush window of one process over the agreed ``union``: ``collect(**kw)`` dicts per
    view (``entry_lists``: ``(prefix, [dict])``) and ``collector()`` values as local key ids
    (``ids[j]`` is the local id of ``values[j]``, ``positions`` maps local ids to the union).
    ``columns`` caches each ``(prefix, key tuple)``'s union positions (the union is fixed).
    ``sites``: one process's call sites, ``(prefix, key tuple, values)`` with the values of
    each call one after another in the key tuple's order."""

    def __init__(self, union: tuple[str, ...], columns: dict[Any, np.ndarray],
                 entry_lists: list[tuple[str, list[dict[str, Any]]]], ids: list[int],
                 values: list[float], positions: np.ndarray, aggregation: str,
                 sites: list[tuple[str, tuple[str, ...], list[float]]] = ()) -> None:  # type: ignore[assignment]
        self.union, self.aggregation, self._columns = union, aggregation, columns
        self._entry_lists, self._ids, self._values, self._positions = entry_lists, ids, values, positions
        self._sites = sites
        self._reduced: R.Reduced | None = None
        self._present: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None
        self._group: _Group | None = None  # set by reduce_windows: the batch and this window's row
        self._wi = 0

    @property
    def done(self) -> bool:
        """Reduced already (by the writer, or by a reader of the result)."""
        return self._group is not None

    nbytes = 0  # what it holds until reduced (set by a one-process flush: VALUE_BYTES a value)
    handed = False  # on the writer's entry list (rank 0): a flush interrupted after it keeps it
    # in the core's list of windows to settle, in the stats cache: each set just before its
    # append (same line), so a flush interrupted part-way completes exactly what is missing
    noted = cached = False
    # where a flush handed it on (``metrics._hand_on``): its rows' step and time. The window
    # itself is the item on the writer's entry list, the cache's and the core's pending lists
    # (no wrapper objects: windows wait there in a tight loop, and each object kept is one
    # more for the cyclic GC to scan)
    step = 0.0
    time = 0.0

    def _reduced_group(self) -> "_Group":
        g = self._group
        if g is None:
            reduce_windows([self])
            g = self._group
        return g

    def reduced(self) -> R.Reduced:
        with _RESULTS:  # (one lock for every window: a flush makes no lock of its own)
            if self._reduced is None:
                g = self._reduced_group()
                r = g.rows[self._wi]  # STAT_COLUMNS: headline, then the Reduced fields in order
                self._reduced = R.Reduced(self.union, *(r[:, j].copy() for j in range(1, len(R.STAT_COLUMNS))))
            return self._reduced

    def mask(self) -> np.ndarray:
        """The union keys with any value in this window (finite or not)."""
        return self._reduced_group().present[self._wi]

    def present(self) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """``(keys, STAT_COLUMNS rows, mask over the union)`` of the keys with any value."""
        p = self._present
        if p is None:
            g, i = self._reduced_group(), self._wi
            if g.full[i]:
                p = (self.union, g.rows[i], g.present[i])
            else:
                keep = np.flatnonzero(g.present[i])
                p = (tuple(self.union[x] for x in keep), g.rows[i][keep], g.present[i])
            self._present = p
        return p


class GatheredWindow(Window):
    """A flush window of several ranks, as the collective left it: every rank's packed
    statistics side by side (``rows``: ``(ranks, len(s) + len(m))`` of ``reduce.pack``'s
    buckets, ``s`` of ``s_size`` values). A steady flush reads only the header and the
    ranks' agreement from it (``reduce.header_of_rows``) and hands the window on unreduced,
    like a one-process window: rank 0's writer reduces it for the stored rows (many at once,
    ``reduce.reduce_gathered_rows``), and a rank's training thread only when the script reads
    flush()'s result, asks for statistics, or needs the keys' last flushed steps."""

    def __init__(self, union: tuple[str, ...], rows: np.ndarray, s_size: int, aggregation: str) -> None:
        self.union, self.aggregation, self._rows, self._s_size = union, aggregation, rows, s_size
        self._reduced = self._present = self._group = None
        self._wi = 0

    @property
    def nbytes(self) -> int:
        """What the window holds until it is reduced (its gathered rows)."""
        rows = self._rows
        return 0 if rows is None else rows.nbytes


def _reduce_gathered(ws: list[GatheredWindow]) -> None:
    """Reduce gathered windows, each run over one union (and row layout) in one batch."""
    i, n = 0, len(ws)
    while i < n:
        w0 = ws[i]
        j = i + 1
        while j < n and ws[j].union is w0.union and ws[j]._rows.shape == w0._rows.shape:
            j += 1
        run = ws[i:j]
        total, count, mn, mx, bad, amin, amax = R.reduce_gathered_rows(
            np.stack([w._rows for w in run]), len(w0.union), w0._s_size)
        _set_group(run, total, count, mn, mx, bad, amin, amax)
        for w in run:
            w._rows = None  # not needed any more
        i = j


class _Group:
    """Windows reduced together: per window (first axis) and union key (second axis), their
    ``STAT_COLUMNS`` rows (what a store row and a ``Reduced`` hold) and which keys had a value."""

    __slots__ = ("rows", "present", "full")

    def __init__(self, rows: np.ndarray, present: np.ndarray) -> None:
        self.rows, self.present = rows, present  # rows: (n, K, len(STAT_COLUMNS))
        self.full = present.all(axis=1)


def window_rows(windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
    """The ``STAT_COLUMNS`` rows ``(n, K, 9)`` and presence ``(n, K)`` of ``windows`` (one
    union, reduced here if not yet): one slice per run of windows reduced together."""
    reduce_windows(windows)
    rows, present = [], []
    i, n = 0, len(windows)
    while i < n:
        g, wi = windows[i]._group, windows[i]._wi
        j = i + 1
        while j < n and windows[j]._group is g and windows[j]._wi == wi + j - i:
            j += 1
        rows.append(g.rows[wi : wi + j - i])
        present.append(g.present[wi : wi + j - i])
        i = j
    if len(rows) == 1:
        return rows[0], present[0]
    return np.concatenate(rows), np.concatenate(present)


_AGG_COLUMN = {"mean": 1, "min": 2, "max": 3, "sum": 4}  # STAT_COLUMNS position of each headline


_REDUCING = threading.Lock()


def reduce_windows(windows: list[Window]) -> None:
    """Reduce every window not reduced yet, many at once: consecutive windows over one union
    are one ``bincount`` over ``window * len(union) + key`` (no NumPy call per window). Any
    thread, one at a time: the writer reduces the windows it writes while the training thread
    may reduce the same ones (a result read, statistics asked for); reducing drops a window's
    values, so a second reducer that picked a window before the first finished would see none
    and replace its statistics with empty ones (a lost row)."""
    with _REDUCING:
        _reduce_windows(windows)


def _reduce_windows(windows: list[Window]) -> None:
    todo = [w for w in windows if w._group is None]
    if any(type(w) is GatheredWindow for w in todo):
        _reduce_gathered([w for w in todo if type(w) is GatheredWindow])
        todo = [w for w in todo if type(w) is not GatheredWindow]
    i, n = 0, len(todo)
    while i < n:
        w0 = todo[i]
        j = i + 1
        while j < n and todo[j].union is w0.union and todo[j]._positions is w0._positions:
            j += 1
        _reduce_group(todo[i:j])
        i = j


def _columns(w: Window, prefix: str, kt: tuple[str, ...]) -> np.ndarray:
    """The union positions of the keys ``kt`` of view ``prefix`` (cached for the union)."""
    cols = w._columns.get((prefix, kt))
    if cols is None:
        index = {k: p for p, k in enumerate(w.union)}
        cols = w._columns[(prefix, kt)] = np.array([index[prefix + k] for k in kt], dtype=np.intp)
    return cols


def one_site_values(dicts: list[dict[str, Any]],
                    kt: tuple[str, ...] | None = None) -> tuple[tuple[str, ...], np.ndarray] | None:
    """``(keys, values)`` when every dict of ``dicts`` has the keys of the first (in any
    order): ``values`` is ``(len(dicts) * len(keys))`` floats in ``keys`` order, taken in C
    (``itemgetter``); None otherwise. One call site of ``collect``/``log`` gives such runs.
    ``kt``: ``tuple(dicts[0])``, where the caller has it already."""
    if kt is None:
        kt = tuple(dicts[0])
    k = len(kt)
    if len(dicts) == 1:  # one dict (a flush every step): its values are in kt's order
        return (kt, np.fromiter(dicts[0].values(), np.float64, k)) if k else None
    if not k or sum(map(len, dicts)) != k * len(dicts):
        return None
    get = itemgetter(*kt)
    try:  # every dict has k keys, and each has all of kt's (else KeyError): the same key set
        flat = map(get, dicts) if k == 1 else itertools.chain.from_iterable(map(get, dicts))
        return kt, np.fromiter(flat, np.float64, k * len(dicts))
    except KeyError:
        return None


def _one_site(ws: list[Window]) -> tuple[str, tuple[str, ...], list[int], np.ndarray] | None:
    """``(prefix, keys, dicts per window, values)`` when every window's ``collect()`` dicts
    come from one view with one key set, else None (``_reduce_group`` groups them itself)."""
    first = ws[0]._entry_lists
    if len(first) != 1 or not first[0][1]:
        return None
    prefix = first[0][0]
    counts = []
    for w in ws:
        lists = w._entry_lists
        if len(lists) != 1 or lists[0][0] != prefix:
            return None
        counts.append(len(lists[0][1]))
    got = one_site_values(list(itertools.chain.from_iterable(w._entry_lists[0][1] for w in ws)))
    return None if got is None else (prefix, got[0], counts, got[1])


def _one_call_site(ws: list[Window]) -> tuple[str, tuple[str, ...], np.ndarray, int] | None:
    """``(prefix, keys, values, calls per window)`` when every window holds only the values
    of one call site (one view, one key tuple), as many calls in each; else None."""
    first = ws[0]._sites
    if len(first) != 1:
        return None
    prefix, kt, vals = first[0]
    m = len(vals)
    for w in ws:
        s = w._sites
        if (len(s) != 1 or w._entry_lists or w._ids or len(s[0][2]) != m
                or s[0][0] != prefix or (s[0][1] is not kt and s[0][1] != kt)):
            return None
    values = np.fromiter(itertools.chain.from_iterable(w._sites[0][2] for w in ws), np.float64, m * len(ws))
    return prefix, kt, values, m // len(kt)


def _reduce_uniform(ws: list[Window], cols: np.ndarray, values: np.ndarray, per: int) -> None:
    """``_reduce_group`` of windows that each hold ``per`` calls of one call site and nothing
    else (a flush every ``per`` steps): ``values`` is one ``(windows, per, keys)`` block,
    reduced along its middle axis (no ``bincount``, no ``ufunc.at``)."""
    n, U, k = len(ws), len(ws[0].union), len(cols)
    total, count, bad = np.zeros((n, U)), np.zeros((n, U)), np.zeros((n, U))
    mn, mx = np.full((n, U), np.inf), np.full((n, U), -np.inf)
    total[:, cols], count[:, cols], mn[:, cols], mx[:, cols], bad[:, cols] = R.block_stats(
        values.reshape(n, per, k), axis=1)
    _set_group(ws, total, count, mn, mx, bad)


def _reduce_group(ws: list[Window]) -> None:
    union, positions = ws[0].union, ws[0]._positions
    U, n = len(union), len(ws)
    id_parts, val_parts = [], []
    # collect(**kw) dicts: runs with one key tuple (one call site) are one matrix; runs of one
    # (prefix, key tuple) across every window are read with one fromiter
    runs: dict[Any, list[Any]] = {}
    site = _one_call_site(ws)
    if site is not None:  # the usual one-process loop: one call site, as many calls each flush
        prefix, kt, values, per = site
        return _reduce_uniform(ws, _columns(ws[0], prefix, kt), values, per)
    one = _one_site(ws)
    if (one is not None and one[2].count(one[2][0]) == n and one[2][0]
            and not any(w._ids or w._sites for w in ws)):
        return _reduce_uniform(ws, _columns(ws[0], one[0], one[1]), one[3], one[2][0])
    for wi, w in enumerate(ws):  # call sites' values: one matrix per site and window
        for prefix, kt, vals in w._sites:
            cols = _columns(ws[0], prefix, kt)
            val_parts.append(np.array(vals, dtype=np.float64))
            id_parts.append(np.tile(cols, len(vals) // len(kt)) + wi * U)
    if one is not None:  # the usual training loop: no Python per window or per dict
        prefix, kt, counts, values = one
        cols = _columns(ws[0], prefix, kt)
        val_parts.append(values)
        id_parts.append(np.tile(cols, len(values) // len(kt))
                        + np.repeat(np.arange(n, dtype=np.intp) * U, np.array(counts, dtype=np.intp) * len(kt)))
    for wi, w in enumerate(ws if one is None else ()):
        for prefix, entries in w._entry_lists:
            i, m = 0, len(entries)
            kts = list(map(tuple, entries))
            while i < m:
                kt = kts[i]
                if i == 0 and kts.count(kt) == m:  # the usual case: one call site, one run
                    j = m
                else:
                    j = i + 1
                    while j < m and kts[j] == kt:
                        j += 1
                r = runs.get((prefix, kt))
                if r is None:
                    r = runs[(prefix, kt)] = [[], [], []]
                r[0].append(wi)
                r[1].append(j - i)
                r[2].append(itertools.islice(entries, i, j))
                i = j
    for (prefix, kt), (wis, counts, slices) in runs.items():
        cols = _columns(ws[0], prefix, kt)
        k, total = len(kt), sum(counts)
        chain = itertools.chain.from_iterable(map(dict.values, itertools.chain.from_iterable(slices)))
        val_parts.append(np.fromiter(chain, np.float64, total * k))
        offsets = np.repeat(np.array(wis, dtype=np.intp) * U, np.array(counts, dtype=np.intp) * k)
        id_parts.append(np.tile(cols, total) + offsets)
    lens = [len(w._ids) for w in ws]
    m = sum(lens)
    if m:
        ids = np.fromiter(itertools.chain.from_iterable(w._ids for w in ws), np.intp, m)
        id_parts.append(positions[ids] + np.repeat(np.arange(n, dtype=np.intp) * U, lens))
        val_parts.append(np.fromiter(itertools.chain.from_iterable(w._values for w in ws), np.float64, m))
    if id_parts:
        ids = np.concatenate(id_parts) if len(id_parts) > 1 else id_parts[0]
        vals = np.concatenate(val_parts) if len(val_parts) > 1 else val_parts[0]
    else:
        ids, vals = np.zeros(0, dtype=np.intp), np.zeros(0)
    bins = n * U
    fin = np.isfinite(vals)
    if fin.all():
        fid, fv = ids, vals
        bad = np.zeros((n, U))
    else:
        fid, fv = ids[fin], vals[fin]
        bad = np.bincount(ids[~fin], minlength=bins).astype(np.float64).reshape(n, U)
    total = np.bincount(fid, weights=fv, minlength=bins).reshape(n, U)
    count = np.bincount(fid, minlength=bins).astype(np.float64).reshape(n, U)
    mn, mx = np.full(bins, np.inf), np.full(bins, -np.inf)
    np.minimum.at(mn, fid, fv)
    np.maximum.at(mx, fid, fv)
    _set_group(ws, total, count, mn.reshape(n, U), mx.reshape(n, U), bad)


def _set_group(ws: list[Window], total: np.ndarray, count: np.ndarray, mn: np.ndarray,
               mx: np.ndarray, bad: np.ndarray, amin: np.ndarray | None = None,
               amax: np.ndarray | None = None) -> None:
    """Give each window of ``ws`` its row of the batch's ``(windows, union)`` statistics
    (``amin``/``amax``: the ranks holding each minimum and maximum; one process: rank 0
    wherever a value was finite)."""
    n, U = total.shape
    empty = count == 0
    # one contiguous plane per column (whole-array copies, not strided ones), seen as rows
    planes = np.empty((len(R.STAT_COLUMNS), n, U))
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(total, count, out=planes[1])  # 0/0: NaN where no value was finite
    planes[2], planes[3], planes[4], planes[5], planes[6] = mn, mx, total, count, bad
    one = amin is None or amax is None
    if one:
        planes[7:9] = 0.0  # one process: rank 0 where finite
    else:
        planes[7], planes[8] = amin, amax  # (NaN already where no rank had a finite value)
    nothing = empty.any()
    if nothing:  # no finite value: NaN, not the ±inf and 0 of an empty reduction
        for c in (2, 3, 7, 8) if one else (2, 3):
            planes[c][empty] = np.nan
    aggs = [w.aggregation for w in ws]
    if aggs.count(aggs[0]) == n:
        planes[0] = planes[_AGG_COLUMN[aggs[0]]]
    else:
        for wi, a in enumerate(aggs):
            planes[0, wi] = planes[_AGG_COLUMN[a], wi]
    if nothing and "sum" in aggs:  # the headline is NaN there (docs/FORMAT.md), not the sum's 0
        planes[0][empty] = np.nan  # (the other headlines are NaN there already)
    g = _Group(planes.transpose(1, 2, 0), (count + bad) > 0)
    for wi, w in enumerate(ws):
        w._wi = wi  # before _group: a reader that sees the group reads its own row
        w._group = g
        w._entry_lists = w._ids = w._values = w._sites = ()  # not needed any more


def write_windows(t: "RowTable", items: list[Window]) -> None:
    """The rows of many flushes handed on (windows with their ``step`` and ``time``) into
    table ``t``: reduced at once; a run of windows of one batch where every union key has a
    value is one block of rows per key."""
    reduce_windows(items)
    i, n = 0, len(items)
    while i < n:
        w = items[i]
        g, wi = w._group, w._wi
        j = i
        while j < n and items[j]._group is g and items[j]._wi == wi + j - i and g.full[wi + j - i]:
            j += 1
        if j == i:  # some keys without a value: only the present ones get a row
            keys, stats, _ = w.present()
            if len(keys):
                rows = np.empty((len(keys), 2 + stats.shape[1]))
                rows[:, 0] = items[i].step
                rows[:, 1] = items[i].time
                rows[:, 2:] = stats
                t.add_many(keys, rows)
            i += 1
            continue
        run = items[i:j]
        m = len(run)
        rows = np.empty((len(w.union), m, 2 + len(R.STAT_COLUMNS)))
        rows[:, :, 0] = np.fromiter((f.step for f in run), np.float64, m)
        rows[:, :, 1] = np.fromiter((f.time for f in run), np.float64, m)
        rows[:, :, 2:] = g.rows[wi : wi + m].transpose(1, 0, 2)
        t.add_block(w.union, rows)
        i = j


class EntryHandler:
    """The writer-thread side of the entry list: runs of ``log()`` calls and runs of
    flushes handed on (``Window``), in the order they were appended."""

    def __init__(self, table: str, cache: LoggedCache, logged: dict[str, float]) -> None:
        self.table = table
        self._log = logged_entries_handler(table, cache, logged)

    def __call__(self, items: list[Any], tables: dict[str, "RowTable"]) -> None:
        i, n = 0, len(items)
        types = list(map(type, items))
        flushes = types.count(Window) + types.count(GatheredWindow)
        if flushes == n:  # the usual lists: only flushes, or only log() calls (no Python per item)
            if n:
                write_windows(tables[self.table], items)
            return
        if not flushes:
            self._log(items, tables)
            return
        while i < n:
            flush = types[i] is not tuple  # (a log() call is a tuple)
            j = i + 1
            while j < n and (types[j] is not tuple) == flush:
                j += 1
            if flush:
                write_windows(tables[self.table], items[i:j])
            else:
                self._log(items[i:j], tables)
            i = j


_prefix, _step, _time, _values = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(3)


def logged_entries_handler(table: str, cache: LoggedCache, logged: dict[str, float]
                           ) -> Callable[[list[Any], dict[str, "RowTable"]], None]:
    """The writer-thread side of ``log()``: items are ``(prefix, step, time, values)`` in call
    order. A run of calls with one key tuple (one call site) becomes one matrix: rows for
    each series, the values for the stats cache, and each key's last logged step in
    ``logged`` (read by the training thread after ``BackgroundWriter.sync_entries``)."""
    key_cache: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}

    def handle(items: list[Any], tables: dict[str, "RowTable"]) -> None:
        t = tables[table]
        for prefix, kt, group, flat in _logged_runs(items):
            keys = key_cache.get((prefix, kt))
            if keys is None:
                keys = key_cache[(prefix, kt)] = tuple(prefix + k for k in kt)
            m, k = len(group), len(kt)
            # (two plain passes: half the time of one pass over (step, time) pairs)
            steps = np.fromiter(map(_step, group), np.float64, m)
            times = np.fromiter(map(_time, group), np.float64, m)
            values = flat.reshape(m, k)
            last = float(steps[-1])
            increasing = m == 1 or bool((steps[1:] > steps[:-1]).all())
            for col, key in enumerate(keys):
                logged[key] = last
                v = values[:, col]
                t.add_filled(key, steps, increasing, lambda out, v=v: R.fill_logged_head(out, steps, times, v), LOGGED)
            cache.add_logged(keys, steps, values)

    return handle


#: a series of logged values is buffered as its rows' step, time and value
LOGGED = Packing(R.LOGGED_HEAD, R.widen_logged)


def _logged_runs(items: list[Any]) -> Iterator[tuple[str, tuple[str, ...], list[Any], np.ndarray]]:
    """``(prefix, keys, calls, values)`` per run of ``log()`` calls whose rows can be built as
    one matrix, every key's calls in call order:

    * one view and one key set throughout (the usual loop): one run, read in C;
    * several call sites (``log(loss=)`` and ``log(lr=)`` each step, or two views) whose
      keys are all distinct: one run per call site (each key belongs to one of them);
    * otherwise (a key logged from two call sites): consecutive calls with one key tuple."""
    n = len(items)
    if not n:
        return
    prefix = items[0][0]
    prefixes, dicts = list(map(_prefix, items)), list(map(_values, items))
    if prefixes.count(prefix) == n:
        one = one_site_values(dicts)
        if one is not None:
            yield prefix, one[0], items, one[1]
            return
    sites = list(zip(prefixes, map(tuple, dicts)))
    groups: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
    for site, item in zip(sites, items):
        g = groups.get(site)
        if g is None:
            g = groups[site] = []
        g.append(item)
    full = [p + k for p, kt in groups for k in kt]
    if len(set(full)) == len(full):  # no key in two call sites: each one's calls are one run
        for (p, kt), group in groups.items():
            yield p, kt, group, _values_of(group, len(kt))
        return
    i = 0
    while i < n:
        j = i + 1
        while j < n and sites[j] == sites[i]:
            j += 1
        group = items[i:j]
        yield sites[i][0], sites[i][1], group, _values_of(group, len(sites[i][1]))
        i = j


def _values_of(calls: list[Any], k: int) -> np.ndarray:
    """The values of ``log()`` calls that all have one key tuple (of ``k`` keys), flat, in order."""
    return np.fromiter(itertools.chain.from_iterable(map(dict.values, map(_values, calls))), np.float64,
                       len(calls) * k)
