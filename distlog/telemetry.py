"""Per-rank telemetry sampled at each flush, riding in the flush's SUM bucket.

Every rank fills only its own row of a ``world_size x len(FIELDS)`` block at the end of the
SUM bucket (``reduce.pack(extra=...)``); the others leave zeros, so the summed block is every
rank's row: a gather with no extra collective, on both transports. Rank 0 writes one row per
field per flush to the ``telemetry`` table (docs/FORMAT.md): ``step, time, flush`` then one
column per rank.

Fields (NaN where a rank cannot tell):

* ``interval``   seconds from the end of this rank's previous flush (or the run start) to its
  entry into this one: its own work in the window. The slowest rank has the largest.
* ``wait_prev``  seconds this rank spent inside the collective of the flush of the *previous
  row* (a rank only knows it after the collective): the fastest ranks wait most. Readers
  shift it back one row (``TelemetryReader``: column ``wait``). A flush that writes no row (an
  evaluation's flush with no value) carries the previous row's wait to the next row; NaN
  where it is not known (the first row of an attempt after such flushes). One that writes no
  row but advances the step (``flush(step=)`` with nothing collected) was training: its wait
  adds to the previous row's, its interval to the next row's.
* ``cpu_percent`` host CPU % since the previous sample; ``rss`` process resident bytes
  (psutil, or /proc without it).
* ``gpu_allocated``, ``gpu_reserved``, ``gpu_peak`` bytes (torch.cuda, only when torch is
  imported and CUDA initialised: never initialises CUDA itself) and ``gpu_util`` % (NVML via
  nvidia-ml-py when installed; skipped silently otherwise).

System fields are sampled at most every ``sample_interval`` seconds (they cost tens of µs;
a flush at one rank costs about as much), the timings at every flush (two clock reads). Rank
0 keeps each flush's summed slots in a buffer and hands them to the writer as rows about
once a second (``handoff_interval``) and at the closing flush: its floats kept in one list,
made an array at the hand-off.
"""

from __future__ import annotations

from .layout import TELEMETRY_TABLE

import os
import sys
import time
from typing import Any

import numpy as np

FIELDS = ("interval", "wait_prev", "cpu_percent", "rss", "gpu_allocated", "gpu_reserved",
          "gpu_peak", "gpu_util")
F_INTERVAL, F_WAIT, F_CPU, F_RSS = 0, 1, 2, 3
GPU_FIELDS = FIELDS[4:]
TABLE = TELEMETRY_TABLE
#: the attributes of every telemetry series array: ``wait_prev`` is the wait of the previous
#: row's flush even where flushes between wrote no row (arrays stored without it: of the
#: previous flush, so readers shift it back only between consecutive flushes)
ATTRS = {"wait_prev": "previous row"}
_WAIT = slice(F_WAIT, None, len(FIELDS))  # every rank's wait_prev slot in a summed block
#: leading columns of every telemetry series; then one column per rank
LEAD_COLUMNS = ("step", "time", "flush")


def without_interval(gathered: np.ndarray) -> np.ndarray:
    """A copy of a flush's summed slots with every rank's ``interval`` NaN (a flush that
    timed no training: the closing flush of a run whose ranks had nothing left to reduce)."""
    out = np.array(gathered, dtype=np.float64)
    out[F_INTERVAL :: len(FIELDS)] = np.nan
    return out


def columns(world_size: int) -> list[str]:
    return list(LEAD_COLUMNS) + [f"r{r}" for r in range(world_size)]


