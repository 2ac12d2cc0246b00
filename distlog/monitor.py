"""One rank's watch on itself: telemetry at each flush and the heartbeat thread.

The run builds it with what it uses (the run context, ``comm`` for the hang diagnosis, the
writers for rank 0's telemetry rows) and calls ``start`` with what the heartbeat reads (the
metrics' progress, the last log record); the metrics flush calls ``enter_flush``/``exit_flush``
around its collective and ``record`` with the summed telemetry slots; the run calls ``close``
with its final status. Everything here is cheap on the flush path (two clock reads, a slice
copy; system figures at most every ``sample_interval`` seconds).
"""

from __future__ import annotations

import functools
import os
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import telemetry as T
from .processes import process_start
from .heartbeat import DEFAULT_INTERVAL, HeartbeatThread, hang_report


@functools.lru_cache(maxsize=None)
def _started(pid: int) -> int | None:
    """``process_start`` of this process (by pid: a forked child has its own); heartbeats
    carry it, so a reader on this host tells a killed rank from a later process given its pid."""
    return process_start(pid)


_LOG_CHARS = 300  # of the last log line, in a heartbeat record

if TYPE_CHECKING:
    from .comm import Comm
    from .context import RunContext
    from .logline import LogRecord
    from .writers.runwriters import RunWriters


class RankMonitor:
    def __init__(self, ctx: "RunContext", comm: "Comm", writers: "RunWriters", *, telemetry: bool = True,
                 heartbeat_interval: float | None = DEFAULT_INTERVAL, sample_interval: float = 1.0) -> None:
        self._ctx, self._comm, self._writers = ctx, comm, writers
        self._progress: Callable[[], tuple[float | None, int]] = lambda: (None, 0)
        self._last_log: Callable[[], "LogRecord | None"] = lambda: None
        self.telemetry_on = bool(telemetry)
        self.heartbeat_interval = heartbeat_interval if heartbeat_interval and heartbeat_interval > 0 else None
        self.sample_interval = sample_interval
        self.telemetry: T.Telemetry | None = None
        self.heartbeat: HeartbeatThread | None = None
        self.in_flush: int | None = None  # the flush (0-based) this rank is inside, if any
        self.flush_entered: float | None = None
        self.last_flush_end: float | None = None
        self._rewound = False  # the stored telemetry was rewound to this attempt's start

    def start(self, progress: Callable[[], tuple[float | None, int]],
              last_log: Callable[[], "LogRecord | None"]) -> None:
        """Start telemetry and the heartbeat; ``progress()`` gives the largest step so far and
        the flushes done, ``last_log()`` the last record this rank logged."""
        ctx = self._ctx
        self._progress, self._last_log = progress, last_log
        if self.telemetry_on:
            self.telemetry = T.Telemetry(ctx.rank, ctx.world_size, self.sample_interval)
        # without heartbeats there is no evidence of where the other ranks are (and an
        # earlier run's, on a comm handed to both, is not this run's)
        self._comm.diagnose = None
        if self.heartbeat_interval is not None:
            self._comm.diagnose = lambda: hang_report(ctx.storage, ctx.attempt, ctx.world_size,
                                                      self.in_flush, ctx.rank, self.flush_entered)
            self.heartbeat = HeartbeatThread(ctx.storage, ctx.rank, self.heartbeat_interval,
                                             self.snapshot).start()

    def snapshot(self, state: str = "running") -> dict[str, Any]:
        """This rank's heartbeat record (read from the training thread's state without locks:
        each attribute read is atomic, and a record one step old is still true enough)."""
        ctx = self._ctx
        step, flushes = self._progress()
        rec = self._last_log()
        return {
            "format": 1, "rank": ctx.rank, "attempt": ctx.attempt, "host": ctx.info.host,
            "pid": os.getpid(), "pid_start": _started(os.getpid()),
            "time": time.time(), "interval": self.heartbeat_interval,
            "state": state, "step": step, "flushes": flushes,
            "in_flush": self.in_flush, "flush_entered": self.flush_entered,
            "last_flush_end": self.last_flush_end,
            "last_log": None if rec is None else {
                "time": rec.time, "level": rec.level, "step": rec.step,
                "message": rec.message[:_LOG_CHARS]},
        }

    def enter_flush(self, seq: int) -> np.ndarray | None:
        """This rank's telemetry slots for the SUM bucket (None when telemetry is off)."""
        if self.telemetry is None:
            self.in_flush, self.flush_entered = seq, time.time()
            return None
        slots = self.telemetry.enter()
        self.in_flush, self.flush_entered = seq, self.telemetry.entered
        return slots

    def exit_flush(self) -> None:
        now = time.time() if self.telemetry is None else self.telemetry.exit()
        self.in_flush, self.last_flush_end = None, now

    def local_flush(self, step: float, seq: int, values: bool, stepped: bool = False) -> None:
        """A one-process flush (no collective: ``enter_flush``, ``exit_flush`` and ``record``,
        or ``skip`` when no value came, in one call); ``values``: any value came; ``stepped``:
        none came but ``flush(step=)`` advanced the step (``Telemetry.skip``)."""
        tel = self.telemetry
        if tel is None:
            self.flush_entered = self.last_flush_end = time.time()
            return
        due = tel.local_flush(step, seq, values, stepped)
        self.flush_entered = self.last_flush_end = tel.entered
        if due:
            self._hand_over(due)

    def record(self, step: float, seq: int, slots: np.ndarray, closing: bool = False,
               idle: bool = False) -> None:
        """Rank 0: keep this flush's telemetry; hand rows to the run's writer when due (about
        once a second, and at the closing flush). ``idle``: no rank had a value in this flush
        (its ``interval`` is not a training window: stored NaN)."""
        if self.telemetry is None or self._ctx.rank != 0 or not len(slots):
            return
        if idle:
            slots = T.without_interval(slots)
        self._hand_over(self.telemetry.add(step, seq, slots, self.last_flush_end or time.time(),
                                           force=closing))

    def skip(self, seq: int, slots: np.ndarray | None, stepped: bool = False) -> None:
        """Rank 0: flush ``seq`` writes no telemetry row (no rank had a value): the waits it
        carries go to the next row, and its intervals too when it advanced the step
        (``stepped``: ``Telemetry.skip``)."""
        if self.telemetry is not None and self._ctx.rank == 0 and slots is not None and len(slots):
            self.telemetry.skip(seq, slots, stepped)

    def hand_off(self) -> None:
        """Rank 0, closing: the telemetry kept since the last hand-off goes to the writer (a
        failing run of several ranks has no closing flush to force it out)."""
        if self.telemetry is not None and self._ctx.rank == 0:
            self._hand_over(self.telemetry.drain())

    def _hand_over(self, due: dict[str, np.ndarray]) -> None:
        if due:
            writer = self._writers.main()
            table = writer.tables.get(T.TABLE)
            if table is None:
                return
            if not self._rewound:
                # the stored rows this attempt starts again over go from every telemetry
                # series, also those it writes no row to (all at another world size; the GPU
                # ones before a GPU figure), as from every series it writes
                self._rewound = True
                first = min(float(rows[0, 0]) for rows in due.values())
                writer.call(lambda tables: tables[T.TABLE].rewind_stored(first))
            if not table.read_only:  # (read only: another world size)
                for key, rows in due.items():
                    writer.put(T.TABLE, key, rows)

    def close(self, status: str) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop(final=self.snapshot(state=status))

    def detach(self) -> None:
        """The run's last collective is done: its heartbeats diagnose no later timeout on the
        comm (one handed in serves the next run too)."""
        self._comm.diagnose = None
