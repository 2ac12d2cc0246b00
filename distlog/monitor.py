"""One rank's watch on itself: telemetry at each flush and the heartbeat thread.

The run calls ``start`` once every rank agreed on the run, ``enter_flush``/``exit_flush``
around the flush collective, ``record`` on rank 0 with the summed telemetry slots, and
``close`` with the run's final status. Everything here is cheap on the flush path (two clock
reads, a slice copy; system figures at most every ``sample_interval`` seconds).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from . import telemetry as T
from .heartbeat import DEFAULT_INTERVAL, HeartbeatThread, hang_report, snapshot

if TYPE_CHECKING:
    from .context import RunContext


class RankMonitor:
    def __init__(self, telemetry: bool = True, heartbeat_interval: float | None = DEFAULT_INTERVAL,
                 sample_interval: float = 1.0) -> None:
        self.telemetry_on = bool(telemetry)
        self.heartbeat_interval = heartbeat_interval if heartbeat_interval and heartbeat_interval > 0 else None
        self.sample_interval = sample_interval
        self.telemetry: T.Telemetry | None = None
        self.heartbeat: HeartbeatThread | None = None
        self.in_flush: int | None = None  # the flush (0-based) this rank is inside, if any
        self.flush_entered: float | None = None
        self.last_flush_end: float | None = None

    def start(self, run: "RunContext") -> None:
        if self.telemetry_on:
            self.telemetry = T.Telemetry(run.rank, run.world_size, self.sample_interval)
        if self.heartbeat_interval is not None:
            # without heartbeats there is no evidence of where the other ranks are
            run.comm.diagnose = lambda: hang_report(run.storage, run.attempt, run.world_size,
                                                    self.in_flush, run.rank)
            self.heartbeat = HeartbeatThread(run.storage, run.rank, self.heartbeat_interval,
                                             lambda: snapshot(run)).start()

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

    def record(self, run: "RunContext", step: float, seq: int, slots: np.ndarray, closing: bool = False) -> None:
        """Rank 0: keep this flush's telemetry; hand rows to the run's writer when due (about
        once a second, and at the closing flush)."""
        if self.telemetry is None or run.rank != 0 or not len(slots):
            return
        due = self.telemetry.add(step, seq, slots, self.last_flush_end or time.time(), force=closing)
        if due:
            writer = run.main_writer()
            if T.TABLE in writer.tables:
                for key, rows in due.items():
                    writer.put(T.TABLE, key, rows)

    def close(self, run: "RunContext", status: str) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop(final=snapshot(run, state=status))
