"""The run's merged logs table: every rank's text log, merged by time, as Zarr columns.

Rank 0 writes it when a run closes (``write_logs_table``), after every rank's log is closed.
The per-rank text files stay the source of truth; the table is an index that makes queries
fast (vectorised filters, last-N rows without parsing text). Layout under a run:

    logs.zarr/<generation>/time          float64  seconds since the epoch (UTC)
                          /rank          int32    global rank
                          /attempt       int32    restart attempt
                          /node          int32    node rank
                          /local_rank    int32
                          /step          float64  NaN when the record has no step
                          /level         int16    numeric level (10 DEBUG ... 50 CRITICAL)
                          /host          int32    index into the attribute "hosts"
                          /message       uint8    UTF-8 of every message, concatenated
                          /message_offsets  int64 (rows + 1) byte offsets into message
                          /fields        uint8    JSON of each record's fields ("" if none)
                          /fields_offsets   int64 (rows + 1)
    logs.commit.json      {"generation", "rows", "sources": {log name: signature}, ...}

Rows are in (time, rank, attempt) order. A rewrite (a resumed run closing again) goes to a
new generation directory, the commit record is replaced last (atomically), and only then are
older generations deleted, so a reader holding the previous commit reads a whole table, never
a mix. ``sources`` records, per text log, what the table covers (segment names on object
stores, the modification time on local disk); a reader compares it with the files as they
are now and falls back to the text when they differ (a resumed or still-running run).
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from ..logline import LEVELS, LogRecord, parse_line, unescape
from ..logs import parse_log_name
from ..storage.base import StorageBackend

TABLE_DIR = "logs.zarr"
COMMIT_FILE = "logs.commit.json"
LOGS_DIR = "logs"
CHUNK = 1 << 16  # rows per chunk of the numeric columns
BYTE_CHUNK = 1 << 20  # bytes per chunk of the message and fields blobs
NUMERIC = {"time": "float64", "rank": "int32", "attempt": "int32", "node": "int32",
           "local_rank": "int32", "step": "float64", "level": "int16", "host": "int32"}


@dataclass
class LogColumns:
    """Records as columns (the table's in-memory form). ``host`` indexes ``hosts``."""

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

    def __len__(self) -> int:
        return len(self.time)

    def take(self, idx: np.ndarray) -> "LogColumns":
        return LogColumns(*(getattr(self, k)[idx] for k in NUMERIC), hosts=self.hosts,
                          messages=[self.messages[i] for i in idx],
                          fields=[self.fields[i] for i in idx])

    def record(self, i: int) -> LogRecord:
        step = self.step[i]
        return LogRecord(
            time=float(self.time[i]), level=_LEVEL_NAMES.get(int(self.level[i]), f"LEVEL{self.level[i]}"),
            message=self.messages[i], host=self.hosts[self.host[i]], rank=int(self.rank[i]),
            local_rank=int(self.local_rank[i]), node=int(self.node[i]), attempt=int(self.attempt[i]),
            step=None if np.isnan(step) else int(step),
            fields=json.loads(self.fields[i]) if self.fields[i] else {},
        )


_LEVEL_NAMES = {v: k for k, v in LEVELS.items()}


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
    r"s(-|-?\d+) ([^\t\n]*)(?:\t([^\n]*))?$", re.M)


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
    with _gc_paused():
        found = _LINE.findall(text)
        lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
        if len(found) != lines:  # some lines in another layout, or not records at all
            found = []
            for line in text.splitlines():
                m = _LINE.match(line)
                if m:
                    found.append(m.groups(""))
                    continue
                try:
                    odd.append(parse_line(line))
                except ValueError:
                    continue
        cols = _columns(found)
    return concat([cols, from_records(odd)]) if odd else cols


