"""zarr's ``FsspecStore`` with every call retried like the backends' own primitives.

zarr does its object-store I/O itself, through its own async filesystem, so it would not pass
through :func:`distlog.storage.retry.retrying`. ``RetryingFsspecStore`` runs each store call
through :func:`~distlog.storage.retry.aretrying` with the backend's ``retry_*`` settings:
transient failures (5xx, throttling, dropped connections, timeouts) are retried with backoff,
permanent ones (missing bucket, access denied) become one ``StorageError`` naming the URL and
the fix. Every call zarr makes is safe to repeat: a chunk or metadata put replaces the whole
object, deletes of an absent key succeed, and reads and listings have no effect.

A listing is collected whole inside one attempt, so a retry never yields a name twice.

A whole-object read is one GET: ``cat_kw`` (the backend's ``cat_kw``) goes to every
``_cat_file`` — for S3 ``max_concurrency=1``, without which s3fs sends a HEAD before each GET
to decide whether to split it into ranges. ``cat`` reads any object of the store's filesystem
below its root; the backends' concurrent reads (``StorageBackend.aread_object``) use it.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from zarr.storage import FsspecStore

from .retry import aretrying

T = TypeVar("T")


async def _collect(gen: Callable[[], AsyncIterator[str]]) -> list[str]:
    return [x async for x in gen()]


class RetryingFsspecStore(FsspecStore):
    """An ``FsspecStore`` whose calls retry transient failures (see the module docstring)."""

    #: ``aretrying`` keyword arguments: attempts, base_delay, max_delay
    retry_kw: dict[str, Any] = {}
    #: the URL scheme, for error messages (``s3``, ``gs``)
    scheme: str = ""
    #: keyword arguments of every whole-object ``_cat_file`` (see the module docstring)
    cat_kw: dict[str, Any] = {}

    @classmethod
    def for_backend(cls, url: str, storage_options: dict[str, Any], retry_kw: dict[str, Any],
                    read_only: bool = False, cat_kw: dict[str, Any] | None = None,
                    ) -> "RetryingFsspecStore":
        store = cls.from_url(url, storage_options=storage_options, read_only=read_only)
        store.retry_kw = dict(retry_kw)
        store.scheme = url.split("://", 1)[0]
        store.cat_kw = dict(cat_kw or {})
        return store

    def with_read_only(self, read_only: bool = False) -> "RetryingFsspecStore":
        store = super().with_read_only(read_only)
        assert isinstance(store, RetryingFsspecStore)
        store.retry_kw, store.scheme, store.cat_kw = self.retry_kw, self.scheme, self.cat_kw
        return store

    def __repr__(self) -> str:
        return f"<RetryingFsspecStore({type(self.fs).__name__}, {self.path})>"

    def _url(self, key: str = "") -> str:
        path = f"{self.path.rstrip('/')}/{key}" if key else self.path
        return f"{self.scheme}://{path}" if self.scheme else path

    def _retry(self, fn: Callable[..., Awaitable[T]], *args: Any, op: str, key: str = "",
               writing: bool = False) -> Awaitable[T]:
        return aretrying(fn, *args, url=self._url(key), op=f"zarr {op}", writing=writing,
                         **self.retry_kw)

    # ---- reads --------------------------------------------------------------------------
    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        if byte_range is None and self.cat_kw:
            try:
                data = await self.cat(key)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                return None
            return prototype.buffer.from_bytes(data)
        return await self._retry(super().get, key, prototype, byte_range, op="read", key=key)

    async def _cat_whole(self, key: str) -> bytes:
        if not self._is_open:
            await self._open()
        path = f"{self.path.rstrip('/')}/{key}".rstrip("/") if self.path else key
        return await self.fs._cat_file(path, **self.cat_kw)

    async def cat(self, key: str) -> bytes:
        """The whole object ``key`` (below the store's root) in one GET, retried;
        ``FileNotFoundError`` when it is absent."""
        return await self._retry(self._cat_whole, key, op="read", key=key)

    async def get_partial_values(self, prototype: Any, key_ranges: Any) -> Any:
        key_ranges = list(key_ranges)  # an iterator would be used up by a failed attempt
        key = key_ranges[0][0] if key_ranges else ""
        return await self._retry(super().get_partial_values, prototype, key_ranges, op="read",
                                 key=key)

    async def exists(self, key: str) -> bool:
        return await self._retry(super().exists, key, op="exists", key=key)

    async def getsize(self, key: str) -> int:
        return await self._retry(super().getsize, key, op="stat", key=key)

    # ---- writes -------------------------------------------------------------------------
    async def set(self, key: str, value: Any, byte_range: Any = None) -> None:
        parent = super().set
        await self._retry(lambda: parent(key, value, byte_range), op="write", key=key,
                          writing=True)

    async def delete(self, key: str) -> None:
        await self._retry(super().delete, key, op="delete", key=key)

    async def delete_dir(self, prefix: str) -> None:
        await self._retry(super().delete_dir, prefix, op="delete", key=prefix)

    async def clear(self) -> None:
        await self._retry(super().clear, op="delete")

    # ---- listings (collected whole per attempt) -----------------------------------------
    async def list(self) -> AsyncIterator[str]:
        parent = super().list
        for name in await self._retry(_collect, parent, op="list"):
            yield name

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        parent = super().list_dir
        for name in await self._retry(_collect, lambda: parent(prefix), op="list", key=prefix):
            yield name

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        parent = super().list_prefix
        for name in await self._retry(_collect, lambda: parent(prefix), op="list", key=prefix):
            yield name
