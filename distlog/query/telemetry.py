"""``run.telemetry``: the rank x flush telemetry table, the straggler report and its heat map.

    tel = distlog.open_run("runs/mnist/run-a").telemetry
    tel.fields()                       # interval, wait_prev, cpu_percent, rss, ...
    m = tel.matrix("step_time")        # Matrix: step (flushes,), values (flushes, ranks)
    rep = tel.report()                 # Report: per-rank DataFrame + the slowest rank
    charts.telemetry_heatmap(tel.matrix("step_time"), "step_time").save("ranks.png")

Derived fields: ``step_time`` = ``interval`` / steps since the previous flush (NaN on an
attempt's first flush, whose interval includes start-up), ``wait`` = ``wait_prev`` moved back
to the flush it was measured in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..storage.base import StorageBackend
from ..telemetry import FIELDS, LEAD_COLUMNS, TABLE
from ..writers.rowstore import read_commit, read_series_attrs
from .errors import KeyNotFound, listing
from .series import exact_ints

if TYPE_CHECKING:
    import pandas as pd

DERIVED = ("step_time", "wait")
_L = len(LEAD_COLUMNS)


@dataclass(frozen=True)
class Matrix:
    """One telemetry field: ``values[i, r]`` is rank r's value at flush row i."""

    field: str
    step: np.ndarray
    time: np.ndarray
    flush: np.ndarray
    values: np.ndarray

    @property
    def ranks(self) -> int:
        return self.values.shape[1]


#: how much longer (%) the slowest rank's median step time must be than the median of the
#: others' for the report to name it: ranks of one job differ by a few % from noise alone
STRAGGLER_PERCENT = 5.0


@dataclass(frozen=True)
class Report:
    """The straggler report: ``ranks`` has one row per rank; the slowest rank and by how much
    its median step time exceeds the median over the other ranks' medians."""

    ranks: "pd.DataFrame"
    flushes: int  # flushes compared (an attempt's first flush is not: its interval has start-up)
    slowest: int | None
    slowest_step_time: float
    others_step_time: float

    @property
    def excess(self) -> float:
        """Seconds per step the slowest rank takes more than the others' median."""
        return self.slowest_step_time - self.others_step_time

    @property
    def straggler(self) -> int | None:
        """The slowest rank where the summary names it (its median step time at least
        ``STRAGGLER_PERCENT`` above the others'), else None (``slowest`` is set whenever two
        ranks have step times: one of two alike ranks is always the larger)."""
        if self.slowest is None:
            return None
        rel = self.excess / self.others_step_time * 100 if self.others_step_time > 0 else float("inf")
        return self.slowest if rel >= STRAGGLER_PERCENT else None

    def summary(self) -> str:
        if self.slowest is None:
            if len(self.ranks) < 2:
                return f"{self.flushes} flush(es) of one rank: no other rank to compare it with"
            return (f"{self.flushes} flush(es) with a step time so far: not enough telemetry to compare "
                    "ranks (a running run's rows are committed every few seconds; each flush() records "
                    "every rank's row; a run that only log()s has its closing flush's alone: flush() "
                    "every N steps on every rank)")
        rel = self.excess / self.others_step_time * 100 if self.others_step_time > 0 else float("inf")
        share = float(self.ranks.loc[self.ranks["rank"] == self.slowest, "slowest_share"].iloc[0])
        if self.straggler is None:  # (a tie made rank 0 "the slowest", at 0 %)
            return (f"no straggler: every rank's median step time is within {STRAGGLER_PERCENT:g}% "
                    f"of the median of the others (the largest, rank {self.slowest}'s "
                    f"{self.slowest_step_time:.4g} s, is {rel:.1f}% above {self.others_step_time:.4g} s) "
                    f"over {self.flushes} flushes")
        return (f"slowest rank: {self.slowest}, median step time {self.slowest_step_time:.4g} s, "
                f"{self.excess:.4g} s ({rel:.0f}%) more than the median of the other ranks "
                f"({self.others_step_time:.4g} s); slowest in {share:.0%} of {self.flushes} flushes")


