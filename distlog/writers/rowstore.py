"""Chunked Zarr row tables with a committed length per series, written off the training thread.

Layout of one table (e.g. ``scalars``) under a run (see docs/FORMAT.md):

    <name>.zarr/<key parts...>      2-D float64 array (capacity, width), chunks (chunk_rows, width),
                                    attributes {"columns": [...]}; stored column-major
                                    (transpose codec) and Blosc/zstd-compressed
    <name>.commit.json              {"lengths": {key: n}, ...}: only rows [0, n) are committed

A reader takes ``lengths`` first and reads only those rows, so it never sees a partial write or
the fill value of a grown array; rows past ``n`` may exist from an interrupted write and are
ignored. ``commit.json`` is written last, atomically, after every chunk it covers.

``BackgroundWriter`` buffers rows per series in memory, and a single thread writes whole chunks
plus the current tail chunk (rewritten as it fills) every ``commit_interval`` seconds, on
``flush(wait=True)`` and at ``close()``. The training thread only enqueues.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import report
from ..errors import WriterError
from ..storage.abandoned import closing_abandoned
from ..storage.base import StorageBackend

DEFAULT_CHUNK_ROWS = 8192


def _codecs() -> dict[str, Any]:
    from zarr.codecs import BloscCodec, TransposeCodec

    return {
        # column-major chunks: each column compresses on its own (steps and times to ~nothing)
        "filters": [TransposeCodec(order=(1, 0))],
        "compressors": [BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")],
    }


def gather_async(coros: list[Any], limit: int = 64) -> list[Any]:
    """Run zarr coroutines concurrently (at most ``limit`` at once) on zarr's event loop."""
    if not coros:
        return []
    import asyncio

    from zarr.core.sync import sync

    async def bounded() -> list[Any]:
        sem = asyncio.Semaphore(limit)

        async def one(c: Any) -> Any:
            async with sem:
                return await c

        # wait for every one even when one fails: a write of a failed commit must not still
        # be in flight (and land over newer data) when the commit is retried
        out = await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)
        for r in out:
            if isinstance(r, BaseException):
                raise r
        return out

    with closing_abandoned():
        return sync(bounded())


@dataclass
class _Series:
    width: int
    committed: int = 0  # rows covered by the last commit record
    tail_start: int = 0  # first row held in ``buf`` (a multiple of chunk_rows)
    buf: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))
    n: int = 0  # rows in total (committed + buffered)
    written: int = 0  # rows durably written to chunks (>= committed)
    capacity: int = 0  # the array's current first dimension
    array: Any = None  # a zarr AsyncArray


