"""The storage ABC: the guarantees distlog needs that fsspec does not give uniformly.

A backend is bound to one root URL; every ``path`` argument is relative to it and uses ``/``.
Primitives each backend implements:

* ``write_bytes`` — atomic put: a reader sees the old object or the new one, never a part.
* ``create_bytes`` / ``create_file`` — exclusive create (put-if-absent), atomic on every backend:
  exactly one of many concurrent creators wins, the others get ``False``.
* ``append_text`` / ``open_appender`` — appends. Local disk appends for real; object stores
  (``supports_append = False``) write immutable *segments* ``<path>.seg/<name>`` that
  ``read_text`` / ``read_bytes`` present as one continuous text, in order.
* ``read_bytes``, ``open_read`` (streaming), ``exists``, ``list_dir``, ``delete``, ``get_url``,
  ``zarr_store`` (a Zarr v3 store for a sub-path, handed to zarr directly).

Text and JSON helpers are derived from those and are not overridden.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
import uuid
from abc import ABC, abstractmethod
from typing import IO, Any, Iterator, Sequence

SEGMENT_SUFFIX = ".seg"
#: what reading an absent object raises (a folder's name read as a file included)
MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
#: how appended text is encoded to UTF-8: a lone surrogate (a non-UTF-8 file name decoded with
#: ``surrogateescape``) is written as its escape ``\udcff``. Strict encoding would raise on
#: every retry, so the appender's buffer (and the log sink's pending lines) would never drain.
APPEND_ERRORS = "backslashreplace"


class Appender(ABC):
    """An open append stream on one logical file; one writer per file."""

    #: ``flush_due`` never has anything to do (every write reached the store at once): a
    #: caller that wrote nothing since may skip it
    never_due = False

    @abstractmethod
    def write(self, text: str) -> None: ...

    @abstractmethod
    def flush(self) -> None:
        """Make what was written so far durable and visible to readers."""

    @abstractmethod
    def close(self) -> None: ...

    def flush_due(self) -> None:
        """Flush if the appender's own limits say so (segments: size or age); a cheap call to
        make often. Appenders without such limits flush."""
        self.flush()

    def __enter__(self) -> "Appender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StorageBackend(ABC):
    """Where a root's bytes live. Subclasses set the capability flags below."""

    #: URL scheme(s) this backend serves, e.g. ``("s3", "s3a")``.
    schemes: tuple[str, ...] = ()
    #: True when ``append_text`` extends the object in place (local disk).
    supports_append: bool = False
    #: True when ``get_url`` can return a time-limited HTTPS URL.
    supports_signed_urls: bool = False
    #: True when a small write costs less than a hop to zarr's event loop (local disk, memory):
    #: the table writers then ``put_object`` chunks and array metadata from their own thread,
    #: one after another, instead of sending them concurrently through zarr's store.
    cheap_puts: bool = False

    def __init__(self, root: str, **storage_options: Any) -> None:
        self.root = root.rstrip("/")
        self.storage_options = storage_options

    # ---- identity -----------------------------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """The root as a URL (``file:///abs/path``, ``s3://bucket/prefix``)."""

    def child(self, path: str) -> "StorageBackend":
        """A backend of the same kind rooted at ``path`` below this root."""
        return type(self)(self.join(path), **self.storage_options)

    def join(self, *parts: str) -> str:
        return "/".join([self.root, *(p.strip("/") for p in parts if p)])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def missing_bucket(self) -> str | None:
        """The name of this root's bucket when the store says it does not exist (asked only
        where a listing came back empty: S3's listing raises for it, GCS's is just empty),
        else None."""
        return None

    # ---- primitives ---------------------------------------------------------------------
    @abstractmethod
    def exists(self, path: str) -> bool: ...

    def size(self, path: str) -> int | None:
        """Bytes of the object at ``path``, None when there is none."""
        try:
            with self.open_read(path) as f:
                return f.seek(0, 2)
        except FileNotFoundError:
            return None

    @abstractmethod
    def _read_object(self, path: str) -> bytes:
        """Read one physical object; ``FileNotFoundError`` when absent."""

    @abstractmethod
    def write_bytes(self, path: str, data: bytes) -> None:
        """Atomically replace ``path`` with ``data``."""

    def put_object(self, path: str, data: bytes) -> None:
        """Atomically replace ``path`` with ``data``, with no wait for durability beyond what
        ``write_bytes`` of the backend gives anyway: for a table's chunks and array metadata,
        which a later commit record (``write_bytes``) makes visible."""
        self.write_bytes(path, data)

    def put_objects(self, objects: dict[str, bytes]) -> None:
        """``put_object`` each of ``objects`` (path: bytes): one after another where puts are
        cheap, else at once on a few threads; the first failure is raised once all are done."""
        if self.cheap_puts:
            for path, data in objects.items():
                self.put_object(path, data)
            return
        from .aio import run_all

        run_all([lambda p=p, d=d: self.put_object(p, d) for p, d in objects.items()])

    @abstractmethod
    def create_bytes(self, path: str, data: bytes) -> bool:
        """Create ``path`` only if absent. True if this call created it, False if it existed."""

    @abstractmethod
    def create_file(self, path: str, local_path: str) -> bool:
        """Exclusive create of ``path`` from a local file, streamed (never read whole)."""

    @abstractmethod
    def open_read(self, path: str) -> IO[bytes]:
        """A binary file object streaming ``path``."""

    @abstractmethod
    def list_dir(self, path: str = "") -> list[str]:
        """Sorted names directly under ``path`` (files and folders, no trailing ``/``).

        Segmented files are listed under their logical name (without ``.seg``).
        Returns ``[]`` for a missing folder.
        """

    @abstractmethod
    def delete(self, path: str, recursive: bool = False) -> None: ...

    @abstractmethod
    def get_url(self, path: str, expires: int = 3600) -> str: ...

    @abstractmethod
    def zarr_store(self, path: str, read_only: bool = False) -> Any:
        """A zarr v3 store rooted at ``path``."""

    def modified_time(self, path: str) -> float | None:
        """Modification time (seconds since the epoch), or None when unknown."""
        return None

    def leftover_temporaries(self, path: str, older_than: float) -> list[str]:
        """Partial uploads a crashed writer left below ``path`` and listings never show,
        started before ``older_than`` (epoch seconds): names for ``drop_temporary``. None on a
        store whose uploads appear whole or not at all (this default)."""
        return []

    def drop_temporary(self, name: str) -> None:
        """Remove a partial upload ``leftover_temporaries`` named (a file here)."""
        self.delete(name)

    def walk(self, path: str = "") -> list[str]:
        """Every file below ``path`` (paths relative to this root, sorted): the whole tree, for
        ``distlog gc``. Segmented files appear once, under their logical name. This default
        lists folder by folder; backends with a recursive listing override it.
        """
        out: list[str] = []
        for n in self.list_dir(path):
            p = f"{path}/{n}" if path else n
            below = self.walk(p)
            if below:
                out.extend(below)
            elif self.is_file(p):
                out.append(p)
        return sorted(out)

    # ---- appends ------------------------------------------------------------------------
    def append_text(self, path: str, text: str) -> None:
        """Append ``text``. Object stores write one new immutable segment per call."""
        with self.open_appender(path) as app:
            app.write(text)

    def open_appender(self, path: str, **limits: Any) -> Appender:
        """An append stream. The default writes segments; local disk overrides."""
        return SegmentAppender(self, path, **limits)

    def segment_names(self, path: str) -> list[str]:
        """Names of the segments of ``path``, in write order."""
        return sorted(
            n for n in self.list_dir(path + SEGMENT_SUFFIX) if not n.endswith(".tmp")
        )

    async def aread_object(self, path: str) -> bytes | None:
        """One physical object, or None when absent; a coroutine so that ``read_objects`` can
        issue many at once. Object stores override it with a real async GET; here (local
        disk, memory) it reads synchronously."""
        try:
            return self._read_object(path)
        except MISSING:
            return None

    def read_bytes(self, path: str, seen: dict[str, bytes] | None = None) -> bytes:
        """The whole logical file: the object itself, or its segments concatenated.

        ``seen``: for a reader that reads ``path`` again and again (a live run's files): the
        segments it read before, which are not read again (a segment is written once, by
        exclusive create: its bytes never change), so each call costs a listing and the new
        segments; it takes the new ones. A plain object (local disk appends in place) is read
        whole every time."""
        seen = {} if seen is None else seen
        missing = None
        if path not in seen:  # (not known to be segmented: maybe a plain object)
            try:
                return self._read_object(path)
            except FileNotFoundError as e:
                missing = e
        names = self.segment_names(path)
        if not names:
            seen.pop(path, None)
            try:
                raise missing or FileNotFoundError(errno.ENOENT, "no such file", self.join(path))
            finally:  # (not held here: this frame in its traceback, holding it, made a cycle
                # that kept every caller's locals — a writer's batch of rows — until the cyclic
                # collector ran; a run of 1,000 keys held hundreds of MB of reduced windows so)
                missing = None
        seen[path] = b""  # segmented: no plain object to look for next time
        paths = [f"{path}{SEGMENT_SUFFIX}/{n}" for n in names]
        new = [q for q in paths if q not in seen]
        for q, part in zip(new, read_objects([(self, q) for q in new])):
            if part is None:  # removed meanwhile (a delete)
                raise FileNotFoundError(errno.ENOENT, "segment vanished while reading", self.join(q)) from None
            seen[q] = part
        return b"".join(seen[q] for q in paths)

    def iter_segments(self, path: str, start: int = 0) -> Iterator[tuple[str, bytes]]:
        """``(segment name, bytes)`` from segment index ``start`` on, for tailing readers."""
        for n in self.segment_names(path)[start:]:
            yield n, self._read_object(f"{path}{SEGMENT_SUFFIX}/{n}")

    # ---- derived helpers (not overridden) ----------------------------------------------
    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8")

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    def write_json(self, path: str, obj: Any, sort_keys: bool = True) -> None:
        self.write_bytes(path, json.dumps(obj, indent=1, sort_keys=sort_keys, allow_nan=True).encode())

    def is_file(self, path: str) -> bool:
        return self.exists(path) or bool(self.segment_names(path))


