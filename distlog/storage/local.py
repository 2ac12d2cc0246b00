"""Local disk (and any POSIX shared filesystem such as NFS or Lustre)."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import threading
from typing import IO, Any

from .base import APPEND_ERRORS, SEGMENT_SUFFIX, Appender, StorageBackend, local_path_of


class LocalAppender(Appender):
    """A real append: one ``O_APPEND`` file descriptor; each ``write`` reaches the OS at once,
    so a crash keeps every record written.

    A write that fails (a full disk, a file size limit) may have stored part of the text. A
    failure before any of ``text`` was stored raises, and the caller keeps ``text`` to write it
    again; after part of it was stored, the rest is kept here and written first next time,
    and ``write`` returns (the caller resending all of it would store that part twice)."""

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        self._rest = b""  # bytes of an earlier text not stored yet (they go first)
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            # a lone surrogate is written as its escape ("\udcff"), never refused: a refused
            # line would stay pending and every later one with it (see base.APPEND_ERRORS)
            rest, data = self._rest, self._rest + text.encode("utf-8", APPEND_ERRORS)
            done = 0
            try:
                while done < len(data):
                    done += os.write(self._fd, data[done:])
            except OSError:
                if done <= len(rest):  # nothing of ``text`` was stored: the caller keeps it
                    self._rest = rest[done:]
                    raise
                self._rest = data[done:]
                return
            self._rest = b""

    def flush(self) -> None:
        with self._lock:
            if self._rest and self._fd >= 0:
                self._rest = self._rest[os.write(self._fd, self._rest):]

    never_due = True

    def flush_due(self) -> None:
        """Nothing is ever due: every record reached the OS when it was written (a flush() per
        metrics flush would cost a lock and a call)."""

    def close(self) -> None:
        try:
            self.flush()
        finally:
            with self._lock:
                if self._fd >= 0:
                    os.close(self._fd)
                    self._fd = -1

    def __del__(self) -> None:  # dropped unclosed (as a file object closes its descriptor)
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


class LocalBackend(StorageBackend):
    schemes = ("file", "local")
    supports_append = True
    supports_signed_urls = False
    cheap_puts = True

    def __init__(self, root: str, **storage_options: Any) -> None:
        if storage_options:  # (taken and ignored, an option misspelt or meant elsewhere said nothing)
            raise TypeError(
                f"a local root ({root!r}) takes no storage options, got {', '.join(sorted(storage_options))}: "
                "storage options (endpoint_url=, key=, token=, ...) are for s3:// and gs:// roots; "
                "get_logger's run settings are flush_timeout, chunk_rows, commit_interval, window, "
                "segment_max_bytes, segment_max_age, capture_output, telemetry, heartbeat_interval, comm")
        super().__init__(local_path_of(root), **storage_options)

    @property
    def url(self) -> str:
        return "file://" + self.root

    def _p(self, path: str) -> str:
        return os.path.join(self.root, *[p for p in path.split("/") if p]) if path else self.root

    def exists(self, path: str) -> bool:
        return os.path.exists(self._p(path))

    def size(self, path: str) -> int | None:
        try:
            return os.path.getsize(self._p(path))
        except FileNotFoundError:
            return None

    def _read_object(self, path: str) -> bytes:
        with open(self._p(path), "rb") as f:
            return f.read()

    @staticmethod
    def _open_temp(target: str) -> tuple[int, str]:
        """A new hidden temporary next to ``target`` (listings skip ".tmp-"), its folders made
        if missing: ``(fd, path)``. Created with the usual permissions (0666 less the umask),
        as zarr's files are, so a run folder is readable alike throughout."""
        folder = os.path.dirname(target)
        while True:
            tmp = os.path.join(folder, f".tmp-{secrets.token_hex(8)}.part")
            try:
                return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            except FileExistsError:
                continue

    def write_bytes(self, path: str, data: bytes) -> None:
        self._replace(path, data, durable=True)

    def put_object(self, path: str, data: bytes) -> None:
        self._replace(path, data, durable=False)  # as zarr's LocalStore writes chunks: no fsync

    def _replace(self, path: str, data: bytes, durable: bool) -> None:
        target = self._p(path)
        fd, tmp = self._open_temp(target)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, target)  # atomic on POSIX: readers see old or new, never a part
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def _link_into_place(self, tmp: str, target: str) -> bool:
        # os.link fails with EEXIST if target exists: an atomic put-if-absent, unlike
        # check-then-write (fsspec's local "xb" is not atomic across processes).
        try:
            os.link(tmp, target)
            return True
        except FileExistsError:
            return False
        finally:
            _unlink_quietly(tmp)

    def create_bytes(self, path: str, data: bytes) -> bool:
        target = self._p(path)
        if os.path.exists(target):
            return False
        fd, tmp = self._open_temp(target)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:  # (a full disk, a size limit): no temporary left behind
            _unlink_quietly(tmp)
            raise
        return self._link_into_place(tmp, target)

    def create_file(self, path: str, local_path: str) -> bool:
        if not os.path.isfile(local_path):
            raise FileNotFoundError(errno.ENOENT, f"no local file to upload as {self.url}/{path}",
                                    str(local_path))
        target = self._p(path)
        if os.path.exists(target):
            return False
        fd, tmp = self._open_temp(target)
        try:
            # copied, then synced before it is linked under its name: an exclusive create is
            # never written again (a content-addressed blob is a dedup hit for every later
            # save), so after a power loss the name must not hold an empty or partial file
            with os.fdopen(fd, "wb") as f, open(local_path, "rb") as src:
                shutil.copyfileobj(src, f, 1 << 20)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:  # the copy failed part way: no temporary left behind
            _unlink_quietly(tmp)
            raise
        return self._link_into_place(tmp, target)

    def open_read(self, path: str) -> IO[bytes]:
        return open(self._p(path), "rb")

    def list_dir(self, path: str = "") -> list[str]:
        try:
            names = os.listdir(self._p(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = set()
        for n in names:
            if n.startswith(".tmp-"):
                continue
            out.add(n[: -len(SEGMENT_SUFFIX)] if n.endswith(SEGMENT_SUFFIX) else n)
        return sorted(out)

    def delete(self, path: str, recursive: bool = False) -> None:
        p = self._p(path)
        if os.path.isdir(p):
            if not recursive:
                raise IsADirectoryError(f"{p} is a folder; pass recursive=True to delete it")
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.unlink(p)

    def get_url(self, path: str, expires: int = 3600) -> str:
        return "file://" + self._p(path)

    def walk(self, path: str = "") -> list[str]:
        """As ``StorageBackend.walk``. Links to folders are followed, as readers follow them,
        each real folder listed once, under its own path where it lies inside the walked folder
        (a link such as ``.latest -> exp/run`` adds nothing; a link back up the tree is no
        loop). A folder that cannot be listed raises (``PermissionError`` naming it): gc must
        not mark on a partial listing."""
        base = self._p(path)
        real_base = os.path.realpath(base)
        direct = {os.path.realpath(f) for f, _d, _f in os.walk(base, onerror=_raise_unlisted)}
        out: list[str] = []
        seen: set[str] = set()
        for folder, dirs, files in os.walk(base, onerror=_raise_unlisted, followlinks=True):
            real = os.path.realpath(folder)
            rel = os.path.relpath(folder, base)
            linked = real != os.path.normpath(os.path.join(real_base, rel))
            if real in seen or (linked and real in direct):  # listed (or to be) by its own path
                dirs[:] = []
                continue
            seen.add(real)
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            prefix = "" if rel == "." else rel + "/"
            out.extend(prefix + f for f in files if not f.startswith(".tmp-"))
        return sorted(out)

    def leftover_temporaries(self, path: str, older_than: float) -> list[str]:
        out = []
        for folder, _dirs, files in os.walk(self._p(path)):
            for f in files:
                full = os.path.join(folder, f)
                if f.startswith(".tmp-") and _mtime(full) < older_than:
                    out.append(os.path.relpath(full, self.root).replace(os.sep, "/"))
        return sorted(out)

    def modified_time(self, path: str) -> float | None:
        try:
            return os.path.getmtime(self._p(path))
        except FileNotFoundError:
            return None

    def append_text(self, path: str, text: str) -> None:
        target = self._p(path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a", encoding="utf-8", errors=APPEND_ERRORS) as f:
            f.write(text)

    def open_appender(self, path: str, **limits: Any) -> Appender:
        return LocalAppender(self._p(path))

    def zarr_store(self, path: str, read_only: bool = False) -> Any:
        import zarr.storage

        return zarr.storage.LocalStore(self._p(path), read_only=read_only)

    def local_path(self, path: str = "") -> str:
        """The absolute local path of ``path`` (local backend only)."""
        return self._p(path)


def _unlink_quietly(p: str) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def _raise_unlisted(e: OSError) -> None:
    """``os.walk``'s error hook: a folder gone meanwhile (or never there) holds nothing;
    any other listing error is raised, not skipped."""
    if not isinstance(e, (FileNotFoundError, NotADirectoryError)):
        raise e


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except FileNotFoundError:  # (finished meanwhile)
        return float("inf")