class RowTable:
    """One Zarr group of 2-D row arrays plus its commit record. Not thread-safe by itself."""

    def __init__(
        self,
        backend: StorageBackend,
        name: str,
        columns: Sequence[str],
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.name = name
        self.columns = list(columns)
        self.chunk_rows = int(chunk_rows)
        self.attrs = attrs or {}
        self.series: dict[str, _Series] = {}
        self.dirty: set[str] = set()
        self._group: Any = None
        self._batch_keys: tuple[str, ...] = ()
        self._batch_rows: list[np.ndarray] = []

    # -- zarr handles ----------------------------------------------------------------------
    @property
    def zarr_path(self) -> str:
        return f"{self.name}.zarr"

    @property
    def commit_path(self) -> str:
        return f"{self.name}.commit.json"

    def group(self) -> Any:
        if self._group is None:
            import zarr

            with closing_abandoned():
                self._group = zarr.open_group(store=self.backend.zarr_store(self.zarr_path),
                                              mode="a")
        return self._group

    def _create_array_async(self, key: str, width: int, capacity: int) -> Any:
        return self.group()._async_group.create_array(
            key,
            shape=(capacity, width),
            chunks=(self.chunk_rows, width),
            dtype="float64",
            fill_value=np.nan,
            attributes={"columns": self._columns_for(width), **self.attrs},
            overwrite=True,
            **_codecs(),
        )

    def _columns_for(self, width: int) -> list[str]:
        if width == len(self.columns):
            return self.columns
        return self.columns + [f"c{i}" for i in range(len(self.columns), width)]

    # -- loading an existing table (resume) ------------------------------------------------
    def load(self, truncate_after_step: float | None = None) -> None:
        """Adopt what is committed on the store; optionally drop rows with step > the given step.

        The step is column 0. Used when a run is resumed so new rows continue the series.
        """
        try:
            commit = self.backend.read_json(self.commit_path)
        except FileNotFoundError:
            return
        for key, n in commit.get("lengths", {}).items():
            arr = self.group()[key]
            width = arr.shape[1]
            if truncate_after_step is not None and n:
                # keep the prefix before the first row past the checkpoint step
                later = np.asarray(arr[:n, 0]) > truncate_after_step
                if later.any():
                    n = int(np.argmax(later))
            tail_start = (n // self.chunk_rows) * self.chunk_rows
            buf = np.asarray(arr[tail_start:n]) if n > tail_start else np.empty((0, width))
            s = _Series(width, committed=n, tail_start=tail_start, n=n, written=n,
                        capacity=arr.shape[0], array=arr._async_array)
            s.buf = np.empty((max(self.chunk_rows, len(buf)), width))
            s.buf[: len(buf)] = buf
            self.series[key] = s
            if truncate_after_step is not None:
                self.dirty.add(key)  # rewrite the tail chunk without the dropped rows

    # -- buffering (writer thread) ---------------------------------------------------------
    def add_many(self, keys: tuple[str, ...], rows: np.ndarray) -> None:
        """One row per key (row i for keys[i]). Consecutive calls with the same key tuple (a
        steady-state flush) are only stacked here and split per series once per commit."""
        if keys is not self._batch_keys and keys != self._batch_keys:
            self._spill()
            self._batch_keys = keys
        self._batch_rows.append(rows)

    def _spill(self) -> None:
        if not self._batch_rows:
            return
        stacked = np.stack(self._batch_rows, axis=1)  # (K, batches, width)
        keys, self._batch_rows = self._batch_keys, []
        for i, k in enumerate(keys):
            self.add(k, stacked[i])

    def add(self, key: str, rows: np.ndarray) -> None:
        if self._batch_rows:
            self._spill()  # keep each series in arrival order
        rows = np.atleast_2d(rows)
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = _Series(rows.shape[1])
            s.buf = np.empty((min(self.chunk_rows, 64), rows.shape[1]))
        if rows.shape[1] != s.width:
            raise ValueError(f"{self.name} series {key!r} has {s.width} columns, got rows of {rows.shape[1]}")
        used = s.n - s.tail_start
        need = used + len(rows)
        if need > len(s.buf):
            grown = np.empty((max(need, 2 * len(s.buf)), s.width))
            grown[:used] = s.buf[:used]
            s.buf = grown
        s.buf[used:need] = rows
        s.n += len(rows)
        self.dirty.add(key)

    def write(self, final: bool = False) -> bool:
        """Write dirty chunks and then the commit record. True if anything was written.

        Array creation, growth and chunk writes each run concurrently over all dirty series
        (zarr's async API): one commit of 1,000 series costs a few round trips, not 1,000.
        """
        self._spill()
        if not self.dirty and not (final and self.series):
            return False
        C = self.chunk_rows
        dirty = [(k, self.series[k]) for k in sorted(self.dirty)]
        new = [(k, s) for k, s in dirty if s.array is None]
        for _, s in new:
            s.capacity = max(C, -(-s.n // C) * C)
        created = gather_async([self._create_array_async(k, s.width, s.capacity) for k, s in new])
        for (_, s), arr in zip(new, created):
            s.array = arr
        grow = []
        for _, s in dirty:
            if s.n > s.capacity:
                cap = s.capacity
                while cap < s.n:
                    cap *= 2
                grow.append((s, cap))
        gather_async([s.array.resize((cap, s.width)) for s, cap in grow])
        for s, cap in grow:  # only once grown: zarr drops writes past an array's shape
            s.capacity = cap
        writes = []
        for _, s in dirty:
            first = max((min(s.written, s.n) // C) * C, s.tail_start)  # first chunk that changed
            for c0 in range(first, s.n, C):
                lo, hi = c0 - s.tail_start, min(c0 + C, s.n) - s.tail_start
                block = s.buf[lo:hi]
                if hi - lo < C:
                    # pad to a whole chunk: a complete-chunk write needs no read-modify-write
                    full = np.full((C, s.width), np.nan)
                    full[: hi - lo] = block
                    block, hi = full, lo + C
                writes.append(s.array.setitem(slice(c0, c0 + hi - lo), block))
        gather_async(writes)
        for _, s in dirty:
            s.written = s.n
            # drop whole chunks from the buffer: they are on the store for good
            used = s.n - s.tail_start
            done = (used // C) * C
            if done:
                rest = s.buf[done:used].copy()
                s.buf = np.empty((max(C if len(rest) else 64, len(rest)), s.width))
                s.buf[: len(rest)] = rest
                s.tail_start += done
        lengths = {k: s.n for k, s in sorted(self.series.items())}
        self.backend.write_json(
            self.commit_path,
            {"format": 1, "table": self.name, "columns": self.columns, "chunk_rows": C,
             "lengths": lengths, "time": time.time(), "final": final},
        )
        for s in self.series.values():
            s.committed = s.n
        self.dirty.clear()
        return True

    def finalize(self) -> None:
        """Shrink every array to its exact length and consolidate metadata (run close)."""
        if not self.series:
            return
        import warnings

        import zarr

        shrink = [s for s in self.series.values() if s.array is not None and s.capacity != s.n]
        gather_async([s.array.resize((s.n, s.width)) for s in shrink])
        for s in shrink:
            s.capacity = s.n
        with warnings.catch_warnings(), closing_abandoned():
            warnings.simplefilter("ignore")  # "consolidated metadata is not in the v3 spec"
            zarr.consolidate_metadata(self.backend.zarr_store(self.zarr_path))


@dataclass(frozen=True)
class _Commit:
    """Queue item: commit everything put before it, then set ``done``."""

    done: threading.Event


@dataclass(frozen=True)
class _Close:
    """Queue item: drain, commit a last time, finalize the tables if asked, end the thread."""

    finalize: bool


class BackgroundWriter:
    """One thread that owns a set of ``RowTable``s. Training threads call ``put`` only.

    A failed write keeps every buffered row and is retried at the next commit; the error is
    raised (``WriterError``) at the next ``flush``/``close`` on the training thread, never
    swallowed. ``flush(wait=True)`` blocks until everything put so far is committed.
    """

    def __init__(self, tables: dict[str, RowTable], commit_interval: float = 10.0) -> None:
        self.tables = tables
        self.commit_interval = commit_interval
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._closed = False
        self.commits = 0
        self.last_commit_seconds = 0.0
        self._thread = threading.Thread(target=self._loop, name="distlog-writer", daemon=True)
        self._thread.start()

    # -- training thread -------------------------------------------------------------------
    def put(self, table: str, key: str, rows: np.ndarray) -> None:
        self._q.put((table, key, rows))

    def put_many(self, table: str, keys: Sequence[str], rows: np.ndarray) -> None:
        """Rows for several series at once (row i belongs to keys[i]); one queue item."""
        self._q.put((table, tuple(keys), rows))

    def flush(self, wait: bool = True, timeout: float | None = None) -> None:
        self.raise_pending()
        if wait:
            done = threading.Event()
            self._q.put(_Commit(done))
            if not done.wait(timeout):
                raise WriterError(f"the writer did not commit within {timeout} s")
            self.raise_pending()

    def close(self, finalize: bool = True, timeout: float | None = 300.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._q.put(_Close(finalize))
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise WriterError(f"the writer did not finish within {timeout} s; rows may be missing")
        self.raise_pending()

    def raise_pending(self) -> None:
        err, self._error = self._error, None
        if err is not None:
            raise WriterError(f"writing to the store failed: {err!r}; buffered rows are kept "
                              "and retried at the next commit") from err

    # -- writer thread ---------------------------------------------------------------------
    def _loop(self) -> None:
        next_commit = time.monotonic() + self.commit_interval
        while True:
            timeout = max(0.0, next_commit - time.monotonic())
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is None:
                next_commit = self._commit(time.monotonic())
            elif type(item) is tuple:  # rows: (table, key or keys, rows)
                self._add(*item)
            elif isinstance(item, _Commit):
                next_commit = self._commit(time.monotonic())
                item.done.set()
            else:
                assert isinstance(item, _Close), item
                self._drain()
                self._commit(time.monotonic(), final=True)
                if item.finalize and self._error is None:
                    try:
                        for t in self.tables.values():
                            t.finalize()
                    except Exception as e:  # noqa: BLE001 - reported on the training thread
                        self._error = e
                return

    def _drain(self) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if type(item) is tuple:
                self._add(*item)
            elif isinstance(item, _Commit):
                item.done.set()

    def _add(self, table: str, key: Any, rows: np.ndarray) -> None:
        t = self.tables[table]
        if isinstance(key, tuple):
            t.add_many(key, rows)
        else:
            t.add(key, rows)

    def _commit(self, now: float, final: bool = False) -> float:
        t0 = time.perf_counter()
        try:
            wrote = False
            for t in self.tables.values():
                wrote |= t.write(final=final)
            if wrote:
                self.commits += 1
        except Exception as e:  # noqa: BLE001 - kept, retried, and raised on the training thread
            self._error = e
            report.warn(f"writing metrics failed ({e!r}); will retry", key="metrics write")
        self.last_commit_seconds = time.perf_counter() - t0
        # never spend more than ~20% of the time writing: back off when commits are slow
        return now + max(self.commit_interval, 5 * self.last_commit_seconds)


# ---- reading (the format's owner also reads it) --------------------------------------------
def read_commit(backend: StorageBackend, name: str) -> dict[str, Any]:
    """The commit record of table ``name`` (``{}`` when nothing was committed yet)."""
    try:
        return backend.read_json(f"{name}.commit.json")
    except FileNotFoundError:
        return {}


def read_series(backend: StorageBackend, name: str, key: str, commit: dict[str, Any] | None = None) -> np.ndarray:
    """The committed rows of one series: a ``(n, width)`` float64 array (``(0, 0)`` if none).

    Only rows ``[0, lengths[key])`` are read, so a reader never sees a partial write.
    """
    import zarr

    commit = read_commit(backend, name) if commit is None else commit
    n = commit.get("lengths", {}).get(key)
    if not n:
        known = ", ".join(sorted(commit.get("lengths", {}))) or "none"
        raise KeyError(f"no committed series {key!r} in {name}; committed: {known}")
    arr = zarr.open_array(store=backend.zarr_store(f"{name}.zarr", read_only=True), path=key, mode="r")
    return np.asarray(arr[:n])
