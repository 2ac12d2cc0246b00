"""Close the coroutines a failed zarr call created and dropped without starting them.

zarr 3.1's ``save_metadata`` (run for every array or group it creates) first builds the
metadata writes as coroutines (``set_or_delete``, ``StorePath.set_if_not_exists``), then
awaits a check of the parent groups, and awaits the writes only after it. When that check
fails with anything but ``ContainsArrayError`` (a 503 from an object store, a dropped
connection), zarr drops the writes unstarted. The frames of the failed call stay alive in
the exception's traceback, so Python warns "coroutine ... was never awaited" only when the
garbage collector frees them: at a random later moment, in whatever code runs then (a test
that has nothing to do with it fails under ``filterwarnings = error``).

:func:`closing_abandoned` closes them where the failure surfaces, deterministically.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from types import TracebackType
from typing import Iterator


def _unstarted(value: object) -> list:
    items = value if isinstance(value, (list, tuple, set)) else (value,)
    return [c for c in items
            if inspect.iscoroutine(c) and inspect.getcoroutinestate(c) == inspect.CORO_CREATED]


def _exceptions(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]


def close_abandoned(exc: BaseException) -> int:
    """Close every never-started coroutine held by a local variable of the frames ``exc``
    (and the exceptions chained to it) passed through; the number closed."""
    closed = 0
    for e in _exceptions(exc):
        tb: TracebackType | None = e.__traceback__
        while tb is not None:
            for value in list(tb.tb_frame.f_locals.values()):
                for coro in _unstarted(value):
                    coro.close()
                    closed += 1
            tb = tb.tb_next
    return closed


@contextmanager
def closing_abandoned() -> Iterator[None]:
    """Run a zarr call; when it raises, close the coroutines it abandoned, then re-raise."""
    try:
        yield
    except BaseException as e:
        close_abandoned(e)
        raise