def chunk_rows(world_size: int) -> int:
    """Rows per chunk: about 128 KiB per chunk whatever the world size."""
    return max(16, min(1024, (1 << 17) // (8 * (len(LEAD_COLUMNS) + world_size))))


class _SystemProbe:
    """Host CPU %, RSS, and GPU figures; each source found once, skipped once it fails."""

    def __init__(self) -> None:
        # /proc where there is one (Linux: two small reads; importing psutil would cost a
        # run's open ~15 ms); psutil elsewhere, if installed
        self._cpu_prev: tuple[float, float] | None = _proc_cpu_times()
        self._psutil: Any = None
        self._proc: Any = None
        if self._cpu_prev is None:
            try:
                import psutil

                self._proc = psutil.Process()
                self._psutil = psutil
                psutil.cpu_percent(None)  # primes the "since the last call" counter
            except Exception:  # noqa: BLE001 - psutil is optional
                pass
        self._nvml: Any = None
        self._nvml_tried = False

    def sample(self, out: list[float]) -> None:
        out[F_CPU], out[F_RSS] = self._cpu(), self._rss()
        self._gpu(out)

    def _cpu(self) -> float:
        if self._psutil is not None:
            return float(self._psutil.cpu_percent(None))
        now = _proc_cpu_times()
        prev, self._cpu_prev = self._cpu_prev, now
        if now is None or prev is None or now[1] <= prev[1]:
            return np.nan
        return 100.0 * (1.0 - (now[0] - prev[0]) / (now[1] - prev[1]))

    def _rss(self) -> float:
        if self._proc is not None:
            return float(self._proc.memory_info().rss)
        try:
            with open("/proc/self/statm") as f:
                return float(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, IndexError):
            return np.nan

    def _gpu(self, out: list[float]) -> None:
        torch = sys.modules.get("torch")
        cuda = getattr(torch, "cuda", None)
        try:
            if cuda is None or not cuda.is_initialized():
                return
            dev = cuda.current_device()
            out[4] = cuda.memory_allocated(dev)
            out[5] = cuda.memory_reserved(dev)
            out[6] = cuda.max_memory_allocated(dev)
        except Exception:  # noqa: BLE001 - telemetry never fails a flush
            return
        handle = self._nvml_handle(dev)
        if handle is not None:
            try:
                out[7] = float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception:  # noqa: BLE001
                self._nvml = None

    def _nvml_handle(self, dev: int) -> Any:
        if not self._nvml_tried:
            self._nvml_tried = True
            try:
                import pynvml  # nvidia-ml-py

                pynvml.nvmlInit()
                self._nvml = pynvml
            except Exception:  # noqa: BLE001 - not installed, or no driver: skip silently
                self._nvml = None
        if self._nvml is None:
            return None
        try:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
            ids = [v.strip() for v in visible.split(",") if v.strip()]
            index = int(ids[dev]) if ids and ids[dev].isdigit() else dev
            return self._nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception:  # noqa: BLE001
            return None


def _proc_cpu_times() -> tuple[float, float] | None:
    """(idle, total) jiffies from /proc/stat, or None."""
    try:
        with open("/proc/stat") as f:
            parts = [float(x) for x in f.readline().split()[1:]]
        # guest and guest_nice (fields 9, 10) are already inside user and nice: not again
        return parts[3] + (parts[4] if len(parts) > 4 else 0.0), sum(parts[:8])
    except (OSError, ValueError, IndexError):
        return None


class Telemetry:
    """One rank's telemetry: ``enter()`` before the flush collective, ``exit()`` after."""

    def __init__(self, rank: int, world_size: int, sample_interval: float = 1.0,
                 handoff_interval: float = 1.0) -> None:
        self.rank, self.world_size = rank, world_size
        self.sample_interval = sample_interval
        self._probe = _SystemProbe()
        # this rank's row as Python floats (a flush sets two of them: no NumPy call per flush)
        self._row = [np.nan] * len(FIELDS)
        self._lo = rank * len(FIELDS)
        self._t_exit = time.time()
        self._t_enter = self._t_exit
        self._next_sample = 0.0
        # rank 0: flushes not yet handed to the writer, and which series are written (the GPU
        # ones only once some rank reported a GPU value)
        self.handoff_interval = handoff_interval
        self._keys: tuple[str, ...] = FIELDS[:4]
        self._last_step = -np.inf
        #: every kept flush: ``((step, time, seq), its summed slots)``, one append each (a
        #: KeyboardInterrupt between two lists' updates left them out of step for good)
        self._kept: list[tuple[tuple[float, float, int], Any]] = []
        self._next_handoff = 0.0
        self._row_seq: int | None = None  # the flush of the last row kept (this attempt)
        self._carry: np.ndarray | None = None  # every rank's wait in that flush, if known
        # flushes since that row that wrote none but advanced the step (flush(step=) with
        # nothing collected: training went on): every rank's waits and intervals in them, which
        # the next row's wait_prev and interval add; whether the last flush was such a one
        # (its wait comes with the flush after it)
        self._idle_waits: np.ndarray | float = 0.0
        self._idle_intervals: np.ndarray | float = 0.0
        self._idle_stepped = False

    def enter(self) -> tuple[float, ...] | np.ndarray:
        """This rank's slots for the SUM bucket (its own row filled, zeros elsewhere): a tuple
        for one process (its row: nothing to sum), else an array."""
        now = time.time()
        row = self._entered(now)
        if self.world_size == 1:
            return tuple(row)
        block = np.zeros(self.world_size * len(FIELDS))
        block[self._lo : self._lo + len(FIELDS)] = row
        return block

    def _entered(self, now: float) -> list[float]:
        """This rank's row on entering a flush at ``now`` (its interval; the system fields
        when a sample is due)."""
        row = self._row
        row[F_INTERVAL] = now - self._t_exit
        if now >= self._next_sample:
            self._probe.sample(row)
            self._next_sample = now + self.sample_interval
        self._t_enter = now
        return row

    @property
    def entered(self) -> float:
        """When this rank entered the current (or last) flush, epoch seconds."""
        return self._t_enter

    def exit(self) -> float:
        """After the collective; returns the time (epoch seconds)."""
        now = time.time()
        self._row[F_WAIT] = now - self._t_enter
        self._t_exit = now
        return now

    def local_flush(self, step: float, seq: int, values: bool, stepped: bool = False) -> dict[str, np.ndarray]:
        """``enter``, ``exit`` and ``add`` (or ``skip`` when no value came) of a one-process
        flush, at one clock read: it waits on no collective (``wait_prev`` 0)."""
        now = time.time()
        row = self._entered(now)
        self._t_exit = now
        slots = tuple(row)
        row[F_WAIT] = 0.0
        if not values:
            self.skip(seq, slots, stepped)
            return {}
        return self.add(step, seq, slots, now)

    def add(self, step: float, seq: int, gathered: np.ndarray, now: float,
            force: bool = False) -> dict[str, np.ndarray]:
        """Rank 0: keep one flush's summed slots; ``{field: rows}`` for the writer when a
        hand-off is due (or ``force``), else ``{}``. A flush whose step does not go past the
        last one kept is left out (steps of a series strictly increase)."""
        if step > self._last_step:
            self._last_step = step
            if seq != (0 if self._row_seq is None else self._row_seq + 1):
                # flushes since the last row wrote none: its flush's wait, carried by the
                # first of them (NaN if none came after a row of this attempt), plus their
                # own waits (this flush's slot holds the last one's); and the intervals of
                # those that advanced the step, training time of this row's steps
                gathered = np.array(gathered, dtype=np.float64)
                waits = self._idle_waits + (gathered[_WAIT] if self._idle_stepped else 0.0)
                gathered[_WAIT] = np.nan if self._carry is None else self._carry + waits
                gathered[F_INTERVAL :: len(FIELDS)] += self._idle_intervals
            self._kept.append(((step, now, seq), gathered if gathered.__class__ is tuple else gathered.tolist()))
            self._row_seq, self._carry = seq, None
            self._idle_waits = self._idle_intervals = 0.0
            self._idle_stepped = False
        else:
            self.skip(seq, gathered)
        if not self._kept or not (force or now >= self._next_handoff):
            return {}
        self._next_handoff = now + self.handoff_interval
        return self.drain()

    def skip(self, seq: int, gathered: np.ndarray, stepped: bool = False) -> None:
        """Rank 0: flush ``seq`` writes no row (no rank had a value, or its step does not go
        past the last row's); the first such flush after a row keeps that row's waits.
        ``stepped``: it advanced the step (``flush(step=)`` with nothing collected: a sparse
        ``collect``), so it was a training window: its interval and wait count in the next
        row's. One that did not (an evaluation's flush) stays out of the training windows."""
        if self._row_seq is None:
            return
        waits = np.array(gathered[_WAIT], dtype=np.float64)
        if seq == self._row_seq + 1:
            self._carry = waits
        elif self._idle_stepped:  # (the wait of the flush before, a stepped one)
            self._idle_waits = self._idle_waits + waits
        self._idle_stepped = stepped
        if stepped:
            self._idle_intervals = self._idle_intervals + np.array(
                gathered[F_INTERVAL :: len(FIELDS)], dtype=np.float64)

    def drain(self) -> dict[str, np.ndarray]:
        """``{field: rows}`` of every flush kept since the last hand-off (``{}`` if none)."""
        kept, self._kept = self._kept, []
        if not kept:
            return {}
        n, w, f = len(kept), self.world_size, len(FIELDS)
        block = np.array([slots for _, slots in kept], dtype=np.float64).reshape(n, w, f)  # (flushes, ranks, fields)
        if len(self._keys) < f and np.isfinite(block[:, :, 4:]).any():
            self._keys = FIELDS  # a GPU showed up: its series start here
        lead = np.array([head for head, _ in kept])
        out = {}
        for i, key in enumerate(self._keys):
            rows = np.empty((n, len(LEAD_COLUMNS) + w))
            rows[:, : len(LEAD_COLUMNS)] = lead
            rows[:, len(LEAD_COLUMNS):] = block[:, :, i]
            out[key] = rows
        return out
