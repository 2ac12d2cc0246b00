"""``run.metrics.numpy(key)`` gives steps (and counts) as int64, as ``frame()`` and
``Series.step`` do; before, float64 (the README said readers return int64 steps)."""

from __future__ import annotations

import numpy as np

import distlog


def test_numpy_gives_int_steps_and_counts_where_exact(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0)
    with exp.run("r"):
        for step in range(5):
            exp.metrics.collect(step=step, loss=step / 2)
            exp.metrics.flush()
        exp.metrics.log(step=0.5, frac=1.0)
        exp.metrics.log(step=1.5, frac=2.0)
    run = distlog.open_run(tmp_path / "root" / "default" / "r")
    cols = run.metrics.numpy("loss")
    assert cols["step"].dtype == np.int64 and cols["step"].tolist() == list(range(5))
    assert cols["count"].dtype == np.int64 and cols["count"].tolist() == [1] * 5
    assert cols["mean"].dtype == np.float64 and cols["mean"].tolist() == [s / 2 for s in range(5)]
    frac = run.metrics.numpy("frac")["step"]  # (not integers: as stored)
    assert frac.dtype == np.float64 and frac.tolist() == [0.5, 1.5]
    assert run.metrics.frame("loss")["step"].tolist() == cols["step"].tolist()


def test_the_cli_prints_counts_as_whole_numbers(tmp_path):
    """``distlog metrics RUN a b --stat count --format json`` printed counts as 4.0."""
    import json
    import subprocess
    import sys

    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0)
    with exp.run("r"):
        for step in range(3):
            exp.metrics.collect(step=step, a=1.0, b=2.0)
            exp.metrics.collect(step=step, a=3.0)
            exp.metrics.flush()
        exp.metrics.log(step=3, b=1.0)
    out = subprocess.run([sys.executable, "-m", "distlog", "metrics", str(tmp_path / "root" / "default" / "r"),
                          "a", "b", "--stat", "count", "--format", "json"], capture_output=True, text=True, timeout=120)
    rows = json.loads(out.stdout)
    assert rows == [{"step": 0, "a": 2, "b": 1}, {"step": 1, "a": 2, "b": 1}, {"step": 2, "a": 2, "b": 1},
                    {"step": 3, "a": None, "b": 1}], out.stdout
    assert all(type(r["a"]) is int for r in rows[:3])
