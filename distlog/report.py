"""distlog's own warnings: one prefix, rate-limited, through the standard ``logging`` module.

The library never prints. What it has to tell (a background write failed and will be retried,
a log could not be flushed, the logs table or ``run.json`` could not be written) goes to the
logger ``"distlog"`` as ``distlog: <what happened>``; the echo of a run's own records at
WARNING and above (``exp.warning(...)``) goes to its child ``"distlog.echo"``.

* Without any logging configuration, Python's last-resort handler prints WARNING and above on
  stderr, so these are visible by default.
* Silence them: ``logging.getLogger("distlog").setLevel(logging.CRITICAL)`` (or only the echo:
  ``logging.getLogger("distlog.echo").setLevel(...)``); route them: add a handler to
  ``"distlog"`` or configure the root logger as usual.

A failure that repeats (a store that is down for minutes) is reported once per ``interval``
seconds per ``key``; the next report says how many were held back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Iterator

LOGGER = logging.getLogger("distlog")
ECHO = logging.getLogger("distlog.echo")
PREFIX = "distlog: "
DEFAULT_INTERVAL = 60.0

_lock = threading.Lock()
_last: dict[str, float] = {}  # key -> time of the last report
_held: dict[str, int] = {}  # key -> reports held back since then


def warn(message: str, *, key: str | None = None, interval: float = DEFAULT_INTERVAL,
         level: int = logging.WARNING) -> bool:
    """Report ``distlog: <message>`` on the ``"distlog"`` logger, unless a report with the
    same ``key`` (default: the message) went out less than ``interval`` seconds ago; then it
    is only counted. True when it was reported."""
    key = message if key is None else key
    now = time.monotonic()
    with _lock:
        last = _last.get(key)
        if last is not None and now - last < interval:
            _held[key] = _held.get(key, 0) + 1
            return False
        _last[key] = now
        held = _held.pop(key, 0)
    if held:
        message = f"{message} ({held} more like this in the last {interval:.0f} s not shown)"
    LOGGER.log(level, PREFIX + message)
    return True


def echo(rank: int, level_name: str, levelno: int, message: str) -> None:
    """A run's own record, echoed as ``[distlog r<rank>] LEVEL message`` (not rate-limited:
    the application asked for each one); distlog's own output (``capture_output`` leaves it
    out: the record is in the log already)."""
    with own_output():
        ECHO.log(levelno, f"[distlog r{rank}] {level_name} {message}")


_own = threading.local()


@contextlib.contextmanager
def own_output() -> Iterator[None]:
    """What this thread writes meanwhile is distlog's own output (a record's echo, a record
    being written), not the program's: ``capture_output`` passes it through uncaptured."""
    before = getattr(_own, "active", False)
    _own.active = True
    try:
        yield
    finally:
        _own.active = before


def writing_own_output() -> bool:
    return getattr(_own, "active", False)


def reset() -> None:
    """Forget the rate limiter's history (tests)."""
    with _lock:
        _last.clear()
        _held.clear()
