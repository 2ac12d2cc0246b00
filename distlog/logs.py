"""``exp.logs``: leveled, structured text logging; each rank writes its own file."""

from __future__ import annotations

import heapq
import logging
import sys
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from .layout import LOGS_DIR, parse_log_name
from .inputs import exact_step, plain_int
from . import report
from .logline import LEVELS, LogRecord, complete_text, level_name, level_number, parse_line

if TYPE_CHECKING:
    from .context import RunContext
    from .writers.textlog import TextLogSink


def iter_records(text: str) -> Iterator[LogRecord]:
    # "\n" only ends a record (format_line escapes it); str.splitlines() would also cut a
    # message at \x0c, \x1c-\x1e, \x85, \u2028, \u2029, which are written as they are
    for line in text.split("\n"):
        if line:
            try:
                yield parse_line(line)
            except ValueError:
                continue  # a torn last line from a crash, or foreign text


def merge_records(streams: Iterable[Iterable[LogRecord]]) -> Iterator[LogRecord]:
    """k-way merge of per-rank streams (each already in time order) by (time, rank)."""
    return heapq.merge(*streams, key=lambda r: (r.time, r.rank, r.attempt))


def _line_step(step: Any, fields: dict[str, Any]) -> int | float | None:
    """A record's step as its line holds it: an integer as an int, a fractional one (metrics
    take ``step=2.5``) as its float; logging never raises for one: a step that is no finite
    number is kept in the fields instead."""
    if step is None:
        return None
    try:
        return exact_step(step)
    except ValueError:
        fields["step"] = step if isinstance(step, (int, float, str)) else repr(step)
        return None


class TextLogger:
    def __init__(self, ctx: "RunContext", sink: "TextLogSink", latest_step: Callable[[], float | None]) -> None:
        """``sink``: this rank's log file; ``latest_step()``: the step a record belongs to when
        neither ``step=`` nor ``exp.step(n)`` says (the metrics' latest step)."""
        self._ctx, self._sink, self._latest_step = ctx, sink, latest_step
        self.last_record: LogRecord | None = None  # the last record written (for heartbeats)
        self.level = LEVELS["DEBUG"]
        self.echo_level = LEVELS["WARNING"]  # also printed on stderr from this level up
        self._captured: dict[str, _Captured] = {}  # capture_logging(): per logger name

    def set_level(self, level: str | int) -> None:
        self.level = level_number(level)

    def log(self, level: str | int, message: Any, /, **fields: Any) -> None:
        self.record(level, message, fields)

    def record(self, level: str | int, message: Any, fields: dict[str, Any], echo: bool = True,
               always: bool = False) -> None:
        """``log`` with the fields as a dict; ``echo=False``: not echoed on stderr from
        ``echo_level`` up (a line the program printed there itself, captured); ``always``:
        written below ``set_level``'s level too (the "run ended" line readers wait for)."""
        no = level_number(level)
        if no < self.level and not always:
            return
        ctx = self._ctx
        step = fields.pop("step", None)
        if step is None:  # exp.step(n), else the step of the latest collect/log/flush here
            step = ctx.current_step
            if step is None:
                step = self._latest_step()
        rec = LogRecord(
            time=time.time(), level=level_name(no), message=str(message), host=ctx.info.host,
            rank=ctx.rank, local_rank=ctx.info.local_rank, node=ctx.info.node_rank,
            attempt=ctx.attempt, step=_line_step(step, fields), fields=fields,
        )
        self.last_record = rec = self._sink.emit(rec)
        if echo and no >= self.echo_level:
            report.echo(ctx.rank, rec.level, no, rec.message)

    def debug(self, message: Any, /, **fields: Any) -> None:
        self.log("DEBUG", message, **fields)

    def info(self, message: Any, /, **fields: Any) -> None:
        self.log("INFO", message, **fields)

    def warning(self, message: Any, /, **fields: Any) -> None:
        self.log("WARNING", message, **fields)

    def error(self, message: Any, /, **fields: Any) -> None:
        self.log("ERROR", message, **fields)

    def critical(self, message: Any, /, **fields: Any) -> None:
        self.log("CRITICAL", message, **fields)

    def exception(self, message: Any, /, exc_info: Any = True, **fields: Any) -> None:
        """Log at ERROR with the current (or given) exception's traceback."""
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if exc_info and exc_info[0] is not None:
            fields["traceback"] = "".join(traceback.format_exception(*exc_info))
            message = f"{message}: {exc_info[0].__name__}: {exc_info[1]}"
        self.log("ERROR", message, **fields)

    def handler(self, level: str | int = "DEBUG") -> logging.Handler:
        """A ``logging.Handler`` that forwards standard-library records here."""
        return _Bridge(self, level_number(level))

    def capture_logging(self, logger: str | None = None, level: str | int = "INFO") -> logging.Handler:
        """Attach ``handler()`` to a standard-library logger (the root one by default), until
        the run closes. The logger's level is lowered to ``level`` when it would drop such
        records, and put back at close (unless the program set another one since). Called
        again for the same logger (a notebook cell run twice), the handler already attached
        is kept, at the lower of the two levels: each record is stored once."""
        lg = logging.getLogger(logger)
        no = level_number(level)
        held = self._captured.get(lg.name)
        if held is None:
            held = self._captured[lg.name] = _Captured(self.handler(no), lg.level)
            lg.addHandler(held.handler)
            self._ctx.on_close(lambda: self._release(lg))
        h = held.handler
        h.setLevel(min(h.level, no))
        if lg.level == logging.NOTSET or lg.level > h.level:
            lg.setLevel(h.level)
            held.lowered_to = h.level
        return h

    def _release(self, lg: logging.Logger) -> None:
        held = self._captured.pop(lg.name)
        lg.removeHandler(held.handler)
        if held.lowered_to is not None and lg.level == held.lowered_to:
            lg.setLevel(held.level_before)

    def get_logs(self, level: str | int = "DEBUG", limit: int | None = 50, rank: int | None = None) -> list[LogRecord]:
        """The last ``limit`` records at ``level`` or above, from one rank or (None) every rank."""
        limit = _count_or_none("limit", limit, "every record")
        rank = _count_or_none("rank", rank, "every rank")
        storage = self._ctx.storage
        self._sink.flush()
        floor = level_number(level)
        streams = []
        for name in storage.list_dir(LOGS_DIR):
            parsed = parse_log_name(name)
            if parsed is None or (rank is not None and parsed[0] != rank):
                continue
            try:
                text = complete_text(storage.read_bytes(f"{LOGS_DIR}/{name}"))
            except FileNotFoundError:
                continue
            streams.append([r for r in iter_records(text) if r.levelno >= floor])
        out = list(merge_records(streams))
        return out if limit is None else out[len(out) - min(limit, len(out)):]