class SegmentAppender(Appender):
    """Buffers appended text and writes it as immutable segment objects.

    A segment is closed when the buffer reaches ``max_bytes`` or ``max_age`` seconds after
    its first byte (checked at each ``write`` and ``flush_due``), on ``flush()`` and on
    ``close()``. Segment names sort in write order:
    ``<first-write time ns, 20 digits>-<writer id>-<sequence, 8 digits>``, the time kept
    increasing within one writer even if the clock steps back. Each segment is written with
    exclusive create, so a retried upload never duplicates text. A closed segment's name and
    bytes are fixed before its first upload: text written while it waits for a retry goes to
    the next segment, and a retry that finds the segment already stored (its earlier upload
    landed, the answer was lost) compares the bytes instead of losing what it held.
    """

    def __init__(
        self,
        backend: StorageBackend,
        path: str,
        max_bytes: int = 8 << 20,
        max_age: float = 30.0,
    ) -> None:
        self.backend = backend
        self.path = path
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._writer = uuid.uuid4().hex[:8]
        self._seq = 0
        self._buf: list[str] = []
        self._size = 0
        self._t0: int | None = None
        self._last_t0 = 0
        self._closed_segment: tuple[str, bytes] | None = None  # closed, not stored yet
        self._lock = threading.Lock()

    def _due(self) -> bool:
        return self._t0 is not None and (
            self._size >= self.max_bytes or (time.time_ns() - self._t0) / 1e9 >= self.max_age)

    def write(self, text: str) -> None:
        with self._lock:
            if self._t0 is None:  # (names sort in write order even if the clock steps back)
                self._t0 = self._last_t0 = max(time.time_ns(), self._last_t0 + 1)
            self._buf.append(text)
            self._size += len(text)
            due = self._due()
        if due:
            try:
                self.flush()
            except OSError:  # a store failure (StorageError is one): the text stays buffered and
                pass  # the next flush retries; anything else is a bug and propagates

    def flush_due(self) -> None:
        """Close the open segment only when it is full or ``max_age`` old: one PUT per
        segment, however often this is called (e.g. at every metrics flush)."""
        with self._lock:
            due = self._due() or self._closed_segment is not None
        if due:
            self.flush()

    def flush(self) -> None:
        """Store every text written so far: a segment that failed before first, then the
        buffer as a new one. On a failure (raised) the text stays for the next flush."""
        with self._lock:
            while True:
                if self._closed_segment is None:
                    if not self._buf:
                        return
                    name = f"{self._t0:020d}-{self._writer}-{self._seq:08d}"
                    self._closed_segment = (name, "".join(self._buf).encode("utf-8", APPEND_ERRORS))
                    self._buf, self._size, self._t0 = [], 0, None
                    self._seq += 1
                self._store(*self._closed_segment)
                self._closed_segment = None

    def _store(self, name: str, data: bytes) -> None:
        path = f"{self.path}{SEGMENT_SUFFIX}/{name}"
        if self.backend.create_bytes(path, data) or self.backend.read_bytes(path) == data:
            return  # stored now, or by an earlier attempt whose answer was lost
        # another object holds the name (no writer reuses one: not seen in practice): the
        # text goes under the next name of this writer
        self._closed_segment = (f"{name[:20]}-{self._writer}-{self._seq:08d}", data)
        self._seq += 1
        self._store(*self._closed_segment)

    def close(self) -> None:
        self.flush()


def read_objects(items: Sequence[tuple[StorageBackend, str]]) -> list[bytes | None]:
    """``(backend, path)`` → the object's bytes, or None when absent, for every item, read
    concurrently (``distlog.storage.aio``): N small objects cost about N / CONCURRENCY round
    trips instead of N. Whole physical objects only (no segmented files); any failure other
    than "absent" is raised."""
    from .aio import gather

    return gather([backend.aread_object(path) for backend, path in items])


def local_path_of(url: str) -> str:
    """``file:///a/b`` or ``/a/b`` or ``a/b`` → an absolute local path."""
    if url.startswith("file://"):
        url = url[len("file://"):]
    return os.path.abspath(os.path.expanduser(url))
