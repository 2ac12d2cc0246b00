"""The files manifests (one JSON line per save, per rank) and the files table rank 0 merges
from them at close: ``FileRecord``, its parser, and ``write_files_table`` (docs/FORMAT.md)."""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..layout import FILES_TABLE, MANIFEST_DIR, is_manifest_name, manifest_path, table_commit, table_zarr
from ..storage.abandoned import closing_abandoned
from ..storage.base import StorageBackend
from .rowstore import gather_async


TABLE_NAME = FILES_TABLE
TABLE_CHUNK = 65536
#: the files table's columns and their kinds (str → zarr variable-length string)
TABLE_COLUMNS = (("path", "str"), ("name", "str"), ("namespace", "str"), ("sha256", "str"),
                 ("size", "int"), ("media_type", "str"), ("rank", "int"), ("host", "str"),
                 ("step", "int"), ("time", "float"), ("version", "int"), ("attempt", "int"))



@dataclass(frozen=True)
class FileRecord:
    """One save of one file by one rank (a line of that rank's manifest)."""

    path: str
    name: str
    namespace: str
    sha256: str
    size: int
    media_type: str
    rank: int
    host: str
    step: int | None
    time: float
    version: int
    attempt: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FileRecord":
        return cls(**{k: d.get(k, 0 if k == "attempt" else None) for k in cls.__dataclass_fields__})


def parse_manifest(text: str | bytes) -> list[FileRecord]:
    """Records of one manifest text; a torn last line (a crash mid-write) is skipped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = []
    for line in text.splitlines():
        try:
            out.append(FileRecord.from_dict(json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out


def manifest_names(storage: StorageBackend) -> list[str]:
    return [n for n in storage.list_dir(MANIFEST_DIR)
            if is_manifest_name(n)]


def read_manifests(storage: StorageBackend) -> list[FileRecord]:
    """Every rank's records in the run folder ``storage``, in (time, rank, path) order."""
    from ..storage.aio import run_all

    def read(n: str) -> bytes | None:
        try:
            return storage.read_bytes(f"{MANIFEST_DIR}/{n}")
        except FileNotFoundError:
            return None

    recs: list[FileRecord] = []
    for data in run_all([lambda n=n: read(n) for n in manifest_names(storage)]):  # all at once
        if data is not None:
            recs.extend(parse_manifest(data))
    return sorted(recs, key=lambda r: (r.time, r.rank, r.path))


def write_files_table(storage: StorageBackend, records: list[FileRecord] | None = None) -> int:
    """Rank 0, at close: merge all manifests into ``files.zarr`` + ``files.commit.json``.

    One 1-D array per column of ``TABLE_COLUMNS`` (strings as zarr v3 variable-length
    strings, ``step`` as int64 with -1 for none), rows in (time, rank, path) order, chunks of
    65,536 rows. ``files.commit.json`` (``{"format": 1, "length": n, ...}``) is removed first
    and written last, so a reader that finds it finds every row it counts. Returns ``n``.
    ``records`` saves re-reading the manifests when the caller has them all.
    """
    if records is None:
        if not manifest_names(storage):
            return 0
        records = read_manifests(storage)
    if not records:
        return 0
    import zarr

    recs = sorted(records, key=lambda r: (r.time, r.rank, r.path))
    n = len(recs)
    commit = table_commit(TABLE_NAME)
    storage.delete(commit)
    store = storage.zarr_store(table_zarr(TABLE_NAME))
    with closing_abandoned():
        group = zarr.open_group(store=store, mode="w")._async_group
    columns = []
    for col, kind in TABLE_COLUMNS:
        values = [getattr(r, col) for r in recs]
        if kind == "str":
            columns.append((col, np.array(values, dtype=str), str))
        elif kind == "int":
            columns.append((col, np.array([-1 if v is None else v for v in values], np.int64), "int64"))
        else:
            columns.append((col, np.array(values, dtype=np.float64), "float64"))
    # every column at once through zarr's async API: a few round trips, not 2 per column
    arrays = gather_async([group.create_array(col, shape=(n,), chunks=(min(max(n, 1), TABLE_CHUNK),),
                                         dtype=dtype) for col, _, dtype in columns])
    if n:
        gather_async([a.setitem(slice(0, n), data) for a, (_, data, _) in zip(arrays, columns)])
    with warnings.catch_warnings(), closing_abandoned():
        warnings.simplefilter("ignore")  # "consolidated metadata is not in the v3 spec"
        zarr.consolidate_metadata(store)
    storage.write_json(commit, {"format": 1, "table": TABLE_NAME, "length": n,
                                "columns": [c for c, _ in TABLE_COLUMNS], "time": time.time()})
    return n
