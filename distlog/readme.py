"""``exp.readme``: Markdown notes kept beside the run metadata (``README.md``, rank 0 writes)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .errors import RunStateError
from .layout import README_FILE

if TYPE_CHECKING:
    from .context import RunContext


def _check_text(method: str, text: object) -> None:
    """Refuse notes that are no str on every rank alike (rank 0 alone failed, deep in the
    storage backend's encode, while the others ignored the call)."""
    if not isinstance(text, str):
        raise TypeError(f"readme.{method}() takes Markdown text (a str), got {type(text).__name__} "
                        f"({text!r:.40}); pass a str (bytes: text.decode())")


class MarkdownLogger:
    """The run's notes. Safe from several threads (an ``append`` reads, adds and writes back:
    two at once kept one paragraph); like the other loggers it ends with its run, and a kept
    one refuses to rewrite the notes of the run that ended."""

    def __init__(self, ctx: "RunContext") -> None:
        self._ctx = ctx
        self._lock = threading.Lock()
        self._ended = False
        ctx.on_close(self._end)

    def _end(self) -> None:
        with self._lock:
            self._ended = True

    def _check_open(self, method: str) -> None:
        if self._ended:
            raise RunStateError(
                f"readme.{method}(): run {self._ctx.url} has ended, and this readme logger belongs "
                "to it: its notes are not rewritten now. Inside the next run take exp.readme again")

    def write(self, text: str) -> None:
        """Replace the run's notes (rank 0 only; other ranks' calls are ignored)."""
        _check_text("write", text)
        with self._lock:
            self._check_open("write")
            if self._ctx.rank == 0:
                self._ctx.storage.write_text(README_FILE, text)

    def append(self, text: str) -> None:
        """Add a paragraph to the notes (rank 0 only)."""
        _check_text("append", text)
        with self._lock:
            self._check_open("append")
            if self._ctx.rank != 0:
                return
            old = self.read()
            sep = "" if not old or old.endswith("\n\n") else ("\n" if old.endswith("\n") else "\n\n")
            self._ctx.storage.write_text(README_FILE, old + sep + text)

    def read(self) -> str:
        try:
            return self._ctx.storage.read_text(README_FILE)
        except FileNotFoundError:
            return ""
