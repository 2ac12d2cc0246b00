"""Every rank's file records by path, tailed from the manifests (``_Index``), and the state
the namespaced views of one run's artifact logger share (``_Shared``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from typing import TYPE_CHECKING, Any

from ..cas import ContentStore
from ..errors import RunStateError
from ..inputs import plain_int
from ..storage.base import Appender, StorageBackend
from ..writers.manifest import (MANIFEST_DIR, FileRecord, manifest_names, manifest_path, parse_manifest,
                       write_files_table)

if TYPE_CHECKING:
    from ..context import RunContext


#: one object per (path, version): ``files.versions/<sha256 of the path>/<version>``, created
#: only where absent, holding ``{"path", "sha256"}`` of the content that owns the number (beside
#: ``files/``, not in it: that folder holds the manifests only)
VERSIONS_DIR = f"{MANIFEST_DIR}.versions"


def version_claim_path(path: str, version: int) -> str:
    key = hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{VERSIONS_DIR}/{key}/{version}"


def _claimed_sha(storage: StorageBackend, claim: str) -> str | None:
    """The digest a version claim names (None: gone, or not a claim)."""
    try:
        d = json.loads(storage.read_bytes(claim))
    except (FileNotFoundError, ValueError):
        return None
    return d.get("sha256") if isinstance(d, dict) else None


class _Index:
    """Every rank's records by path, read incrementally from the manifests (tailing)."""

    def __init__(self, storage: StorageBackend, rank: int, attempt: int, world_size: int) -> None:
        self.storage = storage
        self.me = (rank, attempt)
        self.by_path: dict[str, list[FileRecord]] = {}
        self._pos: dict[str, int] = {}  # byte offset (appendable stores) or segments read
        # alone in the run, only earlier attempts wrote other records: read them once
        self._alone = world_size == 1
        self._read_once = False

    def add(self, rec: FileRecord) -> None:
        self.by_path.setdefault(rec.path, []).append(rec)

    def refresh(self) -> None:
        """Read what other ranks (and earlier attempts) appended since the last call.

        One listing of ``files/`` plus one read per manifest (a segment listing and the new
        segments on object stores) per call; a single-process run reads once.
        """
        if self._alone and self._read_once:
            return
        self._read_once = True
        for n in manifest_names(self.storage):
            for rec in parse_manifest(self._tail(f"{MANIFEST_DIR}/{n}")):
                if (rec.rank, rec.attempt) != self.me:  # ours are added when written
                    self.add(rec)

    def _tail(self, path: str) -> bytes:
        pos = self._pos.get(path, 0)
        if self.storage.supports_append:
            try:
                with self.storage.open_read(path) as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                return b""
            data = data[: data.rfind(b"\n") + 1]  # whole lines only: a write may be in flight
            self._pos[path] = pos + len(data)
            return data
        parts = [data for _, data in self.storage.iter_segments(path, start=pos)]
        self._pos[path] = pos + len(parts)
        return b"".join(parts)

    def all(self) -> list[FileRecord]:
        return [r for recs in self.by_path.values() for r in recs]

    def next_version(self, path: str, sha256: str) -> int:
        recs = self.by_path.get(path)
        if not recs:
            return 1
        latest = max(r.version for r in recs)
        same = any(r.version == latest and r.sha256 == sha256 for r in recs)
        return latest if same else latest + 1

    def claim_version(self, path: str, sha256: str) -> int:
        """The version a save of ``sha256`` under ``path`` records, unique per content across
        ranks, processes and nodes.

        The manifests alone cannot decide it: two ranks that read them before either wrote
        both took the same next number for different bytes. So each number is claimed with an
        exclusive create (``version_claim_path``, atomic on every backend): the first content
        to create the claim owns the number; a save that finds it taken by other bytes tries
        the next. A save finding its own bytes owning the newest claim shares that version
        (N ranks saving one checkpoint: one version). A crash between claim and record leaves
        a number with no record: versions may skip a number, never repeat one.
        """
        v = self.next_version(path, sha256)
        if any(r.version == v and r.sha256 == sha256 for r in self.by_path.get(path, ())):
            # our bytes are recorded as the newest version (a checkpoint another rank saved
            # first, a config saved again): its claim is theirs, or the run predates claims and
            # every save reads that record; only a newer claim can change the answer. One HEAD
            # (an exclusive create refused costs a PUT, the marker's HEAD and the claim's GET)
            if not self.storage.exists(version_claim_path(path, v + 1)):
                return v
            v += 1
        body = json.dumps({"path": path, "sha256": sha256}).encode()
        while True:
            claim = version_claim_path(path, v)
            if self.storage.create_bytes(claim, body):
                return v
            owner = _claimed_sha(self.storage, claim)
            if owner == sha256 and not self.storage.exists(version_claim_path(path, v + 1)):
                return v  # our bytes are the newest version: one more record of it
            v += 1

    def resolve(self, path: str, version: int | None, rank: int | None) -> FileRecord:
        from ..query.errors import FileNotInRun  # (query imports this module)

        recs = [r for r in self.by_path.get(path, []) if rank is None or r.rank == rank]
        if not recs:
            known = sorted(self.by_path)
            hint = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "") or "none"
            who = f" from rank {rank}" if rank is not None else ""
            raise FileNotInRun(f"no file {path!r}{who} in this run; saved so far: {hint}")
        versions = sorted({r.version for r in recs})
        v = pick_version(versions, version)
        if v is None:
            raise missing_version(path, version, rank, self.by_path.get(path, []))
        return min((r for r in recs if r.version == v), key=lambda r: (r.rank, r.time))


