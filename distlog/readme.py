"""``exp.readme``: Markdown notes kept beside the run metadata (``README.md``, rank 0 writes)."""

from __future__ import annotations

from .layout import README_FILE

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import RunContext



def _check_text(method: str, text: object) -> None:
    """Refuse notes that are no str on every rank alike (rank 0 alone failed, deep in the
    storage backend's encode, while the others ignored the call)."""
    if not isinstance(text, str):
        raise TypeError(f"readme.{method}() takes Markdown text (a str), got {type(text).__name__} "
                        f"({text!r:.40}); pass a str (bytes: text.decode())")


class MarkdownLogger:
    def __init__(self, ctx: "RunContext") -> None:
        self._ctx = ctx

    def write(self, text: str) -> None:
        """Replace the run's notes (rank 0 only; other ranks' calls are ignored)."""
        _check_text("write", text)
        if self._ctx.rank == 0:
            self._ctx.storage.write_text(README_FILE, text)

    def append(self, text: str) -> None:
        """Add a paragraph to the notes (rank 0 only)."""
        _check_text("append", text)
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
