"""A writer slower than the training loop (a wide run flushing every step on two cores, a
slow store) let the entries it had not written pile up without end: a review measured a
1,000-key run's process grow past 1.5 GB with thousands of windows queued. Past
``BACKLOG_BYTES`` the training thread that hands the writer more now waits for it to write
half; nothing is dropped."""

from __future__ import annotations

import time

import numpy as np
import pytest

import distlog
from distlog import entries
from distlog.writers import rowstore


def _run(tmp_path, monkeypatch, limit, how):
    from distlog import metrics

    monkeypatch.setattr(rowstore, "BACKLOG_BYTES", limit)
    # (entries not yet taken by the writer are counted once this many wait: bounded by
    # BACKLOG_BYTES plus this many entries; a busy writer takes its list only when idle)
    monkeypatch.setattr(metrics, "ENTRY_CHECK", 8)
    real = entries.write_windows
    real_log = entries.EntryHandler.__call__

    def slow(t, items):  # a writer slower than the loop: 1 ms an entry
        time.sleep(0.001 * len(items))
        real(t, items)

    def slow_log(self, items, tables):
        if items and type(items[0]) is tuple:
            time.sleep(0.001 * len(items))
        real_log(self, items, tables)

    monkeypatch.setattr(entries, "write_windows", slow)
    monkeypatch.setattr(entries.EntryHandler, "__call__", slow_log)
    exp = distlog.get_logger(str(tmp_path / how), heartbeat_interval=0, telemetry=False)
    keys = [f"k{i:02d}" for i in range(100)]
    most = 0
    with exp.run("r"):
        for step in range(400):
            if step % 4 == 0:
                time.sleep(0.0002)  # (a training step: the writer takes its entries meanwhile)
            vals = {k: float(step + i) for i, k in enumerate(keys)}
            if how == "flush":
                exp.metrics.collect(vals, step=step)
                exp.metrics.flush()
            else:
                exp.metrics.log(vals, step=step)
            writer = exp.metrics._core.log_writer  # (None until the first row handed on)
            if writer is not None:  # what it holds: taken and queued, and not taken yet
                most = max(most, writer._backlog + sum(map(rowstore._entry_bytes, writer._entries[:])))
    run = distlog.open_run(tmp_path / how / "default" / "r")
    for i in (0, 57, 99):
        s = run.metrics.read(f"k{i:02d}")
        assert s.step.tolist() == list(range(400))
        np.testing.assert_array_equal(s["value"], np.arange(400.0) + i)
    return most


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["flush", "log"])
def test_the_backlog_a_slow_writer_holds_is_bounded_and_nothing_is_lost(tmp_path, monkeypatch, how):
    limit = 60_000
    unbounded = _run(tmp_path / "before", monkeypatch, 1 << 40, how)
    bounded = _run(tmp_path / "after", monkeypatch, limit, how)
    assert unbounded > 4 * limit, unbounded  # (the writer does fall behind here)
    assert bounded <= 3 * limit, (bounded, limit)