def _columns(found: list[tuple[str, ...]]) -> LogColumns:
    if not found:
        return from_records([])
    ts, levels, mids, steps, msgs, flds = zip(*found)
    t = np.array(ts, dtype="datetime64[us]").astype(np.int64) / 1e6
    lv_u, lv_i = np.unique(np.array(levels), return_inverse=True)
    mid_u, mid_i = np.unique(np.array(mids), return_inverse=True)
    parts = [m.split(" ") for m in mid_u.tolist()]  # host nN rR lL aA, a few distinct values
    host_index: dict[str, int] = {}
    host_of = np.array([host_index.setdefault("" if p[0] == "-" else p[0], len(host_index))
                        for p in parts], dtype=np.int32)

    def per_mid(i: int) -> np.ndarray:
        return np.array([int(p[i][1:]) for p in parts], dtype=np.int32)[mid_i]

    step = np.array(steps)
    return LogColumns(
        time=t, rank=per_mid(2), attempt=per_mid(4), node=per_mid(1), local_rank=per_mid(3),
        step=np.where(step == "-", "nan", step).astype(np.float64),
        level=np.array([LEVELS.get(x, 0) for x in lv_u.tolist()], dtype=np.int16)[lv_i],
        host=host_of[mid_i], hosts=list(host_index), messages=list(map(unescape, msgs)),
        fields=list(flds),
    )


def from_records(records: Sequence[LogRecord]) -> LogColumns:
    hosts: dict[str, int] = {}
    return LogColumns(
        time=np.array([r.time for r in records], dtype=np.float64),
        rank=np.array([r.rank for r in records], dtype=np.int32),
        attempt=np.array([r.attempt for r in records], dtype=np.int32),
        node=np.array([r.node for r in records], dtype=np.int32),
        local_rank=np.array([r.local_rank for r in records], dtype=np.int32),
        step=np.array([np.nan if r.step is None else r.step for r in records], dtype=np.float64),
        level=np.array([r.levelno for r in records], dtype=np.int16),
        host=np.array([hosts.setdefault(r.host, len(hosts)) for r in records], dtype=np.int32),
        hosts=list(hosts), messages=[r.message for r in records],
        fields=[json.dumps(r.fields, default=repr, sort_keys=True) if r.fields else "" for r in records],
    )


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
                      fields=[f for c in parts for f in c.fields])


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


def source_signature(storage: StorageBackend, name: str) -> Any:
    """What identifies the current content of one text log cheaply (no read)."""
    path = f"{LOGS_DIR}/{name}"
    segs = storage.segment_names(path)
    if segs:
        return {"segments": len(segs), "last": segs[-1]}
    return {"mtime": storage.modified_time(path)}


# ---- write -------------------------------------------------------------------------------
def _codec() -> dict[str, Any]:
    from zarr.codecs import BloscCodec

    return {"compressors": [BloscCodec(cname="zstd", clevel=5, shuffle="shuffle")]}


