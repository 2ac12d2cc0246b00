"""``memory://<name>[/prefix]``: an in-process store for tests and laptops.

fsspec's ``MemoryFileSystem`` keeps one process-global dict, so every test would see every
other test's files. Here each *store name* (the first path component, like a bucket) gets its
own private filesystem, kept in a process-wide table: two ``open_storage("memory://x/...")``
calls in one process share the data of store ``x``, while ``memory://y`` is a different,
empty store. Use a unique name per test (e.g. ``memory://t-<uuid>``) and ``discard_store`` it
afterwards. Nothing is shared between processes.
"""

from __future__ import annotations

import io
import threading
from typing import IO, Any, Callable, TypeVar

from fsspec.implementations.memory import MemoryFileSystem

from .fsspec_backend import FsspecBackend

T = TypeVar("T")


class _PrivateMemoryFS(MemoryFileSystem):
    """A MemoryFileSystem with its own store whose reads do not share a file position.

    ``MemoryFileSystem.cat_file`` seeks and reads the *stored* BytesIO, so two threads reading
    the same key (zarr reads through a thread pool) can interleave; ``getvalue`` cannot.
    """

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        p = self._strip_protocol(path)
        try:
            data = self.store[p].getvalue()
        except KeyError:
            if self.isdir(p):
                raise IsADirectoryError(p) from None
            raise FileNotFoundError(p) from None
        return data[start:end]


_STORES: dict[str, _PrivateMemoryFS] = {}
_LOCKS: dict[str, threading.Lock] = {}
_TABLE_LOCK = threading.Lock()


def _store(name: str) -> tuple[_PrivateMemoryFS, threading.Lock]:
    with _TABLE_LOCK:
        if name not in _STORES:
            _STORES[name] = _PrivateMemoryFS(global_store=False, skip_instance_cache=True)
            _LOCKS[name] = threading.Lock()
        return _STORES[name], _LOCKS[name]


def discard_store(name: str) -> None:
    """Forget the memory store ``name`` (its data is freed once no backend uses it)."""
    with _TABLE_LOCK:
        _STORES.pop(name, None)
        _LOCKS.pop(name, None)


class MemoryBackend(FsspecBackend):
    schemes = ("memory",)
    supports_signed_urls = False
    cheap_puts = True

    def _make_fs(self, options: dict[str, Any]) -> Any:
        if options:  # (the process-wide store takes none: one given would be ignored unsaid)
            raise TypeError(f"memory:// roots take no storage options, got {', '.join(sorted(options))}")
        self.store_name = self._base.split("/", 1)[0]
        fs, self._lock = _store(self.store_name)
        return fs

    def _retry(self, fn: Callable[..., T], *args: Any, op: str, path: str = "",
               writing: bool = False, **kwargs: Any) -> T:
        return fn(*args, **kwargs)  # nothing transient in memory

    def _read_object(self, path: str) -> bytes:
        try:
            return self.fs.cat_file(self._p(path))
        except FileNotFoundError as e:
            raise self._missing(path, e) from e

    def write_bytes(self, path: str, data: bytes) -> None:
        # the new MemoryFile replaces the old one in one dict assignment: atomic for readers
        self.fs.pipe_file(self._p(path), bytes(data))

    def create_bytes(self, path: str, data: bytes) -> bool:
        # MemoryFileSystem's "xb" is check-then-write; the per-store lock makes it atomic
        full = self._p(path)
        with self._lock:
            if self.fs.exists(full):
                return False
            self.fs.pipe_file(full, bytes(data))
            return True

    def create_file(self, path: str, local_path: str) -> bool:
        full = self._p(path)
        with self._lock:
            if self.fs.exists(full):
                return False
            self.fs.put_file(str(local_path), full)  # copied in blocks
            return True

    def open_read(self, path: str) -> IO[bytes]:
        return io.BytesIO(self._read_object(path))

    def get_url(self, path: str, expires: int = 3600) -> str:
        return self.join(path) if path else self.root

    def zarr_store(self, path: str, read_only: bool = False) -> Any:
        # zarr's FsspecStore needs an async filesystem: wrap *this* store's filesystem so
        # zarr and the backend see the same objects.
        import zarr.storage
        from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper

        return zarr.storage.FsspecStore(
            fs=AsyncFileSystemWrapper(self.fs, asynchronous=True),
            path=self.fs._strip_protocol(self._p(path)),
            read_only=read_only,
        )
