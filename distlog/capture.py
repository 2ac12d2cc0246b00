"""Tee this rank's ``sys.stdout`` / ``sys.stderr`` into its text log, console unchanged.

Off by default (``get_logger(root, capture_output=True)`` turns it on). Every complete line a
rank prints becomes an INFO record with a ``stream`` field (``stdout`` or ``stderr``), while the
same bytes still reach the console; the first line of a Python warning (``warnings.warn``, as
Python prints it on stderr) is a WARNING record. Only what goes through Python's ``sys.stdout`` /
``sys.stderr`` is seen: output a C extension or a child process writes straight to the file
descriptors is not.

A line is recorded as a console shows it when it ends: a carriage return (``\\r``, how tqdm
and other progress bars redraw a line) starts the line again, so a bar that updates ten
thousand times before its ``\\n`` is one record holding its final state, the text after the
last ``\\r`` (``\\r\\n`` line ends included), not every update. Only that visible text is
kept between writes, so each write costs its own length, however long the bar runs. A line
that grows past ``MAX_LINE`` characters without ending is recorded at that point and
continues in a new record, which bounds the memory held. Terminal escape sequences (colours,
cursor moves) reach the console and are left out of the records: those are read as text
(``distlog logs``, the dashboard, JSON). A nested bar (tqdm's inner bar) draws on the line
below and moves the cursor back up after each redraw: a line's text before its last move up
is such a redraw, not a record (a bar kept with ``leave=True`` is recorded when it ends, at its
last state; the outer bar as it stood whenever the inner one started over); text after it is
("move up, clear the line, print a status"). Two runs capturing at
once (two loggers in one process, a notebook cell run again): the run started last records
what is printed, once, and closing them in any order puts the streams back.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

from . import report

if TYPE_CHECKING:
    from .logs import TextLogger

MAX_LINE = 1 << 16  # characters of an unended line kept before it is recorded as it is

# ANSI escape sequences: CSI (colours, cursor moves: "\x1b[31m", "\x1b[A"), OSC (a window
# title, a hyperlink: "\x1b]...\x07"), character set choices ("\x1b(B") and the two-character ones
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()*+#%][ -~]|[@-Z\\-_])")

# a cursor move up ("\x1b[A", "\x1b[2A", "\x1b[F"): a nested progress bar (tqdm's inner bar,
# position=1) writes "\n", redraws itself on the line below, then moves back up; its "\n" ends
# no line of output
_CURSOR_UP = re.compile(r"\x1b\[\d*[AF]")

# the first line Python's ``warnings`` prints on stderr: "<file>:<line>: <Category>Warning: ..."
_WARNING_LINE = re.compile(r".+:\d+: [A-Za-z_][\w.]*Warning: ")


def _level_of(stream: str, line: str) -> str:
    """A captured line's level: WARNING for a Python warning printed on stderr (so
    ``distlog logs --level WARNING`` finds it), else INFO."""
    return "WARNING" if stream == "stderr" and _WARNING_LINE.match(line) else "INFO"


class _Passing(threading.local):
    on = False


#: set while a tee hands a write to the stream below it: with two runs capturing (a notebook
#: cell run again with another logger), the text is the latest run's, recorded once
_passing = _Passing()


class _Tee:
    """Stands in for a text stream: writes go to the stream, complete lines also to ``emit``."""

    def __init__(self, stream: Any, emit: Callable[[str], None]) -> None:
        self._stream = stream
        self._emit = emit
        self.stopped = False  # its run closed while another tee wrapped it: it only passes text on
        self._parts: list[str] = []  # the visible text of the line being written
        self._size = 0  # its length
        self._cr = False  # a carriage return came last: the next text starts the line again
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        if self.stopped or report.writing_own_output() or not isinstance(s, str) or _passing.on:
            return self._stream.write(s)
        with self._lock:  # (threads that print: the console and the records split alike)
            _passing.on = True  # (a tee below, another run's, passes it on unrecorded)
            try:
                n = self._stream.write(s)
            finally:
                _passing.on = False
            lines = self._lines(s)
        for line in lines:
            self._send(line)
        return n

    def _lines(self, s: str) -> list[str]:
        """The lines ``s`` ends (the line being written goes on), under the lock."""
        *ended, rest = s.split("\n")
        lines = []
        for piece in ended:
            self._add(piece)
            lines.append(self._take())
        self._add(rest)
        if self._size > MAX_LINE:
            lines.append(self._take())
        return lines

    def recorded(self, s: str) -> None:
        """Text written to the stream another way (its ``buffer``): recorded as the console
        shows it, in the same line as what was printed before it."""
        if self.stopped or report.writing_own_output() or _passing.on:
            return
        with self._lock:
            lines = self._lines(s)
        for line in lines:
            self._send(line)

    @property
    def buffer(self) -> Any:
        """The stream's binary buffer, its writes recorded too (``sys.stdout.buffer.write``:
        bytes as the console decodes them)."""
        raw = self._stream.buffer
        if self.stopped:
            return raw
        kept = self.__dict__.get("_buffer_tee")
        if kept is None or kept._raw is not raw:  # (one decoder: a character split across writes)
            kept = self._buffer_tee = _BufferTee(raw, self, getattr(self._stream, "encoding", None) or "utf-8")
        return kept

    def _add(self, piece: str) -> None:
        """Add text without a newline to the line, as a console draws it (see the module)."""
        text = piece.rstrip("\r")
        _, redrawn, last = text.rpartition("\r")
        if redrawn:  # only the text after the piece's last carriage return shows
            self._parts, self._size, self._cr = [], 0, False
        self._append(last)
        if len(text) < len(piece):  # ends with a carriage return: the next text redraws
            self._cr = True

    def _append(self, text: str) -> None:
        if not text:
            return
        if self._cr:  # text after a carriage return starts the line again
            self._parts, self._size, self._cr = [], 0, False
        self._parts.append(text)
        self._size += len(text)

    def _take(self) -> str:
        line = "".join(self._parts)
        self._parts, self._size, self._cr = [], 0, False
        return line

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def _send(self, line: str) -> None:
        if "\x1b" in line:
            # what is drawn after the last move up: nothing for a nested bar's redraw on the line
            # below (no record), the text for "move up, clear, print a status"
            *_, line = _CURSOR_UP.split(line)
            line = _ESCAPES.sub("", line).rstrip()
        if not line:
            return
        with report.own_output():
            try:
                self._emit(line)
            except Exception:  # noqa: BLE001 - capturing output must never break printing
                pass

    def drain(self) -> None:
        """Send a last line that has no newline yet."""
        with self._lock:
            rest = self._take()
        self._send(rest)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, isatty, buffer, ...
        return getattr(self._stream, name)


class _BufferTee:
    """A text tee's ``buffer``: writes go to the binary buffer, their text to the tee's lines."""

    def __init__(self, raw: Any, tee: _Tee, encoding: str) -> None:
        self._raw, self._tee = raw, tee
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def write(self, b: Any) -> int:
        n = self._raw.write(b)
        with contextlib.suppress(Exception):  # (capturing must never break the write)
            self._tee.recorded(self._decoder.decode(bytes(b)))
        return n

    def __getattr__(self, name: str) -> Any:  # flush, fileno, raw, ...
        return getattr(self._raw, name)


def tee_output(logs: "TextLogger") -> Callable[[], None]:
    """Start teeing into ``logs`` (the run's text logger); returns the function that stops it
    (idempotent)."""
    tees = {}
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        tee = _Tee(stream, lambda line, _n=name: logs.record(_level_of(_n, line), line, {"stream": _n},
                                                             echo=False))
        setattr(sys, name, tee)
        tees[name] = (tee, stream)

    def stop() -> None:
        for name, (tee, stream) in tees.items():
            tee.drain()
            tee.stopped = True  # (wrapped by another run's tee: it stays in the chain, passing on)
            if getattr(sys, name) is tee:  # someone else may have replaced it since
                while isinstance(stream, _Tee) and stream.stopped:  # (runs closed before: gone too)
                    stream = stream._stream
                setattr(sys, name, stream)
        tees.clear()

    return stop
