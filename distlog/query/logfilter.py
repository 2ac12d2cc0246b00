"""Filters over text-log records, applied to raw lines before any record is built.

A line written by ``distlog.logline.format_line`` starts with a 32-character UTC timestamp
(``2026-11-28T07:00:00.123456+00:00``), so time order is string order and the level starts at
column 33. The filters below use that to decide most lines without parsing them; a line in any
other layout is parsed with ``parse_line`` and rewritten into it (or dropped if it is not a
record). ``parse_line`` stays the one parser of the format.
"""

from __future__ import annotations

import datetime as _dt
import math
import operator
import re
import time
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..inputs import plain_int
from ..logline import (
    HEADER, TIME_CHARS, LEVELS, format_line, format_time, level_number, levelno_of, parse_line,
    parse_step, unescape,
)

_TS_END = "+00:00 "  # characters 26..32 of every line in the usual layout
_TS_SLICE = operator.itemgetter(slice(26, 33))
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_REL = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")


def parse_when(value: Any, now: float | None = None) -> float | None:
    """A point in time as epoch seconds from a float, a datetime, an ISO-8601 string (UTC when
    it has no offset) or a duration ago (``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``)."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        return value.timestamp()
    text = str(value).strip()
    m = _REL.match(text)
    if m:
        return (time.time() if now is None else now) - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"cannot read the time {value!r}; give ISO-8601 ('2026-11-28T07:00:00', "
                         "UTC unless an offset is given), epoch seconds, or an age such as "
                         "'10m', '2h', '1d'") from None
    return parse_when(dt)


def _bound(value: Any) -> int | float:
    """One step bound: an int, or a float when it is not an integer (``2.5``: log lines and
    metrics keep fractional steps)."""
    if isinstance(value, str):
        value = value.strip()
        try:
            return int(value)
        except ValueError:
            pass
    f = float(value)
    if math.isnan(f):
        raise ValueError(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return int(f) if f.is_integer() else f


def parse_steps(value: Any) -> tuple[int | float | None, int | float | None]:
    """``"100:200"``, ``"100:"``, ``":200"``, ``"150"``, ``"2.5:3"``, ``(100, 200)`` →
    inclusive bounds."""
    if value is None:
        return None, None
    try:
        if isinstance(value, (tuple, list)):
            lo, hi = value
            bounds = (None if lo is None else _bound(lo)), (None if hi is None else _bound(hi))
        elif isinstance(value, (int, float, np.integer, np.floating)):
            return _bound(value), _bound(value)
        elif ":" in str(value):
            text = str(value)
            lo, hi = text.split(":", 1)
            bounds = (_bound(lo) if lo.strip() else None), (_bound(hi) if hi.strip() else None)
        else:
            return _bound(str(value)), _bound(str(value))
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"cannot read the step range {value!r}; use 'A:B', 'A:', ':B' or 'N'") from None
    lo, hi = bounds
    if lo is not None and hi is not None and lo > hi:  # (it matched nothing, unsaid)
        raise ValueError(f"the step range {value!r} runs backwards (from {lo} down to {hi}): "
                         f"give the smaller step first, {hi}:{lo}")
    return bounds


def _set(value: Any, kind: type, name: str = "host") -> frozenset | None:
    """``rank=``/``attempt=`` (ints: one, a list, or "0,2" text) or ``host=`` (str) as a set.
    A rank that is no int is refused, naming it: ``rank=1.7`` meant no rank, not rank 1, and
    ``rank=np.int64(1)`` raised "'numpy.int64' object is not iterable"."""
    if value is None:
        return None
    if isinstance(value, str) or (kind is int and plain_int(value) is not None):
        value = [value]
    elif kind is str and not isinstance(value, Iterable):
        value = [value]
    if isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        raise TypeError(f"{name}={value!r:.40}: expected one {kind.__name__}, a list of them or a "
                        f"comma-separated str, e.g. {name}={'0' if kind is int else repr('node1')}")
    out = []
    for v in value:
        if kind is int and isinstance(v, str):
            try:
                out.extend(int(x) for x in v.split(",") if x.strip())
            except ValueError:
                raise ValueError(f"{name}={v!r}: expected whole numbers separated by commas, "
                                 f"e.g. {name}='0,2'") from None
        elif kind is int:
            n = plain_int(v)
            if n is None:
                raise TypeError(f"{name}={v!r:.40}: a {name} is a whole number (an int), got "
                                f"{type(v).__name__}; e.g. {name}=0")
            out.append(n)
        else:
            out.append(kind(v))
    return frozenset(out)


@dataclass(frozen=True)
class LogFilter:
    """Which records to keep. ``None`` means "any"; step bounds are inclusive."""

    ranks: frozenset[int] | None = None
    attempts: frozenset[int] | None = None
    hosts: frozenset[str] | None = None
    level: int = 0
    pattern: re.Pattern | None = None
    since: float | None = None
    until: float | None = None
    step_min: int | float | None = None
    step_max: int | float | None = None
    #: with ``grep``: when (``time.monotonic()``) matching must be over (``time_limit``)
    deadline: float | None = None

    @classmethod
    def make(cls, rank: Any = None, level: Any = None, grep: Any = None, since: Any = None,
             until: Any = None, steps: Any = None, attempt: Any = None, host: Any = None,
             ignore_case: bool = False, time_limit: float | None = None) -> "LogFilter":
        """Build a filter from user-facing values (see ``parse_when`` and ``parse_steps``).

        ``time_limit``: seconds ``grep`` may take over all the records (a server answering
        many people: a pattern that backtracks without end must not stall it). Enforced with
        the ``regex`` package, which can stop a match (Python's ``re`` holds the interpreter
        until it is done); without it there is no limit."""
        pattern, deadline = None, None
        if grep is not None:
            flags = re.IGNORECASE if ignore_case else 0
            engine = _timed_engine() if time_limit is not None else None
            # (patterns re cannot take raise more than re.error: a huge repeat, deep nesting)
            bad = (re.error, OverflowError, RecursionError) + (() if engine is None else (engine.error,))
            try:
                if isinstance(grep, re.Pattern):
                    pattern = grep
                elif engine is not None:
                    pattern = engine.compile(grep, flags | engine.V0)
                    deadline = time.monotonic() + time_limit
                else:
                    pattern = re.compile(grep, flags)
            except bad as e:
                raise ValueError(f"bad regular expression {grep!r}: {e}") from None
        lo, hi = parse_steps(steps)
        return cls(ranks=_set(rank, int, "rank"), attempts=_set(attempt, int, "attempt"), hosts=_set(host, str),
                   level=0 if level is None else level_number(level), pattern=pattern,
                   since=parse_when(since), until=parse_when(until), step_min=lo, step_max=hi,
                   deadline=deadline)

    def search(self, text: str) -> bool:
        """Whether ``grep`` finds ``text`` (within the deadline: else a ``ValueError``)."""
        if self.deadline is None:
            return self.pattern.search(text) is not None
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            # (concurrent: the match runs without the interpreter lock, so the server's other
            # requests go on meanwhile)
            return self.pattern.search(text, concurrent=True, timeout=left) is not None
        except TimeoutError:
            raise ValueError(f"the regular expression {self.pattern.pattern!r} took too long over "
                             "these logs (a pattern that backtracks a lot, or a very large log); "
                             "use a simpler pattern, or filter by level, rank or time first") from None

    def source_ok(self, rank: int, attempt: int) -> bool:
        return (self.ranks is None or rank in self.ranks) and \
            (self.attempts is None or attempt in self.attempts)

    @property
    def needs_fields(self) -> bool:
        """True when a filter looks past the level (host, step or message)."""
        return self.hosts is not None or self.pattern is not None or self.step_min is not None \
            or self.step_max is not None

    def lines(self, lines: Iterable[str]) -> list[str]:
        """The lines that pass, in order; odd lines are normalised or dropped."""
        lines = list(lines)
        # C-level loop: is every line in the usual layout? (the rare odd one is normalised)
        if not all(map(_TS_END.__eq__, map(_TS_SLICE, lines))):
            lines = [line if line[26:33] == _TS_END else _normalise(line) for line in lines]
            lines = [line for line in lines if line]
        if self.step_min is not None or self.step_max is not None:
            # a record whose header does not read has no step (logline.UNPARSED_HEADER): no
            # step filter keeps it, as the logs table's does not (its rank and attempt are its
            # file's, which chose it already). A loop in C.
            if not all(map(HEADER.match, lines)):
                lines = [line for line in lines if HEADER.match(line)]
        if self.level > 0:
            # a named level by its first two letters (all differ, none is "LE"); a level
            # between them ("LEVEL35") by its number
            ok = tuple({name[:2] for name, no in LEVELS.items() if no >= self.level})
            lines = [line for line in lines if line[33:35] in ok
                     or (line[33:35] == "LE" and _numbered_level(line) >= self.level)]
        if self.since is not None:
            lo = format_time(self.since)
            lines = [line for line in lines if line[:TIME_CHARS] >= lo]
        if self.until is not None:
            hi = format_time(self.until)
            lines = [line for line in lines if line[:TIME_CHARS] <= hi]
        if self.needs_fields:
            lines = [line for line in lines if self._fields_ok(line)]
        return lines

    def _fields_ok(self, line: str) -> bool:
        p = line.split(" ", 8)
        if len(p) < 8:
            return False
        if self.hosts is not None and (p[2] if p[2] != "-" else "") not in self.hosts:
            return False
        if self.step_min is not None or self.step_max is not None:
            if p[7] == "s-":
                return False
            try:
                step = parse_step(p[7][1:])
            except ValueError:
                return False
            if (self.step_min is not None and step < self.step_min) or \
                    (self.step_max is not None and step > self.step_max):
                return False
        if self.pattern is not None:
            msg = p[8].partition("\t")[0] if len(p) > 8 else ""
            return self.search(unescape(msg))
        return True


def _timed_engine() -> Any:
    """The ``regex`` package (patterns with a timeout), or None where it is not installed."""
    try:
        import regex
    except ImportError:
        return None
    return regex


def _numbered_level(line: str) -> int:
    """The level of a line in the usual layout whose level word starts at column 33."""
    return levelno_of(line[33:line.find(" ", 33)])


def _normalise(line: str) -> str:
    """A record line in another layout, rewritten in the usual one ("" if not a record)."""
    try:
        return format_line(parse_line(line)).rstrip("\n")
    except ValueError:
        return ""
