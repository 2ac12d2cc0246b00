"""The shared object-store backend: one fsspec filesystem plus a root prefix.

Subclasses (``memory``, ``s3``, ``gs``) only say how to build the filesystem, how to put an
object *only if absent* and how to read back who wrote it, and how to make a URL. Everything
else — listing with segmented files folded to their logical name, recursive delete, retries —
lives here once.

Exclusive create under retries. ``create_bytes``/``create_file`` tag the object with a random
per-call marker in its user metadata (``x-amz-meta-distlog-writer`` / GCS ``metadata``). When
the conditional put answers "already exists" we read the marker back: if it is ours, an
earlier attempt of *this* call did create the object and only its response was lost (dropped
connection, 5xx after commit), so the call returns True; any other marker (or none) means
another writer won and the call returns False. So exactly one of many concurrent creators
gets True even when requests are retried — by us or inside s3fs/gcsfs — and the answer never
depends on comparing contents.
"""

from __future__ import annotations

import errno
import io
import os
import re
import uuid
from typing import IO, Any, Callable, TypeVar

from .base import SEGMENT_SUFFIX, StorageBackend
from .retry import retrying

T = TypeVar("T")

#: user-metadata key carrying the per-call marker of an exclusive create
MARKER_KEY = "distlog-writer"
#: storage_options consumed by distlog itself (not passed to fsspec)
_SEGMENT_NAME = re.compile(r"^\d{20}-[0-9a-f]{8}-\d{8}$")
RETRY_OPTIONS = {"retry_attempts": "attempts", "retry_base_delay": "base_delay",
                 "retry_max_delay": "max_delay"}


#: what fsspec's base classes take besides the filesystem's own parameters (``DirCache``,
#: instance caching)
_FSSPEC_OPTIONS = {"use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache"}


def check_option_names(options: dict[str, Any], fs_class: type, scheme: str, extra: tuple[str, ...] = ()) -> None:
    """Refuse a storage option ``fs_class`` does not take (nor ``extra``: what it passes on
    elsewhere): gcsfs passes unknown names on to fsspec, which ignores them — ``endpoint=``
    for ``endpoint_url=`` went, with the real credentials, to Google's own endpoint after a
    minute and a half of retries."""
    import inspect

    known = set(_FSSPEC_OPTIONS) | set(RETRY_OPTIONS) | set(extra)
    for cls in fs_class.__mro__:
        init = cls.__dict__.get("__init__")
        if init is not None:
            try:
                params = inspect.signature(init).parameters.values()
            except (TypeError, ValueError):
                continue
            known |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    known.discard("self")
    unknown = sorted(k for k in options if k not in known)
    if unknown:
        import difflib

        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, sorted(known), n=1)
            if not close and "endpoint" in k:
                close = ["endpoint_url"]
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise TypeError(
            f"{scheme}:// storage options: {', '.join(hints)} not known to {fs_class.__module__}."
            f"{fs_class.__name__}, which would ignore them. Options it takes: "
            f"{', '.join(sorted(known))}")


def split_url(url: str, schemes: tuple[str, ...]) -> tuple[str, str]:
    """``"s3://b/p/"`` → ``("s3", "b/p")``; checks the scheme against ``schemes``."""
    scheme, sep, path = str(url).partition("://")
    if not sep or scheme.lower() not in schemes:
        raise ValueError(
            f"expected a URL starting with {' or '.join(s + '://' for s in schemes)}, got {url!r}"
        )
    path = "/".join(p for p in path.split("/") if p)
    if not path:
        raise ValueError(
            f"{url!r} names no bucket; use {schemes[0]}://<bucket>[/prefix]"
        )
    return scheme.lower(), path


