"""The files manifests (one JSON line per save, per rank) and the files table rank 0 merges
from them at close: ``FileRecord``, its parser, and ``write_files_table`` (docs/FORMAT.md)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..layout import FILES_TABLE, MANIFEST_DIR, is_manifest_name, manifest_path, table_commit, table_zarr
from ..storage.base import StorageBackend
from .zarrdoc import array_doc, consolidated, doc_bytes


TABLE_NAME = FILES_TABLE
TABLE_CHUNK = 65536
#: the files table's columns and their kinds (str → zarr variable-length string)
TABLE_COLUMNS = (("path", "str"), ("name", "str"), ("namespace", "str"), ("sha256", "str"),
                 ("size", "int"), ("media_type", "str"), ("rank", "int"), ("host", "str"),
                 ("step", "float"), ("time", "float"), ("version", "int"), ("attempt", "int"))



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
    step: int | float | None  # an int, or a float for a fractional step (2.5)
    time: float
    version: int
    attempt: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FileRecord":
        rec = {k: d.get(k, 0 if k == "attempt" else None) for k in cls.__dataclass_fields__}
        # the fields records are ordered by, typed (a foreign or damaged line may lack them)
        num = (int, float)
        rec["time"] = float(rec["time"]) if isinstance(rec["time"], num) else 0.0
        rec["rank"] = int(rec["rank"]) if isinstance(rec["rank"], num) else 0
        rec["path"] = rec["path"] if isinstance(rec["path"], str) else ""
        return cls(**rec)


def parse_manifest(text: str | bytes) -> list[FileRecord]:
    """Records of one manifest text; a torn last line (a crash mid-write) is skipped."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = []
    for line in text.splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        # a line that is no record (foreign text, a list) names no blob: skipped. One that names
        # a blob is kept whatever else it lacks (gc must count that blob as referenced)
        if isinstance(d, dict) and isinstance(d.get("sha256"), str):
            out.append(FileRecord.from_dict(d))
    return out



def manifest_names(storage: StorageBackend) -> list[str]:
    return [n for n in storage.list_dir(MANIFEST_DIR)
            if is_manifest_name(n)]


def read_manifests(storage: StorageBackend, seen: dict[str, bytes] | None = None) -> list[FileRecord]:
    """Every rank's records in the run folder ``storage``, in (time, rank, path) order.
    ``seen``: the manifests' segments read before (``StorageBackend.read_bytes``), for a
    reader that reads them again: only new segments are read."""
    from ..storage.aio import run_all

    def read(n: str) -> bytes | None:
        try:
            return storage.read_bytes(f"{MANIFEST_DIR}/{n}", seen)
        except FileNotFoundError:
            return None

    recs: list[FileRecord] = []
    for data in run_all([lambda n=n: read(n) for n in manifest_names(storage)]):  # all at once
        if data is not None:  # (a line naming a blob but no file counts for gc only)
            recs.extend(r for r in parse_manifest(data) if r.path)
    return sorted(recs, key=lambda r: (r.time, r.rank, r.path))


# each column kind: (zarr data type, fill value, its serializer codec), as zarr's create_array
# writes them for str, "int64" and "float64"; then zstd level 0 (zarr's default compressor)
_KINDS = {"str": ("string", "", {"name": "vlen-utf8", "configuration": {}}),
          "int": ("int64", 0, {"name": "bytes", "configuration": {"endian": "little"}}),
          "float": ("float64", 0.0, {"name": "bytes", "configuration": {"endian": "little"}})}
_ZSTD = {"name": "zstd", "configuration": {"level": 0, "checksum": False}}


def files_table_objects(recs: list[FileRecord]) -> dict[str, bytes]:
    """Every object of the files table of ``recs`` (at least one, in table order), by path
    inside ``files.zarr``: the group's ``zarr.json`` with every column's metadata consolidated,
    each column's ``zarr.json`` and chunks. What zarr writes for these arrays (a test compares
    documents and chunk bytes), made without zarr: a run on local disk then never imports it."""
    from numcodecs import VLenUTF8, Zstd

    n = len(recs)
    rows = min(n, TABLE_CHUNK)
    zstd, vlen = Zstd(level=0, checksum=False), VLenUTF8()
    out: dict[str, bytes] = {}
    docs: dict[str, Any] = {}
    for col, kind in TABLE_COLUMNS:
        dtype, fill, serializer = _KINDS[kind]
        values = [getattr(r, col) for r in recs]
        if kind == "str":
            data = np.array(values + [fill] * (-n % rows), dtype=object)  # edge chunk: fill
        else:  # a missing float is NaN (``step``: none); no int column has a missing value
            missing = -1 if kind == "int" else np.nan
            data = np.array([missing if v is None else v for v in values] + [fill] * (-n % rows),
                            dtype=np.dtype(dtype).newbyteorder("<"))
        docs[col] = array_doc([n], dtype, [rows], fill, [serializer, _ZSTD], {})
        out[f"{col}/zarr.json"] = doc_bytes(docs[col])
        for i, start in enumerate(range(0, n, rows)):
            block = data[start : start + rows]
            if not (block == fill).all():  # (as zarr: a chunk of fill values is not stored)
                out[f"{col}/c/{i}"] = zstd.encode(vlen.encode(block) if kind == "str" else block.tobytes())
    out["zarr.json"] = doc_bytes(consolidated({"attributes": {}, "zarr_format": 3, "node_type": "group"}, docs))
    return out


def write_files_table(storage: StorageBackend, records: list[FileRecord] | None = None) -> int:
    """Rank 0, at close: merge all manifests into ``files.zarr`` + ``files.commit.json``.

    One 1-D array per column of ``TABLE_COLUMNS`` (strings as zarr v3 variable-length
    strings, ``step`` as float64 with NaN for none), rows in (time, rank, path) order, chunks of
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
    recs = sorted(records, key=lambda r: (r.time, r.rank, r.path))
    commit = table_commit(TABLE_NAME)
    storage.delete(commit)
    storage.delete(table_zarr(TABLE_NAME), recursive=True)  # (a rewrite: the table whole)
    storage.put_objects({f"{table_zarr(TABLE_NAME)}/{k}": v for k, v in files_table_objects(recs).items()})
    n = len(recs)
    storage.write_json(commit, {"format": 1, "table": TABLE_NAME, "length": n,
                                "columns": [c for c, _ in TABLE_COLUMNS], "time": time.time()})
    return n
