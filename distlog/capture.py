"""Tee this rank's ``sys.stdout`` / ``sys.stderr`` into its text log, console unchanged.

Off by default (``get_logger(root, capture_output=True)`` turns it on). Every complete line a
rank prints becomes an INFO record with a ``stream`` field (``stdout`` or ``stderr``), while the
same bytes still reach the console. Only what goes through Python's ``sys.stdout`` /
``sys.stderr`` is seen: output a C extension or a child process writes straight to the file
descriptors is not.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .logs import TextLogger

_ECHO_PREFIX = "[distlog r"  # how TextLogger echoes a record on stderr (distlog/logs.py)
_guard = threading.local()  # set while a record is written: output then passes straight through


class _Tee:
    """Stands in for a text stream: writes go to the stream, complete lines also to ``emit``."""

    def __init__(self, stream: Any, emit: Callable[[str], None]) -> None:
        self._stream = stream
        self._emit = emit
        self._buf = ""
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        n = self._stream.write(s)
        if getattr(_guard, "active", False) or not isinstance(s, str):
            return n
        with self._lock:
            self._buf += s
            if "\n" not in self._buf:
                return n
            *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._send(line)
        return n

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def _send(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line or line.startswith(_ECHO_PREFIX):  # a record's own echo: already in the log
            return
        _guard.active = True
        try:
            self._emit(line)
        except Exception:  # noqa: BLE001 - capturing output must never break printing
            pass
        finally:
            _guard.active = False

    def drain(self) -> None:
        """Send a last line that has no newline yet."""
        with self._lock:
            rest, self._buf = self._buf, ""
        self._send(rest)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, isatty, buffer, ...
        return getattr(self._stream, name)


def tee_output(logs: "TextLogger") -> Callable[[], None]:
    """Start teeing into ``logs`` (the run's text logger); returns the function that stops it
    (idempotent)."""
    tees = {}
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        tee = _Tee(stream, lambda line, _n=name: logs.log("INFO", line, stream=_n))
        setattr(sys, name, tee)
        tees[name] = (tee, stream)

    def stop() -> None:
        for name, (tee, stream) in tees.items():
            tee.drain()
            if getattr(sys, name) is tee:  # someone else may have replaced it since
                setattr(sys, name, stream)
        tees.clear()

    return stop