class FsspecBackend(StorageBackend):
    """A root ``<scheme>://<bucket>/<prefix>`` on an fsspec filesystem (``self.fs``)."""

    supports_append = False
    #: parts of large streamed uploads and ranged reads (S3 needs >= 5 MiB parts; GCS a
    #: multiple of 256 KiB)
    part_size = 8 << 20
    #: distlog's retry loop (``retrying`` arguments); storage_options ``retry_*`` override
    retry_defaults: dict[str, Any] = {"attempts": 6, "base_delay": 0.2, "max_delay": 10.0}
    #: keyword arguments of every whole-object read (``cat_file``); S3 sets
    #: ``max_concurrency=1``: one GET, no HEAD first
    cat_kw: dict[str, Any] = {}

    def __init__(self, root: str, **storage_options: Any) -> None:
        scheme, path = split_url(root, self.schemes)
        super().__init__(f"{scheme}://{path}", **storage_options)
        self.scheme = scheme
        self._base = path  # the root as a path on self.fs
        self._retry_kw = {**self.retry_defaults, **{
            RETRY_OPTIONS[k]: v for k, v in storage_options.items() if k in RETRY_OPTIONS}}
        fs_opts = {k: v for k, v in storage_options.items() if k not in RETRY_OPTIONS}
        #: the options handed to fsspec (and to zarr), after this backend's defaults
        self.fs_options = self._fs_options(fs_opts)
        self.fs = self._make_fs(self.fs_options)

    def __reduce__(self) -> tuple[Any, ...]:
        # rebuilt from URL and options: no live sessions or locks travel to another process
        return (_rebuild, (type(self), self.root, dict(self.storage_options)))

    # ---- what subclasses provide ---------------------------------------------------------
    def _fs_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return options

    def _make_fs(self, options: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _zarr_options(self) -> dict[str, Any]:
        """Options for zarr's own (async) filesystem."""
        return dict(self.fs_options)

    def _put_new(self, full: str, data: bytes, marker: str) -> None:
        """Put ``data`` at ``full`` only if absent, tagged with ``marker``; else FileExistsError."""
        raise NotImplementedError

    def _put_new_file(self, full: str, local_path: str, marker: str) -> None:
        """Like ``_put_new`` but streamed from a local file."""
        raise NotImplementedError

    def _marker_of(self, full: str) -> str | None:
        """The marker stored with the object at ``full`` (None when it has none)."""
        raise NotImplementedError

    # ---- helpers ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.root

    def _p(self, path: str = "") -> str:
        parts = [p for p in path.split("/") if p] if path else []
        return "/".join([self._base, *parts])

    def _retry(self, fn: Callable[..., T], *args: Any, op: str, path: str = "",
               writing: bool = False, **kwargs: Any) -> T:
        return retrying(fn, *args, url=self.join(path) if path else self.root, op=op,
                        writing=writing, **self._retry_kw, **kwargs)

    def _rel_name(self, base: str, name: str) -> str | None:
        """The single path component of ``name`` directly below ``base``, else None."""
        name = self.fs._strip_protocol(name).rstrip("/")
        if not name.startswith(base + "/"):
            return None
        rest = name[len(base) + 1:]
        return rest if rest and "/" not in rest else None

    # ---- primitives ------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        full = self._p(path)

        def probe() -> bool:
            try:
                self.fs.info(full)
                return True
            except FileNotFoundError:
                return False

        return self._retry(probe, op="exists", path=path)

    def size(self, path: str) -> int | None:
        full = self._p(path)

        def probe() -> int | None:
            try:
                return int(self.fs.info(full)["size"])
            except FileNotFoundError:
                return None

        return self._retry(probe, op="size", path=path)

    def _missing(self, path: str, e: FileNotFoundError) -> FileNotFoundError:
        # name the distlog URL, not the library's request URL or bucket path
        err = FileNotFoundError(errno.ENOENT, "no such object", self.join(path))
        err.__cause__ = e
        return err

    def _read_object(self, path: str) -> bytes:
        try:
            return self._retry(self.fs.cat_file, self._p(path), op="read", path=path,
                               **self.cat_kw)
        except FileNotFoundError as e:
            raise self._missing(path, e) from e

    async def aread_object(self, path: str) -> bytes | None:
        """One GET on zarr's event loop through the async filesystem zarr uses (retried)."""
        from .base import MISSING
        from .zarrstore import RetryingFsspecStore

        store = self.__dict__.get("_read_store")
        if store is None:
            store = self.__dict__["_read_store"] = self.zarr_store("", read_only=True)
        if not isinstance(store, RetryingFsspecStore):  # memory://: a synchronous filesystem
            return await super().aread_object(path)
        try:
            return await store.cat("/".join(p for p in path.split("/") if p))
        except MISSING:
            return None

    def write_bytes(self, path: str, data: bytes) -> None:
        # a single PUT (or a multipart upload completed in one call) is atomic on S3 and GCS
        self._retry(self.fs.pipe_file, self._p(path), bytes(data), op="write", path=path,
                    writing=True)

    def _exclusive(self, path: str, put: Callable[[str, str], None]) -> bool:
        full = self._p(path)
        marker = uuid.uuid4().hex

        def attempt() -> bool:
            try:
                put(full, marker)
                return True
            except FileExistsError:
                # ours only if an earlier attempt of this call committed (see module doc)
                try:
                    return self._marker_of(full) == marker
                except FileNotFoundError:  # deleted meanwhile: it existed, someone else's
                    return False

        return self._retry(attempt, op="create", path=path, writing=True)

    def create_bytes(self, path: str, data: bytes) -> bool:
        data = bytes(data)
        return self._exclusive(path, lambda full, marker: self._put_new(full, data, marker))

    def create_file(self, path: str, local_path: str) -> bool:
        if not os.path.isfile(local_path):  # (the store's "not found" reads as a missing bucket)
            raise FileNotFoundError(errno.ENOENT, f"no local file to upload as {self.url}/{path}",
                                    str(local_path))
        # Cheap check first: content-addressed artifacts are usually already there, and a
        # large upload is worth skipping. The conditional put below still decides races.
        if self.exists(path):
            return False
        return self._exclusive(
            path, lambda full, marker: self._put_new_file(full, str(local_path), marker)
        )

    def open_read(self, path: str) -> IO[bytes]:
        """A buffered stream; a transient failure mid-read reopens at the same offset."""
        try:
            raw = _RetryingReader(self, path)
        except FileNotFoundError as e:
            raise self._missing(path, e) from e
        return io.BufferedReader(raw, buffer_size=1 << 20)

    def list_dir(self, path: str = "") -> list[str]:
        full = self._p(path)
        base = self.fs._strip_protocol(full).rstrip("/")
        try:
            entries = self._retry(self.fs.ls, full, detail=True, refresh=True, op="list",
                                  path=path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = set()
        for e in entries:
            n = self._rel_name(base, e["name"])
            if n is None:  # the path itself (a file, or a folder placeholder object)
                continue
            if e.get("type") == "directory" and n.endswith(SEGMENT_SUFFIX):
                n = n[: -len(SEGMENT_SUFFIX)]
            out.add(n)
        return sorted(out)

    def walk(self, path: str = "") -> list[str]:
        # one paginated listing of the prefix (not a request per folder)
        top = self.fs._strip_protocol(self._base).rstrip("/")
        full = self.fs._strip_protocol(self._p(path)).rstrip("/")
        try:
            found = self._retry(self.fs.find, full + "/", withdirs=False, op="list", path=path)
        except FileNotFoundError:
            return []
        out = set()
        for f in found:
            f = self.fs._strip_protocol(f)
            if not f.startswith(top + "/"):
                continue
            rel = f[len(top) + 1:]
            head, sep, last = rel.rpartition("/")
            if sep and head.endswith(SEGMENT_SUFFIX) and _SEGMENT_NAME.match(last):
                # one segment of an appended file: the file, once
                rel = head[: -len(SEGMENT_SUFFIX)]
            out.add(rel)
        return sorted(out)

    def _is_folder(self, full: str) -> bool:
        try:
            return self.fs.info(full).get("type") == "directory"
        except FileNotFoundError:
            return False

    def _remove_tree(self, full: str) -> None:
        # rm the objects found below, never rm(bucket, recursive=True): s3fs would then
        # delete the bucket itself when the root is a bare bucket
        base = self.fs._strip_protocol(full).rstrip("/")
        try:
            found = [f for f in self.fs.find(base + "/", withdirs=False)
                     if self.fs._strip_protocol(f).startswith(base + "/")]
        except FileNotFoundError:
            return
        if found:
            try:
                self.fs.rm(found)
            except FileNotFoundError:  # a retry after a partly applied bulk delete
                pass

    def delete(self, path: str, recursive: bool = False) -> None:
        full = self._p(path)

        def rm() -> None:
            if not path or self._is_folder(full):
                if not recursive:
                    raise IsADirectoryError(
                        f"{self.join(path)} is a folder; pass recursive=True to delete it"
                    )
                self._remove_tree(full)
            else:
                try:
                    self.fs.rm_file(full)
                except FileNotFoundError:
                    pass
            seg = full + SEGMENT_SUFFIX  # the segments of an appended file belong to it
            if self._is_folder(seg):
                self._remove_tree(seg)

        self._retry(rm, op="delete", path=path)

    def modified_time(self, path: str) -> float | None:
        try:
            return self._retry(self.fs.modified, self._p(path), op="stat", path=path).timestamp()
        except (FileNotFoundError, NotImplementedError, AttributeError, TypeError):
            return None

    def zarr_store(self, path: str, read_only: bool = False) -> Any:
        """zarr's FsspecStore on its own async filesystem, each call retried like the
        primitives here (``distlog.storage.zarrstore``)."""
        from .zarrstore import RetryingFsspecStore

        return RetryingFsspecStore.for_backend(
            f"{self.scheme}://{self._p(path)}", self._zarr_options(), self._retry_kw,
            read_only=read_only, cat_kw=self.cat_kw,
        )


def _rebuild(cls: type[FsspecBackend], root: str, options: dict[str, Any]) -> FsspecBackend:
    return cls(root, **options)


class _RetryingReader(io.RawIOBase):
    """Reads an object through the library's file object, retried like every primitive.

    The library file (s3fs ``S3File``, gcsfs ``GCSFile``) fetches ranges lazily, so a
    failure can surface at any ``read``; it then is dropped and the next attempt reopens it
    at the last offset that was handed out. ``block_size`` bounds each ranged GET.
    """

    def __init__(self, backend: FsspecBackend, path: str) -> None:
        super().__init__()
        self._b, self._path, self._full = backend, path, backend._p(path)
        self._pos = 0
        self._f: Any = None
        backend._retry(self._ensure_open, op="open", path=path)
        self._size = int(self._f.size)

    def _ensure_open(self) -> Any:
        if self._f is None:
            f = self._b.fs.open(self._full, "rb", block_size=self._b.part_size)
            if self._pos:
                f.seek(self._pos)
            self._f = f
        return self._f

    def _drop(self) -> None:
        f, self._f = self._f, None
        if f is not None:
            try:
                f.close()
            except Exception:
                pass

    def _read_attempt(self, n: int) -> bytes:
        try:
            return self._ensure_open().read(n)
        except Exception:
            self._drop()  # the next attempt reopens at self._pos
            raise

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), max(0, self._size - self._pos))
        if n == 0:
            return 0
        data = self._b._retry(self._read_attempt, n, op="read", path=self._path)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        if self._f is not None:
            self._f.seek(self._pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._drop()
        super().close()