def _count_or_none(what: str, value: Any, none: str) -> int | None:
    """``get_logs``' ``limit`` or ``rank`` as an int, else a ``TypeError`` (``ValueError``: a
    negative one) naming it: limit="5" raised "bad operand type for unary -", limit=0 gave
    every record, limit=-1 all but the first, rank="0" no record at all."""
    if value is None:
        return None
    n = plain_int(value)
    if n is None:
        raise TypeError(f"get_logs({what}={value!r:.40}): {what} must be an int (0 or more) or None "
                        f"({none}), got {type(value).__name__}; e.g. {what}={50 if what == 'limit' else 0}")
    if n < 0:
        raise ValueError(f"get_logs({what}={value!r}): {what} must be an int (0 or more) or None ({none})")
    return n


@dataclass
class _Captured:
    """A standard-library logger ``capture_logging()`` attached to: its handler, its level
    before, and the level it was lowered to (None: left as it was)."""

    handler: logging.Handler
    level_before: int
    lowered_to: int | None = None


def _only_bridges(name: str) -> bool:
    """Whether every handler a record of logger ``name`` reaches is a ``_Bridge``: without
    them it would reach none, and Python would print it (``logging.lastResort``)."""
    lg: logging.Logger | None = logging.getLogger(name)
    while lg is not None:
        if any(not isinstance(h, _Bridge) for h in lg.handlers):
            return False
        lg = lg.parent if lg.propagate else None
    return True


#: a LogRecord's own attributes (the rest came as ``extra=``); "message" and "asctime" are set
#: by a Formatter that ran before
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class _Bridge(logging.Handler):
    """Standard-library records into a run's log, each once (a record that reaches two
    bridges to one run, on the root logger and on its own, is stored by the first).

    What distlog itself writes through logging meanwhile (``report.own_output``: the stderr
    echo of a record, on the root logger the echo of a WARNING this handler forwards) is that
    record again: not stored, or it would come back here without end. When no handler but
    bridges would take it (no logging configured), it is printed as Python prints a record
    that reaches no handler: attached to the root logger, a bridge took the echo of every
    WARNING off the console."""

    def __init__(self, target: TextLogger, level: int) -> None:
        super().__init__(level)
        self._target = target

    def emit(self, record: logging.LogRecord) -> None:
        if report.writing_own_output():
            last = logging.lastResort
            if (last is not None and record.levelno >= last.level
                    and not getattr(record, "_distlog_printed", False) and _only_bridges(record.name)):
                record._distlog_printed = True
                last.handle(record)
            return
        stored = record.__dict__.setdefault("_distlog_stored", set())
        if id(self._target) in stored:
            return
        stored.add(id(self._target))
        try:
            # what the call passed as extra= (logger.info("...", extra={"epoch": 3})): fields,
            # beside distlog's own (which win: "logger" names the logger that logged it)
            fields: dict[str, Any] = {k: v for k, v in record.__dict__.items()
                                      if k not in _STANDARD_ATTRS and not k.startswith("_")}
            fields["logger"] = record.name
            if record.exc_info and record.exc_info[0] is not None:
                fields["traceback"] = "".join(traceback.format_exception(*record.exc_info))
            if record.stack_info:
                fields["stack"] = record.stack_info
            # (a level between the named ones, logging.addLevelName(25, "NOTICE"), keeps its
            # number: written LEVEL25, it passes level filters as 25)
            with report.own_output():
                self._target.log(record.levelno, record.getMessage(), **fields)
        except Exception:  # noqa: BLE001
            self.handleError(record)
