"""Chunked Zarr row tables with a committed length per series, written off the training thread.

Layout of one table (e.g. ``scalars``) under a run (see docs/FORMAT.md):

    <name>.zarr/<key parts...>      2-D float64 array (capacity, width), chunks (chunk_rows, width),
                                    attributes {"columns": [...]}; stored column-major
                                    (transpose codec) and Blosc/LZ4-compressed; chunk keys ``c.<i>.0``
    <name>.commit.json              {"lengths": {key: n}, ...}: only rows [0, n) are committed

A reader takes ``lengths`` first and reads only those rows, so it never sees a partial write or
the fill value of a grown array; rows past ``n`` may exist from an interrupted write and are
ignored. ``commit.json`` is written last, atomically, after every chunk and array document it
covers (documents created or resized between commits are put with the commit's chunks).

``BackgroundWriter`` buffers rows per series in memory, and a single thread writes whole chunks
plus the current tail chunk (rewritten as it fills) every ``commit_interval`` seconds, on
``flush(wait=True)`` and at ``close()``. The training thread only enqueues.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from numcodecs import Blosc  # imported with distlog (~60 ms): never on a run's writer thread,
# where its import would take the GIL from the training loop and a short run's close would wait

from ..layout import table_commit, table_zarr
from .. import report
from ..errors import RowsRefused, WriterError, damaged
from ..report import warn
from ..storage.abandoned import close_abandoned, closing_abandoned
from ..storage.aio import gather
from ..storage.base import MISSING, StorageBackend, read_objects
from .zarrdoc import array_doc, consolidated

DEFAULT_CHUNK_ROWS = 8192
ENTRY_POLL = 0.05  # seconds between the writer's looks at its entry list (log() calls)
LOAD_BATCH_CHUNKS = 256  # stored chunks read at once when an attempt loads its series
ENTRY_SLICE = DEFAULT_CHUNK_ROWS  # entries handled at once (then filled chunks are written)
#: what the entries handed to the writer and not yet written may hold (bytes, roughly: a
#: window's ``nbytes``, ``ENTRY_BYTES`` for a log() call) before the training thread that
#: hands it more waits for the writer to write half of it: a writer slower than the training
#: loop (a wide run's flush every step on two cores, a slow store) let the backlog, and the
#: process's memory, grow without end
BACKLOG_BYTES = 256 << 20
ENTRY_BYTES = 256
ENTRY_CHECK = 512  # entries appended and not yet taken past which the appending thread queues them
ROOM_WARN, ROOM_WAIT_MAX = 10.0, 300.0  # seconds of waiting for the writer: said, then given up
PARALLEL_CHUNKS = 32  # chunks to encode at once from which they go to the encoding threads
CREATE_AFTER = 0.05  # the arrays of the first rows are created this soon after them (no commit)


# chunk keys "c.<row chunk>.0": each chunk a file in its series' folder (the default "c/<i>/0"
# costs three folders per series on local disk, each a slow mkdir on the writer thread)
_CHUNK_KEYS = {"name": "default", "configuration": {"separator": "."}}


# the series codecs as zarr.json spells them: column-major chunks (each column compresses on
# its own: steps and times to ~nothing), little-endian float64, Blosc LZ4 level 5 with byte
# shuffle: a fifth to a half of zstd-3's encoding time, the same decoding time; 1.3-2.2x its
# ratio on logged floats (a value repeated in its mean/min/max/sum columns), 0.75x on logged
# integers, 0.9x on reduced rows (bench_codecs.py)
_TRANSPOSE = {"name": "transpose", "configuration": {"order": [1, 0]}}
_BYTES = {"name": "bytes", "configuration": {"endian": "little"}}
_BLOSC = {"name": "blosc", "configuration": {"typesize": 8, "cname": "lz4", "clevel": 5,
                                             "shuffle": "shuffle", "blocksize": 0}}


def _codecs() -> dict[str, Any]:
    """The series codecs as ``create_array`` arguments (zarr creates the arrays on object
    stores; on local disk the writer writes the same documents itself)."""
    return {"filters": [_TRANSPOSE], "serializer": _BYTES, "compressors": [_BLOSC]}


_SHUFFLES = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_scratch = threading.local()  # per thread: the transposed chunk being encoded


def chunk_encoder(doc: dict[str, Any]) -> Any:
    """``encode(block) -> bytes`` for a chunk of the array whose ``zarr.json`` is ``doc``
    (``block``: its rows, at most a chunk's, NaN-padded to a whole chunk here) when its codecs
    are the series codecs (transpose (1, 0), little-endian float64, any Blosc setting): the
    writer then encodes whole chunks itself and stores them under the array's chunk keys,
    with no zarr (a fraction of zarr's per-call ``setitem`` path). None for any other layout
    (zarr writes those)."""
    codecs = doc.get("codecs", ())
    names = [c.get("name") for c in codecs]
    conf = [c.get("configuration") or {} for c in codecs]
    if (names != ["transpose", "bytes", "blosc"] or list(conf[0].get("order", ())) != [1, 0]
            or conf[1].get("endian") != "little" or len(doc.get("shape", ())) != 2
            or doc.get("data_type") != "float64"
            or conf[2].get("shuffle") not in _SHUFFLES or not conf[2].get("typesize")):
        return None
    b = conf[2]
    blosc = Blosc(cname=b["cname"], clevel=int(b["clevel"]), shuffle=_SHUFFLES[b["shuffle"]],
                  blocksize=int(b.get("blocksize", 0)), typesize=int(b["typesize"]))
    rows = int(doc["chunk_grid"]["configuration"]["chunk_shape"][0])

    width = int(doc["shape"][1])

    def encode(block: np.ndarray, packing: Packing | None = None) -> bytes:
        # transpose (1, 0), little-endian bytes, Blosc: zarr's own pipeline for these codecs.
        # The transposed chunk is built in this thread's scratch array (no new pages per
        # chunk), a short block padded there with NaN to the whole chunk, as zarr stores it;
        # a packed block (its leading columns) is widened there to whole rows
        shape = (width, rows)
        buf = getattr(_scratch, "buf", None)
        if buf is None or buf.shape != shape:
            buf = _scratch.buf = np.empty(shape, "<f8")
        n = len(block)
        if packing is None:
            buf[:, :n] = block.T
        else:
            buf[: block.shape[1], :n] = block.T
            packing.widen(buf[:, :n].T)
        if n < rows:
            buf[:, n:] = np.nan
        return blosc.encode(buf)

    return encode


class SeriesWriteError(WriterError):
    """Some series of a table could not be written; the others were committed."""

    def __init__(self, table: str, failed: dict[str, BaseException]) -> None:
        self.table, self.failed = table, dict(failed)
        shown = "; ".join(f"{k!r}: {e!r}" for k, e in list(failed.items())[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        super().__init__(f"{len(failed)} series of {table} could not be written, the others were "
                         f"committed: {shown}{more}")


def gather_async(coros: list[Any], limit: int = 64, return_exceptions: bool = False) -> list[Any]:
    """Run zarr coroutines concurrently (at most ``limit`` at once) on zarr's event loop.

    Waits for every one even when one fails (a write of a failed commit must not still be in
    flight, and land over newer data, when the commit is retried); then raises the first
    failure, or with ``return_exceptions`` returns the exceptions in place of results.
    Coroutines zarr created but abandoned on a failure are closed (``close_abandoned``),
    whether the failure is raised or returned."""
    with closing_abandoned():
        out = gather(coros, limit=limit, return_exceptions=return_exceptions)
    for r in out:
        if isinstance(r, BaseException):
            close_abandoned(r)
    return out


@dataclass(frozen=True)
class _Put:
    """A store operation: write ``data`` at ``path`` (inside the table), once the objects at
    ``deletes`` are gone (chunks past a shrunk array's end); ``then()``, when given, runs once
    it is written (a series takes the metadata document it just stored)."""

    path: str
    data: bytes
    then: Any = None
    deletes: tuple[str, ...] = ()

    def done(self) -> None:
        if self.then is not None:
            self.then()

    async def coroutine(self, root: Any) -> None:
        """The put through zarr's store (``root``: the table's store path)."""
        from zarr.core.buffer import default_buffer_prototype

        for path in self.deletes:
            await (root / path).delete()
        await (root / self.path).set(default_buffer_prototype().buffer.from_bytes(self.data))
        self.done()


@dataclass(frozen=True)
class _Chunk:
    """A chunk to encode (``encode(block)``) and then put at ``path`` (inside the table)."""

    path: str
    block: np.ndarray
    encode: Any
    packing: Any = None  # the block holds only its rows' leading columns (``Packing``)


_ENCODERS: ThreadPoolExecutor | None = None
_ENCODERS_LOCK = threading.Lock()


def _forget_encoders() -> None:
    """In a forked child (a fork-started worker, a Pool's): the parent's pool came along
    without its threads, and a chunk submitted to it waited for ever (the child's close hung,
    and a SIGTERM's close again); the child makes its own on first use."""
    global _ENCODERS, _ENCODERS_LOCK
    _ENCODERS, _ENCODERS_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_encoders)


_STORED = object()  # an op ``_encoded`` already wrote to the store


def _encoded(ops: list[Any], parallel: bool, put: Any = None) -> Any:
    """``result()``: ``ops`` with every ``_Chunk`` encoded into a ``_Put``, or the exception
    its encoding raised. When ``parallel`` and there are several, the chunks go to a small
    shared pool at once and ``result()`` waits for them (the caller stores its other puts
    meanwhile); with ``put`` (``put(path, data)``: a store where puts are cheap) the pool also
    stores the chunks it encodes (``_STORED`` in their place): file writes run without the
    GIL too."""
    chunks = [op for op in ops if type(op) is _Chunk]
    if not chunks:
        return lambda: ops
    # a few chunks are encoded here: on the pool their threads' hand-offs of the GIL cost more
    # than they save (10 chunks at close: 2-3 ms slower on two cores; 1,000: twice as fast)
    parallel = parallel and len(chunks) >= PARALLEL_CHUNKS
    store = put if parallel else None

    def encode(c: _Chunk) -> Any:
        try:
            op = _Put(c.path, c.encode(c.block, c.packing))
            if store is None:
                return op
            store(op.path, op.data)
            return _STORED
        except Exception as e:  # noqa: BLE001 - that chunk's series fails alone
            return e

    if parallel:
        global _ENCODERS
        with _ENCODERS_LOCK:  # the tables' close threads may get here together
            if _ENCODERS is None:
                _ENCODERS = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="distlog-encode")
        futures = [_ENCODERS.submit(encode, c) for c in chunks]
        done = lambda: (f.result() for f in futures)  # noqa: E731
    else:
        done = lambda: map(encode, chunks)  # noqa: E731

    def result() -> list[Any]:
        it = iter(done())
        return [next(it) if type(op) is _Chunk else op for op in ops]

    return result


_GROUP_DOC = b'{"attributes": {}, "zarr_format": 3, "node_type": "group"}'


def chunk_key(doc: dict[str, Any], row_chunk: int) -> str:
    """The key of row chunk ``row_chunk`` (column chunk 0) of the 2-D array whose ``zarr.json``
    is ``doc``, as its ``chunk_key_encoding`` spells it (``c.<i>.0`` today, ``c/<i>/0`` in
    runs written before; ``<i>.0`` for zarr's "v2" encoding)."""
    enc = doc.get("chunk_key_encoding") or {"name": "default"}
    sep = (enc.get("configuration") or {}).get("separator")
    if enc.get("name") == "v2":
        return f"{row_chunk}{sep or '.'}0"
    sep = sep or "/"
    return f"c{sep}{row_chunk}{sep}0"


class _StoredRows:
    """The rows an earlier attempt stored in a series array whose chunks the writer decodes
    itself (``chunk_encoder(doc)`` is not None): ``[a:b]`` and ``[a:b, col]`` read and decode
    only the chunks they span, with no zarr; a missing chunk reads as the fill value, as in
    zarr. Chunks handed over by ``take`` (read for many series at once) are not read again;
    ``keep`` then drops all but the ones still needed."""

    def __init__(self, backend: StorageBackend, path: str, doc: dict[str, Any]) -> None:
        self.backend, self.path, self.doc = backend, path, doc
        self.chunk_rows = int(doc["chunk_grid"]["configuration"]["chunk_shape"][0])
        self.length, self.width = (int(x) for x in doc["shape"])
        self.fill = float(doc.get("fill_value", "NaN"))
        self._chunks: dict[int, np.ndarray | None] = {}  # decoded (None: not on the store)
        self.first_steps: np.ndarray | None = None  # the step of each chunk's first row

    def chunks(self, n: int, last_only: bool = False) -> list[int]:
        """The chunks holding rows ``[0, n)`` (``last_only``: the one holding row ``n - 1``)."""
        end = -(-min(n, self.length) // self.chunk_rows)
        return list(range(end - 1 if last_only and end else 0, end))

    def chunk_path(self, i: int) -> str:
        """Chunk ``i``'s path inside the backend."""
        return f"{self.path}/{chunk_key(self.doc, i)}"

    def take(self, chunks: dict[int, bytes | None]) -> None:
        """Chunks as read from the store, by index (None: absent)."""
        for i, data in chunks.items():
            self._chunks[i] = None if data is None else self._decode(data)

    def keep(self, chunks: set[int]) -> None:
        self._chunks = {i: c for i, c in self._chunks.items() if i in chunks}

    def _decode(self, data: bytes) -> np.ndarray:
        return np.frombuffer(Blosc().decode(data), "<f8").reshape(self.width, self.chunk_rows).T  # (transpose codec)

    def _chunk(self, i: int) -> np.ndarray | None:
        if i not in self._chunks:
            try:
                self._chunks[i] = self._decode(self.backend.read_bytes(self.chunk_path(i)))
            except MISSING:
                self._chunks[i] = None
        return self._chunks[i]

    def steps(self, n: int) -> np.ndarray:
        """The steps of rows ``[0, n)``; notes each chunk's first step (``rows_before``)."""
        steps = np.asarray(self[:n, 0])
        self.first_steps = steps[:: self.chunk_rows].copy()
        return steps

    def rows_before(self, step: float, n: int) -> int:
        """How many of rows ``[0, n)`` (steps strictly increasing) have a step below ``step``:
        once the chunks' first steps are known, only the chunk where the answer lies is read."""
        C, chunks = self.chunk_rows, -(-n // self.chunk_rows)
        if self.first_steps is None or len(self.first_steps) < chunks:
            self.steps(n)
        i = int(np.searchsorted(self.first_steps[:chunks], step, side="left")) - 1
        if i < 0:
            return 0
        steps = np.asarray(self[i * C : min(n, (i + 1) * C), 0])
        later = steps >= step
        return i * C + (int(np.argmax(later)) if later.any() else len(steps))

    def __getitem__(self, sel: Any) -> np.ndarray:
        rows, col = sel if isinstance(sel, tuple) else (sel, slice(None))
        a, b, _ = rows.indices(self.length)
        C = self.chunk_rows
        out = np.full((max(0, b - a), self.width), self.fill)
        for i in range(a // C, -(-b // C)):
            chunk = self._chunk(i)
            if chunk is None:
                continue
            lo, hi = max(a, i * C), min(b, (i + 1) * C)
            out[lo - a : hi - a] = chunk[lo - i * C : hi - i * C]
        return out[:, col]


@dataclass(frozen=True)
class _Created:
    """A series array the writer created itself (local disk), at ``path`` inside the table:
    its chunks and documents are plain puts; zarr opens it only for what only zarr does."""

    path: str


def _json(doc: Any) -> bytes:
    """A Zarr metadata document (``to_dict()``: JSON-ready, NaN spelled "NaN") as bytes."""
    return json.dumps(doc, allow_nan=True).encode()


@dataclass(frozen=True)
class Packing:
    """Rows of a series whose columns after the first ``width`` follow from those:
    ``widen(rows)`` fills them in place (``rows`` whole rows, the first ``width`` columns set).
    A series buffered packed keeps only those columns until its chunks are encoded."""

    width: int
    widen: Any


def _rows_buffer(rows: int, width: int) -> np.ndarray:
    """A series buffer: ``(rows, width)``, laid out column by column (each column contiguous,
    as chunks are stored): filling a column and transposing whole chunks for the encoder are
    contiguous copies."""
    return np.empty((width, rows)).T


@dataclass
class _Series:
    width: int
    committed: int = 0  # rows covered by the last commit record
    tail_start: int = 0  # first row held in ``buf`` (a multiple of chunk_rows)
    buf: np.ndarray = field(default_factory=lambda: _rows_buffer(0, 0))  # (rows, width), column-major
    n: int = 0  # rows in total (committed + buffered)
    written: int = 0  # rows durably written to chunks (>= committed)
    capacity: int = 0  # the array's current first dimension
    array: Any = None  # a zarr AsyncArray, or ``_Created`` (none: not created yet)
    encode: Any = False  # chunk_encoder(doc), found on first use (False: not looked up yet)
    doc: Any = None  # the array's metadata document as stored (its shape: ``capacity``)
    on_disk: int = 0  # rows an earlier attempt's array had: chunks up to there may exist
    last_step: float = -np.inf  # step (column 0) of the last row; rows must go past it
    stored: Any = None  # loaded from an earlier attempt: rewound at its first new row
    dropped: int = 0  # rows refused because their step did not increase
    stored_columns: Any = None  # the columns of a series loaded from the store (older format: fewer)
    # ``doc`` is not on the store yet (a series the writer created since the last commit,
    # and maybe grew since): put with the next commit's chunks, before its record
    doc_pending: bool = False
    # the buffer holds only the leading columns of the rows (a series of logged values: step,
    # time, value), widened to the stored rows as they are encoded: a third of the memory to
    # fill and first touch (``Packing``); None: the buffer holds whole rows
    packing: Any = None
    # the step of the series' first row whose value is NaN or ±inf (a run that diverged), of
    # the rows it holds and of those the last commit covered; None: none
    nonfinite_at: float | None = None
    nonfinite_committed: float | None = None


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
        self._batch_n = 0  # rows per series stacked in _batch_rows
        self.complete_ready = False  # some series filled a chunk that is not written yet
        self.truncated = False  # a loaded series was shortened: publish that before new chunks
        self.failed: dict[str, BaseException] = {}  # series whose last write failed
        #: refuse rows whose step does not increase without a warning (the telemetry of an
        #: attempt that appends: an evaluation's flush at a step training already recorded)
        self.quiet_refusals = False
        #: where the first refusal of each series is said (the run's log, echoed on stderr);
        #: the others, and all without it, go to distlog's rate-limited warnings
        self.refusal_note: Callable[[str], None] | None = None
        self._noted: set[str] = set()
        #: takes no new rows (the stored telemetry of an attempt at another world size); what
        #: it holds is still committed (a resume cut it back)
        self.read_only = False
        self.uncreated = False  # a series got rows and has no array yet (the writer creates it)
        self._made_groups: set[str] = set()  # groups this table wrote for nested keys
        self._root: Any = None  # the table's zarr StorePath (``_store_root``)
        self._docs: dict[int, dict[str, Any]] = {}  # width: a series document without its shape
        #: the column whose NaN/±inf the commit record names (``nonfinite_from``): a scalar
        #: row's headline ``value``; None: a table without one
        self._value_col = self.columns.index("value") if "value" in self.columns else None

    # -- zarr handles ----------------------------------------------------------------------
    @property
    def zarr_path(self) -> str:
        return table_zarr(self.name)

    @property
    def commit_path(self) -> str:
        return table_commit(self.name)

    def group(self) -> Any:
        if self._group is None:
            import zarr

            # never the consolidated metadata: it holds the shapes of the last finalize, and a
            # write past an array's real shape read from it would be dropped by zarr
            with closing_abandoned():
                self._group = zarr.open_group(store=self.backend.zarr_store(self.zarr_path),
                                              mode="a", use_consolidated=False, zarr_format=3)
        return self._group

    def _new_arrays(self, specs: list[tuple[str, int, int]]) -> list[Any]:
        """Create the arrays ``(key, width, capacity)`` (an existing one is replaced); each
        one's ``(array, its document or None)`` or the exception it raised. Where puts are
        cheap (local disk) the metadata documents are made here, with no zarr
        (``_array_document``: what zarr's ``create_array`` writes), each array a ``_Created``
        whose document the next commit puts with its chunks (``doc_pending``); elsewhere zarr
        creates them, all at once."""
        if not self.backend.cheap_puts:
            made = gather_async([self._create_array_async(*spec) for spec in specs], return_exceptions=True)
            return [a if isinstance(a, BaseException) else (a, None) for a in made]
        if self._group is None and not self.backend.exists(f"{self.zarr_path}/zarr.json"):
            self.backend.put_object(f"{self.zarr_path}/zarr.json", _GROUP_DOC)
        out: list[Any] = []
        made: set[str] = set()  # arrays made here: their documents are not on the store yet
        for key, width, capacity in specs:
            try:
                parts = key.split("/")
                for i in range(1, len(parts)):  # the groups on the way, as zarr writes them
                    prefix = "/".join(parts[:i])
                    if prefix not in self._made_groups:
                        node = "array" if prefix in made else self._node_type(prefix)
                        if node == "array":  # (as zarr's create_array refuses)
                            raise ValueError(f"{self.name}: cannot create series {key!r}: {prefix!r} "
                                             "is already a series on the store, not a namespace")
                        if node is None:
                            self.backend.put_object(f"{self.zarr_path}/{prefix}/zarr.json", _GROUP_DOC)
                        self._made_groups.add(prefix)
                node = self._node_type(key)
                if node == "group":
                    raise ValueError(f"{self.name}: cannot create series {key!r}: it is already a "
                                     "namespace of other series on the store")
                if node == "array" or (node is None and self.backend.exists(f"{self.zarr_path}/{key}")):
                    # never committed by an earlier attempt (or only its chunks were stored,
                    # the document still pending): replace it whole, chunks too
                    self.backend.delete(f"{self.zarr_path}/{key}", recursive=True)
                # its document is put with the commit's chunks (``doc_pending``): a short run
                # closing stores it once, at its exact size, not created, grown, then cut
                out.append((_Created(key), self._array_document(width, capacity)))
                made.add(key)
            except Exception as e:  # noqa: BLE001 - the caller reports per series
                out.append(e)
        return out

    def _node_type(self, path: str) -> str | None:
        """``"array"``, ``"group"`` or None: what the table holds at ``path`` on the store, or
        will once the next commit puts the documents it created."""
        s = self.series.get(path)
        if s is not None and s.array is not None:
            return "array"
        try:
            return self.backend.read_json(f"{self.zarr_path}/{path}/zarr.json").get("node_type")
        except MISSING:
            return None

    def _array_document(self, width: int, capacity: int) -> dict[str, Any]:
        """The ``zarr.json`` of a series array (``_codecs()``), as zarr's ``create_array``
        writes it (a test compares the two); each a new dict, the parts it shares never change."""
        template = self._docs.get(width)
        if template is None:
            template = self._docs[width] = array_doc(
                [0, width], "float64", [self.chunk_rows, width], "NaN", [_TRANSPOSE, _BYTES, _BLOSC],
                {"columns": self._columns_for(width), **self.attrs},
                separator=_CHUNK_KEYS["configuration"]["separator"])
        return {**template, "shape": [capacity, width]}

    def _store_root(self) -> Any:
        """The table's zarr ``StorePath`` (the group is opened, or on local disk made, by then)."""
        if self._root is None:
            if self.backend.cheap_puts and self._group is None:
                from zarr.storage import StorePath

                self._root = StorePath(self.backend.zarr_store(self.zarr_path))
            else:
                self._root = self.group()._async_group.store_path
        return self._root

    def _zarr_array(self, s: _Series) -> Any:
        """``s``'s zarr AsyncArray (one the writer created itself is opened from its document)."""
        if type(s.array) is _Created:
            from zarr.core.array import AsyncArray, parse_array_metadata

            s.array = AsyncArray(parse_array_metadata(self._doc(s)), self._store_root() / s.array.path)
        return s.array

    @staticmethod
    def _path(s: _Series) -> str:
        """Where ``s``'s array lies inside the table."""
        return s.array.path if type(s.array) is _Created else s.array.store_path.path

    def _create_array_async(self, key: str, width: int, capacity: int) -> Any:
        return self.group()._async_group.create_array(
            key,
            shape=(capacity, width),
            chunks=(self.chunk_rows, width),
            dtype="float64",
            fill_value=np.nan,
            attributes={"columns": self._columns_for(width), **self.attrs},
            overwrite=True,
            chunk_key_encoding=_CHUNK_KEYS,
            **_codecs(),
        )

    def _columns_for(self, width: int) -> list[str]:
        if width == len(self.columns):
            return self.columns
        return self.columns + [f"c{i}" for i in range(len(self.columns), width)]

    def needs_zarr(self) -> bool:
        """Whether writing this table may use zarr: an object store, or a series an earlier
        attempt stored in a layout the writer does not encode itself (other chunk rows, other
        codecs)."""
        return not self.backend.cheap_puts or any(
            s.array is not None and not self._direct(s) for s in self.series.values())

    def _direct(self, s: _Series) -> bool:
        """Whether the writer encodes this series' chunks itself (``chunk_encoder``)."""
        if s.encode is False:
            doc = self._doc(s)
            s.encode = chunk_encoder(doc)
            if s.encode is not None and doc["chunk_grid"]["configuration"]["chunk_shape"][0] != self.chunk_rows:
                s.encode = None  # stored with other chunk rows (a resume with another chunk_rows)
        return s.encode is not None

    def _row_writes(self, s: _Series, first: int, end: int) -> list[Any]:
        """Operations for ``_run_ops`` storing the buffered rows ``[first, end)`` of ``s``
        (``first`` a chunk boundary). Where the writer encodes the chunks itself, one put per
        chunk, each a whole chunk (a tail padded with NaN by the encoder, as zarr stores edge
        chunks): no read-modify-write. Otherwise one zarr ``setitem`` of the whole range: zarr
        then writes each of its chunks once (two writes into one chunk at the same time could
        each rewrite it with the other's rows missing)."""
        if first >= end:
            return []
        C = self.chunk_rows
        if self._direct(s):
            path, doc = self._path(s), self._doc(s)
            return [_Chunk(f"{path}/{chunk_key(doc, c0 // C)}",
                           s.buf[c0 - s.tail_start : min(c0 + C, end) - s.tail_start], s.encode, s.packing)
                    for c0 in range(first, end, C)]
        return [self._zarr_array(s).setitem(slice(first, end), self._rows(s, first - s.tail_start, end - s.tail_start))]

    @staticmethod
    def _rows(s: _Series, a: int, b: int) -> np.ndarray:
        """Buffered rows ``[a, b)`` of ``s`` (buffer positions) as whole rows."""
        if s.packing is None:
            return s.buf[a:b]
        rows = np.empty((b - a, s.width))
        rows[:, : s.packing.width] = s.buf[a:b]
        s.packing.widen(rows)
        return rows

    def _unpack(self, s: _Series) -> None:
        """Buffer whole rows for ``s`` from now on (rows of another kind come: a key both logged
        and reduced)."""
        used = s.n - s.tail_start
        buf = _rows_buffer(len(s.buf), s.width)
        buf[:used] = self._rows(s, 0, used)
        s.buf, s.packing = buf, None

    def _resize(self, s: _Series, rows: int) -> Any:
        """An operation for ``_run_ops`` giving ``s``'s array ``rows`` rows: for a series the
        writer encodes itself, a put of its metadata document with the new shape, after
        deleting the chunks an earlier attempt stored past the new end (``on_disk``: how far
        its array reached; this attempt only writes chunks below its row count) where the
        writer created or loaded the array itself; else zarr's resize (which deletes those)."""
        if not self._direct(s) or (rows < s.on_disk and type(s.array) is not _Created):
            return self._zarr_resize(s, rows)
        doc = {**self._doc(s), "shape": [rows, s.width]}
        C, path = doc["chunk_grid"]["configuration"]["chunk_shape"][0], self._path(s)
        # shrunk past what an earlier attempt stored: its chunks past the new end go first (as
        # zarr's resize deletes them), so a later growth reads NaN there, not stale rows
        gone = tuple(f"{path}/{chunk_key(doc, i)}" for i in range(-(-rows // C), -(-s.on_disk // C)))

        def stored() -> None:
            s.doc, s.doc_pending = doc, False
            s.on_disk = min(s.on_disk, rows)

        return _Put(f"{path}/zarr.json", _json(doc), stored, gone)

    def _resize_later(self, s: _Series, rows: int) -> bool:
        """Give ``s`` ``rows`` rows in memory only when its document is not on the store yet:
        the next commit puts it with its chunks (a series the writer encodes itself stores
        chunks by key, whatever the shape). False, and nothing changed, for a document on the
        store: it grows before chunks land past its shape, so the next attempt's ``on_disk``
        (that shape) covers every chunk this one may have stored, and a shrink deletes them.
        (Chunks of an array whose document never reached the store go with their folder when
        the next attempt creates the series: ``_new_arrays``.)"""
        if not s.doc_pending or not self._direct(s):
            return False
        s.doc = {**self._doc(s), "shape": [rows, s.width]}
        s.capacity, s.doc_pending = rows, True
        return True

    def _doc_put(self, s: _Series) -> _Put:
        """The put of ``s``'s pending document, as it is now."""
        def stored() -> None:
            s.doc_pending = False

        return _Put(f"{self._path(s)}/zarr.json", _json(s.doc), stored)

    @staticmethod
    def _doc(s: _Series) -> dict[str, Any]:
        """``s``'s metadata document as stored (a series resized by the writer's own puts
        keeps it here; zarr's array object keeps the shape it was opened or created with)."""
        if s.doc is None:
            s.doc = s.array.metadata.to_dict()
        return s.doc

    async def _zarr_resize(self, s: _Series, rows: int) -> None:
        array = self._zarr_array(s)
        if s.doc is not None and s.doc["shape"] != list(array.metadata.shape):
            # the writer's puts resized it since zarr last did: zarr works from the real shape
            object.__setattr__(array, "metadata", array.metadata.update_shape(tuple(s.doc["shape"])))
        await array.resize((rows, s.width))
        s.doc, s.doc_pending = None, False  # zarr's object holds the new shape now, stored
        s.on_disk = min(s.on_disk, rows)  # chunks past the new end were deleted

    def _run_ops(self, ops: list[Any], parallel: bool = False) -> list[BaseException | None]:
        """Run store operations (zarr coroutines, ``_Put``s and ``_Chunk``s); each one's
        exception or None.

        Chunks are encoded first, on a few threads when ``parallel`` (close: the training
        thread waits, the cores are free; Blosc runs without the GIL). Where a put costs less
        than a hop to zarr's event loop (``backend.cheap_puts``: local disk), puts are written
        here, one after another (those chunks by the threads that encoded them, the others
        while those threads encode); elsewhere every operation goes through zarr's store at
        once (object stores: a few round trips for any number)."""
        cheap = self.backend.cheap_puts
        result = _encoded(ops, parallel, self._put if cheap else None)
        out: list[BaseException | None] = [None] * len(ops)
        done = set()
        if cheap:  # the documents (and deletes) now, while the pool encodes the chunks
            for i, op in enumerate(ops):
                if type(op) is _Put:
                    out[i] = self._put_now(op)
                    done.add(i)
        ops = result()
        coros, where = [], []
        for i, op in enumerate(ops):
            if op is _STORED or i in done:
                continue
            if isinstance(op, BaseException):  # a chunk that could not be encoded (or stored)
                out[i] = op
                continue
            if type(op) is _Put:
                if cheap:  # a chunk encoded here (not on the pool)
                    out[i] = self._put_now(op)
                    continue
                op = op.coroutine(self._store_root())
            coros.append(op)
            where.append(i)
        for i, r in zip(where, gather_async(coros, return_exceptions=True)):
            if isinstance(r, BaseException):
                out[i] = r
        return out

    def _put_now(self, op: _Put) -> BaseException | None:
        """Run ``op`` here (where puts are cheap): its deletes, its put, then its ``then``."""
        try:
            for path in op.deletes:
                self.backend.delete(f"{self.zarr_path}/{path}")
            self._put(op.path, op.data)
            op.done()
        except Exception as e:  # noqa: BLE001 - the caller reports per series
            return e
        return None

    def _put(self, path: str, data: bytes) -> None:
        """Store ``data`` at ``path`` inside the table, directly (where puts are cheap)."""
        self.backend.put_object(f"{self.zarr_path}/{path}", data)

    # -- loading an existing table (resume) ------------------------------------------------
    def load(self, truncate_after_step: float | None = None, rewind: bool = True,
             truncate_since: float | None = None) -> None:
        """Adopt what is committed on the store, for a new attempt of the run to continue.

        Rows with a step past ``truncate_after_step`` (the checkpoint's) are dropped now (with
        ``truncate_since``, a wall time: each series from its first such row written since
        then; rows past the step written before it stay, as evaluations appended them); and
        with ``rewind`` each series is rewound again at its first new row, to before that
        row's step, so a new attempt that restarts at a step already stored replaces those
        rows instead of appending them out of order (steps of a series always strictly
        increase). Without ``rewind`` the attempt appends: a new row at or before a series'
        last stored step is refused (``_increasing``), no stored row is dropped.
        """
        commit = read_commit(self.backend, self.name, resuming=True)
        if not commit:
            return
        lengths = {k: int(n) for k, n in commit.get("lengths", {}).items()}
        series = self._stored_series(lengths, self._drop_consolidated())
        for key, step in (commit.get("nonfinite_from") or {}).items():
            if key in series and isinstance(step, (int, float)):
                series[key].nonfinite_at = series[key].nonfinite_committed = float(step)
        # the chunks of the series the writer decodes itself, for a batch of series at once
        # (one round trip or a few on an object store, not one per series): every chunk where
        # the steps are needed (a checkpoint's cut, a rewind at the first new row), else the
        # last one (the tail the attempt appends to)
        last_only = truncate_after_step is None and not rewind
        batch: list[tuple[str, list[int]]] = []
        chunks = 0
        for key in [*lengths, None]:
            stored = None if key is None else series[key].stored
            if key is not None and type(stored) is not _StoredRows:
                self._load_series(key, series[key], lengths[key], truncate_after_step, rewind, truncate_since)
                continue
            wanted = [] if key is None else stored.chunks(lengths[key], last_only)
            if batch and (key is None or chunks + len(wanted) > LOAD_BATCH_CHUNKS):
                blobs = iter(self._read_all([series[k].stored.chunk_path(i) for k, idx in batch for i in idx]))
                for k, idx in batch:
                    series[k].stored.take({i: next(blobs) for i in idx})
                    self._load_series(k, series[k], lengths[k], truncate_after_step, rewind, truncate_since)
                batch, chunks = [], 0
            if key is not None:
                batch.append((key, wanted))
                chunks += len(wanted)
        if lengths and not self.backend.cheap_puts:
            # the store path zarr's coroutines write through, opened here: a series the writer
            # does not encode itself (stored with other chunk rows) grows through zarr, whose
            # coroutine must not be the first to open the group (a sync call inside its loop)
            self._store_root()

    def _load_series(self, key: str, s: _Series, n: int, truncate_after_step: float | None, rewind: bool,
                     truncate_since: float | None = None) -> None:
        self.series[key] = s
        if truncate_after_step is not None:
            later = self._stored_steps(s, n) > truncate_after_step
            keep = int(np.argmax(later)) if later.any() else n
            if truncate_since is not None and keep < n:  # of the rows past the step (steps
                # increase: a suffix), the first written since then (times: column 1 of every table)
                since = np.asarray(s.stored[keep:n, 1]) >= truncate_since
                keep += int(np.argmax(since)) if since.any() else n - keep
            self._truncate(key, s, keep, n)
        else:
            if rewind and type(s.stored) is _StoredRows:
                s.stored.steps(n)  # each chunk's first step, for the rewind (its chunks are here)
            self._adopt(s, n)
        if type(s.stored) is _StoredRows:  # the last chunk stays decoded (a rewind reads it)
            s.stored.keep({max(0, n - 1) // s.stored.chunk_rows})
        if not rewind:
            s.stored = None  # (``add`` rewinds a series only while it holds ``stored``)

    def _read_all(self, paths: list[str]) -> list[bytes | None]:
        """The objects at ``paths`` (None: absent): at once on an object store, one after
        another where reads are cheap (local disk: no hop to an event loop)."""
        if not self.backend.cheap_puts:
            return read_objects([(self.backend, p) for p in paths])
        out: list[bytes | None] = []
        for p in paths:
            try:
                out.append(self.backend.read_bytes(p))
            except MISSING:
                out.append(None)
        return out

    @staticmethod
    def _stored_steps(s: _Series, n: int) -> np.ndarray:
        if type(s.stored) is _StoredRows:
            return s.stored.steps(n)
        return np.asarray(s.stored[:n, 0]) if n else np.empty(0)

    def _stored_series(self, lengths: dict[str, int], docs: dict[str, Any]) -> dict[str, _Series]:
        """The series an earlier attempt stored (``lengths``: their committed rows). Those whose
        chunks the writer decodes itself are read without zarr (``_StoredRows``) and kept
        ``_Created`` arrays, their documents taken from the consolidated ones in ``docs``
        where those cover the committed rows, else read all at once; zarr opens the others."""
        missing = [k for k in lengths if (docs.get(k) or {}).get("shape", [0])[0] < lengths[k]]
        read = self._read_all([f"{self.zarr_path}/{k}/zarr.json" for k in missing])
        docs = {**docs, **{k: None if data is None else json.loads(data) for k, data in zip(missing, read)}}
        out = {}
        for key in lengths:
            doc = docs.get(key)
            if doc is not None and doc.get("node_type") == "array" and chunk_encoder(doc) is not None:
                capacity, width = doc["shape"]
                out[key] = _Series(width, capacity=capacity, array=_Created(key), doc=doc, on_disk=capacity,
                                   stored=_StoredRows(self.backend, f"{self.zarr_path}/{key}", doc),
                                   stored_columns=list(doc.get("attributes", {}).get("columns", []))[:width])
                continue
            arr = self.group()[key]
            out[key] = _Series(arr.shape[1], capacity=arr.shape[0], array=arr._async_array, stored=arr,
                               on_disk=arr.shape[0], stored_columns=list(arr.attrs.get("columns", []))[: arr.shape[1]])
        return out

    def _drop_consolidated(self) -> dict[str, Any]:
        """The table is about to change again: remove the consolidated metadata written when
        the last attempt finalized, so no reader trusts its shapes (finalize writes it anew).
        Returns the array documents it held (by key; empty when there was none)."""
        path = f"{self.zarr_path}/zarr.json"
        try:
            meta = self.backend.read_json(path)
        except FileNotFoundError:
            return {}
        members = meta.pop("consolidated_metadata", None)
        if members is None:
            return {}
        self.backend.write_json(path, meta)
        return {k: d for k, d in (members.get("metadata") or {}).items() if d.get("node_type") == "array"}

    def _adopt(self, s: _Series, n: int) -> None:
        """Make the first ``n`` stored rows of ``s`` its committed rows (tail chunk buffered)."""
        C = self.chunk_rows
        s.committed = s.n = s.written = n
        s.tail_start = (n // C) * C
        buf = np.asarray(s.stored[s.tail_start:n]) if n > s.tail_start else np.empty((0, s.width))
        s.buf = _rows_buffer(max(C, len(buf)), s.width)
        s.buf[: len(buf)] = buf
        if len(buf):
            s.last_step = float(buf[-1, 0])
        else:  # (the tail is empty: the last row ends the chunk before it)
            s.last_step = float(np.asarray(s.stored[n - 1 : n, 0])[0]) if n else -np.inf

    def _truncate(self, key: str, s: _Series, n: int, stored: int) -> None:
        """Keep the first ``n`` of the ``stored`` rows of ``key``; the next commit publishes
        that length before any new chunk is written (see ``write``), so no reader or crash
        mixes rows."""
        if n < stored:
            self.truncated = True
            self.dirty.add(key)
        self._adopt(s, n)
        if s.nonfinite_at is not None and s.nonfinite_at > s.last_step:  # (that row was cut)
            s.nonfinite_at = s.nonfinite_committed = None

    def _rewind_for(self, key: str, s: _Series, first_step: float) -> None:
        if type(s.stored) is _StoredRows:
            keep = s.stored.rows_before(first_step, s.n)
        else:
            later = self._stored_steps(s, s.n) >= first_step
            keep = int(np.argmax(later)) if later.any() else s.n
        self._truncate(key, s, keep, s.n)
        s.stored = None

    def rewind_stored(self, first_step: float) -> None:
        """Every series an earlier attempt wrote is rewound to before ``first_step`` as its
        first new row would rewind it, with no row added: a ``read_only`` table (the telemetry
        at another world size) follows the attempt's restart as the series it writes do."""
        for key, s in self.series.items():
            if s.stored is not None:
                self._rewind_for(key, s, first_step)

    # -- buffering (writer thread) ---------------------------------------------------------
    def add_many(self, keys: tuple[str, ...], rows: np.ndarray) -> None:
        """One row per key (row i for keys[i]). Consecutive calls with the same key tuple (a
        steady-state flush) are only stacked here and split per series once per commit."""
        if keys is not self._batch_keys and keys != self._batch_keys:
            self._spill()
            self._batch_keys = keys
        self._batch_rows.append(rows)
        self._batch_n += 1
        if self._batch_n >= self.chunk_rows:
            self._spill()  # a chunk may have filled: let write(complete_only=True) see it

    def _spill(self) -> None:
        if not self._batch_rows:
            return
        stacked = np.stack(self._batch_rows, axis=1)  # (K, batches, width)
        keys, self._batch_rows, self._batch_n = self._batch_keys, [], 0
        self.add_block(keys, stacked)

    def add_block(self, keys: Sequence[str], rows: np.ndarray) -> None:
        """``rows[i]`` (``(K, n, width)``) for ``keys[i]``: ``add`` of each, their values
        looked at for NaN/±inf in one pass."""
        finite = self._value_col is None or bool(np.isfinite(rows[:, :, self._value_col]).all())
        for k, r in zip(keys, rows):
            self.add(k, r, finite=finite)

    def add(self, key: str, rows: np.ndarray, finite: bool = False) -> None:
        """``rows`` of series ``key`` (``finite``: the caller saw every value finite)."""
        if self._batch_rows:
            self._spill()  # keep each series in arrival order
        rows = np.atleast_2d(rows)
        s = self.series.get(key)
        if s is None:
            s = self._new_series(key, rows.shape[1], len(rows))
        elif s.packing is not None:
            self._unpack(s)
        if rows.shape[1] > s.width and self.columns[: s.width] == list(s.stored_columns or ()):
            rows = rows[:, : s.width]  # a series stored by an older format with fewer columns
        if rows.shape[1] != s.width:
            raise ValueError(f"{self.name} series {key!r} has {s.width} columns, got rows of {rows.shape[1]}")
        if not len(rows):
            return
        if s.stored is not None:  # first new row of a series an earlier attempt wrote
            self._rewind_for(key, s, float(rows[0, 0]))
        steps = rows[:, 0]
        if steps[0] <= s.last_step or (len(steps) > 1 and not (steps[1:] > steps[:-1]).all()):
            rows = self._increasing(key, s, rows)
            if not len(rows):
                return
        s.last_step = float(rows[-1, 0])
        if not finite:
            self._note_nonfinite(s, rows)
        used = s.n - s.tail_start
        need = used + len(rows)
        if need > len(s.buf):
            grown = _rows_buffer(max(need, 2 * len(s.buf)), s.buf.shape[1])
            grown[:used] = s.buf[:used]
            s.buf = grown
        s.buf[used:need] = rows
        s.n += len(rows)
        self.dirty.add(key)
        if (s.n // self.chunk_rows) * self.chunk_rows > s.written:
            self.complete_ready = True

    def _note_nonfinite(self, s: _Series, rows: np.ndarray) -> None:
        """Keep the step of the series' first row (of ``rows``, appended now) whose value is
        NaN or ±inf, if it has none yet."""
        col = self._value_col
        if col is None or s.nonfinite_at is not None:
            return
        bad = ~np.isfinite(rows[:, col])
        if bad.any():
            s.nonfinite_at = float(rows[int(bad.argmax()), 0])

    def _new_series(self, key: str, width: int, rows: int, packing: Packing | None = None) -> _Series:
        """A series first seen now, its buffer sized for its first ``rows`` rows (``packing``:
        of their leading columns only)."""
        s = self.series[key] = _Series(width, packing=packing)
        s.buf = _rows_buffer(max(min(self.chunk_rows, 64), rows), width if packing is None else packing.width)
        self.uncreated = True
        return s

    def add_filled(self, key: str, steps: np.ndarray, increasing: bool, fill: Any,
                   packing: Packing | None = None) -> None:
        """Rows of ``key`` at ``steps``, written in place into the series buffer by
        ``fill(view)`` (no intermediate array). ``increasing``: ``steps`` strictly increase.
        With ``packing``, ``fill`` sets only the rows' first ``packing.width`` columns and a
        new series is buffered packed (``packing.widen`` completes its rows as they are
        encoded). Anything unusual (a loaded series, a step that does not go past the last
        one, a pending batch) takes ``add`` with the same rows."""
        s = self.series.get(key)
        n = len(steps)
        if s is None and n and increasing and not self._batch_rows:  # its buffer holds them all
            s = self._new_series(key, len(self.columns), n, packing)
        if (s is None or s.stored is not None or self._batch_rows or not increasing or not n
                or steps[0] <= s.last_step or s.width != len(self.columns)
                or (s.packing is not None and s.packing is not packing)):
            rows = np.empty((n, len(self.columns)))
            fill(rows)
            if packing is not None:
                packing.widen(rows)
            self.add(key, rows)
            return
        used = s.n - s.tail_start
        need = used + n
        if need > len(s.buf):
            grown = _rows_buffer(max(need, 2 * len(s.buf)), s.buf.shape[1])
            grown[:used] = s.buf[:used]
            s.buf = grown
        view = s.buf[used:need]
        fill(view)
        if packing is not None and s.packing is None:  # a series buffered whole: widened here
            packing.widen(view)
        self._note_nonfinite(s, view)
        s.last_step = float(steps[-1])
        s.n += n
        self.dirty.add(key)
        if (s.n // self.chunk_rows) * self.chunk_rows > s.written:
            self.complete_ready = True

    def _increasing(self, key: str, s: _Series, rows: np.ndarray) -> np.ndarray:
        """The rows whose step goes past every earlier one; the others are refused, loudly.

        The API already refuses a repeated step (``log``, ``flush``); this is the last guard,
        e.g. for a key both logged and collected on rank 0 out of order.
        """
        steps = rows[:, 0]
        before = np.maximum.accumulate(np.concatenate([[s.last_step], steps[:-1]]))
        keep = steps > before
        dropped = int((~keep).sum())
        if dropped and not self.quiet_refusals:
            msg = (f"{self.name} series {key!r}: refused {dropped} row(s) whose step did not "
                   f"increase (first at step {steps[~keep][0]:g}, last stored step "
                   f"{before[~keep][0]:g}); a series keeps strictly increasing steps")
            if self.refusal_note is not None and key not in self._noted:
                self._noted.add(key)  # the first refusal of a series: in the run's log
                self.refusal_note(msg)
            else:
                warn(msg, key=f"refused:{self.name}:{key}")
        if dropped:
            s.dropped += dropped
        return rows[keep]

    def create_arrays(self) -> None:
        """Create the arrays of series that have rows but no array yet (no chunk, no commit
        record): the writer does this soon after the first rows, so close() only writes."""
        self._spill()
        self.uncreated = False
        # a failed one: the next commit retries and reports it
        self._create([(k, s) for k, s in sorted(self.series.items())
                      if s.array is None and s.n and k not in self.failed])

    def _create(self, new: list[tuple[str, _Series]], exact: bool = False) -> dict[str, BaseException]:
        """Create the arrays of ``new`` series, sized for their rows in whole chunks (``exact``:
        to the row; the final commit, so finalize resizes nothing); the failures by key."""
        C = self.chunk_rows
        caps = [s.n if exact and s.n else max(C, -(-s.n // C) * C) for _, s in new]
        created = self._new_arrays([(k, s.width, cap) for (k, s), cap in zip(new, caps)]) if new else []
        failed = {}
        for (k, s), cap, made in zip(new, caps, created):
            if isinstance(made, BaseException):
                failed[k] = made
            else:
                (s.array, s.doc), s.capacity, s.encode = made, cap, False
                s.doc_pending = type(s.array) is _Created  # zarr stored its own arrays' documents
        return failed

    def _doubled(self, capacity: int, rows: int) -> int:
        """``capacity`` (at least a chunk's: an array an earlier attempt cut to 0 rows has 0)
        doubled until it holds ``rows``."""
        capacity = max(capacity, self.chunk_rows)
        while capacity < rows:
            capacity *= 2
        return capacity

    def _drop_written(self, s: _Series) -> None:
        """Drop the whole chunks below ``s.written`` from the buffer: they are on the store."""
        C = self.chunk_rows
        done = ((s.written - s.tail_start) // C) * C
        if done:
            rest = s.n - s.tail_start - done
            if len(s.buf) <= 2 * C:  # the steady state: the tail moves to the front, in place
                s.buf[:rest] = s.buf[done : done + rest]  # (no fresh pages for every chunk)
            else:  # rows piled up (a burst, a slow store): give the memory back
                buf = _rows_buffer(max(C if rest else 64, rest), s.buf.shape[1])
                buf[:rest] = s.buf[done : done + rest]
                s.buf = buf
            s.tail_start += done

    def write_complete(self, parallel: bool = False) -> bool:
        """Write the chunks that filled since the last write, and no commit record: the
        writer does this as chunks fill, so a commit (and close) rewrites little more than the
        tails. Skipped while a truncation is unpublished (only a commit publishes it); a
        failed series is left for the next commit, which retries and reports it.
        ``parallel``: encode on a few threads (the run is closing: the training thread waits)."""
        self._spill()
        self.complete_ready = False
        if self.truncated:
            return False
        C = self.chunk_rows
        full = [(k, s) for k, s in sorted(self.series.items())
                if k in self.dirty and k not in self.failed and (s.n // C) * C > s.written]
        if not full:
            return False
        bad = set(self._create([(k, s) for k, s in full if s.array is None]))
        grow = [(k, s, self._doubled(s.capacity, (s.n // C) * C)) for k, s in full
                if k not in bad and (s.n // C) * C > s.capacity]
        grow = [(k, s, cap) for k, s, cap in grow if not self._resize_later(s, cap)]
        for (k, s, cap), r in zip(grow, self._run_ops([self._resize(s, cap) for _, s, cap in grow])):
            if r is not None:
                bad.add(k)
            else:
                s.capacity = cap
        writes, owners = [], []
        for k, s in full:
            if k in bad:
                continue
            first = max((min(s.written, s.n) // C) * C, s.tail_start)
            ops = self._row_writes(s, first, (s.n // C) * C)
            writes += ops
            owners += [k] * len(ops)
        for k, r in zip(owners, self._run_ops(writes, parallel=parallel)):
            if r is not None:
                bad.add(k)
        for k, s in full:
            if k not in bad:
                s.written = (s.n // C) * C  # beyond the committed length: invisible until a commit
                self._drop_written(s)
        return True

    def write(self, final: bool = False) -> bool:
        """Write dirty chunks and then the commit record. True if anything was written.

        Array creation, growth and chunk writes each run concurrently over all dirty series
        (zarr's async API): one commit of 1,000 series costs a few round trips, not 1,000.
        Series fail alone: one whose write fails keeps its rows buffered (retried at the next
        commit) and its committed length, while every other series commits; the failure is
        then raised as ``SeriesWriteError`` naming the series.
        """
        self._spill()
        if not self.dirty and not (final and self.series):
            return False
        if self.truncated:
            # a new attempt shortened loaded series: publish the shorter lengths before any
            # chunk is rewritten, so a reader (or a crash here) never pairs a new chunk with an
            # old, longer length
            self._write_commit(final=False)
            self.truncated = False
        C = self.chunk_rows
        dirty = [(k, self.series[k]) for k in sorted(self.dirty)]
        # the final commit sizes arrays exactly (finalize then resizes nothing)
        failed = self._create([(k, s) for k, s in dirty if s.array is None], exact=final)
        grow = []
        for k, s in dirty:
            if k in failed:
                continue
            if final and s.n and s.capacity != s.n:
                grow.append((k, s, s.n))  # exact length now, instead of a resize in finalize
            elif s.n > s.capacity:
                grow.append((k, s, self._doubled(s.capacity, s.n)))
        # chunks the writer encodes itself are stored by key, whatever the array's shape: those
        # arrays are resized together with the chunk writes (the commit record comes after
        # both); zarr's setitem drops writes past the shape, so the others are resized first
        together = [g for g in grow if self._direct(g[1])]
        first_grow = [g for g in grow if not self._direct(g[1])]
        grown = self._run_ops([self._zarr_resize(s, cap) for _, s, cap in first_grow])
        for (k, s, cap), r in zip(first_grow, grown):
            if r is not None:
                failed[k] = r
            else:
                s.capacity = cap
        together = [(k, s, cap) for k, s, cap in together if not self._resize_later(s, cap)]
        writes = [self._resize(s, cap) for _, s, cap in together]
        owners = [k for k, _, _ in together]
        # documents created or resized in memory since the last commit (each put once here)
        pending = [(k, s) for k, s in sorted(self.series.items())
                   if s.doc_pending and k not in failed and k not in owners]
        writes += [self._doc_put(s) for _, s in pending]
        owners += [k for k, _ in pending]
        for k, s in dirty:
            if k in failed:
                continue
            first = max((min(s.written, s.n) // C) * C, s.tail_start)  # first chunk that changed
            ops = self._row_writes(s, first, s.n)
            writes += ops
            owners += [k] * len(ops)
        for k, r in zip(owners, self._run_ops(writes, parallel=final)):
            if r is not None:
                failed.setdefault(k, r)
        for k, s, cap in together:
            if k not in failed:
                s.capacity = cap
        for k, s in dirty:
            if k not in failed:
                s.written = s.committed = s.n
                s.nonfinite_committed = s.nonfinite_at
                self._drop_written(s)
        self._write_commit(final)
        self.dirty = set(failed)
        self.failed = failed
        if failed:
            raise SeriesWriteError(self.name, failed)
        return True

    def _write_commit(self, final: bool) -> None:
        # (an array whose document never reached the store is left out until it does)
        lengths = {k: s.committed for k, s in sorted(self.series.items())
                   if s.committed or (s.array is not None and not s.doc_pending)}
        record = {"format": 1, "table": self.name, "columns": self.columns, "chunk_rows": self.chunk_rows,
                  "lengths": lengths, "time": time.time(), "final": final}
        nonfinite = self.nonfinite_from(committed=True)
        if nonfinite:  # (absent: no committed value is NaN or ±inf)
            record["nonfinite_from"] = {k: v for k, v in nonfinite.items() if k in lengths}
        self.backend.write_json(self.commit_path, record)

    def nonfinite_from(self, committed: bool = False) -> dict[str, float]:
        """Each series whose value went NaN or ±inf: the step of its first such row (of the
        rows held, or of those the last commit covered)."""
        out = {}
        for k, s in sorted(self.series.items()):
            step = s.nonfinite_committed if committed else s.nonfinite_at
            if step is not None:
                out[k] = step
        return out

    def finalize(self) -> None:
        """Shrink every array to its exact length and consolidate metadata (run close)."""
        finalize_tables([self])

    def _finalize(self) -> None:
        if not any(s.array is not None for s in self.series.values()):
            return  # no array (nor group document) to size or consolidate
        # the final commit sizes the arrays it writes exactly; a series it had nothing for may
        # still have room to spare
        shrink = [s for s in self.series.values() if s.array is not None and (s.capacity != s.n or s.doc_pending)]
        for s, r in zip(shrink, self._run_ops([self._resize(s, s.n) for s in shrink])):
            if r is not None:
                raise r
            s.capacity = s.n
        self.backend.put_object(f"{self.zarr_path}/zarr.json", self.consolidated_metadata())

    def consolidated_metadata(self) -> bytes:
        """The group's ``zarr.json`` with every array's metadata inline ("consolidated", as
        ``zarr.consolidate_metadata`` writes it), built from the metadata in memory: no
        listing and no read of the arrays' documents."""
        members: dict[str, Any] = {}
        for key, s in sorted(self.series.items()):
            if s.array is None:
                continue
            parts = key.split("/")
            for i in range(1, len(parts)):  # the implicit groups on the way (no attributes)
                members.setdefault("/".join(parts[:i]), consolidated(
                    {"attributes": {}, "zarr_format": 3, "node_type": "group"}, {}))
            members[key] = self._doc(s)
        if self._group is None:  # never opened through zarr: its document as stored
            group = self.backend.read_json(f"{self.zarr_path}/zarr.json")
        else:
            group = self.group().metadata.to_dict()
        return _json(consolidated(group, members))


def finalize_tables(tables: Sequence[RowTable]) -> None:
    """Finalize ``tables`` (run close): arrays at their exact lengths, metadata consolidated.
    Object stores finalize the tables at once; the first failure is raised once all are done."""
    from ..storage.aio import run_all

    if all(t.backend.cheap_puts for t in tables):
        for t in tables:
            t._finalize()
        return
    run_all([t._finalize for t in tables])


@dataclass(frozen=True)
class _Commit:
    """Queue item: commit everything put before it, then set ``done``."""

    done: threading.Event


@dataclass(frozen=True)
class _Sync:
    """Queue item: set ``done`` once everything before it is handled (no commit)."""

    done: threading.Event


@dataclass(frozen=True)
class _Call:
    """Queue item: run ``fn(tables)`` on the writer thread, in order with the rows around it."""

    fn: Any


@dataclass(frozen=True)
class _Entries:
    """Queue item: appended entries (``part``, about ``held`` bytes) for the entry handler."""

    part: list[Any]
    held: int


@dataclass(frozen=True)
class _Close:
    """Queue item: drain, commit a last time, finalize the tables if asked, end the thread."""

    finalize: bool


class _Refused(Exception):
    """Rows the writer could not take (``args[0]``: why); they are dropped, not retried."""


def _entry_bytes(item: Any) -> int:
    """Roughly what an entry holds: a flush window its ``nbytes``; a log() call (``(prefix,
    step, time, values)``) ``ENTRY_BYTES`` and a float's dict slot a value; anything else
    ``ENTRY_BYTES``."""
    if item.__class__ is tuple:
        try:
            return ENTRY_BYTES + 56 * len(item[3])  # (56: entries.VALUE_BYTES, not importable here)
        except (IndexError, TypeError):  # (another kind of entry)
            return ENTRY_BYTES
    return getattr(item, "nbytes", ENTRY_BYTES)


class BackgroundWriter:
    """One thread that owns a set of ``RowTable``s. Training threads call ``put`` only.

    A failed write keeps every buffered row and is retried at the next commit; the error is
    raised (``WriterError``) at the next ``flush``/``close`` on the training thread, never
    swallowed — unless a later commit wrote everything first (a disk that was full, a store
    that was down, and recovered: nothing is missing, and a warning says so).
    ``flush(wait=True)`` blocks until everything put so far is committed.
    """

    def __init__(self, tables: dict[str, RowTable], commit_interval: float = 10.0) -> None:
        self.tables = tables
        self.commit_interval = commit_interval
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._ahead: Any = None  # an item taken from the queue, not handled yet (``_handle``)
        self._error: BaseException | None = None
        self._commit_error: BaseException | None = None  # the failed commit's, while _error holds it
        self._closed = False
        self.commits = 0
        self.last_commit_seconds = 0.0
        # entries: items the training thread appends with no queue operation (log() calls);
        # the writer takes them in batches and hands them to a handler
        self._entries: list[Any] = []
        self._entries_handler: Any = None
        self._entries_lock = threading.Lock()
        self._backlog = 0  # bytes of entries queued for the writer and not yet handled
        #: whether they hold more than ``BACKLOG_BYTES`` (read with no lock by the thread that
        #: appends entries, after each: ``wait_for_room`` looks again under the lock)
        self.backlogged = False
        self._room = threading.Condition()  # notified as the writer handles them
        self._finished = threading.Event()  # set by the writer thread as it ends
        self._thread = threading.Thread(target=self._run, name="distlog-writer", daemon=True)
        self._thread.start()

    # -- training thread -------------------------------------------------------------------
    def put(self, table: str, key: str, rows: np.ndarray) -> None:
        if self._entries:
            self._take_entries()
        self._q.put((table, key, rows))

    def put_many(self, table: str, keys: Sequence[str], rows: np.ndarray) -> None:
        """Rows for several series at once (row i belongs to keys[i]); one queue item."""
        if self._entries:
            self._take_entries()
        self._q.put((table, tuple(keys), rows))

    def call(self, fn: Any) -> None:
        """Run ``fn(tables)`` on the writer thread, in order with the rows put before it."""
        if self._entries:
            self._take_entries()
        self._q.put(_Call(fn))

    def attach_entries(self, handler: Any) -> Any:
        """The ``append`` of this writer's entry list: each item is later passed, in order and
        many at once, to ``handler(items, tables)`` on the writer thread (within
        ``ENTRY_POLL`` seconds, and before any later put, call, commit, sync or close)."""
        if self._entries_handler is None:
            self._entries_handler = handler
        return self._entries.append

    def _take_entries(self) -> None:
        """Queue the appended entries (any thread), a chunk's worth to an ``_Entries`` item.
        Appends need no lock: a list append is atomic, and taking copies, queues, then deletes
        only what it copied. Queued
        before they leave the list: ``put`` on the training thread skips this (and the lock)
        when it finds the list empty, so its rows must never overtake entries taken but not
        yet queued by the writer thread."""
        with self._entries_lock:  # two takers must queue their batches in take order
            items = self._entries[:]
            if not items:
                return
            queued = 0  # (what left the list is what was queued: a Ctrl-C part-way queues no batch twice)
            try:
                # a chunk's worth at a time: the writer stores each filled chunk before it builds
                # the next (series buffers stay within two chunks: no fresh pages per burst)
                for i in range(0, len(items), ENTRY_SLICE):
                    part = items[i : i + ENTRY_SLICE]
                    n, held = len(part), sum(map(_entry_bytes, part))
                    item = _Entries(part, held)
                    # counted with no call between (a Ctrl-C after the put queued it twice); its
                    # bytes counted after (one cut in between leaves them uncounted, not counted
                    # for ever: a backlog that never empties held the training thread)
                    queued += n; self._q.put(item)  # noqa: E702
                    with self._room:
                        self._backlog += held
                        self.backlogged = self._backlog > BACKLOG_BYTES
            finally:
                del self._entries[:queued]

    def _handle(self, item: _Entries) -> None:
        """The entry handler on ``item``'s entries and those of the ``_Entries`` queued right
        after it, up to ``ENTRY_SLICE`` (the training thread queues every ``ENTRY_CHECK``:
        a writer behind it, as at close, handles its backlog in fewer, larger calls — a tenth
        less of its time for log() calls); then their bytes leave the backlog."""
        part, held = item.part, item.held
        while len(part) < ENTRY_SLICE and self._ahead is None:
            try:
                more = self._q.get_nowait()
            except queue.Empty:
                break
            if type(more) is not _Entries or len(part) + len(more.part) > ENTRY_SLICE:
                self._ahead = more  # (the next item taken: order kept)
                break
            if part is item.part:
                part = part[:]
            part.extend(more.part)
            held += more.held
        try:
            self._entries_handler(part, self.tables)
        finally:
            with self._room:
                self._backlog -= held
                self.backlogged = self._backlog > BACKLOG_BYTES
                if self._backlog <= BACKLOG_BYTES // 2:
                    self._room.notify_all()

    def wait_for_room(self) -> None:
        """On the thread that appends entries, when ``backlogged`` or its entry list is long
        (``ENTRY_CHECK``: the writer takes the list only when idle, so a busy one leaves it
        uncounted): queue them (counted), then, past ``BACKLOG_BYTES``, wait until the writer
        has written the backlog down to half — or stopped (a failed or closed writer is
        reported where it always is, at the next flush or close). A writer that writes nothing
        for ``ROOM_WARN`` s is said once; after ``ROOM_WAIT_MAX`` s the thread goes on (its
        rows stay queued: a stalled store must not stop training without a word)."""
        self._take_entries()
        if self._backlog <= BACKLOG_BYTES:
            return
        start = time.monotonic()
        warned = False
        with self._room:
            while (self._backlog > BACKLOG_BYTES // 2 and self._thread.is_alive() and self._error is None
                   and not self._closed):
                self._room.wait(0.5)
                waited = time.monotonic() - start
                if waited >= ROOM_WARN and not warned:
                    warned = True
                    warn(f"the background writer is {self._backlog / 2**20:.0f} MB of rows behind and has "
                         f"not caught up in {waited:.0f} s; the training thread waits for it (up to "
                         f"{ROOM_WAIT_MAX:g} s) so memory stays bounded. A slow or stalled store? A run of "
                         "many keys flushed every step: flush less often or log fewer keys", key=f"room {id(self)}")
                if waited >= ROOM_WAIT_MAX:
                    return

    def sync_entries(self, timeout: float | None = 300.0) -> None:
        """Block until the writer has handled every entry appended so far (no commit)."""
        self._take_entries()
        done = threading.Event()
        self._q.put(_Sync(done))
        if not self._wait(done, timeout):
            raise WriterError(f"the writer did not catch up within {timeout} s")

    def flush(self, wait: bool = True, timeout: float | None = None) -> None:
        if not wait or self._error is None or self._error is not self._commit_error:
            self.raise_pending()  # (a failed commit is retried now: raised below if it fails again)
        if wait:
            self._take_entries()
            done = threading.Event()
            self._q.put(_Commit(done))
            if not self._wait(done, timeout):
                raise WriterError(f"the writer did not commit within {timeout} s")
            self.raise_pending()

    def close(self, finalize: bool = True, timeout: float | None = 300.0) -> None:
        if not self._closed:
            self._take_entries()
            self._q.put(_Close(finalize))
            self._closed = True
        elif self._finished.is_set():
            return
        # (closed, and the writer still runs: an earlier close() was interrupted while it
        # waited, by Ctrl-C; this one waits for the final commit that one asked for.) Not
        # Thread.join: a join that Ctrl-C interrupts marks the running thread stopped on
        # Python 3.11 (its bpo-45274 clean-up releases the thread's own lock), after which
        # is_alive() is False and join() returns at once, while the writer still writes
        if not self._finished.wait(timeout):
            raise WriterError(f"the writer did not finish within {timeout} s; rows may be missing")
        self.raise_pending()

    def _wait(self, done: threading.Event, timeout: float | None) -> bool:
        """Wait for ``done``; a writer thread that died (a bug) is an error at once, not a
        wait until ``timeout``."""
        end = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.5 if end is None else max(0.0, min(0.5, end - time.monotonic()))):
            if self._finished.is_set():  # (not is_alive(): see close())
                self.raise_pending()
                raise WriterError("the writer thread stopped; rows put since its last commit are lost")
            if end is not None and time.monotonic() >= end:
                return False
        return True

    def raise_pending(self) -> None:
        err, self._error = self._error, None
        if type(err) is _Refused:
            raise RowsRefused(f"rows refused by the writer: {err.args[0]}; they were not stored "
                              "(every other row was)") from err.args[0]
        if err is not None:
            raise WriterError(f"writing to the store failed: {err!r}; buffered rows are kept "
                              "and retried at the next commit") from err

    # -- writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # a bug: kept for the training thread, never silent
            self._error = e
            raise
        finally:
            self._finished.set()

    def _loop(self) -> None:
        # zarr, where the tables need it, is imported here, once, in the background: the
        # tables' threads at close must not be the first to import it, two at a time (Python
        # then finds an import deadlock, or one sees a half-imported module). A run on local
        # disk needs no zarr (a third of a second to import, which a short run's close would
        # wait for) unless it resumed series stored in another layout
        self._import_zarr_if_needed()

        next_commit = time.monotonic() + self.commit_interval
        create_at: float | None = None  # when to create the arrays of new series
        while True:
            timeout = max(0.0, min(next_commit - time.monotonic(), ENTRY_POLL))
            item, self._ahead = self._ahead, None
            if item is None:
                try:
                    item = self._q.get(timeout=timeout)
                except queue.Empty:
                    pass
            if item is None:
                if self._entries:
                    self._take_entries()  # handled next round, in order with queued items
                if create_at is not None and time.monotonic() >= create_at:
                    create_at = None
                    self._create_arrays()
                if time.monotonic() >= next_commit:
                    next_commit = self._commit(time.monotonic())
                continue
            if not self._apply(item):  # a control item
                if type(item) is _Commit:
                    next_commit = self._commit(time.monotonic())
                    item.done.set()
                    continue
                if type(item) is _Sync:
                    item.done.set()
                    continue
                assert type(item) is _Close, item
                if self._entries:  # appended after close() took the list (another thread)
                    self._take_entries()
                self._drain()
                self._commit(time.monotonic(), final=True)
                if item.finalize and self._error is None:
                    try:
                        finalize_tables(list(self.tables.values()))
                    except Exception as e:  # noqa: BLE001 - reported on the training thread
                        self._error = e
                return
            if create_at is None and any(t.uncreated for t in self.tables.values()):
                # new series (the first rows, or a table's first rows later on): create their
                # arrays soon, so close() only writes the tails
                create_at = time.monotonic() + CREATE_AFTER
            self._write_complete_chunks()
            if create_at is not None and time.monotonic() >= create_at:
                create_at = None
                self._create_arrays()
            if time.monotonic() >= next_commit:  # a steady stream of items never times out
                next_commit = self._commit(time.monotonic())

    def _import_zarr_if_needed(self) -> None:
        if any(t.needs_zarr() for t in self.tables.values()):
            import zarr  # noqa: F401

    def _each_table(self, fn: Any) -> list[Any]:
        """``fn(table)`` for every table, at the same time (close: the tables' final writes are
        independent and wait mostly on the store and the codecs); the first exception is
        raised once all are done. ``fn`` must not touch process-wide state (warning filters:
        ``finalize_tables`` silences zarr once for all tables instead)."""
        tables = list(self.tables.values())
        if len(tables) < 2:
            return [fn(t) for t in tables]
        self._import_zarr_if_needed()  # here, on one thread, before the tables' threads
        with ThreadPoolExecutor(len(tables), thread_name_prefix="distlog-close") as pool:
            futures = [pool.submit(fn, t) for t in tables]
        return [f.result() for f in futures]

    def _create_arrays(self) -> None:
        for t in self.tables.values():
            try:
                t.create_arrays()
            except Exception as e:  # noqa: BLE001 - the next commit retries and reports
                warn(f"creating the arrays of {t.name} failed ({e!r}); the next commit retries",
                     key=f"create-arrays:{t.name}")

    def _write_complete_chunks(self) -> None:
        """Write chunks that just filled up (no commit record): close() is left with the tails."""
        for t in self.tables.values():
            if t.complete_ready:
                try:
                    t.write_complete(parallel=self._closed)  # closing: the cores are free
                except Exception as e:  # noqa: BLE001 - the next commit retries and reports
                    t.complete_ready = False
                    warn(f"writing a full chunk of {t.name} failed ({e!r}); the next commit "
                         "retries", key=f"complete-chunk:{t.name}")

    def _drain(self) -> None:
        while True:
            item, self._ahead = self._ahead, None
            if item is None:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    return
            if not self._apply(item) and type(item) in (_Commit, _Sync):
                item.done.set()

    def _apply(self, item: Any) -> bool:
        """Apply rows or a call from the queue; False for a control item (commit, sync, close)."""
        if type(item) is tuple:  # rows: (table, key or keys, rows)
            try:
                self._add(*item)
            except Exception as e:  # noqa: BLE001 - rows refused (a series' width changed):
                self._error = _Refused(e)  # reported on the training thread; the writer goes on
        elif type(item) is _Entries:
            try:
                self._handle(item)
            except Exception as e:  # noqa: BLE001 - those entries' rows were not stored (not
                self._error = _Refused(e)  # "kept and retried": nothing keeps them); said on the training thread
        elif type(item) is _Call:
            try:
                item.fn(self.tables)
            except Exception as e:  # noqa: BLE001 - reported on the training thread
                self._error = e
        else:
            return False
        return True

    def _add(self, table: str, key: Any, rows: np.ndarray) -> None:
        t = self.tables[table]
        if isinstance(key, tuple):
            t.add_many(key, rows)
        else:
            t.add(key, rows)

    def _commit(self, now: float, final: bool = False) -> float:
        t0 = time.perf_counter()
        try:
            if final:  # close waits for this one: the tables' writes overlap
                wrote = any(self._each_table(lambda t: t.write(final=True)))
            else:
                wrote = False
                for t in self.tables.values():
                    wrote |= t.write(final=False)
            if wrote:
                self.commits += 1
        except Exception as e:  # noqa: BLE001 - kept, retried, and raised on the training thread
            if self._error is None or self._error is self._commit_error:
                self._error = self._commit_error = e
            report.warn(f"writing metrics failed ({e!r}); will retry", key="metrics write")
        else:
            failed, self._commit_error = self._commit_error, None
            if failed is not None and self._error is failed:  # not raised yet: nothing is missing
                self._error = None
                report.warn(f"writing metrics recovered: a commit wrote every row kept since {failed!r}",
                            key="metrics write recovered")
        self.last_commit_seconds = time.perf_counter() - t0
        # never spend more than ~20% of the time writing: back off when commits are slow
        return now + max(self.commit_interval, 5 * self.last_commit_seconds)


# ---- reading (the format's owner also reads it) --------------------------------------------
def read_commit(backend: StorageBackend, name: str, resuming: bool = False) -> dict[str, Any]:
    """The commit record of table ``name`` (``{}`` when nothing was committed yet). One that
    is torn or not a commit record raises ``DamagedRecord`` (``resuming``: its message says
    that a new attempt cannot continue the run from it, and what to do)."""
    path = table_commit(name)
    try:
        doc = backend.read_json(path)
    except FileNotFoundError:
        return {}
    except ValueError as e:  # (torn: not JSON, or not UTF-8)
        raise _damaged_commit(backend, path, f"not valid JSON: {e}", resuming) from None
    try:  # (every record distlog writes has its lengths: an object without them is foreign;
        # taken as "nothing committed", a resume dropped every stored row)
        lengths = doc["lengths"]
        ok = all(isinstance(k, str) and int(n) >= 0 for k, n in lengths.items())
    except (AttributeError, KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise _damaged_commit(backend, path, "not a commit record", resuming)
    return doc


def _damaged_commit(backend: StorageBackend, path: str, why: str, resuming: bool) -> Exception:
    err = damaged(backend, path, why)
    if resuming:
        err.args = (f"{err.args[0]}; until then no attempt can continue the run (or start the run "
                    "under a new id)",)
    return err


def read_series(backend: StorageBackend, name: str, key: str, commit: dict[str, Any] | None = None) -> np.ndarray:
    """The committed rows of one series: a ``(n, width)`` float64 array (``(0, 0)`` if none).

    Only rows ``[0, lengths[key])`` are read, so a reader never sees a partial write.
    """
    return read_series_attrs(backend, name, key, commit)[0]


def read_series_attrs(backend: StorageBackend, name: str, key: str,
                      commit: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """``read_series`` and the series array's attributes (``columns``, ...), in one open."""
    import zarr

    commit = read_commit(backend, name) if commit is None else commit
    n = commit.get("lengths", {}).get(key)
    if not n:
        known = ", ".join(sorted(commit.get("lengths", {}))) or "none"
        raise KeyError(f"no committed series {key!r} in {name}; committed: {known}")
    arr = zarr.open_array(store=backend.zarr_store(table_zarr(name), read_only=True), path=key, mode="r")
    return np.asarray(arr[:n]), dict(arr.attrs)
