"""Telemetry when some flushes have nothing to reduce: ``collect`` every 10th step, ``flush(step=)``
every 5th (a review's loop). Each row's ``interval`` covered only the time since the empty
flush before it while its steps counted from the previous row, so ``step_time`` came out at
half the truth, and the waits inside the empty flushes were dropped. An empty flush that
advances the step is training time: its interval counts in the next row, and every empty
flush's wait is kept (with the previous row's). Bounds are lower bounds on sleeps (a busy
machine only makes steps longer)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import distlog
from support.ranks import run_ranks

STEPS, SLEEP = 40, {0: 0.004, 1: 0.012}


def _sparse(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.experiment("e"), exp.run("sparse"):
        for step in range(STEPS):
            time.sleep(SLEEP[rank])
            if step % 10 == 9:
                exp.metrics.collect(step=step, loss=float(step))
            if step % 5 == 4:
                exp.metrics.flush(step=step)  # every other one has nothing collected
    return None


def _step_times(root: str) -> np.ndarray:
    tel = distlog.open_run(f"{root}/e/sparse").telemetry
    m = tel.matrix("step_time")  # (NaN: the first row, no steps before it; the closing one)
    return m.values[np.isfinite(m.values).all(axis=1)]


@pytest.mark.timeout(120)
def test_one_process_step_time_counts_the_empty_flushes_time(tmp_path):
    root = str(tmp_path / "root")
    _sparse(0, 1, root)
    st = _step_times(root)
    assert len(st) >= 2
    assert np.median(st) >= 0.85 * SLEEP[0], st  # it was about half


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_two_ranks_step_time_and_waits_count_the_empty_flushes(tmp_path):
    root = str(tmp_path / "root")
    run_ranks(_sparse, 2, tmp_path, root, timeout=120)
    st = _step_times(root)
    assert len(st) >= 2 and np.median(st[:, 1]) >= 0.85 * SLEEP[1], st  # the slow rank (it was about half)
    report = distlog.open_run(f"{root}/e/sparse").telemetry.report()
    assert report.slowest == 1
    waits = report.ranks["wait_total"].to_numpy()
    # rank 0 waits for rank 1 in every flush, the empty ones too: at least the sleeps' gap
    # over the windows after the first row (a loose bound: the machine may slow rank 0 too)
    assert waits[0] >= 0.5 * (SLEEP[1] - SLEEP[0]) * (STEPS - 10), waits
