"""The run's merged logs table: every rank's text log, merged by time, as Zarr arrays.

Rank 0 writes it when a run closes (``write_logs_table``), after every rank's log is closed.
The per-rank text files stay the source of truth; the table is an index that makes queries
fast (vectorised filters, last-N rows without parsing text). Layout under a run:

    logs.zarr/<generation>/records   float64 (rows, 10), attribute "columns":
                                     time (epoch seconds, UTC), rank, attempt, node, local_rank,
                                     step (NaN: none), level (10 DEBUG ... 50 CRITICAL),
                                     host (index into the attribute "hosts"),
                                     message_end, fields_end (byte offsets, see below)
                          /message   uint8: UTF-8 of every message as the text log holds it
                                     (escaped: never a raw newline), each followed by "\n";
                                     row i's is bytes [message_end[i-1], message_end[i] - 1)
                          /fields    uint8: each record's fields as JSON ("" when none), alike
    logs.commit.json      {"generation", "rows", "hosts", "sources": {log name: signature}}

Three arrays, not one per column: a close on an object store costs a handful of PUTs. Like the
scalar tables (``rowstore``), rows are stored column-major so each column compresses alone.
Rows are in (time, rank, attempt) order. A rewrite (a resumed run closing again) goes to a new
generation folder; the commit record is replaced last (atomically), and only then are older
generations deleted, so a reader holding the previous commit reads a whole table, never a mix.
``sources`` records, per text log, what the table covers (segment names on object stores, the
modification time on local disk); a reader compares it with the files as they are now and
falls back to the text when they differ (a resumed or still-running run).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from ..logline import (
    LEVELS, STEP_PATTERN, LogRecord, complete_text, escape, fields_json, levelno_of, parse_fields,
    parse_line, unescape,
)
from .. import report
from ..errors import damaged
from ..layout import LOGS_DIR, LOGS_TABLE, parse_log_name, table_commit, table_zarr
from ..storage.base import SEGMENT_SUFFIX, StorageBackend, read_objects
from .zarrdoc import array_doc, doc_bytes

TABLE_DIR = table_zarr(LOGS_TABLE)
COMMIT_FILE = table_commit(LOGS_TABLE)
FORMAT = 2  # the commit record's "format"; a table of another format is ignored (text is read)
CHUNK = 1 << 15  # rows per chunk of the records array
BYTE_CHUNK = 1 << 21  # bytes per chunk of the message and fields blobs
NUMERIC = {"time": "float64", "rank": "int32", "attempt": "int32", "node": "int32",
           "local_rank": "int32", "step": "float64", "level": "int64", "host": "int32"}
#: columns of the records array
RECORD_COLUMNS = (*NUMERIC, "message_end", "fields_end")


@dataclass
class LogColumns:
    """Records as columns (the table's in-memory form). ``host`` indexes ``hosts``;
    ``messages`` are as stored in the text log (escaped, see ``logline.escape``)."""

    time: np.ndarray
    rank: np.ndarray
    attempt: np.ndarray
    node: np.ndarray
    local_rank: np.ndarray
    step: np.ndarray
    level: np.ndarray
    host: np.ndarray
    hosts: list[str]
    messages: list[str]
    fields: list[str]
    #: whether ``step`` holds every record's step exactly (False: an integer step float64
    #: cannot hold, which the table would round; ``write_logs_table`` then writes none)
    steps_exact: bool = True

    def __len__(self) -> int:
        return len(self.time)

    def take(self, idx: np.ndarray) -> "LogColumns":
        return LogColumns(*(getattr(self, k)[idx] for k in NUMERIC), hosts=self.hosts,
                          messages=[self.messages[i] for i in idx],
                          fields=[self.fields[i] for i in idx], steps_exact=self.steps_exact)

    def record(self, i: int) -> LogRecord:
        step = self.step[i]
        return LogRecord(
            time=float(self.time[i]), level=_LEVEL_NAMES.get(int(self.level[i]), f"LEVEL{self.level[i]}"),
            message=unescape(self.messages[i]), host=self.hosts[self.host[i]], rank=int(self.rank[i]),
            local_rank=int(self.local_rank[i]), node=int(self.node[i]), attempt=int(self.attempt[i]),
            step=table_step(step),
            fields=parse_fields(self.fields[i]),
        )


_LEVEL_NAMES = {v: k for k, v in LEVELS.items()}


def table_step(step: float) -> int | float | None:
    """A step as the table's float64 column holds it, as a record's: None (NaN), an int, or
    the float of a fractional step (2.5)."""
    step = float(step)
    if np.isnan(step):
        return None
    return int(step) if step.is_integer() else step


def complete_lines(text: str) -> list[str]:
    """The complete lines of ``text``: a last line without its newline (torn by a crash, or
    still being written) is left out."""
    lines = text.split("\n")
    lines.pop()  # "" after a final newline, else the incomplete last line
    return lines


#: one record line in the usual layout (``format_line``): UTC timestamp (offset cut off),
#: level, "host nN rR lL aA", step, message, optional tab and JSON fields
_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})\+00:00 (\S+) (\S+ n\d+ r\d+ l\d+ a\d+) "
    rf"s(-|{STEP_PATTERN}) ([^\t\n]*)(?:\t([^\n]*))?$", re.M)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Parsing builds millions of small tuples: the cyclic GC would scan them over and over."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def parse_columns(text: str) -> LogColumns:
    """Parse complete text-log lines (``text``) into columns; lines that are not records are
    skipped. One regular-expression scan over the whole text, timestamps parsed by NumPy,
    the per-file constant part (host, node, rank, local rank, attempt) parsed once per value.
    ``parse_line`` handles any line in another layout."""
    odd: list[LogRecord] = []
    odd_at: list[int] = []  # each odd record's place among the records, in the text's order
    with _gc_paused():
        found = _LINE.findall(text)
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        if len(found) != lines:  # some lines in another layout, or not records at all
            found = []
            for line in text.split("\n"):  # not splitlines(): messages may hold \x85, \u2028 ...
                m = _LINE.match(line)
                if m:
                    found.append(m.groups(""))
                    continue
                try:
                    odd.append(parse_line(line))
                except ValueError:
                    continue
                odd_at.append(len(found) + len(odd) - 1)
        cols = _columns(found)
        del found  # freed before the collector is back: nothing left for it to scan
    if not odd:
        return cols
    # back in the text's order (the lines of a merged query are in time order)
    order = np.empty(len(cols) + len(odd), dtype=np.intp)
    at = np.zeros(order.size, dtype=bool)
    at[odd_at] = True
    order[at] = np.arange(len(cols), order.size)
    order[~at] = np.arange(len(cols))
    return concat([cols, from_records(odd)]).take(order)


def _columns(found: list[tuple[str, ...]]) -> LogColumns:
    if not found:
        return from_records([])
    n = len(found)
    ts, levels, mids, steps, msgs, flds = zip(*found)
    t = np.array(ts, dtype="datetime64[us]").astype(np.int64) / 1e6
    level_of = {name: levelno_of(name) for name in set(levels)}
    level = np.fromiter(map(level_of.__getitem__, levels), np.int64, n)
    # host, node, rank, local rank and attempt: one value per file, parsed once per value
    if all(map(mids[0].__eq__, mids)):
        mid_u, mid_i = [mids[0]], np.zeros(n, dtype=np.intp)
    else:
        mid_u, mid_i = np.unique(np.array(mids), return_inverse=True)
        mid_u = mid_u.tolist()
    parts = [m.split(" ") for m in mid_u]
    host_index: dict[str, int] = {}
    host_of = np.array([host_index.setdefault("" if p[0] == "-" else p[0], len(host_index))
                        for p in parts], dtype=np.int32)

    def per_file(i: int) -> np.ndarray:
        return np.array([int(p[i][1:]) for p in parts], dtype=np.int32)[mid_i]

    nan = float("nan")
    step = np.fromiter((nan if x == "-" else float(x) for x in steps), np.float64, n)
    # (an integer step of 16 digits or more may not be exact in float64)
    # (the usual logs have none: one pass of len() in C, not a Python test per record)
    exact = max(map(len, steps), default=0) <= 15 or all(
        int(x) == float(step[i]) for i, x in enumerate(steps)  # (exact: int against float)
        if len(x) > 15 and "." not in x and "e" not in x and x != "-")
    return LogColumns(
        time=t, rank=per_file(2), attempt=per_file(4), node=per_file(1), local_rank=per_file(3),
        step=step, steps_exact=exact,
        level=level, host=host_of[mid_i], hosts=list(host_index),
        messages=list(msgs), fields=list(flds),
    )


def from_records(records: Sequence[LogRecord]) -> LogColumns:
    hosts: dict[str, int] = {}
    floats = [np.nan if r.step is None else _float_step(r.step) for r in records]
    return LogColumns(
        time=np.array([r.time for r in records], dtype=np.float64),
        rank=np.array([r.rank for r in records], dtype=np.int32),
        attempt=np.array([r.attempt for r in records], dtype=np.int32),
        node=np.array([r.node for r in records], dtype=np.int32),
        local_rank=np.array([r.local_rank for r in records], dtype=np.int32),
        step=np.array(floats, dtype=np.float64),
        steps_exact=all(r.step is None or isinstance(r.step, float) or f == r.step
                        for r, f in zip(records, floats)),
        level=np.array([r.levelno for r in records], dtype=np.int64),
        host=np.array([hosts.setdefault(r.host, len(hosts)) for r in records], dtype=np.int32),
        hosts=list(hosts), messages=[escape(r.message) for r in records],
        fields=[fields_json(r.fields) if r.fields else "" for r in records],
    )


def _float_step(step: int | float) -> float:
    try:
        return float(step)
    except OverflowError:  # an int past float64's range
        return float("inf") if step > 0 else float("-inf")


def concat(parts: Sequence[LogColumns]) -> LogColumns:
    """Columns of several sources, one after the other (host indices remapped)."""
    hosts: dict[str, int] = {}
    host_cols = []
    for c in parts:
        remap = np.array([hosts.setdefault(h, len(hosts)) for h in c.hosts] or [0], dtype=np.int32)
        host_cols.append(remap[c.host] if len(c) else c.host)
    cat = {k: np.concatenate([getattr(c, k) for c in parts]) if parts else np.zeros(0, v)
           for k, v in NUMERIC.items() if k != "host"}
    return LogColumns(**cat, host=np.concatenate(host_cols) if parts else np.zeros(0, np.int32),
                      hosts=list(hosts), messages=[m for c in parts for m in c.messages],
                      fields=[f for c in parts for f in c.fields],
                      steps_exact=all(c.steps_exact for c in parts))


def merge_order(cols: LogColumns) -> np.ndarray:
    """Indices that put rows in (time, rank, attempt) order; stable within a source."""
    return np.lexsort((cols.attempt, cols.rank, cols.time))


# ---- sources -------------------------------------------------------------------------------
def log_sources(storage: StorageBackend) -> list[tuple[str, int, int]]:
    """``(name, rank, attempt)`` of every per-rank text log of the run at ``storage``."""
    out = []
    for name in storage.list_dir(LOGS_DIR):
        parsed = parse_log_name(name)
        if parsed is not None:
            out.append((name, parsed[0], parsed[1]))
    return out


def source_signature(storage: StorageBackend, name: str,
                     segments: list[str] | None = None) -> Any:
    """What identifies the current content of one text log cheaply (no read). ``segments``:
    its segment names, when the caller listed them already."""
    path = f"{LOGS_DIR}/{name}"
    segs = storage.segment_names(path) if segments is None else segments
    if segs:
        return {"segments": len(segs), "last": segs[-1]}
    return {"mtime": storage.modified_time(path)}


def _read_sources(storage: StorageBackend,
                  sources: list[tuple[str, int, int]]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Each text log's signature and bytes, from one listing of its segments (an object store:
    the bytes are exactly the segments the signature names; every rank's segments are read
    concurrently) or its file (local disk). A log gone meanwhile has neither."""
    listed = {name: storage.segment_names(f"{LOGS_DIR}/{name}") for name, _, _ in sources}
    wanted = [(storage, f"{LOGS_DIR}/{name}{SEGMENT_SUFFIX}/{seg}")
              for name, segs in listed.items() for seg in segs]
    parts = iter(read_objects(wanted))
    signatures, data = {}, {}
    for name, segs in listed.items():
        if segs:
            got = [next(parts) for _ in segs]
            if any(p is None for p in got):  # (deleted meanwhile)
                continue
            signatures[name], data[name] = source_signature(storage, name, segs), b"".join(got)  # type: ignore[arg-type]
            continue
        try:  # (a file's time before its bytes: a line added between makes the table look
            # stale, not current without it)
            signature = source_signature(storage, name, segs)
            data[name] = storage.read_bytes(f"{LOGS_DIR}/{name}")
        except FileNotFoundError:
            continue
        signatures[name] = signature
    return signatures, data


# ---- write -------------------------------------------------------------------------------
def _blob(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` (none holds a raw newline), each followed by a newline, as UTF-8; and the end
    offset of each (after its newline)."""
    if not texts:
        return np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64)
    joined = "\n".join(texts) + "\n"
    if joined.isascii():  # the usual case: characters are bytes
        sizes = np.fromiter(map(len, texts), np.int64, len(texts))
        return np.frombuffer(joined.encode("ascii"), dtype=np.uint8), np.cumsum(sizes + 1)
    sizes = np.fromiter((len(t.encode("utf-8")) for t in texts), np.int64, len(texts))
    return np.frombuffer(joined.encode("utf-8"), dtype=np.uint8), np.cumsum(sizes + 1)


def write_logs_table(storage: StorageBackend) -> None:
    """Merge every rank's text log of the run at ``storage`` into the Zarr logs table.

    Called on rank 0 when the run closes, after every rank's log is closed. Reads the text
    logs whole (each rank's file is in time order; the merge is one stable sort).
    """
    sources = log_sources(storage)
    signatures, data = _read_sources(storage, sources)
    parts = []
    for name, rank, attempt in sources:
        if name not in data:
            continue
        text = complete_text(data.pop(name))  # a torn last line waits
        cols = parse_columns(text)
        cut = cols.rank == -1  # a record whose header does not read: its file's rank and
        if cut.any():  # attempt (as a rank= or attempt= query of the text chooses the file)
            cols.rank[cut], cols.attempt[cut] = rank, attempt
        parts.append(cols)
    cols = concat(parts)
    if not cols.steps_exact:
        # an integer step float64 cannot hold (beyond 2**53, or past its range) would read back
        # rounded from the table: no table, so readers read the text (the source of truth);
        # one of an earlier close would not match the text, yet it goes too
        try:
            storage.delete(COMMIT_FILE)
        except FileNotFoundError:
            pass
        return
    cols = cols.take(merge_order(cols))
    n = len(cols)
    message, message_end = _blob(cols.messages)
    fields, fields_end = _blob(cols.fields)
    records = np.empty((n, len(RECORD_COLUMNS)))
    for i, key in enumerate(NUMERIC):
        records[:, i] = getattr(cols, key)
    records[:, -2], records[:, -1] = message_end, fields_end
    generation = f"g{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"
    storage.put_objects({f"{TABLE_DIR}/{generation}/{k}": v
                         for k, v in _encode_table(records, message, fields, cols.hosts).items()})
    storage.write_json(COMMIT_FILE, {
        "format": FORMAT, "generation": generation, "rows": n, "hosts": cols.hosts,
        "columns": list(RECORD_COLUMNS), "sources": signatures, "time": time.time(),
    })
    for old in storage.list_dir(TABLE_DIR):
        if old != generation:
            try:
                storage.delete(f"{TABLE_DIR}/{old}", recursive=True)
            except OSError:
                pass  # an older generation left behind is harmless: the commit names the live one


def _encode_table(records: np.ndarray, message: np.ndarray, fields: np.ndarray,
                  hosts: list[str]) -> dict[str, bytes]:
    """Every object of one table generation (path inside it: bytes): the documents and chunks
    zarr writes for these three arrays (a test compares them with zarr's: the same documents
    and keys, the same Blosc headers and content), made here without zarr's event loop (a
    close waits ~6 ms less); the store then gets a handful of plain puts (a few concurrent
    PUTs on an object store)."""
    n = len(records)
    out = {"zarr.json": doc_bytes({"attributes": {"hosts": hosts, "rows": n}, "zarr_format": 3, "node_type": "group"})}
    out.update(_array_objects("records", records, max(1, min(CHUNK, n)), np.nan,
                              {"columns": list(RECORD_COLUMNS)}))
    for key, blob in (("message", message), ("fields", fields)):
        out.update(_array_objects(key, blob, max(1, min(BYTE_CHUNK, len(blob))), 0, {}))
    return out


def _array_objects(key: str, data: np.ndarray, rows: int, fill: float, attributes: dict[str, Any]
                   ) -> dict[str, bytes]:
    """The ``zarr.json`` and chunks of a 1-D uint8 array, or of a 2-D float64 one stored
    column-major (transpose codec), chunked by ``rows``: Blosc zstd-3 with byte shuffle, the
    last chunk padded with ``fill`` to a whole chunk (as zarr stores edge chunks)."""
    from numcodecs import Blosc

    two_d = data.ndim == 2
    size = data.dtype.itemsize
    blosc = Blosc(cname="zstd", clevel=3, shuffle=Blosc.SHUFFLE)
    codecs = [{"name": "bytes", "configuration": {"endian": "little"}} if size > 1 else {"name": "bytes"},
              {"name": "blosc", "configuration": {"typesize": size, "cname": "zstd", "clevel": 3,
                                                  "shuffle": "shuffle", "blocksize": 0}}]
    if two_d:
        codecs.insert(0, {"name": "transpose", "configuration": {"order": [1, 0]}})
    # chunk keys "c.<i>.0" / "c.<i>" (separator "."): one file per chunk in the array's
    # folder, no folders under it to make at every close (zarr reads either encoding)
    doc = array_doc(data.shape, str(data.dtype), [rows, *data.shape[1:]],
                    "NaN" if isinstance(fill, float) and np.isnan(fill) else fill, codecs, attributes,
                    separator=".")
    out = {f"{key}/zarr.json": doc_bytes(doc)}
    for i, start in enumerate(range(0, len(data), rows)):
        block = data[start : start + rows]
        if len(block) < rows:
            whole = np.full((rows, *data.shape[1:]), fill, dtype=data.dtype)
            whole[: len(block)] = block
            block = whole
        block = np.ascontiguousarray(block.T if two_d else block, dtype=data.dtype.newbyteorder("<"))
        out[f"{key}/c.{i}.0" if two_d else f"{key}/c.{i}"] = blosc.encode(block)
    return out


# ---- read --------------------------------------------------------------------------------
class LogTable:
    """The committed logs table of one run; rows are read when first needed."""

    def __init__(self, storage: StorageBackend, commit: dict[str, Any]) -> None:
        self.storage = storage
        self.commit = commit
        self.rows = int(commit["rows"])
        self.hosts = list(commit.get("hosts", []))
        self._arrays = _open_arrays(
            storage.zarr_store(f"{TABLE_DIR}/{commit['generation']}", read_only=True))
        self._records: np.ndarray | None = None
        self._index = {c: i for i, c in enumerate(commit.get("columns", RECORD_COLUMNS))}

    def records(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``[start, stop)`` of the records array (all of it is read once and kept)."""
        stop = self.rows if stop is None else stop
        if self._records is not None or (start == 0 and stop == self.rows):
            if self._records is None:
                self._records = self._whole(np.asarray(self._arrays["records"][: self.rows]))
            return self._records[start:stop]
        return self._whole(np.asarray(self._arrays["records"][start:stop]))

    def _whole(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` as read, or ``FileNotFoundError`` when one is a fill row: zarr reads a chunk
        that is gone as fill values (NaN), and every committed row has a time. A chunk is gone
        when a resumed run closing again committed a newer generation and deleted this one
        after this reader opened it; the caller reads the text logs instead."""
        if np.isnan(rows[:, self._index["time"]]).any():
            raise _replaced(self.commit)
        return rows

    def column(self, key: str) -> np.ndarray:
        """One column of every row (``time``, ``rank``, ``level``, ...)."""
        return self.records()[:, self._index[key]]

    def _span(self, key: str, rows: np.ndarray, idx: np.ndarray, first: int) -> tuple[int, int]:
        """The byte range of ``message`` or ``fields`` holding rows idx[0]..idx[-1] (sorted);
        ``rows`` holds records from row ``first`` on."""
        col = self._index[f"{key}_end"]
        lo_row, hi_row = int(idx[0]), int(idx[-1])
        if lo_row == 0:
            lo = 0
        elif lo_row - 1 >= first:
            lo = int(rows[lo_row - 1 - first, col])
        else:
            lo = int(self.records(lo_row - 1, lo_row)[0, col])
        return lo, int(rows[hi_row - first, col])

    def _cut(self, data: Any, idx: np.ndarray) -> list[str]:
        """The texts of rows ``idx`` from the bytes of rows idx[0]..idx[-1], split at newlines.
        Fewer newlines than rows: a chunk was gone (read as zeros; see ``_whole``)."""
        texts = np.asarray(data).tobytes().decode("utf-8").split("\n")
        lo_row, hi_row = int(idx[0]), int(idx[-1])
        if len(texts) != hi_row - lo_row + 2:
            raise _replaced(self.commit)
        if len(idx) == hi_row - lo_row + 1:  # a contiguous span: every row
            return texts[:-1]
        return [texts[i] for i in (idx - lo_row).tolist()]

    def _texts(self, key: str, rows: np.ndarray, idx: np.ndarray, first: int) -> list[str]:
        """``message`` or ``fields`` of the sorted rows ``idx``; ``rows`` holds records from
        row ``first`` on. Reads the bytes of rows idx[0]..idx[-1] and splits them at newlines."""
        if len(idx) == 0:
            return []
        lo, hi = self._span(key, rows, idx, first)
        return self._cut(self._arrays[key][lo:hi], idx)

    def texts(self, key: str, idx: np.ndarray) -> list[str]:
        return self._texts(key, self.records(), idx, 0)

    def columns(self, idx: np.ndarray) -> LogColumns:
        """The rows ``idx`` (sorted) as ``LogColumns``; messages and fields read together."""
        if len(idx) and self._records is None and idx[-1] - idx[0] + 1 < self.rows // 4:
            first = int(idx[0])  # read just the span
            rows = self.records(first, int(idx[-1]) + 1)
        else:
            first, rows = 0, self.records()
        sel = rows[idx - first]
        numeric = {k: sel[:, self._index[k]].astype(v) for k, v in NUMERIC.items()}
        texts: dict[str, list[str]] = {"message": [], "fields": []}
        if len(idx):
            from ..storage.aio import gather

            spans = {k: self._span(k, rows, idx, first) for k in texts}
            blobs = gather([self._arrays[k]._async_array.getitem(slice(*spans[k])) for k in texts])
            texts = {k: self._cut(b, idx) for k, b in zip(texts, blobs)}
        return LogColumns(**numeric, hosts=self.hosts, messages=texts["message"],
                          fields=texts["fields"])


def _replaced(commit: dict[str, Any]) -> FileNotFoundError:
    return FileNotFoundError(
        errno.ENOENT, "logs table generation replaced while it was read (its chunks are gone); "
        "read the text logs (source='text') or query again", f"{TABLE_DIR}/{commit['generation']}")


def _open_arrays(store: Any) -> dict[str, Any]:
    """The table's three arrays, their metadata read at once (``zarr_format=3``: no probes for
    v2 files); ``FileNotFoundError`` when the generation is gone."""
    import zarr
    from zarr.api.asynchronous import open_array

    from ..storage.aio import gather

    names = ("records", "message", "fields")
    arrays = gather([open_array(store=store, path=k, mode="r", zarr_format=3) for k in names])
    return {k: zarr.Array(a) for k, a in zip(names, arrays)}


def read_logs_table(storage: StorageBackend, check_sources: bool = True) -> LogTable | None:
    """The run's logs table if it exists and still covers every text log as it is now."""
    if not check_sources:
        return _open_table(storage, _read_commit(storage), None)
    return logs_table_and_sources(storage)[1]


def logs_table_and_sources(storage: StorageBackend) -> tuple[list[tuple[str, int, int]], LogTable | None]:
    """``log_sources`` and the current logs table (or None), read together: the listing and
    the commit record at once, then every source's signature at once (object stores: a few
    round trips however many ranks)."""
    from ..storage.aio import run_all

    commit, sources = run_all([lambda: _read_commit(storage), lambda: log_sources(storage)])
    return sources, _open_table(storage, commit, sources)


def _read_commit(storage: StorageBackend) -> dict[str, Any] | None:
    try:
        commit = storage.read_json(COMMIT_FILE)
    except FileNotFoundError:
        return None
    except ValueError as e:  # torn: named (it was a bare JSON error), and the logs read from
        # each rank's text log, which the table only merges
        why = f"not valid JSON: {e}"
    else:
        if isinstance(commit, dict):
            return commit
        why = f"a {type(commit).__name__}, not a commit record"
    report.warn(f"{damaged(storage, COMMIT_FILE, why)}; the logs are read from each rank's text log instead",
                key=f"logs-commit:{getattr(storage, 'url', storage)}")
    return None


def _open_table(storage: StorageBackend, commit: dict[str, Any] | None,
                sources: list[tuple[str, int, int]] | None) -> LogTable | None:
    from ..storage.aio import run_all

    if commit is None or commit.get("format") != FORMAT:
        return None

    def table() -> LogTable | None:
        try:
            return LogTable(storage, commit)
        except (FileNotFoundError, KeyError):  # replaced by a newer generation meanwhile
            return None

    if sources is None:
        return table()
    names = [name for name, _, _ in sources]
    expected = commit.get("sources", {})
    if sorted(names) != sorted(expected):
        return None
    # the signatures and the table's metadata at once (the metadata is wasted if stale)
    *signatures, opened = run_all([*(lambda n=n: source_signature(storage, n) for n in names),
                                   table])
    if any(sig != expected[n] for n, sig in zip(names, signatures)):
        return None
    return opened