def missing_version(path: str, version: int | None, rank: int | None, recs: list[FileRecord]) -> Exception:
    """``FileNotInRun`` for a version of ``path`` that ``rank`` (None: any rank) did not save,
    naming the rank that did where one did (``recs``: every record of ``path``)."""
    from ..query.errors import FileNotInRun  # (query imports this module)

    versions = ", ".join(map(str, sorted({r.version for r in recs if rank is None or r.rank == rank})))
    others = sorted({r.rank for r in recs if r.version == version})
    if rank is not None and others:
        return FileNotInRun(f"rank {rank} saved no version {version} of {path!r} (rank "
                            f"{', '.join(map(str, others))} did: pass rank={others[0]}, or no rank); "
                            f"rank {rank}'s versions: {versions}")
    return FileNotInRun(f"file {path!r} has no version {version}; versions: {versions}")


def check_version_rank(call: str, name: Any, version: Any, rank: Any) -> tuple[int | None, int | None]:
    """``version`` and ``rank`` of a read (``files.load``, ``run.files.find`` ...) as ints, else
    a ``TypeError`` (``ValueError``: a negative rank) naming the call: a str version raised
    "'<' not supported between instances of 'str' and 'int'", a str rank found no file of
    that rank, ``True`` read version 1."""
    def as_int(what: str, value: Any, expected: str, example: str) -> int | None:
        if value is None:
            return None
        n = plain_int(value)
        if n is None:
            raise TypeError(f"{call}({name!r}, {what}={value!r:.40}): {what} must be an int "
                            f"({expected}), got {type(value).__name__}; e.g. {what}={example}")
        return n

    version = as_int("version", version, "1, 2, ...; -1 the newest, -2 the one before", "1")
    rank = as_int("rank", rank, "the rank that saved the file, 0 or more", "0")
    if rank is not None and rank < 0:
        raise ValueError(f"{call}({name!r}, rank={rank!r}): rank must be an int (the rank that saved "
                         "the file, 0 or more); leave it out for the lowest rank's file")
    return version, rank


def one_per_version(recs: list[FileRecord]) -> list[FileRecord]:
    """One record per version among ``recs`` (one path's), oldest version first: of a
    version's records, the lowest rank's, then the earliest (as ``resolve`` picks). One pass:
    a name saved 4,000 times took seconds when each version was resolved apart."""
    best: dict[int, FileRecord] = {}
    for r in recs:
        b = best.get(r.version)
        if b is None or (r.rank, r.time) < (b.rank, b.time):
            best[r.version] = r
    return [best[v] for v in sorted(best)]


def pick_version(versions: list[int], version: int | None) -> int | None:
    """The version ``version`` names among ``versions`` (sorted): None the newest, 1, 2, ...
    itself, -1 the newest, -2 the one before...; None when there is no such version."""
    if version is None:
        return versions[-1]
    if version < 0:
        return versions[version] if -version <= len(versions) else None
    return version if version in versions else None


class _Shared:
    """State of one run's artifact logger, shared by its namespaced views."""

    def __init__(self, ctx: "RunContext") -> None:
        self.ctx = ctx
        self.cas = ContentStore(ctx.root)
        self.index = _Index(ctx.storage, ctx.rank, ctx.attempt, ctx.world_size)
        self.lock = threading.RLock()
        self._appender: Appender | None = None
        self.ended = False  # the run closed: saves are refused (its files table is written)
        ctx.before_final_flush(self.flush)
        ctx.on_close(self.close)

    def append(self, rec: FileRecord) -> None:
        # the blob is already stored: a record never points at bytes that are not there
        with self.lock:
            if self.ended:
                raise RunStateError(
                    f"run {self.ctx.url} has ended, and this artifact logger belongs to it: a "
                    "save now would miss its files table. Inside the next run take exp.files again")
            if self._appender is None:
                self._appender = self._open_appender()
            self._appender.write(rec.to_json() + "\n")
            self._appender.flush()  # durable now, and visible to other ranks' versioning
            self.index.add(rec)

    def _open_appender(self) -> Appender:
        storage, path = self.ctx.storage, manifest_path(self.ctx.rank)
        app = storage.open_appender(path)
        if storage.supports_append:
            # an earlier attempt that crashed mid-line must not swallow our first record
            with contextlib.suppress(FileNotFoundError), storage.open_read(path) as f:
                size = f.seek(0, 2)
                if size:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        app.write("\n")
        return app

    def flush(self) -> None:
        with self.lock:
            if self._appender is not None:
                self._appender.flush()

    def close(self) -> None:
        # after the final flush, which is a barrier: every rank's records are on the store
        try:
            if self.ctx.rank == 0:
                with self.lock:
                    self.index.refresh()
                    recs = self.index.all()
                write_files_table(self.ctx.storage, recs)
        finally:
            with self.lock:
                self.ended = True
                if self._appender is not None:
                    self._appender.close()
                    self._appender = None
