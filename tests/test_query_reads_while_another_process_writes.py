"""Reading a run while another process writes it: only committed rows, never a torn line,
never a failure; ``follow`` streams every new line once, in order, and ends with the run."""

from __future__ import annotations

import time

import numpy as np
import pytest

from distlog.query import open_run
from support.live_writer import STEPS, start_live_writer


def _line_numbers(records) -> list[int]:
    return [int(r.message.split()[1]) for r in records if r.message.startswith("line ")]


@pytest.mark.timeout(180)
def test_reader_sees_consistent_prefixes_while_writing(tmp_path):
    proc, url = start_live_writer(tmp_path)
    reads, last_rows, last_lines = 0, 0, 0
    try:
        while True:
            alive = proc.is_alive()
            run = open_run(url)
            if "x" in run.metrics.keys():
                s = run.metrics.read("x")
                n = len(s)
                assert n >= last_rows  # committed rows only grow
                np.testing.assert_array_equal(s["step"], np.arange(n))  # no fill values, no gaps
                np.testing.assert_array_equal(s["value"], np.arange(n))
                last_rows = n
            if "y" in run.metrics.keys():
                y = run.metrics["y"]
                assert not y.isna().any().any() and (y["count"] == 100).all()
            nums = _line_numbers(run.logs.query())
            assert nums == list(range(len(nums)))  # whole lines, in order, none torn
            assert len(nums) >= last_lines
            last_lines = len(nums)
            tail = _line_numbers(run.logs.query(tail=3, grep="^line"))
            assert tail == sorted(tail) and all(b == a + 1 for a, b in zip(tail, tail[1:]))
            if not alive:
                break
            reads += run.info.status == "running"  # (the process may be closing the run)
    finally:
        proc.join(60)
    assert proc.exitcode == 0
    assert reads >= 3, "the writer finished before the reader could look"
    run = open_run(url)
    assert run.info.status == "completed"
    assert len(run.metrics.read("x")) == STEPS
    assert _line_numbers(run.logs.query()) == list(range(STEPS))


@pytest.mark.timeout(180)
def test_follow_streams_every_line_once_in_order_and_ends_with_the_run(tmp_path):
    proc, url = start_live_writer(tmp_path, steps=600, pause=0.003)
    try:
        run = open_run(url)
        t0 = time.monotonic()
        got = list(run.logs.follow(tail=10**6, poll=0.05, lag=0.2, timeout=120))
        elapsed = time.monotonic() - t0
    finally:
        proc.join(60)
    assert proc.exitcode == 0
    assert _line_numbers(got) == list(range(600))
    assert got[-1].message == "run ended: completed"
    assert [r.time for r in got] == sorted(r.time for r in got)
    assert elapsed < 100
    # and a follow of a finished run prints its tail and stops at once
    done = list(open_run(url).logs.follow(tail=2, poll=0.01, lag=0.0))
    assert [r.message for r in done] == [got[-2].message, got[-1].message]