class TelemetryReader:
    def __init__(self, storage: StorageBackend) -> None:
        self.storage = storage

    def fields(self) -> list[str]:
        """Stored fields (in ``telemetry.FIELDS`` order) plus the derived ones they allow."""
        have = set(read_commit(self.storage, TABLE).get("lengths", {}))
        stored = [f for f in FIELDS if f in have] + sorted(have - set(FIELDS))
        derived = [d for d, need in (("step_time", "interval"), ("wait", "wait_prev")) if need in have]
        return stored + derived

    def __bool__(self) -> bool:
        return bool(read_commit(self.storage, TABLE).get("lengths"))

    def matrix(self, field: str) -> Matrix:
        if field == "step_time":
            m = self.matrix("interval")
            return Matrix(field, m.step, m.time, m.flush, m.values / _steps(m)[:, None])
        if field == "wait":
            m, attrs = self._matrix("wait_prev")
            return Matrix(field, m.step, m.time, m.flush,
                          _shift_back(m, across_gaps=attrs.get("wait_prev") == "previous row"))
        return self._matrix(field)[0]

    def _matrix(self, field: str) -> tuple[Matrix, dict[str, Any]]:
        commit = read_commit(self.storage, TABLE)
        if not commit.get("lengths", {}).get(field):
            raise KeyNotFound(f"no telemetry field {field!r} in {self.storage.url}; fields: "
                              f"{listing(self.fields()) if commit else 'none (telemetry off, or no flush yet)'}")
        rows, attrs = read_series_attrs(self.storage, TABLE, field, commit)
        return Matrix(field, rows[:, 0], rows[:, 1], rows[:, 2], rows[:, _L:]), attrs

    def frame(self, field: str) -> "pd.DataFrame":
        """One field as a long table: ``step, time, flush, rank, <field>``."""
        import pandas as pd

        m = self.matrix(field)
        n, w = m.values.shape
        return pd.DataFrame({"step": exact_ints(np.repeat(m.step, w)), "time": np.repeat(m.time, w),
                             "flush": np.repeat(m.flush, w).astype(np.int64),
                             "rank": np.tile(np.arange(w), n), field: m.values.ravel()})

    def report(self) -> Report:
        """Per rank: median step time, median and total time waited in flushes, the share of
        flushes where it was the slowest (largest interval), CPU, and memory peaks."""
        import pandas as pd

        have = self.fields()
        st = self.matrix("step_time")
        iv = self.matrix("interval").values
        w = st.ranks
        cols: dict[str, Any] = {"rank": np.arange(w)}
        cols["step_time_median"] = _nanmedian(st.values)
        if "wait" in have:
            wait = self.matrix("wait").values
            cols["wait_median"] = _nanmedian(wait)
            # (a rank with no wait known has no total: not 0 s)
            cols["wait_total"] = np.where(np.isfinite(wait).any(axis=0), np.nansum(wait, axis=0), np.nan)
        counted = np.isfinite(iv).any(axis=1) & (st.flush > 0)
        slowest = np.zeros(w)
        if counted.any():
            picks = np.nanargmax(np.where(np.isfinite(iv[counted]), iv[counted], -np.inf), axis=1)
            slowest = np.bincount(picks, minlength=w) / counted.sum()
        cols["slowest_share"] = slowest
        for f, name, how in (("cpu_percent", "cpu_median", _nanmedian), ("rss", "rss_peak", _nanmax),
                             ("gpu_peak", "gpu_peak", _nanmax), ("gpu_reserved", "gpu_reserved_peak", _nanmax),
                             ("gpu_util", "gpu_util_median", _nanmedian)):
            if f in have:
                cols[name] = how(self.matrix(f).values)
        df = pd.DataFrame(cols)
        med = cols["step_time_median"]
        n = int(counted.sum())
        if w < 2 or not np.isfinite(med).any():
            return Report(df, n, None, float("nan"), float("nan"))
        worst = int(np.nanargmax(med))
        others = np.delete(med, worst)
        return Report(df, n, worst, float(med[worst]), float(np.nanmedian(others)))


def _steps(m: Matrix) -> np.ndarray:
    """Steps each row's window covered: the step advance since the previous flush row of the
    same attempt (NaN on an attempt's first flush, or where the step did not advance)."""
    d = np.diff(m.step, prepend=np.nan)
    first = (m.flush == 0) | (np.diff(m.flush, prepend=-1.0) <= 0)
    return np.where(first | ~(d > 0), np.nan, d)


def _shift_back(m: Matrix, across_gaps: bool = False) -> np.ndarray:
    """Row i gets row i+1's values where row i+1 is the next flush of the same attempt; with
    ``across_gaps`` (series stored with the previous row's wait: ``telemetry.ATTRS``) where it
    is a later flush of the same attempt (flushes between wrote no row; an attempt's first row
    after such flushes holds NaN, so nothing crosses into the attempt before)."""
    out = np.full_like(m.values, np.nan)
    if len(m.flush) > 1:
        nxt = (m.flush[1:] > m.flush[:-1]) if across_gaps else (m.flush[1:] == m.flush[:-1] + 1)
        out[:-1][nxt] = m.values[1:][nxt]
    return out


def _nanmedian(a: np.ndarray) -> np.ndarray:
    out = np.full(a.shape[1], np.nan)
    for r in range(a.shape[1]):
        col = a[:, r][np.isfinite(a[:, r])]
        if len(col):
            out[r] = np.median(col)
    return out


def _nanmax(a: np.ndarray) -> np.ndarray:
    fin = np.where(np.isfinite(a), a, -np.inf)
    out = fin.max(axis=0) if len(a) else np.full(a.shape[1], -np.inf)
    return np.where(np.isfinite(out), out, np.nan)
