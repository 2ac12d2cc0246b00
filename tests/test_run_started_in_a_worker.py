"""A run started on first use in a spawned multiprocessing worker is said to be the worker's own.

A module-level ``exp = get_logger(...)`` whose ``exp.metrics.log`` ran in spawned workers (a
DataLoader's, a Pool's) made one auto-named run per worker with no word: stray runs beside
the training's. A run opened on purpose (``with exp.run(...)``) is not warned about."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import distlog

SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, sys, warnings
    import distlog

    exp = distlog.get_logger(sys.argv[1], heartbeat_interval=0)

    def stray(i):
        exp.metrics.log(step=i, x=float(i))

    def on_purpose(i):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (any warning fails this worker)
            with exp.run(f"worker-{i}"):
                exp.metrics.log(step=i, x=float(i))

    if __name__ == "__main__":
        ctx = mp.get_context("spawn")
        for target in (stray, on_purpose):
            p = ctx.Process(target=target, args=(1,))
            p.start()
            p.join(60)
            print(target.__name__, p.exitcode, flush=True)
""")


@pytest.mark.timeout(180)
def test_a_run_a_spawned_worker_starts_on_first_use_is_named_a_workers_own(tmp_path):
    root = str(tmp_path / "root")
    script = tmp_path / "train.py"  # (spawn re-imports the main module: a file, not -c)
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), root], capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0 and proc.stdout.split() == ["stray", "0", "on_purpose", "0"], proc.stderr
    said = [line for line in proc.stderr.splitlines() if "multiprocessing worker" in line]
    assert len(said) == 1, proc.stderr
    assert "started a run of its own, default/" in said[0] and "Log from the main process" in said[0]
    runs = {r.info.run_id for r in distlog.open_root(root).runs()}
    assert "worker-1" in runs and len(runs) == 2
