"""The one place the per-rank text-log line format lives: ``LogRecord``, format and parse.

One record per line, fields separated by single spaces, the message escaped so that it never
spans lines, structured fields as JSON after a tab:

    2026-11-28T07:00:00.123456+00:00 INFO node1 n0 r3 l1 a0 s120 message text\t{"step": 12}

``time`` (UTC, microseconds), ``level``, ``host``, node rank ``n``, global rank ``r``, local rank
``l``, attempt ``a``, step ``s`` (``s-`` when none; an integer, or a step that is not one as
Python's shortest float text, ``s2.5``), message, optional fields.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_ESC = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESC = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class LogRecord:
    time: float  # seconds since the epoch, UTC
    level: str
    message: str
    host: str = ""
    rank: int = 0
    local_rank: int = 0
    node: int = 0
    attempt: int = 0
    step: int | float | None = None  # an int, or a float that is not an integer (2.5)
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def levelno(self) -> int:
        return levelno_of(self.level)


#: how ``level_name`` writes a level between the named ones (``exp.log(35, ...)``)
_NUMBERED = re.compile(r"LEVEL(-?\d+)")


def levelno_of(name: str) -> int:
    """The number of a level as a line holds it: a named level's, ``nn`` for ``LEVELnn``
    (``level_name`` of a number between the named ones), 0 for anything else."""
    no = LEVELS.get(name)
    if no is not None:
        return no
    m = _NUMBERED.fullmatch(name)
    return int(m.group(1)) if m else 0


def level_number(level: str | int) -> int:
    """A level given by a user (a name, ``WARN``, ``LEVELnn``, a number) as its number."""
    if isinstance(level, int):
        return level
    name = str(level).strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name in LEVELS:
        return LEVELS[name]
    m = _NUMBERED.fullmatch(name) or re.fullmatch(r"(-?\d+)", name)
    if m is None:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}, "
                         "a number (35) or LEVELnn as levels between them are written")
    return int(m.group(1))


def level_name(level: str | int) -> str:
    n = level_number(level)
    for name, no in LEVELS.items():
        if no == n:
            return name
    return f"LEVEL{n}"


def escape(text: str) -> str:
    if not any(c in text for c in _ESC):
        return text
    return "".join(_ESC.get(c, c) for c in text)


def utf8_safe(text: str) -> str:
    """``text`` with each lone surrogate (a non-UTF-8 byte of a file name from ``os.listdir``,
    ``sys.argv`` or the environment, decoded with ``surrogateescape``) written as its Python
    escape, e.g. ``\\udcff``: a log line is always valid UTF-8, so one such name cannot stop a
    rank's log from being written."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            out.append(_UNESC.get(text[i + 1], text[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def complete_text(data: bytes) -> str:
    """The complete lines of a text log's bytes, decoded. A torn last line (no newline yet: a
    rank killed mid-write, or a line still being written) is left out before decoding, since it
    may end inside a multi-byte character; a byte that is not UTF-8 inside a complete line (a
    damaged file) reads as U+FFFD, so the line stays readable and the damage shows."""
    return data[: data.rfind(b"\n") + 1].decode("utf-8", errors="replace")


def format_time(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="microseconds")


def parse_time(s: str) -> float:
    return _dt.datetime.fromisoformat(s).timestamp()


#: arrays and tensors of up to this many values are written as lists in a record's fields
MAX_FIELD_LIST = 64


def _jsonable(value: Any) -> Any:
    """``json.dumps``' fallback for a field value: a NumPy or torch number as its number, a
    small array or tensor as a list, anything else as its ``repr``."""
    try:
        n = value.numel() if hasattr(value, "numel") else getattr(value, "size", None)
        if n == 1 and hasattr(value, "item"):
            return value.item()
        if isinstance(n, int) and n <= MAX_FIELD_LIST and hasattr(value, "tolist"):
            return value.tolist()
    except Exception:  # noqa: BLE001 - logging never raises for a value it cannot read
        pass
    return repr(value)


def _keys_as_text(value: Any) -> Any:
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): _keys_as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_keys_as_text(v) for v in value]
    return value


