"""The per-rank text log sink: one line per record, never fatal to training."""

from __future__ import annotations

import threading
from dataclasses import replace

from .. import report
from ..logline import LogRecord, format_line
from ..storage.base import Appender, StorageBackend


class TextLogSink:
    """Appends formatted records to this rank's log file (segments on object stores).

    An I/O failure is reported once on stderr and the record is kept in memory to be retried
    at the next write, so a full disk or a flaky bucket never kills training.
    """

    def __init__(self, backend: StorageBackend, path: str, **segment_limits: float) -> None:
        self.backend = backend
        self.path = path
        self._limits = segment_limits
        self._app: Appender | None = None
        self._pending: list[str] = []
        self._warned = False
        self._closed = False
        self._lock = threading.Lock()
        self._last_time = float("-inf")  # of the last line appended

    def emit(self, record: LogRecord) -> LogRecord:
        """Append ``record``; the record as written (its time no earlier than the line before:
        two threads that took their times in one order and reached the file in the other
        left the file out of time order, which its readers rely on)."""
        line = format_line(record)
        with self._lock:
            if not self._closed:
                if record.time < self._last_time:  # (rare: a thread switch in between)
                    record = replace(record, time=self._last_time)
                    line = format_line(record)
                self._last_time = record.time
                self._pending.append(line)
                self._write_pending()
                return record
        # (a handler kept past its run's end: exp.logs.handler(); checked under the lock, so a
        # record racing close() never opens the log again)
        report.warn(f"a record logged after its run ended was dropped ({record.message[:80]!r}): "
                    f"the log {self.path} is closed; take exp.logs (or exp.logs.handler()) "
                    "again in the run that is open now", key=f"closed log {self.path}")
        return record

    def _write_pending(self) -> None:
        if self._closed:  # (lines close() could not write stay unwritten: never a reopened log)
            return
        lines: list[str] = []
        try:
            if self._app is None:
                self._app = self.backend.open_appender(self.path, **self._limits)
            text, lines = "".join(self._pending), self._pending
            # taken, then written, with no call between: a Ctrl-C seen after the write returns
            # finds the lines gone from pending (they were written twice when kept until then)
            self._pending = []; self._app.write(text)  # noqa: E702
            self._warned = False
        except Exception as e:  # noqa: BLE001 - logging must never kill training
            self._pending[:0] = lines  # (kept for the next write)
            if not self._warned:
                report.warn(f"could not write to log {self.path}: {e!r}; keeping lines in memory")
                self._warned = True
            if len(self._pending) > 100_000:  # bound memory while the store is down
                del self._pending[: len(self._pending) - 100_000]

    def flush(self, due_only: bool = False) -> None:
        """Make the lines durable; ``due_only``: only what the appender's limits say is due
        (object stores: a segment closes by size or age, not at every call)."""
        app = self._app
        if due_only and not self._pending and (app is None or app.never_due):
            return  # (every metrics flush asks: no lock when nothing can be due)
        with self._lock:
            if self._pending:
                self._write_pending()
            if self._app is not None:
                try:
                    self._app.flush_due() if due_only else self._app.flush()
                except Exception as e:  # noqa: BLE001
                    report.warn(f"could not flush log {self.path}: {e!r}",
                                key=f"flush {self.path}")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._closed = True
            if self._app is not None:
                try:
                    self._app.close()
                except Exception as e:  # noqa: BLE001
                    report.warn(f"could not close log {self.path}: {e!r}")
                self._app = None