def _blob(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 of ``texts`` concatenated, and the byte offset of each (one more at the end)."""
    joined = "".join(texts)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    if joined.isascii():  # the usual case: characters are bytes
        np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)), out=offsets[1:])
        return np.frombuffer(joined.encode("ascii"), dtype=np.uint8), offsets
    encoded = [t.encode("utf-8") for t in texts]
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def write_logs_table(storage: StorageBackend) -> None:
    """Merge every rank's text log of the run at ``storage`` into the Zarr logs table.

    Called on rank 0 when the run closes, after every rank's log is closed. Reads the text
    logs whole (each rank's file is in time order; the merge is one stable sort).
    """
    import zarr

    sources = log_sources(storage)
    signatures = {name: source_signature(storage, name) for name, _, _ in sources}
    parts = []
    for name, _, _ in sources:
        try:
            text = storage.read_text(f"{LOGS_DIR}/{name}")
        except FileNotFoundError:
            continue
        parts.append(parse_columns(text[: text.rfind("\n") + 1]))  # a torn last line waits
    cols = concat(parts)
    cols = cols.take(merge_order(cols))
    generation = f"g{time.time_ns():020d}-{uuid.uuid4().hex[:6]}"
    group = zarr.open_group(store=storage.zarr_store(f"{TABLE_DIR}/{generation}"), mode="w",
                            attributes={"hosts": cols.hosts, "rows": len(cols)})
    for key, dtype in NUMERIC.items():
        data = getattr(cols, key).astype(dtype, copy=False)
        _array(group, key, data, CHUNK)
    for key, texts in (("message", cols.messages), ("fields", cols.fields)):
        blob, offsets = _blob(texts)
        _array(group, key, blob, BYTE_CHUNK)
        _array(group, f"{key}_offsets", offsets, CHUNK)
    storage.write_json(COMMIT_FILE, {
        "format": 1, "generation": generation, "rows": len(cols), "hosts": cols.hosts,
        "sources": signatures, "time": time.time(),
    })
    for old in storage.list_dir(TABLE_DIR):
        if old != generation:
            try:
                storage.delete(f"{TABLE_DIR}/{old}", recursive=True)
            except OSError:
                pass  # an older generation left behind is harmless: the commit names the live one


def _array(group: Any, key: str, data: np.ndarray, chunk: int) -> None:
    arr = group.create_array(key, shape=data.shape, chunks=(max(1, min(chunk, len(data) or 1)),),
                             dtype=data.dtype, fill_value=0, **_codec())
    if len(data):
        arr[:] = data


# ---- read --------------------------------------------------------------------------------
class LogTable:
    """The committed logs table of one run, read lazily column by column."""

    def __init__(self, storage: StorageBackend, commit: dict[str, Any]) -> None:
        import zarr

        self.storage = storage
        self.commit = commit
        self.rows = int(commit["rows"])
        self.hosts = list(commit.get("hosts", []))
        self._group = zarr.open_group(
            store=storage.zarr_store(f"{TABLE_DIR}/{commit['generation']}", read_only=True),
            mode="r", use_consolidated=False)
        self._cache: dict[str, np.ndarray] = {}

    def column(self, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``[start, stop)`` of a numeric column (offsets have one entry more)."""
        n = self.rows + 1 if key.endswith("_offsets") else self.rows
        stop = n if stop is None else stop
        if start == 0 and stop == n:
            if key not in self._cache:
                self._cache[key] = np.asarray(self._group[key][:n])
            return self._cache[key]
        return np.asarray(self._group[key][start:stop])

    def texts(self, key: str, idx: np.ndarray) -> list[str]:
        """Decoded ``message`` or ``fields`` of the rows ``idx`` (reads only the bytes needed)."""
        if len(idx) == 0:
            return []
        offsets = self.column(f"{key}_offsets")
        lo, hi = int(offsets[idx.min()]), int(offsets[idx.max() + 1])
        blob = np.asarray(self._group[key][lo:hi]).tobytes()
        starts, ends = (offsets[idx] - lo).tolist(), (offsets[idx + 1] - lo).tolist()
        if blob.isascii():  # decode once, slice characters
            text = blob.decode("ascii")
            return [text[a:b] for a, b in zip(starts, ends)]
        return [blob[a:b].decode("utf-8") for a, b in zip(starts, ends)]

    def columns(self, idx: np.ndarray) -> LogColumns:
        """The rows ``idx`` as ``LogColumns``."""
        numeric = {}
        if len(idx) and idx[-1] - idx[0] + 1 < self.rows // 4:
            lo, hi = int(idx[0]), int(idx[-1]) + 1  # idx is sorted: read just the span
            numeric = {k: self.column(k, lo, hi)[idx - lo] for k in NUMERIC}
        else:
            numeric = {k: self.column(k)[idx] for k in NUMERIC}
        return LogColumns(**numeric, hosts=self.hosts, messages=self.texts("message", idx),
                          fields=self.texts("fields", idx))


def read_logs_table(storage: StorageBackend, check_sources: bool = True) -> LogTable | None:
    """The run's logs table if it exists and still covers every text log as it is now."""
    try:
        commit = storage.read_json(COMMIT_FILE)
    except FileNotFoundError:
        return None
    if check_sources:
        names = [name for name, _, _ in log_sources(storage)]
        expected = commit.get("sources", {})
        if sorted(names) != sorted(expected):
            return None
        for name in names:
            if source_signature(storage, name) != expected[name]:
                return None
    try:
        return LogTable(storage, commit)
    except (FileNotFoundError, KeyError):  # replaced by a newer generation meanwhile
        return None
