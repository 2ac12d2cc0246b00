"""A fork-started worker opens its own run after the parent ran one: it closes.

The parent's run made the writers' shared encoding pool; a forked child inherited the pool
without its threads, and the child's close waited for ever on a chunk submitted to it (a
SIGTERM's close hung again; a ``Pool(…).map`` of trials hung the parent too)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import distlog

SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, sys
    import distlog
    from distlog.writers import rowstore

    exp = distlog.get_logger(sys.argv[1], heartbeat_interval=0)
    wide = {f"w{k:02d}": float(k) for k in range(40)}  # (a close of this many chunks uses the pool)

    def trial(i):
        with exp.run(f"trial-{i}"):
            for s in range(20):
                exp.metrics.log(step=s, a=float(i), b=2.0 * s, **wide)
        return i

    if __name__ == "__main__":
        with exp.run("parent"):  # (its close encodes its chunks on the shared pool)
            for s in range(20):
                exp.metrics.log(step=s, a=1.0, b=2.0, **wide)
        print(rowstore._ENCODERS is not None)
        with mp.get_context("fork").Pool(2) as pool:
            print(pool.map_async(trial, range(4)).get(timeout=60))
""")


@pytest.mark.timeout(180)
def test_fork_started_workers_open_and_close_their_own_runs_after_the_parents(tmp_path):
    root = str(tmp_path / "root")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, root], capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["True", "[0,", "1,", "2,", "3]"]
    for i in range(4):
        run = distlog.open_run(f"{root}/default/trial-{i}")
        assert run.info.status == "completed"
        assert run.metrics.read("a")["value"].tolist() == [float(i)] * 20
        assert run.metrics.read("b")["value"].tolist() == [2.0 * s for s in range(20)]
