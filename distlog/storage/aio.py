"""Many store calls at once on zarr's event loop (one loop, one connection pool per filesystem).

Object stores are latency-bound: 1,000 small GETs one after another cost 1,000 round trips,
issued together they cost a few. Every concurrent read and write of distlog goes through
``gather`` here, on the loop zarr runs its own I/O on, so the async filesystems zarr and the
backends open are used from one loop only.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence

#: requests in flight at once (the S3 backend sizes botocore's connection pool to match)
CONCURRENCY = 256


def gather(coros: Sequence[Awaitable[Any]], limit: int = CONCURRENCY,
           return_exceptions: bool = False) -> list[Any]:
    """Run coroutines concurrently (at most ``limit`` at once) on zarr's event loop and return
    their results in order. Every one is awaited even when one fails (a write of a failed
    commit must not still be in flight when the commit is retried); then the first error is
    raised, or with ``return_exceptions`` the exceptions stand in place of results.
    (``writers.rowstore.gather_async`` is this, closing what zarr abandons on a failure.)"""
    coros = list(coros)
    if not coros:
        return []
    import asyncio  # (here: a local run never needs it, ~25 ms of ``import distlog``)

    from zarr.core.sync import sync

    async def bounded() -> list[Any]:
        sem = asyncio.Semaphore(limit)

        async def one(c: Awaitable[Any]) -> Any:
            async with sem:
                return await c

        out = await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)
        if not return_exceptions:
            for r in out:
                if isinstance(r, BaseException):
                    raise r
        return out

    return sync(bounded())


def run_all(fns: Sequence[Callable[[], Any]], threads: int = 16) -> list[Any]:
    """Call every function of ``fns`` at once on a few threads (for synchronous reads that
    do not depend on each other); their results in order, or the first error raised."""
    fns = list(fns)
    if len(fns) < 2:
        return [fn() for fn in fns]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(threads, len(fns))) as pool:
        futures = [pool.submit(fn) for fn in fns]
    return [f.result() for f in futures]
