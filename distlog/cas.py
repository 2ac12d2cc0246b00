"""The content-addressed blob store shared by every run under a root.

Layout (relative to the root given to ``get_logger``)::

    .distlog/cas/sha256/<d[:2]>/<d>      the bytes whose SHA-256 hex digest is d (immutable)
    .distlog/cas/uploads/<d>.json        upload lease: {"host", "pid", "time"}; while present,
                                         one writer is uploading d and the others wait for it
    .distlog/cas/fresh/<d>               rewritten when an *old* blob is reused, so that
                                         ``distlog gc`` counts the reuse as recent
    .distlog/cas/sweeping/<d>            while present, ``distlog gc`` is deciding whether to
                                         delete d (and deleting it): a save that names d waits
                                         for it to go, then stores d again if it is gone

A blob is written with exclusive create: "already exists" is a deduplication hit, never an
error, because the digest is in the key (PRIOR_ART A.25, B.8). Before uploading, a writer
checks whether the blob exists (a hit costs one HEAD and no upload). Large blobs also take an
upload lease, so N ranks saving the same checkpoint at the same moment upload it once: one wins
the lease and uploads, the others poll for the blob. The lease only saves bandwidth —
correctness rests on the exclusive create alone — so a lease whose holder died (its time
``lease_stale`` seconds old, or the lease unchanged for ``lease_stale`` seconds by the waiter's
own clock, whatever time a skewed clock wrote in it) is simply taken over: clock skew can at
worst cause a duplicate upload, never a wait or a lost blob.

Hashing happens while bytes stream: ``stage()`` hands encoders a writer that hashes what it
writes into a local temp file, so a large checkpoint is written once, hashed on the way, and
uploaded from disk in parts (``create_file`` streams; S3 uses multipart) — never held twice in
memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Callable, Iterator

from .errors import DamagedRecord
from .layout import CAS_DIR
from .processes import pid_alive, process_start
from .storage.base import StorageBackend

if TYPE_CHECKING:
    from .writers.manifest import FileRecord

BLOB_DIR = f"{CAS_DIR}/sha256"
LEASE_DIR = f"{CAS_DIR}/uploads"
FRESH_DIR = f"{CAS_DIR}/fresh"
CHUNK = 1 << 20
#: blobs at least this large take an upload lease (smaller ones are cheaper to send twice)
LEASE_MIN_BYTES = 1 << 20
SWEEP_DIR = f"{CAS_DIR}/sweeping"
#: a reused blob older than this gets its freshness marker rewritten (see module doc)
FRESHEN_AFTER = 300.0
#: how long a save waits for a collector's sweeping marker to go, counted from when it last
#: saw the marker change; one unchanged for that long is a crashed collector's, removed by the
#: save (a live collector deletes a blob within SWEEP_WAIT / 2 of marking it: ``distlog.gc``)
SWEEP_WAIT = 300.0


def blob_path(digest: str) -> str:
    return f"{BLOB_DIR}/{digest[:2]}/{digest}"


def lease_path(digest: str) -> str:
    return f"{LEASE_DIR}/{digest}.json"


def fresh_path(digest: str) -> str:
    return f"{FRESH_DIR}/{digest}"


def sweep_path(digest: str) -> str:
    return f"{SWEEP_DIR}/{digest}"


def _lease_time(body: bytes) -> float:
    """The time a lease says it was written (0.0, i.e. long ago, when unreadable)."""
    try:
        return float(json.loads(body)["time"])
    except (ValueError, KeyError, TypeError):
        return 0.0


def owner_body() -> bytes:
    """What an upload lease or a sweeping marker holds: who wrote it (host, pid and the
    process's start, which tell a dead holder on this host), and when (each write differs, so
    a waiter sees a live holder's rewrites)."""
    pid = os.getpid()
    return json.dumps({"host": socket.gethostname(), "pid": pid, "pid_start": process_start(pid),
                       "time": time.time()}).encode()


def _holder_gone(body: bytes) -> bool:
    """Whether a lease's holder is a process of this host that no longer runs (killed while it
    uploaded: its lease would hold every save of those bytes for ``lease_stale`` s). A lease
    without the holder's start (older distlog) or from another host: not known, False."""
    try:
        rec = json.loads(body)
        host, pid, started = rec["host"], rec["pid"], rec["pid_start"]
    except (ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname() or type(pid) is not int or type(started) is not int:
        return False
    return not pid_alive(pid, started)


def is_digest(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def temp_dir() -> str | None:
    """Where blobs are staged before upload: ``$DISTLOG_TMPDIR``, else the system default."""
    return os.environ.get("DISTLOG_TMPDIR") or None


class HashingWriter(io.RawIOBase):
    """A write-only file object that hashes (SHA-256) and counts what it writes to ``f``."""

    def __init__(self, f: IO[bytes]) -> None:
        super().__init__()
        self._f = f
        self._h = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        nbytes = memoryview(b).nbytes
        self._f.write(b)
        self._h.update(b)
        self.size += nbytes
        return nbytes

    def tell(self) -> int:
        return self.size

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        if not self._f.closed:
            self._f.flush()

    @property
    def sha256(self) -> str:
        return self._h.hexdigest()


class Stage:
    """A local temp file to encode into before upload; see ``stage()``.

    Write through ``writer`` (hashes on the way), or let a tool write to ``path`` itself
    (ffmpeg) and the file is hashed in ``finish()``.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._f: IO[bytes] | None = None
        self._w: HashingWriter | None = None

    @property
    def writer(self) -> HashingWriter:
        if self._w is None:
            self._f = open(self.path, "wb")
            self._w = HashingWriter(self._f)
        return self._w

    def finish(self) -> tuple[str, int]:
        """Close the file; its SHA-256 hex digest and size."""
        if self._w is None:
            return hash_file(self.path)
        self.close()
        return self._w.sha256, self._w.size

    def close(self) -> None:
        if self._f is not None and not self._f.closed:
            self._f.close()


@contextlib.contextmanager
def stage(suffix: str = "") -> Iterator[Stage]:
    """``with stage() as st: encode(st.writer); digest, size = st.finish(); upload(st.path)``.

    The temp file is removed when the block ends.
    """
    fd, path = tempfile.mkstemp(prefix="distlog-", suffix=suffix, dir=temp_dir())
    os.close(fd)
    st = Stage(path)
    try:
        yield st
    finally:
        st.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def hash_file(path: str) -> tuple[str, int]:
    """SHA-256 hex digest and size of a local file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
    return h.hexdigest(), size


class FileChangedError(ValueError):
    """A local file changed while it was being stored."""


def copy_file(local_path: str, st: Stage) -> None:
    """Copy a caller's file (a checkpoint another thread may still be writing) into ``st``,
    hashed on the way: what is stored, and stored again after a collector's sweep, is this
    private copy, so a blob always holds the bytes of its name. ``FileChangedError`` if the
    file changed during the copy (size, times or inode differ)."""
    before = _fingerprint(local_path)
    with open(local_path, "rb") as src:
        shutil.copyfileobj(src, st.writer, CHUNK)
    if _fingerprint(local_path) != before:
        raise FileChangedError(
            f"{local_path!r} changed while it was being saved: nothing was stored. Save a "
            "file once whatever writes it has finished (or save the object itself: "
            "files.save_torch)")


def _fingerprint(path: str) -> tuple[int, int, int, int]:
    """What changes when a file is written: size, modification and change times, inode."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


@dataclass(frozen=True)
class PutResult:
    sha256: str
    size: int
    #: True if this call created the blob (bytes travelled); False on a deduplication hit
    uploaded: bool
    #: True if the blob existed and was old: the caller re-checks it after recording the
    #: reference (a garbage collector may have been deleting it at that moment)
    reused_old: bool = False


class ContentStore:
    """Blobs keyed by SHA-256 under ``root`` (the storage root, not a run folder)."""

    def __init__(self, root: StorageBackend, *, lease_min_bytes: int = LEASE_MIN_BYTES,
                 lease_stale: float = 60.0, poll_max: float = 1.0) -> None:
        self.root = root
        self.lease_min_bytes = lease_min_bytes
        self.lease_stale = lease_stale
        self.poll_max = poll_max

    # ---- reading -----------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        return self.root.exists(blob_path(digest))

    def open(self, digest: str) -> IO[bytes]:
        """A streaming, seekable binary file of the blob."""
        return self.root.open_read(blob_path(digest))

    def read_bytes(self, digest: str) -> bytes:
        return self.root.read_bytes(blob_path(digest))

    def open_record(self, rec: "FileRecord") -> IO[bytes]:
        """A saved file's bytes, streamed (``FileNotFoundError`` naming it if they are gone,
        ``DamagedRecord`` if the blob is not the size the record says)."""
        with self._named(rec):
            f = self.open(rec.sha256)
        if isinstance(rec.size, int):
            got = f.seek(0, 2)
            f.seek(0)
            if got != rec.size:
                f.close()
                raise self._damaged(rec, got)
        return f

    def read_record(self, rec: "FileRecord") -> bytes:
        with self._named(rec):
            data = self.read_bytes(rec.sha256)
        if isinstance(rec.size, int) and len(data) != rec.size:
            raise self._damaged(rec, len(data))
        return data

    def _damaged(self, rec: "FileRecord", got: int) -> Exception:
        return DamagedRecord(
            f"the bytes of file {rec.path!r} version {rec.version} (blob {rec.sha256} in "
            f"{self.root.url}/{BLOB_DIR}) are {got} bytes, not the {rec.size} saved: the blob was "
            "cut short or changed after it was stored (a disk or a copy that failed, a hand "
            "edit). Save the file again: a save of the same bytes stores the blob anew")

    @contextlib.contextmanager
    def _named(self, rec: "FileRecord") -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"the bytes of file {rec.path!r} version {rec.version} (blob {rec.sha256}) are not "
                f"in {self.root.url}/{BLOB_DIR}: the run was copied or moved without its root's "
                f"{CAS_DIR}/ folder (copy that folder along, or open the run where it was "
                "written), or `distlog gc` deleted the blob") from e

    # ---- writing -----------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> PutResult:
        digest = hashlib.sha256(data).hexdigest()
        return self._put(digest, len(data), lambda: self.root.create_bytes(blob_path(digest), data))

    def put_file(self, local_path: str, sha256: str | None = None, size: int | None = None) -> PutResult:
        """Store a local file, streamed. With ``sha256``/``size`` (a private staged file the
        caller hashed) it is uploaded as it is.

        Without, the file is the caller's: it is copied into a private staged file while
        hashed (``copy_file``), and that copy is what is stored."""
        if sha256 is not None and size is not None:
            return self._put(sha256, size, lambda: self.root.create_file(blob_path(sha256), local_path))
        with stage() as st:
            copy_file(local_path, st)
            digest, size = st.finish()
            return self._put(digest, size, lambda: self.root.create_file(blob_path(digest), st.path))

    def _blob_size(self, digest: str) -> int | None:
        return self.root.size(blob_path(digest))

    def _put(self, digest: str, size: int, upload: Callable[[], bool]) -> PutResult:
        got = self._blob_size(digest)
        if got == size:
            return PutResult(digest, size, False, reused_old=self._freshen(digest))
        if got is None and size < self.lease_min_bytes:
            return PutResult(digest, size, upload())
        # a large upload, or a blob there but not whole (cut short by a disk or a copy that
        # failed: stored anew, by one saver at a time, so none deletes another's new copy).
        # Whatever stops this save once it has the lease (a Ctrl-C too, at any point), its
        # heartbeat ends and the lease goes: a leaked heartbeat kept it fresh for good, and
        # every later save of these bytes waited on it forever
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(digest, stop), daemon=True,
                                name="distlog-cas-lease")
        held = None
        try:
            held = self._acquire_lease(digest, size)
            if not held:
                return PutResult(digest, size, False)  # another writer uploaded it meanwhile
            beat.start()
            got = self._blob_size(digest)
            if got == size:  # finished by the lease's previous holder
                return PutResult(digest, size, False)
            if got is not None:
                from .report import warn

                warn(f"blob {digest} in {self.root.url}/{BLOB_DIR} is {got} bytes, not {size}: "
                     "damaged; storing it again from this save", key=f"damaged blob {digest}")
                with contextlib.suppress(FileNotFoundError):
                    self.root.delete(blob_path(digest))
            return PutResult(digest, size, upload())
        finally:  # (each step runs whatever stopped the one before it)
            try:
                stop.set()
            finally:
                try:
                    if beat.ident is not None:  # (started; set again: a cut may have come before it was)
                        stop.set()
                        beat.join(30)
                finally:
                    if held:  # ours: delete it; unknown (cut while it was taken): only if ours
                        with contextlib.suppress(Exception):  # (a leftover lease only delays others)
                            self.root.delete(lease_path(digest))
                    elif held is None:
                        self._drop_own_lease(digest)

    def _drop_own_lease(self, digest: str) -> None:
        """Delete the upload lease of ``digest`` if this process wrote it (best effort)."""
        with contextlib.suppress(Exception):
            rec = json.loads(self.root.read_bytes(lease_path(digest)))
            if rec.get("host") == socket.gethostname() and rec.get("pid") == os.getpid():
                self.root.delete(lease_path(digest))

    def keep(self, digest: str, reput: Callable[[], "PutResult"], wait: float = SWEEP_WAIT) -> None:
        """Called after a record naming ``digest`` is on the store: the blob must outlive any
        collector. A collector marks a blob as being swept, *then* reads every manifest once
        more, and deletes only blobs still unreferenced; so a record written before that
        marker is seen, and one written after it finds the marker (waits for the sweep to end)
        or, the sweep over, finds the blob gone: then ``reput()`` stores it again. The marker
        is checked before the blob, in that order (see ``distlog.gc``).

        A marker unchanged for ``wait`` seconds by this process's clock is a crashed
        collector's: a live one deletes within ``SWEEP_WAIT / 2`` of writing it (one that
        marks the blob again writes a new marker, which restarts the wait)."""
        marker, delay = sweep_path(digest), 0.02
        seen: tuple[bytes, float] | None = None  # the marker as last read, and since when (ours)
        while True:
            try:
                body = self.root.read_bytes(marker)
            except FileNotFoundError:
                break
            now = time.monotonic()
            if seen is None or seen[0] != body:
                seen = (body, now)
            elif now - seen[1] > wait:  # a crashed collector's: it deletes nothing now
                with contextlib.suppress(FileNotFoundError):
                    self.root.delete(marker)
                break
            time.sleep(delay)
            delay = min(delay * 1.5, self.poll_max)
        if not self.exists(digest):
            again = reput().sha256
            if again != digest:  # a reput must store the recorded bytes, never re-read a source
                raise FileChangedError(f"blob {digest} was deleted by a collector and the bytes "
                                       f"stored again hash to {again}; the record names bytes "
                                       "that are gone: save the file again")

    # ---- upload lease ------------------------------------------------------------------
    def _acquire_lease(self, digest: str, size: int) -> bool:
        """True once this process holds the lease; False when the blob, whole, appeared meanwhile."""
        lease = lease_path(digest)
        delay = 0.02
        seen: tuple[bytes, float] | None = None  # the lease as last read, and since when (ours)
        while True:
            if self.root.create_bytes(lease, owner_body()):
                return True
            if self._blob_size(digest) == size:
                return False
            try:
                body = self.root.read_bytes(lease)
            except FileNotFoundError:
                continue  # released without a blob (its upload failed): try to take it
            # a live holder rewrites its lease every lease_stale / 4 s: a dead holder's is
            # one whose time is lease_stale s old, or, whatever time it says (written by
            # another node's clock, possibly ahead of ours), one unchanged for lease_stale s
            # by this process's own clock: clock skew cannot hold a save up. A holder on this
            # host whose process is gone (kill -9 mid-upload, the script rerun at once) is
            # dead now (a container sharing the host's name that still uploads: both upload,
            # and exclusive create keeps one blob)
            now = time.monotonic()
            if seen is None or seen[0] != body:
                seen = (body, now)
            if (time.time() - _lease_time(body) > self.lease_stale or now - seen[1] > self.lease_stale
                    or _holder_gone(body)):
                # take over (two takers at once: both upload, exclusive create keeps one blob)
                self.root.write_bytes(lease, owner_body())
                return True
            time.sleep(delay)
            delay = min(delay * 1.5, self.poll_max)

    def _heartbeat(self, digest: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease_stale / 4):
            with contextlib.suppress(Exception):
                self.root.write_bytes(lease_path(digest), owner_body())

    # ---- garbage-collection safety ------------------------------------------------------
    def _freshen(self, digest: str) -> bool:
        """Mark an old, reused blob as recently used. True if it was old."""
        now = time.time()
        for p in (blob_path(digest), fresh_path(digest)):
            t = self.root.modified_time(p)
            if t is not None and now - t < FRESHEN_AFTER:
                return False
        self.root.write_bytes(fresh_path(digest), str(now).encode())
        return True
