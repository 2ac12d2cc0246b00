"""``exp.metrics``: log now, or collect on every rank and reduce across ranks on flush.

``log()`` never communicates; ``collect()`` only appends to a local list (a 0-d CUDA tensor is
kept on its device: no host synchronisation); ``flush()`` is the one collective:

1. SUM of [flags header, sum, count, nonfinite, per-rank telemetry] and MAX of [step, max,
   -min] over the agreed key union — the steady state: one ``all_gather`` reduced locally
   while the buckets are small (latency-bound; argmin/argmax ranks from the gathered rows),
   else two ``all_reduce`` calls plus one for the argmin/argmax ranks; never more, whatever
   the number of keys. The header counts ranks with keys outside the union, with bad input, with a failed
   writer, and asking to stop.
2. Only when some rank has keys outside the union: one ``all_gather_object`` of those keys'
   statistics; every rank derives the same sorted union (never dict or set order).

Errors are decided after these collectives, from the same header, on every rank alike.

One process (``world_size == 1``) skips all of it in the steady state: ``flush()`` hands the
window to the writer thread and returns a ``Reduced`` computed on first use
(``_flush_one_process``); anything unusual (bad input, device tensors, a new key, a step that
does not go past the last flush's, a failed writer, the closing flush) takes the general path.
"""

from __future__ import annotations

import itertools
import math
import operator
import threading
import time
from numbers import Number, Real
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .layout import HISTOGRAMS_TABLE, SCALARS_TABLE
from .logline import step_shown, step_text
from . import reduce as R
from .entries import VALUE_BYTES, EntryHandler, GatheredWindow, Window, one_site_values, reduce_windows, window_rows
from .errors import FlushMismatch, RunStateError
from .interrupts import held_interrupt
from .names import check_name
from .report import warn
from .stats import ScalarCache, Stats
from .writers.rowstore import ENTRY_CHECK

if TYPE_CHECKING:
    from .comm import Comm
    from .context import RunContext
    from .monitor import RankMonitor
    from .writers.runwriters import RunWriters

#: columns of every scalar row on the store
SCALAR_COLUMNS = R.SCALAR_COLUMNS
# unreduced flush windows a rank keeps before it reduces them at once, on its training thread
# (a rank other than 0 keeps every steady flush's gathered rows until then; rank 0's writer
# reduces them a poll interval or two behind, thousands at a flush every step in a tight loop):
# at most this many, of at most this size
UNSETTLED_MAX, UNSETTLED_BYTES = 4096, 32 << 20


def _bad_type(key: str, v: Any, why: str = "") -> TypeError:
    shown = repr(v)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    if isinstance(v, dict):  # (a nested dict, as wandb.log flattens it)
        return TypeError(
            f"metric {key!r} got a dict ({shown}); a group of metrics goes under a namespace: "
            f"exp.metrics({key!r}).log({{...}}) (its keys become '{key}/<name>'), or flatten the "
            f"keys yourself ('{key}/loss')")
    fix = (f" (float(x): a {type(v).__name__} is stored as a float64)"
           if isinstance(v, Number) and not isinstance(v, (complex, np.complexfloating)) else "")
    return TypeError(
        f"metric {key!r} got a {type(v).__name__} ({shown}){why}; "
        f"log Python or NumPy numbers{fix}, or NumPy arrays or torch tensors of one element "
        "(0-d, or of shape (1,), (1, 1), ...)"
    )


# the hot paths of log() and collect() take a Python int unconverted only within this range
# (any int beyond it, up to float64's largest, goes through as_number: its float, or the error)
_INT_OK = 2**1023
_is_float = float.__instancecheck__  # (a float subclass such as NumPy's float64 counts)


def kept_on_device(t: Any) -> bool:
    """Whether ``collect()`` keeps a 0-d tensor on its device until the flush (reading it now
    would wait on the device) rather than reading its value at once."""
    return not t.is_cpu  # (``t.device.type`` builds a device object: 5× the cost)


def as_number(key: str, v: Any, keep_device_tensors: bool = False) -> Any:
    """A float, or (with ``keep_device_tensors``) a detached 0-d non-CPU tensor."""
    try:
        return _as_number(key, v, keep_device_tensors)
    except OverflowError:  # an int (or another Real) beyond float64's range
        shown = repr(v)
        raise ValueError(
            f"metric {key!r} got a {type(v).__name__} too large for a float64 "
            f"({shown[:20]}{'...' if len(shown) > 20 else ''}, {len(shown)} digits; the largest is "
            "about 1.8e308): log a smaller number, e.g. its logarithm") from None


def _meta_tensor(key: str) -> TypeError:
    # (kept until the flush, it would fail that flush, every later one and close)
    return TypeError(
        f"metric {key!r} got a Tensor on the meta device, which holds no value (a model "
        "built on device='meta' whose weights were never loaded or materialized); "
        "collect the real value: a tensor on the CPU or an accelerator, or a number")


def _as_number(key: str, v: Any, keep_device_tensors: bool) -> Any:
    t = type(v)
    if t is float or t is int or t is bool:
        return float(v)
    if isinstance(v, np.ndarray):
        if v.size != 1:  # (one element of any shape is the number it holds: (1,), (1, 1))
            raise _bad_type(key, v, f" of shape {v.shape}")
        if v.dtype.kind not in "biuf":
            raise _bad_type(key, v, f" of dtype {v.dtype}")
        return float(v.reshape(()))
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return float(v)
    if t.__module__.startswith("torch") and hasattr(v, "dim"):
        if v.dim() != 0:
            if v.numel() != 1:
                raise _bad_type(key, v, f" of shape {tuple(v.shape)}")
            v = v.reshape(())  # (a view: one element of any shape, as Lightning's self.log takes it)
        if v.dtype.is_complex:
            raise _bad_type(key, v, " with a complex dtype")
        if keep_device_tensors and kept_on_device(v):
            if v.is_meta:
                raise _meta_tensor(key)
            # kept by reference until the flush: detached when it is part of a graph (keeping
            # the graph alive until then would hold its activations); ``loss.detach()`` as
            # given is kept as it is (another detach costs ~1 µs)
            return v.detach() if v.requires_grad else v
        if v.is_meta:
            raise _meta_tensor(key)
        return float(v.item())
    if isinstance(v, Real) and not isinstance(v, (str, bytes)):
        return float(v)
    raise _bad_type(key, v)


