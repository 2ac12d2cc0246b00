"""A Ctrl-C at a chosen point of a function, for interrupt-safety sweeps (``sys.settrace``).

``CutAt(code, ("line", n))`` cuts at the start of line ``n`` of ``code``;
``CutAt(code, ("after", offset))`` at the instruction after the call at ``offset`` — where
CPython runs a pending signal's handler (after a call returns, at a loop's jump back). The cut
raises ``KeyboardInterrupt`` there, or with ``signal=True`` raises a real SIGINT, so the
handler installed then decides (distlog's ``held_interrupt`` holds it). Once per ``with``;
``hit`` says whether the point was reached. ``after_calls(*functions)`` lists every such
point of the functions.
"""

from __future__ import annotations

import dis
import signal as _signal
import sys


class CutAt:
    def __init__(self, code, where, signal: bool = False):
        self.code, (self.kind, self.at), self.signal, self.hit = code, where, signal, False

    def _cut(self):
        self.hit = True
        if self.signal:
            _signal.raise_signal(_signal.SIGINT)
        else:
            raise KeyboardInterrupt(f"{self.kind} {self.at} of {self.code.co_name}")

    def __enter__(self):
        def local(frame, event, arg):
            if self.hit:
                return None
            if (self.kind == "line" and event == "line" and frame.f_lineno == self.at) or (
                    self.kind == "after" and event == "opcode" and frame.f_lasti == self.at):
                self._cut()
            return local

        def glob(frame, event, arg):
            if frame.f_code is self.code and not self.hit:
                frame.f_trace_opcodes = self.kind == "after"
                return local
            return None

        sys.settrace(glob)
        return self

    def __exit__(self, *exc):
        sys.settrace(None)


def after_calls(*functions):
    """``(code, ("after", offset))`` after every call instruction of ``functions``."""
    out = []
    for fn in functions:
        ins = list(dis.get_instructions(fn))
        out += [(fn.__code__, ("after", b.offset)) for a, b in zip(ins, ins[1:]) if a.opname.startswith("CALL")]
    return out
