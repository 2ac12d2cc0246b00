"""Ctrl-C held back while distlog's state is mid-change.

A notebook's Ctrl-C (SIGINT: Python raises ``KeyboardInterrupt`` wherever the main thread is)
could land part-way through a flush that had taken a window of values out of the buffers and
not yet handed its rows to the writer: the window was lost. Paths that can put back what they
took do so (the one-process steady flush); the others run inside ``held_interrupt()``: a
SIGINT that arrives meanwhile is kept and delivered, to the handler that was installed, as the
block ends — the flush completes (or fails on its own) first. A second Ctrl-C meanwhile is
delivered at once (a flush waiting on a stalled store can still be interrupted). Nested blocks
hold for the outermost one (a second Ctrl-C then goes to the outer block's holder).

Only on the main thread (the only one a signal handler runs on) and only where SIGINT has a
Python handler (Python's own, which raises ``KeyboardInterrupt``, or the script's); never
around a collective, where a rank must be able to stop while waiting for the others.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, Callable


class held_interrupt:
    """``with held_interrupt(): ...`` — a SIGINT during the block is delivered at its end."""

    __slots__ = ("_before", "_got")

    def __enter__(self) -> "held_interrupt":
        self._before: Callable[[int, FrameType | None], Any] | None = None
        self._got: tuple[int, FrameType | None] | None = None
        if threading.current_thread() is threading.main_thread():
            before = signal.getsignal(signal.SIGINT)
            if callable(before):  # (SIG_IGN, SIG_DFL, or one installed outside Python: left)
                signal.signal(signal.SIGINT, self._hold)
                self._before = before
        return self

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        if self._got is None:
            self._got = (signum, frame)
            return
        # a second Ctrl-C: delivered now (a flush stuck on a stalled store must not leave
        # the person no way out; what the block had taken may then be lost, as before)
        self._got = None
        before = self._restore()
        if before is not None:
            before(signum, frame)

    def _restore(self) -> Callable[[int, FrameType | None], Any] | None:
        """The handler from before, installed again (None: it already is). ``signal.signal``
        runs a SIGINT still pending first, with ``_hold``: ``_before`` is cleared only after
        it, so a second Ctrl-C pending there is delivered, not lost."""
        before = self._before
        if before is not None:
            signal.signal(signal.SIGINT, before)
            self._before = None
        return before

    def __exit__(self, *exc: Any) -> None:
        before = self._restore()
        if before is None:
            return
        got, self._got = self._got, None
        if got is not None:
            before(*got)  # (Python's: raises KeyboardInterrupt here, the error raised in the
            # block, if any, its context)