def fields_json(fields: dict[str, Any]) -> str:
    """A record's structured fields as JSON (keys sorted). Logging never raises for them: dict
    keys JSON cannot sort or hold (tuples, ints next to strings) are written as text, and
    what JSON cannot hold at all (a cycle) as its ``repr``."""
    try:
        return json.dumps(fields, default=_jsonable, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        pass
    try:
        return json.dumps(_keys_as_text(fields), default=_jsonable, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return json.dumps({str(k): repr(v) for k, v in fields.items()}, sort_keys=True)


def step_text(step: int | float | None) -> str:
    """A step as a line holds it: ``-`` (none), an integer in full, or a float that is no
    integer as its shortest round-trip text (``2.5``, ``1e-05``)."""
    if step is None:
        return "-"
    if isinstance(step, float) and not step.is_integer():
        return repr(step)
    return str(int(step))


def step_shown(step: float) -> str:
    """A step in a message: as ``step_text`` (2**60 in full, not ``1.15292e+18``), and where a
    float64 cannot hold every integer (past 2**53) saying so: steps are stored as float64."""
    text = step_text(step)
    if isinstance(step, float) and step.is_integer() and abs(step) > 2**53:
        text += " (a float64: integers past 2**53 = 9007199254740992 are not all distinct)"
    return text


#: a step as ``step_text`` writes it (``-`` aside)
STEP_PATTERN = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
_STEP = re.compile(STEP_PATTERN)


def parse_step(text: str) -> int | float:
    """Inverse of ``step_text`` (not ``-``): an int, or a float for ``2.5``; ``ValueError``
    for anything else."""
    if not _STEP.fullmatch(text):
        raise ValueError(f"not a step: {text!r}")
    try:
        return int(text)
    except ValueError:
        return float(text)


def format_line(r: LogRecord) -> str:
    step = step_text(r.step)
    line = (
        f"{format_time(r.time)} {r.level} {r.host or '-'} n{r.node} r{r.rank} l{r.local_rank} "
        f"a{r.attempt} s{step} {escape(utf8_safe(r.message))}"
    )
    if r.fields:
        line += "\t" + fields_json(r.fields)
    return line + "\n"


#: the key under which a record's fields text is kept when it is no JSON object (a line a
#: partial write cut, with another record appended after it): the record stays readable
UNPARSED_FIELDS = "unparsed_fields"


def parse_fields(text: str) -> dict[str, Any]:
    """A record's fields from their JSON text (``{}`` for none); text that is no JSON object
    comes back whole as ``{UNPARSED_FIELDS: text}``, so one damaged line does not stop a reader."""
    if not text:
        return {}
    try:
        fields = json.loads(text)
    except ValueError:
        return {UNPARSED_FIELDS: text}
    return fields if isinstance(fields, dict) else {UNPARSED_FIELDS: text}


#: the key under which a record's header text is kept when a field of it (node, ranks,
#: attempt, step) cannot be read but its time can: the record stays readable, its unreadable
#: numbers -1 (a step None)
UNPARSED_HEADER = "unparsed_header"


#: the numbers of a header (``nN rR lL aA sS``) as ``format_line`` writes them; the one test of
#: whether a header reads (``parse_line``, and the log filters through ``HEADER``)
_NUMBERS = re.compile(rf"n(-?\d+) r(-?\d+) l(-?\d+) a(-?\d+) s(-|{STEP_PATTERN})")
#: a line whose time is in distlog's layout and whose header numbers read (as ``parse_line``
#: splits it: level and host are any text without a space)
HEADER = re.compile(rf".{{26}}\+00:00 [^ \n]* [^ \n]* {_NUMBERS.pattern}(?: |$)")


def parse_line(line: str) -> LogRecord:
    """Inverse of ``format_line``; ``ValueError`` for a line that is not a record. A line with
    distlog's UTC time first whose other header fields do not read (damaged text) is kept:
    see ``UNPARSED_HEADER``."""
    line = line.rstrip("\n")
    parts = line.split(" ", 8)
    t = parts[0]
    try:
        when = parse_time(t)
    except ValueError as e:
        raise ValueError(f"not a distlog log line ({e}): {line[:80]!r}") from None
    m = _NUMBERS.fullmatch(" ".join(parts[3:8])) if len(parts) >= 8 else None
    if m is None and (len(t) != TIME_CHARS or not t.endswith("+00:00") or len(parts) < 2):
        # foreign text with a date first; or a time alone (normalised, it would read as a
        # record of rank -1 that the log filters could not tell from one whose header read)
        raise ValueError(f"not a distlog log line: {line[:80]!r}")
    level, host = parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else "-"
    msg, _, fjson = (parts[8] if len(parts) > 8 else "").partition("\t")
    fields = parse_fields(fjson)
    if m is not None:
        node, rank, local, attempt, step = m.groups()
        numbers = (int(node), int(rank), int(local), int(attempt),
                   None if step == "-" else parse_step(step))
    else:  # cut inside its header (a line cut short too: its time reads)
        numbers = (-1, -1, -1, -1, None)
        fields = {UNPARSED_HEADER: " ".join(parts[2:8]), **fields}
    return LogRecord(time=when, level=level, message=unescape(msg), host="" if host == "-" else host,
                     node=numbers[0], rank=numbers[1], local_rank=numbers[2], attempt=numbers[3],
                     step=numbers[4], fields=fields)


#: every line starts with its UTC time in this many characters (``format_time``), so the
#: first TIME_CHARS characters of two lines compare as their times do
TIME_CHARS = 32


def sort_key(line: str, rank: int, attempt: int) -> str:
    """The merge order of a line: (time, rank, attempt), as one string that sorts so."""
    return f"{line[:TIME_CHARS]} {rank:08d} {attempt:05d}"


def time_of_key(key: str) -> str:
    """The time part of a ``sort_key`` (comparable with ``format_time``'s output)."""
    return key[:TIME_CHARS]


def merge_lines(per_source: "Iterable[tuple[int, int, list[str]]]") -> list[str]:
    """Merge ``(rank, attempt, lines)`` streams by (time, rank, attempt), stably."""
    keys: list[str] = []
    lines: list[str] = []
    for rank, attempt, src in per_source:
        keys.extend([sort_key(line, rank, attempt) for line in src])
        lines.extend(src)
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [lines[i] for i in order]