class _Core:
    """State shared by a run's metrics logger and its namespaced views."""

    def __init__(self, window: int) -> None:
        # the hot path appends a local key id and a value; flush reduces them with bincount
        self.ids: dict[str, int] = {}
        self._keys: list[str] = []
        self._register_lock = threading.Lock()  # (two threads' first values of keys)
        self._key_tuple: tuple[str, ...] | None = ()
        self.id_buf: list[int] = []
        self.val_buf: list[float] = []
        self.tensors: dict[str, list[tuple[Any, int | None]]] = {}  # (tensor, version)
        self._pos: np.ndarray | None = None  # local id -> position in the union (-1: none)
        self.last_step: float | None = None
        self.auto_step = 0
        self.union: tuple[str, ...] = ()
        self.union_index: dict[str, int] = {}
        self.known: set[str] = set()
        self.logged_keys: set[str] = set()  # keys this rank's log() took (rank 0: run series)
        self._mixed: list[str] | None = []  # logged keys also in the union (None: to compute)
        self.prefixes: set[str] = set()
        self.errors: list[tuple[str, str]] = []  # (exception type, message), raised at flush
        self.views: dict[str, "MetricsLogger"] = {}  # namespaced views, by prefix
        self.cache = ScalarCache(window)
        self.flushes = 0
        self.max_step: float | None = None  # the largest step logged or flushed (run metadata)
        self.flush_step: float | None = None  # the step of the last flush's rows
        # the last step collected for the flush in progress (or the last one that failed):
        # where this rank is while it waits for its peers, for its heartbeat and log records
        self.flushing_step: float | None = None
        self._flushed = np.zeros(0)  # per union position: the step of the key's last flushed row
        self.logged: dict[str, float] = {}  # per key: the step of this rank's last log() row
        # one-process flushes whose rows' keys are not yet in _flushed: (window, step)
        self._unsettled: list[Window] = []  # (each at its ``step``)
        self._unsettled_bytes = 0  # held by the unsettled windows not reduced yet (roughly)
        self._settle_at = 64  # try to settle the reduced ones when this many are unsettled
        self._pos_complete = False  # every local key has a place in the union
        # per (prefix, key tuple): the union position of each of a call site's columns when
        # every key has one (None: the whole union in its order; False: a key the union lacks)
        self.union_orders: dict[Any, np.ndarray | None | bool] = {}
        self.log_append: Callable[[Any], None] | None = None  # log(): the writer's entry list
        self.log_writer: Any = None  # ... and that writer (``backlogged``: the flush waits)
        self.log_entries: list[Any] = []  # ... and its entry list
        self.log_pending = False  # log() called since the writer was last caught up with
        # collect() keeps each call site's values as they came (``[key tuple, v, v, ...]``: a
        # call's values go on in one C call, the key order once per site, no dict kept), and a
        # checked call's values as dicts (one append each); every view (prefix) has its own
        # lists: the one-process flush hands them to the writer, the general flush turns them
        # into (id, value) arrays (spill_entries)
        self.entry_lists: list[tuple[str, list[dict[str, Any]]]] = []
        self.site_lists: list[tuple[str, list[Any]]] = []
        self.window_columns: dict[Any, np.ndarray] = {}  # one-process flush: union columns per key tuple
        self.entry_ids: dict[Any, np.ndarray] = {}  # local ids per (prefix, key tuple): ids never change
        self.entry_all: dict[Any, bool] = {}  # per (prefix, key tuple): its ids are 0..n-1 in order
        self.stop_agreed = False
        self.warned_steps = False
        #: where a flush's warnings go: the run's log (and stderr), as the run sets it
        self.note: Callable[[str], Any] = warn
        self.histogram_bins: dict[str, int] = {}  # per histogram key: its bins in this run
        self.histogram_steps: dict[str, float] = {}  # per histogram key: its last step in this attempt
        # a resumed attempt: the histograms earlier attempts stored here, and their bins
        self.stored_histograms: set[str] = set()
        self.stored_bins: Callable[[str], int | None] | None = None
        self.ended: str | None = None  # the run's id once it closed (its views then refuse)

    def register(self, key: str) -> int:
        """Validate a key collected for the first time on this rank and give it an id (its
        own: two threads collecting new keys at once could take one id for two keys, or two
        ids for one key, without the lock)."""
        with self._register_lock:
            i = self.ids.get(key)
            if i is not None:  # another thread gave it one meanwhile
                return i
            if key not in self.known:
                self.check_key(key)
            i = len(self._keys)
            self._keys.append(key)
            self._key_tuple = None
            self._pos = None
            self.ids[key] = i  # last: a thread that finds the id finds the key at it
            return i

    @property
    def keys(self) -> tuple[str, ...]:
        """Local keys by id (a tuple rebuilt only when a key is added)."""
        if self._key_tuple is None:
            self._key_tuple = tuple(self._keys)
        return self._key_tuple

    def note_step(self, step: float) -> None:
        if self.max_step is None or step > self.max_step:
            self.max_step = step

    def set_union(self, union: list[str]) -> None:
        self.settle()
        # what is derived from the union goes first, to be made again; the union, its index and
        # its flushed steps are set together at the end, with no call between (a Ctrl-C part-way
        # left them of different lengths, or positions of the old union: values lost or misfiled)
        self._pos = None
        self._mixed = None
        self.union_orders = {}
        self.window_columns = {}  # a new dict: windows already queued keep the old mapping
        before = dict(zip(self.union, self._flushed.tolist()))
        keys = tuple(union)
        index = {k: i for i, k in enumerate(keys)}
        flushed = np.array([before.get(k, -np.inf) for k in keys], dtype=np.float64)
        # every agreed key is known here: a key of this rank's that clashes with one is
        # refused when it comes (log() at once; collect() at the next flush, on every rank)
        self.known.update(keys)
        self.prefixes.update(p for key in keys for p in _namespaces(key))
        self.union, self.union_index, self._flushed = keys, index, flushed
        self._pos = None  # (again: positions another thread read from the old union meanwhile)

    def take_ids(self) -> tuple[list[int], list[float]]:
        """``collector()``'s (local id, value) pairs so far, taken out of its buffers in place
        (the hot path keeps their references). It appends an id, then its value: a pair
        another thread is appending is left whole for the next flush."""
        n = len(self.val_buf)
        ids, vals = self.id_buf[:n], self.val_buf[:n]
        del self.id_buf[:n], self.val_buf[:n]
        return ids, vals

    def spill_entries(self) -> tuple[np.ndarray, np.ndarray]:
        """collect()'s dicts and call sites' values as (local id, value) arrays, for the
        general flush. A call site, and a run of dicts with one key tuple, is one matrix: no
        Python per value."""
        id_parts, val_parts = [], []
        for prefix, entries in self.entry_lists:
            i, n = 0, len(entries)
            while i < n:
                kt = tuple(entries[i])
                j = i + 1
                while j < n and tuple(entries[j]) == kt:
                    j += 1
                cols = self._entry_cols(prefix, kt)
                m = j - i
                chain = itertools.chain.from_iterable(map(dict.values, itertools.islice(entries, i, j)))
                val_parts.append(np.fromiter(chain, np.float64, m * len(kt)))
                id_parts.append(np.tile(cols, m))
                i = j
            del entries[:n]  # in place (the view keeps its reference); not a later append
        for prefix, site in self.site_lists:
            if len(site) > 1:
                kt, vals = site[0], _take_site(site)
                val_parts.append(np.array(vals, dtype=np.float64))
                id_parts.append(np.tile(self._entry_cols(prefix, kt), len(vals) // len(kt)))
        return id_parts, val_parts

    def site_values(self) -> bool:
        """Whether a call site holds values for the next flush."""
        return any(len(site) > 1 for _, site in self.site_lists)

    def _entry_cols(self, prefix: str, kt: tuple[str, ...]) -> np.ndarray:
        """The local ids of the keys ``kt`` of view ``prefix`` (every key was registered when
        collect() first saw it; ids never change)."""
        cols = self.entry_ids.get((prefix, kt))
        if cols is None:
            cols = self.entry_ids[(prefix, kt)] = np.array([self.ids[prefix + k] for k in kt], dtype=np.intp)
            self.entry_all[(prefix, kt)] = bool((cols == np.arange(len(cols))).all())  # ids 0..n-1 in order
        return cols

    def _one_site(self) -> tuple[str, list[dict[str, Any]]] | None:
        """The one view's ``collect()`` dicts when they hold every value of this window."""
        lists = [(prefix, entries) for prefix, entries in self.entry_lists if entries]
        if len(lists) != 1 or self.id_buf or self.tensors or self.site_values():
            return None
        return lists[0]

    def one_site_stats(self) -> R.LocalStats | None:
        """This window's statistics when every value came from ``collect()`` dicts of one view
        with one key set (the usual loop): one matrix, reduced per column (no bincount, no
        ``ufunc.at``); the dicts are consumed. None, consuming nothing, otherwise."""
        site = self._one_site()
        taken = None if site is None else site[1][:]  # (another thread may append meanwhile)
        got = None if taken is None else one_site_values(taken)  # (one key set, else None)
        if got is None:
            return None
        prefix, entries = site
        kt, flat = got
        cols = self._entry_cols(prefix, kt)
        del entries[: len(taken)]  # in place: the view keeps its reference
        keys = self.keys
        block = R.block_stats(flat.reshape(-1, len(kt)), axis=0)
        if len(cols) == len(keys) and self.entry_all[(prefix, kt)]:
            # the call site's keys are every local key, in id order (the steady state)
            return R.LocalStats(keys, *block)
        stats = R.LocalStats.identity(keys)
        stats.sum[cols], stats.count[cols], stats.min[cols], stats.max[cols], stats.nonfinite[cols] = block
        return stats

    def steady_block(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """This window's values as one ``(n, c)`` matrix and the union position of each of its
        columns (None: the columns are the whole agreed union, in order), when they came from
        ``collect()`` dicts of one view whose keys all have a place in the union, in any order
        (the steady loop of several ranks, also beside keys collected only now and then, such
        as an evaluation's: its buckets are packed straight from it); the dicts are consumed.
        None, consuming nothing, otherwise."""
        site = self._one_site()
        if site is None:
            return self._steady_site()
        prefix, entries = site
        taken = entries[:]  # (another thread may append meanwhile)
        kt = tuple(taken[0])
        cols = self._columns(prefix, kt)
        if cols is False:
            return None
        got = one_site_values(taken, kt)  # (values in kt's order, every dict with kt's keys)
        if got is None:
            return None
        del entries[: len(taken)]  # in place: the view keeps its reference
        return got[1].reshape(-1, len(kt)), cols

    def _steady_site(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``steady_block`` of a window whose values all came from call sites (``collector``-
        free ``collect()`` calls of fixed keys): one site's keys may be any part of the union;
        the rows of several sites, each the whole union in any order, are put in union order."""
        if self.id_buf or self.tensors or any(entries for _, entries in self.entry_lists):
            return None
        full = [(prefix, site) for prefix, site in self.site_lists if len(site) > 1]
        if not full:
            return None
        k = len(self.union)
        places = [self._columns(prefix, site[0]) for prefix, site in full]
        if any(c is False or (len(full) > 1 and c is not None and len(c) != k) for c in places):
            return None
        blocks = [np.array(_take_site(site), dtype=np.float64).reshape(-1, len(site[0])) for _, site in full]
        if len(blocks) == 1:
            return blocks[0], places[0]
        for b, (v, cols) in enumerate(zip(blocks, places)):
            if cols is not None:  # (a permutation of the union: its columns put in union order)
                blocks[b] = np.empty_like(v)
                blocks[b][:, cols] = v
        return np.concatenate(blocks), None

    def _columns(self, prefix: str, kt: tuple[str, ...]) -> np.ndarray | None | bool:
        """``union_orders[(prefix, kt)]``, computed on first use."""
        cols = self.union_orders.get((prefix, kt), False)
        if cols is False and (prefix, kt) not in self.union_orders:
            where = self.positions()[self._entry_cols(prefix, kt)]  # each column's union position
            if (where < 0).any():
                cols = False
            elif len(where) == len(self.union) and (where == np.arange(len(where))).all():
                cols = None
            else:
                cols = where
            self.union_orders[(prefix, kt)] = cols
        return cols

    def flushed_steps(self, keys: tuple[str, ...]) -> np.ndarray:
        """The step of each union key's last flushed row (-inf if none); ``keys`` is the union."""
        assert keys == self.union, "reduced keys follow the agreed union"
        self.settle()
        return self._flushed

    def unsettled(self, window: Window, nbytes: int = 0) -> None:
        """A flush handed on unreduced (one process, or a steady flush of several ranks) wrote
        ``window``'s present keys at ``window.step`` (settled lazily); ``nbytes``: what the
        window holds until it is reduced."""
        pending = self._unsettled
        window.noted = True; pending.append(window)  # noqa: E702 (see Window.noted)
        self._unsettled_bytes += nbytes
        big = self._unsettled_bytes > UNSETTLED_BYTES
        if len(pending) >= self._settle_at or big:
            if pending[0].done:  # what the writer reduced already: no NumPy here
                self.settle(only_done=True)
            elif big or len(pending) >= UNSETTLED_MAX:  # windows no writer reduces (a rank
                self.settle()  # other than 0 keeps its flushes'): all at once, a few NumPy calls
            self._settle_at = len(pending) + 64

    def settle(self, only_done: bool = False) -> None:
        """Bring ``_flushed`` up to date with the flushes not yet settled (in order;
        ``only_done``: only the leading ones already reduced)."""
        pending = self._unsettled
        if not pending:
            return
        if not only_done:
            reduce_windows(pending)  # at once, whatever the writer left
        n = len(pending)
        if only_done:
            n = next((i for i, w in enumerate(pending) if not w.done), n)
        if n:  # a key's last flushed step: the step of the last window where it has a value
            windows = pending[:n]
            assert all(w.union == self.union for w in windows), "the union changes only after settle()"
            _, present = window_rows(windows)
            steps = np.fromiter((w.step for w in windows), np.float64, n)
            last = np.where(present, steps[:, None], -np.inf).max(axis=0)
            hit = present.any(axis=0)
            self._flushed[hit] = last[hit]
        del pending[:n]
        self._unsettled_bytes = sum(w.nbytes for w in pending)

    def set_flushed_steps(self, keys: tuple[str, ...], written: np.ndarray, step: float) -> None:
        self.flushed_steps(keys)[written] = step

    def last_written_step(self, key: str) -> float | None:
        """The last step this rank wrote for ``key`` through ``log()``, or (rank 0's series)
        through a flush; None if none."""
        last = self.logged.get(key)
        i = self.union_index.get(key)
        self.settle()
        if i is not None and self._flushed[i] > -np.inf:
            f = float(self._flushed[i])
            last = f if last is None else max(last, f)
        return last

    def mixed_keys(self) -> list[str]:
        """The keys this rank log()s that the ranks also collect (rank 0: their rows go to the
        same series, so a flush must go past the steps logged there too)."""
        if self._mixed is None:
            self._mixed = sorted(k for k in self.logged_keys if k in self.union_index)
        return self._mixed

    def note_logged(self, prefix: str, values: dict[str, float]) -> None:
        """log() took ``values`` (their keys may be new to it)."""
        new = {prefix + k for k in values}.difference(self.logged_keys)
        if new:
            self.logged_keys |= new
            self._mixed = None

    def catch_up_logged(self, writer: Any) -> None:
        """Wait until ``writer`` has taken every log() call so far (it builds the logged rows,
        feeds the stats cache and keeps each key's last logged step in ``logged``)."""
        if self.log_pending:
            self.log_pending = False
            writer.sync_entries()

    def positions(self) -> np.ndarray:
        """Where each local key id sits in the agreed union (cached between key-set changes)."""
        # (read into locals: another thread's collect() of a new key sets ``_pos`` to None at
        # any moment; it is then computed again at the next call)
        pos, n = self._pos, len(self._keys)
        if pos is None or len(pos) != n:
            idx = self.union_index
            pos = np.fromiter((idx.get(k, -1) for k in self._keys), np.intp, n)
            complete = bool((pos >= 0).all())
            # (both set with no call between: a Ctrl-C after the test above left the new
            # positions with the old flag, and a key the union lacks went to the writer)
            self._pos_complete = complete; self._pos = pos  # noqa: E702
        return pos

    def pending_mark(self) -> tuple[Any, ...]:
        """Where this rank's values collected for the next flush end now (see ``drop_since``)."""
        return (self.flushes, len(self.id_buf), {id(e): len(e) for _, e in self.entry_lists},
                {id(s): len(s) for _, s in self.site_lists},
                {k: len(v) for k, v in self.tensors.items()}, len(self.errors), self.last_step)

    def drop_since(self, mark: tuple[Any, ...]) -> None:
        """Drop the values this rank collected since ``pending_mark()`` returned ``mark`` (local:
        what was collected before is kept for the next flush). A flush since then took the
        values before it: everything pending is dropped."""
        flushes, n_ids, n_entries, n_sites, n_tensors, n_errors, last_step = mark
        if flushes != self.flushes:
            n_ids, n_entries, n_sites, n_tensors, n_errors, last_step = 0, {}, {}, {}, 0, None
        del self.id_buf[n_ids:], self.val_buf[n_ids:]
        for _, entries in self.entry_lists:
            del entries[n_entries.get(id(entries), 0):]  # in place: the views keep their references
        for _, site in self.site_lists:
            del site[n_sites.get(id(site), 1):]  # (its key tuple stays)
        for key in list(self.tensors):
            if n_tensors.get(key):
                del self.tensors[key][n_tensors[key]:]
            else:
                del self.tensors[key]
        del self.errors[n_errors:]
        self.last_step = last_step

    def check_key(self, key: str) -> None:
        check_name(key, "metric key", allow_slash=True)
        own_prefixes = set(_namespaces(key))
        if key in self.prefixes:  # an existing key lives under this one's namespace
            clash = next(k for k in sorted(self.known) if k.startswith(key + "/"))
        else:
            clash = next((p for p in sorted(own_prefixes) if p in self.known), None)
        if clash:
            raise ValueError(
                f"metric key {key!r} clashes with {clash!r}: a key cannot also be a namespace of "
                "other keys (stored as Zarr groups); rename one of them"
            )
        self.known.add(key)
        self.prefixes |= own_prefixes


class MetricsLogger:
    """Scalars of one run; ``metrics("train")`` returns a view that prefixes ``train/``."""

    def __init__(self, ctx: "RunContext", comm: "Comm", writers: "RunWriters", monitor: "RankMonitor",
                 after_flush: Callable[[], None], *, window: int = 1_000, prefix: str = "",
                 core: _Core | None = None) -> None:
        """``comm``: the collectives of ``flush``; ``writers``: where rows go (this rank's own,
        and rank 0's of the run's series); ``monitor``: telemetry around each flush;
        ``after_flush``: called after each flush (the run makes its log lines durable)."""
        self._ctx, self._comm, self._writers, self._monitor = ctx, comm, writers, monitor
        self._after_flush = after_flush
        self._prefix = prefix
        self._core = core = core or _Core(window)
        # the core never rebinds these (flush empties the buffers in place): cache them
        self._ids, self._id_buf, self._val_buf = core.ids, core.id_buf, core.val_buf
        self._valid: set[str] = set()  # log() names whose key (prefix + name) passed check_key
        self._collectable: set[str] = set()  # collect() names checked and given a local id
        self._entries: list[dict[str, Any]] = []
        core.entry_lists.append((prefix, self._entries))
        # the current call site's values (``[key tuple, v, ...]``; ``[None]`` matches no
        # call), and every site of this view by key tuple
        self._site: list[Any] = [None]
        self._sites: dict[tuple[str, ...], list[Any]] = {}

    def __call__(self, namespace: str) -> "MetricsLogger":
        prefix = f"{self._prefix}{namespace}/"
        view = self._core.views.get(prefix)
        if view is None:  # validated once; ``metrics("train")`` in a hot loop costs a lookup
            check_name(namespace, "metrics namespace", allow_slash=True)
            view = self._core.views[prefix] = MetricsLogger(
                self._ctx, self._comm, self._writers, self._monitor, self._after_flush,
                prefix=prefix, core=self._core)
        return view

    @property
    def prefix(self) -> str:
        return self._prefix

    # ---- local ---------------------------------------------------------------------------
    def _step_for_log(self, step: Any) -> float:
        if step is None:
            step = self._ctx.current_step
        core = self._core
        if step is None:  # one past every step seen so far, so a series never goes back
            step = max(core.auto_step, 0 if core.max_step is None else int(core.max_step) + 1)
            core.auto_step = step + 1
        s = _finite(step)  # as given, as collect() and flush() store theirs (1.5 is not cut to 1)
        if s is None:
            raise ValueError(f"log(step={step!r}): a step must be a finite number (the training "
                             "step, an int); pass step=<int>, or leave it out to use the next one")
        return s

    def log(self, values: Any = None, /, step: int | None = None, **metrics: Any) -> None:
        """Record values now (no communication: safe inside ``if rank == 0``):
        ``log(step=100, loss=0.5)``, or with a dict in hand ``log({"loss": 0.5}, step=100)``
        (the cheaper call: no keyword unpacking). ``log(100, loss=0.5)`` also works.

        Rank 0's values form the run's series; another rank's go to its own per-rank series.
        The training thread checks the values and the step and appends this call's values to
        the writer's entry list; rows are built off the training thread, many steps at once
        (``entries.logged_entries_handler``).
        """
        if values is None:
            values = metrics
        elif values.__class__ is dict and not metrics and "step" not in values:
            values = values.copy()  # the caller may reuse its dict: keep this call's values
        else:
            values, step = _values_and_step("log", values, step, metrics)
        self._log(values, step)

    def _log(self, values: dict[str, Any], step: Any) -> None:
        """``log`` of a dict taken as it is: a key ``"step"`` is a metric here (the framework
        integrations pass trackers' values this way, as TensorBoard stores them)."""
        valid, checked = self._valid, False
        if not (valid.issuperset(values) and all(map(_is_float, values.values()))):  # (C loops)
            for k, v in values.items():
                if (v.__class__ is not float and (v.__class__ is not int or not -_INT_OK <= v <= _INT_OK)
                        or k not in valid):
                    values, checked = self._log_checked(values), True
                    break
        if not values:
            return
        s = self._step_for_log(step)
        core = self._core
        if core.ended is not None:
            raise _ended(core.ended, self._prefix)
        ms = core.max_step
        if ms is None or s > ms:
            core.max_step = s  # past every step so far: no series can repeat one
        else:
            self._check_log_step(values, s)
        if checked:  # keys past the checks (a refused call leaves them to be checked again;
            # logged keys collected too need their flushes checked)
            core.note_logged(self._prefix, values)
            self._valid.update(values)
        core.log_pending = True
        append = core.log_append or self._attach_log()
        append((self._prefix, s, time.time(), values))
        if core.log_writer.backlogged or len(core.log_entries) > ENTRY_CHECK:  # (a writer behind)
            core.log_writer.wait_for_room()

    def _log_checked(self, values: dict[str, Any]) -> dict[str, float]:
        """``values`` with every key validated and every value a float (raises at once)."""
        core, p, out = self._core, self._prefix, {}
        try:
            for k, v in values.items():
                key = p + k if k.__class__ is str else check_name(k, "metric key")  # (raises: no str)
                if key not in core.known:
                    core.check_key(key)
                out[k] = as_number(key, v)
        except (TypeError, ValueError) as e:
            _whole_call_refused(e, len(values))
            raise
        return out  # (its keys become valid once the call is taken: log() notes them)

    def _check_log_step(self, values: dict[str, Any], s: float) -> None:
        """A step at or below the largest so far: raise if any key already has a row there."""
        core, p = self._core, self._prefix
        core.catch_up_logged(self._writers.local())  # (the writer keeps each key's last logged step)
        rank0 = self._ctx.rank == 0
        for k in values:
            key = p + k
            last = core.last_written_step(key) if rank0 else core.logged.get(key)
            if last is not None and s <= last:
                e = ValueError(
                    f"log() of {key!r} at step {step_shown(s)}: a row at step {step_text(last)} was already written; "
                    "steps of a series must increase. Pass a larger step= (or none: distlog then "
                    "uses one past the largest step so far)"
                )
                _whole_call_refused(e, len(values))
                raise e

    def _attach_log(self) -> Callable[[Any], None]:
        """Connect log() to this rank's writer: it builds the rows and feeds the stats cache."""
        core = self._core
        handler = EntryHandler(SCALARS_TABLE, core.cache, core.logged)
        core.log_writer = self._writers.local()
        core.log_append = core.log_writer.attach_entries(handler)
        core.log_entries = core.log_append.__self__  # (the list: its length, untaken entries)
        return core.log_append

    def collect(self, values: Any = None, /, step: int | None = None, **metrics: Any) -> None:
        """Accumulate values on this rank for the next ``flush()`` (cheap, no communication):
        ``collect(loss=x)``, or with a dict in hand ``collect({"loss": x}, step=i)`` (the
        cheaper call: no keyword unpacking). ``collect(i, loss=x)`` also works."""
        if values is None:
            values = metrics
        elif values.__class__ is not dict or metrics or "step" in values:
            values, step = _values_and_step("collect", values, step, metrics)
        if step is None:
            step = self._ctx.current_step
        site = self._site
        if tuple(values) == site[0] and all(map(_is_float, values.values())):
            # the hot path: the call site's keys in its order again, floats (checked in C);
            # its values go on in one C call (no dict kept)
            site.extend(values.values())
        else:
            self._collect_other(values)
        if step is not None:  # the window's step: the largest collected (train at 20, then val
            core = self._core  # at epoch 2 made the row 2: refused after step 20's, and lost)
            last = core.last_step
            if last is None:
                core.last_step = step
            else:
                try:
                    if not step <= last:  # (NaN too: the flush names a step that is no number)
                        core.last_step = step
                except TypeError:  # no number: the flush names it, on every rank
                    core.last_step = step

    def _collect_other(self, values: dict[str, Any]) -> None:
        """``collect()`` of a new call site (or key order), or of values that need a check.
        ``values`` may be the caller's dict: it is not kept."""
        if self._core.ended is not None:
            raise _ended(self._core.ended, self._prefix)
        ok = self._collectable
        if values and ok.issuperset(values) and all(map(_is_float, values.values())):
            kt = tuple(values)  # the site's calls from now on take the hot path
            site = self._sites.get(kt)
            if site is None:  # (flushes read it first: a Ctrl-C between leaves no site they miss)
                site = [kt]
                self._core.site_lists.append((self._prefix, site))
                self._sites[kt] = site
            self._site = site
            site.extend(values.values())
            return
        for k, v in values.items():
            if (v.__class__ is not float and (v.__class__ is not int or not -_INT_OK <= v <= _INT_OK)
                    or k not in ok):
                self._collect_checked(values)  # (one process: a refused call raises here,
                break  # before its step becomes the window's)
        else:
            if values:
                self._entries.append(dict(values))  # ints in range: as taken

    def _collect_checked(self, values: dict[str, Any]) -> None:
        p, ids, core = self._prefix, self._ids, self._core
        # (a key that is no str fails in _collect_slow: raised at the next flush on every rank)
        keys = [p + k if isinstance(k, str) else k for k in values]  # (NumPy str_ keys too)
        if self._comm.world_size == 1:
            # one process raises at the call: every value is checked (and converted, once)
            # before any is kept, so a refused call keeps none of them (whatever their order)
            # and a caller that catches the error and collects again counts nothing twice
            numbers = []
            for key, v in zip(keys, values.values()):
                if key not in ids and key not in core.known:
                    core.check_key(key)
                numbers.append(as_number(key, v, keep_device_tensors=True))
            for k, key, x in zip(values, keys, numbers):
                i = ids.get(key)
                self._keep(key, x, core.register(key) if i is None else i)
                self._collectable.add(k)
            return
        for k, key, v in zip(values, keys, values.values()):
            self._collect_slow(key, v, ids.get(key))
            if key in ids:
                self._collectable.add(k)

    def collector(self, name: str) -> Callable[[Any], None]:
        """A callable that collects one key: ``add = metrics("train").collector("loss");
        add(x)`` or ``add(x, step)`` — the cheapest form for a hot loop (no keyword arguments).

        Same semantics as ``collect(name=x)`` at the current step; values other than Python
        floats and ints take the checked path (tensors stay on their device).
        """
        key = self._prefix + _metric_name("collector", name)
        i = self._ids.get(key)
        if i is None:
            i = self._core.register(key)
        append_id, append_val = self._id_buf.append, self._val_buf.append
        slow, ctx, core = self._collect_slow, self._ctx, self._core

        def add(value: Any, step: int | None = None) -> None:
            if core.ended is not None:
                raise _ended(core.ended, self._prefix)
            if step is None:
                step = ctx.current_step
            if value.__class__ is float or _is_float(value):  # (NumPy's float64 too)
                append_id(i)
                append_val(value)
            else:
                slow(key, value, i)  # (one process: a refused value raises before its step counts)
            if step is not None:  # (the window's largest, as collect())
                last = core.last_step
                if last is None:
                    core.last_step = step
                else:
                    try:
                        if not step <= last:
                            core.last_step = step
                    except TypeError:
                        core.last_step = step

        return add

    def _collect_slow(self, key: str, v: Any, i: int | None) -> None:
        core = self._core
        try:
            if i is None:
                i = core.register(key)
            x = as_number(key, v, keep_device_tensors=True)
        except (TypeError, ValueError) as e:
            if self._comm.world_size == 1:
                raise
            # decided at the next flush on every rank together, so no rank is left waiting
            core.errors.append((type(e).__name__, f"rank {self._ctx.rank}: {e}"))
            return
        self._keep(key, x, i)

    def _keep(self, key: str, x: Any, i: int) -> None:
        """Keep ``x`` (``as_number``'s float or device tensor) of key id ``i`` for the flush."""
        core = self._core
        if type(x) is float:
            # a dict entry of this view: one append, which another thread's collect() cannot
            # split (an id and a value appended to two lists could be paired with another
            # thread's)
            self._entries.append({key[len(self._prefix):]: x})
        else:  # kept by reference with its version: changed in place before the flush, it
            # no longer holds the value collected (``_tensor_stats`` refuses it)
            core.tensors.setdefault(key, []).append((x, None if x.is_inference() else x._version))

    def log_histogram(self, name: str, values: Any, *more: Any, bins: int = 64, step: int | None = None,
                      range: tuple[float, float] | None = None) -> None:
        """Bin edges and counts of ``values`` at one step (local, like ``log``); ``bins``,
        ``step`` and ``range`` by keyword."""
        if more:
            raise _histogram_positional(name, more)
        self._check_open()
        key = self._prefix + name if name.__class__ is str else check_name(name, "histogram name")
        check_name(key, "histogram name", allow_slash=True)
        arr = _histogram_values(name, values)
        finite = np.isfinite(arr)
        if not finite.all():
            dropped = arr.size - int(finite.sum())
            arr = arr[finite]
            # no bin holds them, and a histogram row has no column for them: said, once a key
            warn(f"log_histogram({name!r}): {dropped} of {dropped + arr.size} values are NaN or ±inf "
                 "and are in no bin (the histogram counts the finite ones; this is said once per "
                 "key: log the count as a metric to keep it)", key=f"histogram nonfinite {id(self._core)} {key}",
                 interval=float("inf"))
        counts, edges = _histogram(name, arr, bins, range)
        core = self._core
        bins = core.histogram_bins
        if key not in bins:  # a new series: its name must not be the folder of another
            names = set(bins) | core.stored_histograms
            clash = next((k for k in sorted(names) if k.startswith(key + "/") or key.startswith(k + "/")), None)
            if clash is not None:
                raise ValueError(f"log_histogram({name!r}): {key!r} and the histogram {clash!r} of this "
                                 "run cannot both exist (one name would be the other's folder); "
                                 "rename one, e.g. " + repr(f"{key}/all" if clash.startswith(key + "/") else f"{clash}/all"))
            if key in core.stored_histograms and core.stored_bins is not None:
                stored = core.stored_bins(key)  # an earlier attempt's series: its bins stay
                if stored is not None:
                    bins[key] = stored
        had = bins.get(key, len(counts))
        if had != len(counts):  # one series: one row width (the writer would refuse the row)
            raise ValueError(f"log_histogram({name!r}): {key!r} has {had} bins in this run, got "
                             f"{len(counts)}; keep bins={had} for this name, or log under another name")
        # the step last: a call refused above uses up no automatic step (and one refused
        # below fixes no bin count)
        s = self._step_for_log(step)
        last = core.histogram_steps.get(key)
        if last is not None and s <= last:  # (the writer would drop the row, off this thread)
            raise ValueError(
                f"log_histogram() of {key!r} at step {step_text(s)}: a row at step {step_shown(last)} was already "
                "written; steps of a series must increase. Pass a larger step= (or none: distlog "
                "then uses one past the largest step so far)")
        row = np.concatenate([[s, time.time()], edges, counts.astype(np.float64)])
        self._writers.local().put(HISTOGRAMS_TABLE, key, row[None, :])
        bins[key] = had
        core.histogram_steps[key] = s
        core.note_step(s)  # a later call without step= goes past it

    # ---- collective ----------------------------------------------------------------------
    def flush(self, _aggregation: str = "mean", step: int | None = None) -> R.Reduced:
        """Reduce what every rank collected since the last flush; rank 0 writes one row per key.

        A collective: every rank must call it, the same number of times and before
        ``close()``. Ranks that are not in the same flush (one skipped a call, or one closes
        while another flushes) all raise ``FlushMismatch`` and no row is written from it.
        Returns the reduced statistics on every rank. ``flush(5)`` is ``flush(step=5)``, as
        ``log(5, ...)`` and ``collect(5, ...)`` take their step.
        """
        self._check_open()
        if isinstance(_aggregation, Real) and not isinstance(_aggregation, bool):
            if step is not None:
                raise TypeError(f"flush({_aggregation!r}, step={step!r}): got the step twice; pass it once, "
                                f"flush(step={step!r})")
            _aggregation, step = "mean", _aggregation
        return self._flush(_aggregation, step, closing=False)

    def _pending_mark(self) -> tuple[Any, ...]:
        """Where the values collected for the next flush end now (every view of the run)."""
        return self._core.pending_mark()

    def _drop_pending(self, mark: tuple[Any, ...]) -> None:
        """Drop what this rank collected since ``_pending_mark()`` (a framework's dry run)."""
        self._core.drop_since(mark)

    def _check_open(self) -> None:
        if self._core.ended is not None:
            raise _ended(self._core.ended, self._prefix)

    def adopt_stored(self, keys: Iterable[str], histograms: Iterable[str],
                     histogram_bins: Callable[[str], int | None]) -> None:
        """A resumed attempt: the metric keys and histograms earlier attempts stored are the
        run's too, so a new key that clashes with one (``train`` against a stored
        ``train/loss``) or a histogram with other bins is refused at the call, as in the
        attempt that stored them, not by the writer at close (which failed the run)."""
        core = self._core
        for key in keys:
            if key not in core.known:
                core.known.add(key)
                core.prefixes.update(_namespaces(key))
        core.stored_histograms = set(histograms)
        core.stored_bins = histogram_bins

    def resume_at(self, step: float | None) -> None:
        """An attempt resumed at a checkpoint's ``step``: the rows up to it are kept, so a
        ``log()`` or ``flush()`` without a step continues after it (from 0 it rewound them
        away). Nothing happens once this attempt wrote a step."""
        core = self._core
        if step is not None and core.max_step is None and core.flush_step is None:
            core.max_step = core.flush_step = float(step)

    def end(self, run_id: str) -> None:
        """The run closed: this logger, its views and its ``collector()`` handles refuse every
        call from now on (what they took would be stored nowhere). ``collect``'s hot path
        checks nothing: each view forgets its call site, so the next call takes the path
        that checks."""
        core = self._core
        core.ended = run_id
        for view in (self, *core.views.values()):
            view._site = [None]

    def _flush(self, _aggregation: str, step: int | None, closing: bool) -> R.Reduced:
        if self._comm.world_size > 1:
            return self._flush_window(_aggregation, step, closing)
        if not closing and _aggregation in R.AGGREGATIONS:
            reduced = self._flush_one_process(_aggregation, step)  # (puts back what it took)
            if reduced is not None:
                return reduced
        with held_interrupt():  # a Ctrl-C lost the window this takes: it waits for the end
            return self._flush_window(_aggregation, step, closing)

    def _flush_window(self, _aggregation: str, step: int | None, closing: bool) -> R.Reduced:
        """A flush on the general path: this window's local statistics (or the steady loop's
        block) reduced across the ranks, the union grown by new keys, rows to the writer."""
        core, ctx = self._core, self._ctx
        comm = self._comm
        if _aggregation not in R.AGGREGATIONS:
            if comm.world_size == 1:
                raise _bad_aggregation(_aggregation)
            core.errors.append(("ValueError", f"rank {ctx.rank}: {_bad_aggregation(_aggregation)}"))
            _aggregation = "mean"
        # the steady loop (one call site whose keys all have a place in the agreed union, in
        # any order; or several, each the whole union) is packed straight from its matrix;
        # any other window from its local statistics
        local = new_mask = None  # (the steady loop's keys are all in the union: none is new)
        block = None if closing else core.steady_block()
        if block is None:
            local, pos = self._local_stats()
            new_mask = local.present & (pos < 0)  # keys with values that the union lacks
        # steps that are no finite number are this flush's bad input (raised on every rank;
        # the flush goes on as if none was given)
        explicit = self._checked_step(step, "flush")
        collected = self._checked_step(core.last_step, "collect")  # (bad input even when
        # flush(step=) decides the row's step)
        last = explicit if step is not None else collected
        core.flushing_step = collected
        core.last_step = None  # "the largest collected step" means: in this flush window
        header = [float(new_mask is not None and bool(new_mask.any())), float(bool(core.errors)),
                  float(self._writers.failed()), float(ctx.stop_requested),
                  float(ctx.rank == 0 and bool(core.logged_keys) and bool(core.mixed_keys()))]
        ident = R.FlushIdentity(core.flushes, closing, last, explicit, R.AGGREGATION_CODE[_aggregation])
        # the steady state: the agreed union, flags, identity and every rank's telemetry ride
        # along (1 collective, or 2 all_reduces + 1 for argmin/argmax ranks when large)
        mon = self._monitor
        slots = mon.enter_flush(core.flushes)
        packed = None if block is None else R.pack_block(*block, len(core.union), header, ident, slots)
        if packed is None:
            if local is None:  # a value that is not finite: counted apart
                v, cols = block
                pos = np.arange(len(core.union)) if cols is None else cols
                local = R.LocalStats(tuple(core.union[i] for i in pos), *R.block_stats(v, axis=0))
            s, m = R.pack(core.union, local, header, ident, pos, slots)
            packed = np.concatenate([s, m]), s.size
        row, s_size = packed
        rows = None if closing else comm.gather_rows(row)
        if rows is None:
            s, m, ranks = comm.reduce_buckets_ranked(row[:s_size], row[s_size:], R.MAX_HEADER_LEN)
            mon.exit_flush()
        else:  # the usual flush: one all_gather; a steady one goes on unreduced
            mon.exit_flush()
            steady = self._flush_gathered(rows, s_size, _aggregation, step)
            if steady is not None:
                return steady
            s, m, ranks = R.buckets_of_rows(rows, s_size, R.MAX_HEADER_LEN)
        h, agreed, reduced = R.unpack(core.union, s, m, ranks)
        tele = R.extra_slots(core.union, s)  # every rank's telemetry row (rank 0 writes them)
        core.flushes += 1
        if not agreed.matched:
            # every rank sees the same ranges, so every rank takes this path: one exchange to
            # name the ranks, then the same error everywhere; nothing from this flush is written
            said = [m for _, m in dict.fromkeys(core.errors)]  # (a bad flush("summ") made it "mean")
            core.errors = []
            raise FlushMismatch(_mismatch_message(comm.all_gather_object((ctx.rank, ident, said))))
        clash = None
        check_logged = bool(h[R.H_LOGGED])  # (rank 0 logs keys the ranks collect)
        if h[R.H_NEW_KEYS]:
            # some rank has keys outside the union: one exchange of key lists together with
            # the statistics of those keys, reduced locally (same inputs, same result everywhere)
            new_local = (R.LocalStats.identity(()) if new_mask is None else
                         local.subset([local.keys[i] for i in np.flatnonzero(new_mask)]))
            # (rank 0 adds the keys it logs: a new key must not clash with their series)
            parts = comm.all_gather_object((new_local, sorted(core.logged_keys) if ctx.rank == 0 else []))
            logged_by_0 = parts[0][1]
            union, clash = agree_union(core.union, [p.keys for p, _ in parts], logged_by_0)
            parts = [p for p, _ in parts]
            # a key rank 0 logs that the ranks start collecting now: checked from this flush on
            check_logged = check_logged or not set(logged_by_0).isdisjoint(union)
            fresh = [k for k in union if k not in core.union_index]
            reduced = reduced.reordered(union, R.reduce_gathered(fresh, parts))
            core.set_union(union)
        core.stop_agreed = core.stop_agreed or bool(h[R.H_STOP])
        lo, hi = agreed.step_range
        if lo < hi and not core.warned_steps:
            core.warned_steps = True  # alike on every rank; once per run
            core.note(f"flush #{core.flushes}: the ranks' largest collected steps differ ({step_text(lo)} to {step_text(hi)}); "
                      f"the row is stored at step {step_text(hi)}. If a rank skipped a flush() call, this flush "
                      "merged two windows: call flush() on every rank at the same steps, or pass step= "
                      "to flush() so distlog can check it")
        out_step = agreed.step
        if out_step == R.NO_STEP:  # no rank had a step: one past the previous flush's
            out_step = 0.0 if core.flush_step is None else core.flush_step + 1
        logged = None
        if check_logged:  # rank 0 says which steps it logged for keys collected too (alike
            # everywhere: one more exchange, only in runs that log and collect one key)
            mine = None
            if ctx.rank == 0:
                core.catch_up_logged(self._writers.local())
                mine = {k: core.logged[k] for k in core.mixed_keys() if k in core.logged}
            logged = comm.broadcast_object(mine)
        repeated = self._record(reduced, _aggregation, out_step, logged, stepped=explicit is not None)
        # a flush no rank had a value for times no training and claims no step: mid-run (an
        # evaluation's flush) it makes no telemetry row, and the next window starts after it;
        # at close its row keeps the last wait, its interval (what the script did after its
        # loop) NaN, so step_time skips it
        idle = not (reduced.count.any() or reduced.nonfinite.any())
        if closing or not idle:
            mon.record(out_step, core.flushes - 1, tele, closing, idle=idle)
        else:
            # (with flush(step=) past the last row's step, training went on: a sparse collect)
            mon.skip(core.flushes - 1, tele, stepped=explicit is not None and (
                core.flush_step is None or explicit > core.flush_step))
        self._after_flush()
        if h[R.H_ERROR] or clash or repeated:
            # one more exchange, on the error path only (every rank knows it is taken)
            msgs = comm.all_gather_object(list(dict.fromkeys(core.errors))) if h[R.H_ERROR] else [[]]
            core.errors = []
            errs = [e for per_rank in msgs for e in per_rank] + ([("ValueError", clash)] if clash else [])
            if repeated:
                errs.append(("ValueError", repeated))
            kind = TypeError if any(t == "TypeError" for t, _ in errs) else ValueError
            raise kind("flush found bad input (what it names was left out; the rest of the flush was "
                       "written: a key's row of the valid values, with their count):\n  "
                       + "\n  ".join(m for _, m in errs))
        if h[R.H_WRITER]:
            self._writers.raise_error(every_rank=True)
        return reduced

    def _checked_step(self, step: Any, where: str) -> float | None:
        """``step`` as a float; a step that is no finite number is noted as an error of this
        flush (None: none given)."""
        if step is None:
            return None
        s = _finite(step)
        if s is None:
            self._core.errors.append(("ValueError", f"rank {self._ctx.rank}: {where}(step={step!r}): a step "
                                      "must be a finite number (the training step, an int); its values "
                                      "were reduced without it"))
        return s

    def _flush_gathered(self, rows: np.ndarray, s_size: int, aggregation: str,
                        step: int | None) -> R.Reduced | None:
        """A steady flush of several ranks after its all_gather: only the header and the
        ranks' agreement are read here; the window (``GatheredWindow``) goes to rank 0's
        writer unreduced, as a one-process window does, and the returned ``Reduced`` is
        computed on first use. None (nothing done) when the general path must look at the
        statistics: flags or errors of any rank, keys the union lacks, ranks out of step, no
        value at all, or a step that does not go past the last flush's. Every rank decides
        alike (from the gathered rows and state the ranks share)."""
        core = self._core
        k = len(core.union)
        h, agreed, any_value = R.header_of_rows(rows, s_size, k)
        lo, hi = agreed.step_range
        if (h[R.H_NEW_KEYS] or h[R.H_ERROR] or h[R.H_WRITER] or h[R.H_LOGGED] or not agreed.matched
                or lo < hi):
            return None
        if not any_value:
            return None  # no rank had a value: the general path claims no step for it
        out_step = agreed.step
        fs = core.flush_step
        if out_step == R.NO_STEP:  # no rank had a step: one past the previous flush's
            out_step = 0.0 if fs is None else fs + 1
        if fs is not None and out_step <= fs:  # (fs + 1 is fs past 2**53)
            return None  # the general path names the keys that would repeat a step
        seq = core.flushes
        core.flushes += 1
        core.stop_agreed = core.stop_agreed or bool(h[R.H_STOP])
        window = GatheredWindow(core.union, rows, s_size, aggregation)
        self._hand_on(window, out_step, rows.nbytes)
        if self._ctx.rank == 0:  # every rank's telemetry row, summed (each rank filled its own)
            self._monitor.record(out_step, seq, rows[:, R.HEADER_LEN + 3 * k : s_size].sum(axis=0))
        self._after_flush()
        return R.LazyReduced.of(core.union, window.reduced)

    def _flush_one_process(self, aggregation: str, step: int | None) -> R.Reduced | None:
        """The one-process steady-state flush: no collective, no packing, no NumPy here. The
        window goes to the writer thread as it is; the returned ``Reduced`` is computed on
        first use. None (nothing consumed) when only the general path can do it: bad input to
        report, device tensors, keys the union lacks, a failed writer, or a step that does not
        go past the last flush's (the general path then names the repeated keys)."""
        core, ctx = self._core, self._ctx
        if core.errors or core.tensors or (core.logged_keys and core.mixed_keys()):
            return None
        pos = core.positions()
        if not core._pos_complete or self._writers.failed():
            return None
        last = core.last_step
        if step is not None:
            if last is not None and _finite(last) is None:
                return None  # (the general path reports collect()'s bad step)
            last = step
        fs = core.flush_step
        if last is None:  # no step: one past the previous flush's (as the general path)
            out_step = 0.0 if fs is None else fs + 1
            if fs is not None and out_step <= fs:
                return None  # (fs + 1 is fs past 2**53: the general path names the repeat)
        else:
            out_step = _finite(last)
            if out_step is None or (fs is not None and out_step <= fs):
                return None  # (the general path names a bad step)
        # what was taken out of which buffer, each recorded by the one call that follows its
        # removal: a Ctrl-C (a notebook's) between two steps puts back exactly what was taken
        # (a signal is seen after a call returns, or at a loop's turn: never between a removal
        # and the append after it)
        took: list[tuple[Any, Any, int]] = []  # (buffer, values, kind): _DICTS, _SITE or _IDS
        taken, sites, n = [], [], 0  # (n: about: each dict taken as its first one's size)
        window = None
        kept = core.last_step, core.flushes
        try:
            # (each loop goes on with a ``continue``: Python 3.11 gives a loop's jump back after
            # an ``if`` no line, a Ctrl-C raised there has none, and IPython then shows no
            # KeyboardInterrupt, only "Unexpected exception formatting exception")
            for prefix, entries in core.entry_lists:
                if not entries:
                    continue
                got = entries[:]
                del entries[: len(got)]; took.append((entries, got, _DICTS))  # noqa: E702 (in
                # place: the views keep their references; not a later append, another thread's)
                taken.append((prefix, got))
                n += len(got) * len(got[0])
            for prefix, site in core.site_lists:
                m = len(site)
                if m <= 1:
                    continue
                # (_take_site's, inline: the removal and the append with no call between)
                got = site[1:m]; del site[1:m]; took.append((site, got, _SITE))  # noqa: E702
                sites.append((prefix, site[0], got))
                n += len(got)
            ids, vals = core.take_ids(); took.append((None, (ids, vals), _IDS))  # noqa: E702
            if len(core.keys) != len(pos):
                # another thread's collect() gave a key its id after ``positions()`` above, and
                # its value may be in what was taken: a key the union lacks (the writer's
                # KeyError, the run failed). Put the window back, in its order, for the general path
                _put_back(core, took)
                return None
            core.last_step = None
            if not ids:  # (a window kept until the writer takes it: no empty lists for the GC)
                ids = vals = ()
            window = Window(core.union, core.window_columns, taken or (), ids, vals, pos, aggregation, sites)
            window.nbytes = nbytes = VALUE_BYTES * (n + len(ids))  # what it holds until reduced
            seq = core.flushes
            core.flushes += 1
            core.stop_agreed = core.stop_agreed or bool(ctx.stop_requested)
            any_value = bool(taken or sites or ids)
            if any_value:  # any value, finite or not, makes a row: the flush claims its step
                self._hand_on(window, out_step, nbytes)
        except BaseException:
            # a KeyboardInterrupt (a notebook's Ctrl-C) after the window was taken, before the
            # writer had it: the values go back, as they were, for the next flush
            if window is None or not window.handed:
                _put_back(core, took)
                core.last_step, core.flushes = kept
            else:  # (on the writer's list: the rest of the hand-off, as it would have been)
                self._book(window, out_step, nbytes)
            raise
        # (an empty flush: no telemetry row, as above)
        self._monitor.local_flush(out_step, seq, any_value, stepped=step is not None)
        self._after_flush()
        return R.LazyReduced.of(core.union, window.reduced)

    def _hand_on(self, window: Window, out_step: float, nbytes: int = 0) -> None:
        """A flush window with values goes on unreduced at ``out_step`` (past the previous
        flush's: checked by the caller): rank 0's writer reduces and writes it, the keys'
        last flushed steps and the stats cache take it as it is (reduced when needed)."""
        core = self._core
        window.step, window.time = out_step, time.time()
        rank0 = self._ctx.rank == 0
        if rank0:  # the run's series; the writer takes its entry list every ENTRY_POLL
            # seconds: many windows at once. First: a Ctrl-C before it leaves the window to
            # the flush to put back (``handed``), after it the rest is bookkeeping
            append = core.log_append or self._attach_log()
            window.handed = True; append(window)  # noqa: E702 (no signal is seen in between)
        self._book(window, out_step, nbytes)
        if rank0 and (core.log_writer.backlogged or len(core.log_entries) > ENTRY_CHECK):  # (a writer behind)
            core.log_writer.wait_for_room()

    def _book(self, window: Window, out_step: float, nbytes: int) -> None:
        """What a window handed on at ``out_step`` changes besides the writer's list: the last
        flushed step, the windows to settle, the stats cache. Safe to call again: a flush that
        a Ctrl-C cut after the hand-off completes what is missing (its next flush reused the
        step, its row refused, and the stats left the window out)."""
        core = self._core
        core.flush_step = out_step
        core.note_step(out_step)
        if not window.noted:
            core.unsettled(window, nbytes)
        if not window.cached:
            core.cache.add_window(window)

    def _local_stats(self) -> tuple[R.LocalStats, np.ndarray]:
        """This window's statistics per local key id, and each id's position in the union."""
        core = self._core
        # (positions cut to the keys the statistics have: a key another thread's collect()
        # registers meanwhile has an id past them, and its values wait for the next flush)
        fast = core.one_site_stats()
        if fast is not None:
            return fast, core.positions()[: len(fast.keys)]
        taken_ids, taken_vals = core.take_ids()
        ids = np.fromiter(taken_ids, np.intp, len(taken_ids))
        vals = np.fromiter(taken_vals, np.float64, len(taken_vals))
        id_parts, val_parts = core.spill_entries()
        if id_parts:
            ids = np.concatenate([ids] + id_parts)
            vals = np.concatenate([vals] + val_parts)
        stats = R.summarize_ids(core.keys, ids, vals)
        if core.tensors:
            tensor_stats, changed = _tensor_stats(core.tensors)
            stats = stats.merged(tensor_stats)
            core.tensors = {}
            core.errors.extend(("ValueError", f"rank {self._ctx.rank}: {_changed_in_place(k)}")
                               for k in changed)
            idx = core.union_index
            return stats, np.fromiter((idx.get(k, -1) for k in stats.keys), np.intp, len(stats.keys))
        return stats, core.positions()[: len(stats.keys)]

    def _record(self, reduced: R.Reduced, aggregation: str, step: float,
                logged: dict[str, float] | None = None, stepped: bool = False) -> str | None:
        """Hand one row per present key to rank 0's writer. A key whose last flushed row (or
        rank 0's last logged row, ``logged``) is at ``step`` or later is left out (steps of a
        series strictly increase); the message naming those keys is returned, decided from
        reduced data and ``logged`` alone, so alike on every rank. ``stepped``: the flush was
        given its step (``flush(step=)``)."""
        core = self._core
        if not len(reduced):
            return None
        present = (reduced.count + reduced.nonfinite) > 0
        if not present.any():  # an empty flush (e.g. the closing one) claims no step
            return None  # (nor settles the one-process flushes the writer is still reducing)
        core.flush_step = step if core.flush_step is None else max(core.flush_step, step)
        core.note_step(step)
        last = core.flushed_steps(reduced.keys)
        if logged:
            last = last.copy()
            for key, s in logged.items():
                i = core.union_index.get(key)
                if i is not None and s > last[i]:
                    last[i] = s
        stale = present & (last >= step)
        problem = None
        if stale.any():
            bad = [reduced.keys[i] for i in np.flatnonzero(stale)]
            p = self._prefix
            others = [k for k in bad if not k.startswith(p)]
            if others:  # exp.metrics("val").flush(step=epoch) with train/... values pending
                fix = (f"this flush was called on exp.metrics({p.rstrip('/')!r}), but flush() writes the "
                       "values of every namespace collected since the last flush: flush those first, at "
                       "their own step, or use one step axis (the training step) for every namespace")
            elif stepped:
                fix = "pass flush() a step past theirs, or none (then one past the previous flush's)"
            else:
                fix = "Collect with increasing step= values, or pass step= to flush()"
            problem = (f"flush at step {step_shown(step)} would write {', '.join(map(repr, bad[:5]))}"
                       f"{' and more' if len(bad) > 5 else ''} at or before the last step already "
                       f"written for it ({step_text(float(last[stale].max()))}); steps of a series must increase. {fix}")
            present &= ~stale
        if present.all():
            keys, stat_rows = reduced.keys, reduced.rows(aggregation)  # the same tuple each flush
        elif not present.any():
            return problem
        else:
            keys = tuple(reduced.keys[i] for i in np.flatnonzero(present))
            stat_rows = reduced.rows(aggregation)[present]
        core.set_flushed_steps(reduced.keys, present, step)
        n = len(keys)
        rows = np.empty((n, len(SCALAR_COLUMNS)))
        rows[:, 0] = step
        rows[:, 1] = time.time()
        rows[:, 2:] = stat_rows
        if self._ctx.rank == 0:
            self._writers.main().put_many(SCALARS_TABLE, keys, rows)
        core.cache.add_batch(keys, step, stat_rows)
        return problem

    def commit(self, timeout: float | None = 300.0, barrier: bool = False) -> None:
        """Block until every row this rank has handed to its writer is on the store.

        Call it before saving a checkpoint, so a resumed run rewinds to rows that really exist:
        a hard kill loses only uncommitted rows. Local to this rank by default; with
        ``barrier=True`` it is a collective (every rank calls it) that returns once *every*
        rank's rows are stored — what rank 0 needs before writing a checkpoint that covers
        the other ranks' own series too. A rank whose commit failed makes it fail everywhere.
        """
        self._check_open()
        if barrier.__class__ is np.bool_:  # (a flag computed from NumPy values)
            barrier = bool(barrier)
        failed: Exception | None = None
        if barrier.__class__ is not bool:
            failed = TypeError(f"commit(barrier={barrier!r:.40}): expected True (every rank calls "
                               "commit and waits for all) or False")
            try:
                meant = bool(barrier)
            except Exception:  # noqa: BLE001 - no truth value (an array): refused here alone
                meant = False
            if not meant:  # (None, 0, "": meant as no barrier: nothing to join)
                raise failed
            barrier = True  # ("yes", 1: meant as a barrier, which the other ranks may be in)
        if failed is None and timeout is not None and not (
                timeout.__class__ is not bool and isinstance(timeout, Real) and timeout > 0):
            error = ValueError if isinstance(timeout, Real) and timeout.__class__ is not bool else TypeError
            failed = error(f"commit(timeout={timeout!r:.40}): expected a number of seconds > 0, or "
                           "None to wait as long as it takes")
        comm = self._comm
        collective = barrier and comm.world_size > 1
        if failed is None:
            try:
                self._writers.commit(timeout)
            except Exception as e:  # noqa: BLE001 - raised below, after the ranks agreed
                failed = e
        if failed is not None and not collective:
            raise failed
        if collective:  # a rank with a bad timeout or barrier joins too: no rank waits for it
            bad = comm.all_reduce(np.array([float(failed is not None)]), "max")[0]
            if bad and failed is None:
                from .errors import WriterError

                raise WriterError("another rank's commit failed (see its log or its error); do "
                                  "not write a checkpoint that claims its rows")
        if failed is not None:
            raise failed

    # ---- statistics (design document) ----------------------------------------------------
    def get_stats(self, name: str, window: int | None = None) -> Stats:
        """Mean, var, std, min, max and count over the last ``window`` points of ``name``."""
        key = self._prefix + _metric_name("get_stats", name)
        return self._synced_cache().stats(key, window)

    def get_percentile(self, name: str, p: float, window: int | None = None) -> float:
        """The ``p``-th percentile (0 to 100; 50: the median) of the last ``window`` points."""
        key = self._prefix + _metric_name("get_percentile", name)
        if isinstance(p, bool) or not isinstance(p, Real):
            raise TypeError(f"get_percentile({name!r}, p={p!r:.40}): p must be a number from 0 to "
                            f"100, got {type(p).__name__}; e.g. p=50 (the median) or p=95")
        if not 0 <= p <= 100:  # (NaN too)
            raise ValueError(f"get_percentile({name!r}, p={p!r}): p must be a number from 0 to 100 "
                             "(50: the median); e.g. p=95 for the 95th percentile")
        return self._synced_cache().percentile(key, float(p), window)

    def get_summary(self, name: str, frequency: int = 100) -> list[dict[str, float]]:
        key = self._prefix + _metric_name("get_summary", name)
        if isinstance(frequency, bool) or not isinstance(frequency, (int, np.integer)):
            raise TypeError(f"get_summary({name!r}, frequency={frequency!r:.40}): frequency must be "
                            f"an int, got {type(frequency).__name__}; e.g. frequency=100")
        return self._synced_cache().summary(key, int(frequency))

    def _synced_cache(self) -> ScalarCache:
        """The cache, once the writer has handed it every value log()ged so far."""
        core = self._core
        core.catch_up_logged(self._writers.local())
        return core.cache

    @property
    def stop_requested(self) -> bool:
        """True once every rank agreed (through a flush) that the job should stop."""
        return self._core.stop_agreed

    @property
    def latest_step(self) -> float | None:
        """The step of this flush window's collects, else the last step written (None before
        any): the step a log record written now belongs to."""
        core = self._core
        if core.last_step is not None:
            return core.last_step
        return _largest(core.max_step, core.flushing_step)

    def progress(self) -> tuple[float | None, int]:
        """``(step, flushes)``: the largest step collected (a flush in progress included) or
        written so far (None before any) and the flushes done — where this rank is, for its
        heartbeat."""
        core = self._core
        return _largest(core.max_step, core.last_step, core.flushing_step), core.flushes


def _largest(*steps: float | None) -> float | None:
    known = [s for s in steps if s is not None]
    return float(max(known)) if known else None


def _whole_call_refused(e: BaseException, keys: int) -> None:
    """Say in ``e`` that a log() call of several keys was refused whole (its other keys too)."""
    if keys > 1 and e.args and isinstance(e.args[0], str):
        e.args = (f"{e.args[0]} (nothing of this log() call of {keys} keys was stored: log the "
                  "others again without it)",) + e.args[1:]


def _histogram_positional(name: Any, more: tuple[Any, ...]) -> TypeError:
    # (TensorBoard's add_histogram(tag, values, global_step): its third argument is the step)
    return TypeError(f"log_histogram({name!r}, values, {', '.join(repr(m) for m in more)[:60]}): bins=, step= "
                     "and range= are taken by keyword (a third argument is the step in TensorBoard's "
                     "add_histogram, the number of bins elsewhere): write step=N or bins=N")


def _values_and_step(method: str, first: Any, step: Any, metrics: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """``log``/``collect``'s first positional argument: the values (a mapping, merged with
    any keyword values) or, as in ``log(100, loss=0.5)``, the step."""
    if isinstance(first, Mapping):
        values = dict(first)
        twice = sorted(metrics.keys() & values.keys())
        if twice:
            raise TypeError(f"{method}() got {twice[0]!r} both in the dict and as a keyword "
                            "argument; pass each value once")
        values.update(metrics)
        if "step" in values:  # as in log(**d): the dict's "step" is the step, not a metric
            if step is not None:
                raise TypeError(f"{method}() got the step twice: step={values['step']!r} in the dict "
                                f"and step={step!r}; pass it once")
            step = values.pop("step")
        return values, step
    if isinstance(first, (str, bytes)) or not (isinstance(first, Real) or hasattr(first, "__index__")
                                               or getattr(first, "ndim", None) == 0):
        raise TypeError(f"{method}() takes a dict of values or the step as its first argument, "
                        f"got {type(first).__name__} ({first!r:.60}); e.g. {method}({{'loss': 0.5}}, "
                        f"step=10) or {method}(step=10, loss=0.5)")
    if step is not None:
        raise TypeError(f"{method}() got the step twice: {first!r} as the first argument and "
                        f"step={step!r}; pass the values as a dict first or the step once")
    return metrics, first


def agree_union(previous: tuple[str, ...], lists: list[list[str]],
                logged: Sequence[str] = ()) -> tuple[list[str], str | None]:
    """The sorted union of the agreed keys (``previous``) and every rank's new keys, without
    a new key that clashes with an agreed one, with a key rank 0 logs (``logged``: its series
    share the run's namespace) or with a new key before it in sorted order.

    Computed from the gathered lists alone, so every rank drops the same keys. A key that is
    also a namespace of another (``train`` and ``train/loss``) is stored as a Zarr group: the
    one a series already has keeps it, never the newcomer.
    """
    accepted = list(previous)
    seen = set(previous).union(logged)
    prefixes = {p for key in seen for p in _namespaces(key)}
    clash = None
    for key in sorted(set(itertools.chain(*lists)).difference(previous)):
        own = _namespaces(key)
        other = key if key in prefixes else next((p for p in own if p in seen), None)
        if other is not None:
            clash = clash or (f"metric key {key!r} clashes with {other!r}: a key cannot also be a "
                              "namespace of other keys (stored as Zarr groups); rename one of them. "
                              f"{key!r} was not reduced")
            continue
        accepted.append(key)
        seen.add(key)
        prefixes.update(own)
    return sorted(accepted), clash


def _namespaces(key: str) -> list[str]:
    """The namespaces a key lives in: ``a/b/c`` -> ``a``, ``a/b``."""
    parts = key.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _mismatch_message(who: list[tuple[int, R.FlushIdentity, list[str]]]) -> str:
    aggs = len({i.aggregation for _, i, _ in who}) > 1

    def where(ident: R.FlushIdentity) -> str:
        kind = "its closing flush (close())" if ident.closing else "flush()"
        if aggs and not ident.closing:
            kind = f"flush({R.AGGREGATIONS[ident.aggregation]!r})"
        step = "" if ident.explicit_step is None else f", step={step_text(ident.explicit_step)}"
        # (with step=, ``ident.step`` is that step, not the last one collected: not repeated)
        last = "" if ident.step is None or ident.explicit_step is not None else f", largest collected step {step_text(ident.step)}"
        return f"{kind} #{ident.seq + 1}{step}{last}"

    lines = "\n  ".join(f"rank {r}: {where(i)}" for r, i, _ in sorted(who, key=lambda x: x[0]))
    agg = (", and the same aggregation (one window reduced to a mean on one rank and to a sum "
           "on another has no one row)") if aggs else ""
    bad = [m for _, _, said in sorted(who, key=lambda x: x[0]) for m in said]
    also = ("\nBad input in this flush (a flush() given an aggregation it does not know reduces as "
            "'mean'):\n  " + "\n  ".join(bad)) if bad else ""
    return ("ranks are not in the same flush, so their values cannot be reduced together "
            "(nothing from it was written):\n  " + lines + "\nEvery rank must call flush() the "
            f"same number of times, with the same step= if any{agg}, before close(); a flush only on "
            "rank 0 or a flush one rank skips pairs windows that do not belong together" + also)


def _metric_name(method: str, name: Any) -> str:
    """``name`` given to ``metrics.<method>()`` if it is a str (checked as a key later), else a
    ``TypeError`` naming the call (an int was "can only concatenate str (not "int") to str")."""
    if isinstance(name, str):
        return name
    raise TypeError(f"metrics.{method}({name!r:.40}): the metric name must be a str, got "
                    f"{type(name).__name__}; e.g. metrics.{method}('loss')")


def _ended(run_id: str, prefix: str) -> RunStateError:
    view = f"exp.metrics({prefix.rstrip('/')!r})" if prefix else "exp.metrics"
    return RunStateError(f"run {run_id!r} has ended, and this metrics logger belongs to it: what it "
                         f"took now would be stored nowhere. Inside the next run take {view} again")


_DICTS, _SITE, _IDS = 0, 1, 2  # what a one-process flush took: a view's dicts, a call site's
# values, collector()'s (id, value) pairs


def _put_back(core: Any, took: list[tuple[Any, Any, int]]) -> None:
    """A window taken out of the buffers, back in front of what came since, in its order; each
    part put back, then dropped from ``took`` (a Ctrl-C in between: the rest, once, again)."""
    while took:
        buf, got, kind = took[-1]
        if kind == _SITE:
            buf[1:1] = got  # (after its key tuple)
        elif kind == _DICTS:
            buf[:0] = got
        else:
            core.id_buf[:0], core.val_buf[:0] = got
        took.pop()


def _take_site(site: list[Any]) -> list[float]:
    """A call site's values so far, taken out in place: its key tuple stays, and values
    another thread's ``collect()`` appends meanwhile stay for the next flush."""
    m = len(site)
    got = site[1:m]
    del site[1:m]
    return got


def _finite(step: Any) -> float | None:
    """``step`` as a finite float, else None: text, bytes and booleans are no step (``float``
    would take ``"5"`` and ``True``)."""
    if isinstance(step, (str, bytes, bytearray, bool, np.bool_)):
        return None
    try:
        s = float(step)
    except (TypeError, ValueError, OverflowError):
        return None
    if s > 9007199254740992.0 or s < -9007199254740992.0:  # (rare, 2**53: an int step a float64 may not hold)
        return _rounded_step(step, s)
    return s if math.isfinite(s) else None


def _rounded_step(step: Any, s: float) -> float | None:
    """A step past 2**53 (steps are stored as float64): said when an int step is not the one
    stored — two such steps can fall on one row, which is then refused as a repeat."""
    if not math.isfinite(s):
        return None
    try:
        given = operator.index(step)  # (a Python, NumPy or integer-tensor int; a float is as given)
    except TypeError:
        return s
    if given != int(s):
        warn(f"step {given} is past 2**53 = 9007199254740992 and is stored as {int(s)}: steps are "
             "float64, whose integers past 2**53 are not all distinct (two such steps can fall on "
             "one row, which is then refused as a repeat). Count steps from 0; keep a timestamp "
             "or a large id as a metric or a param", key="step past 2**53")
    return s


def _histogram_values(name: str, values: Any) -> np.ndarray:
    """``values`` of ``log_histogram`` as a flat float64 array; a ``TypeError`` naming the
    histogram for values that are no real numbers (None and strings were an empty histogram or
    numpy's "could not convert string to float", complex ones lost their imaginary part)."""
    if hasattr(values, "detach"):  # a torch tensor: bfloat16 and half as float32 (exact)
        if getattr(values, "is_meta", False):
            raise TypeError(f"log_histogram({name!r}): values are a tensor on the meta device, which "
                            "holds no values (a model built on device='meta' whose weights were "
                            "never loaded); log the real weights (on the CPU or an accelerator)")
        values = values.detach().cpu()
        if values.is_floating_point():
            values = values.float()
        values = values.numpy()
    try:
        arr = np.asarray(values)
    except ValueError as e:  # ragged nested lists
        raise TypeError(f"log_histogram({name!r}): values must be an array of numbers ({e}); pass "
                        "a NumPy array, a tensor or a flat list of numbers") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"log_histogram({name!r}): values must be real numbers, got "
                        f"{type(values).__name__} of {arr.dtype} ({values!r:.40}); pass a NumPy "
                        "array, a tensor or a list of numbers (complex: log .real and .imag apart)")
    return arr.astype(np.float64).ravel()


def _histogram(name: str, arr: np.ndarray, bins: Any, range_: Any) -> tuple[np.ndarray, np.ndarray]:
    """``np.histogram`` of ``log_histogram``'s finite values, its ``bins`` (a count >= 1, or
    increasing edges) and ``range`` (None, or ``(low, high)`` with ``low < high``) checked
    first: a clear error naming the histogram instead of NumPy's (or none: a rule such as
    ``"auto"`` picks another bin count each step, which one series cannot hold)."""
    call = f"log_histogram({name!r}, bins={bins!r:.40}"
    if hasattr(bins, "detach"):  # a tensor of edges (or a count) on any device: NumPy reads
        bins = bins.detach().cpu()  # host memory only (a CUDA one failed inside np.histogram)
        if bins.ndim and bins.is_floating_point():  # bfloat16 edges too (NumPy has no such
            bins = bins.double()  # type: .numpy() raised torch's TypeError); exact
        bins = bins.numpy() if bins.ndim else bins.item()
    if isinstance(bins, (str, bytes, bool)) or not (hasattr(bins, "__index__") or np.ndim(bins) == 1):
        raise TypeError(f"{call}): expected a number of bins (an int >= 1) or the bin edges (a 1-D "
                        "sequence of increasing numbers), got "
                        f"{type(bins).__name__}; a rule like 'auto' would give each step another "
                        "number of bins, and a histogram series keeps one: pass e.g. bins=64")
    if hasattr(bins, "__index__") and np.ndim(bins) == 0 and int(bins) < 1:
        raise ValueError(f"{call}): expected a number of bins >= 1; pass e.g. bins=64")
    if range_ is not None:
        try:
            low, high = (float(x) for x in range_)
        except (TypeError, ValueError):
            raise TypeError(f"log_histogram({name!r}, range={range_!r:.40}): expected (low, high), two "
                            "numbers, or None for the values' own range") from None
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"log_histogram({name!r}, range={range_!r:.40}): expected two finite "
                             "numbers with low < high, e.g. range=(0.0, 1.0)")
        range_ = (low, high)
    try:
        return np.histogram(arr, bins=bins, range=range_)
    except (TypeError, ValueError) as e:  # edges that do not increase, or are no numbers
        raise ValueError(f"{call}): {e}; pass a number of bins or increasing edges") from None


def _bad_aggregation(agg: Any) -> ValueError:
    return ValueError(f"_aggregation must be one of {', '.join(R.AGGREGATIONS)}; got {agg!r}")


def _tensor_stats(tensors: dict[str, list[tuple[Any, int | None]]]) -> tuple[R.LocalStats, list[str]]:
    """Statistics of 0-d device tensors, computed on their device, in a fixed number of kernel
    launches whatever the number of keys and values (one per value would cost ~5 µs each on
    the training thread), and one copy to the host. A key with a tensor changed in place since
    its ``collect()`` (its version moved) is left out and named in the second item: the value
    it held then is gone."""
    import torch

    changed = sorted(k for k, kept in tensors.items()
                     if any(v is not None and t._version != v for t, v in kept))
    keys = sorted(k for k in tensors if k not in changed)
    if not keys:
        return R.LocalStats((), *(np.zeros(0) for _ in range(5))), changed
    ts = [t for k in keys for t, _ in tensors[k]]
    sizes = [len(tensors[k]) for k in keys]
    f64 = torch.float64
    dtype, flat = ts[0].dtype, None
    if all(t.dtype == dtype for t in ts):  # (stacked first only in one dtype: stack would
        try:  # promote a float16 beside an int64 to float16)
            flat = torch.stack(ts).to(f64)
        except RuntimeError:  # tensors on several devices
            pass
    if flat is None:
        device = ts[0].device
        flat = torch.stack([t.to(device=device, dtype=f64) for t in ts])
    n = max(sizes)
    if min(sizes) == n:
        x = flat.view(len(keys), n)
    else:  # keys with fewer values: padded with NaN, a padded place counts as no finite value
        x = torch.nn.utils.rnn.pad_sequence(list(flat.split(sizes)), batch_first=True,
                                            padding_value=math.nan)
    fin = torch.isfinite(x)
    a = torch.stack([
        torch.where(fin, x, 0.0).sum(1),
        fin.sum(1, dtype=f64),
        torch.where(fin, x, math.inf).amin(1),
        torch.where(fin, x, -math.inf).amax(1),
    ]).cpu().numpy()
    count = a[1]
    return R.LocalStats(tuple(keys), a[0], count, a[2], a[3], np.asarray(sizes, dtype=np.float64) - count), changed


def _changed_in_place(key: str) -> str:
    return (f"metric {key!r}: a tensor given to collect() was changed in place before the flush "
            "(e.g. an accumulator: `acc += loss`), so the value it held when collected is gone and "
            "this window of the key was left out; collect a copy (`acc.detach().clone()`) or a "
            "new tensor each time")
