"""A run killed while its close merges the logs table is recorded as it ended.

The logs table is an index of the per-rank text logs (a reader falls back to the text until
it is written). Before: rank 0 merged it first and wrote how the run ended (``run.json``)
after, so a SIGKILL (the OOM killer, a scheduler's grace period running out) during the merge
left a run that had finished every row "running", later "stale"."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import distlog
from distlog.layout import RUN_FILE

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import distlog, distlog.run

    def killed_while_merging(storage):  # the process dies part-way through the merge
        os.kill(os.getpid(), signal.SIGKILL)

    distlog.run.write_logs_table = killed_while_merging
    exp = distlog.get_logger(sys.argv[1], heartbeat_interval=0)
    with exp.run("r", params={"lr": 0.1}):
        for step in range(20):
            exp.metrics.log(step=step, loss=1.0 / (step + 1))
        exp.info("last line")
""")


def test_a_kill_during_the_logs_merge_leaves_a_finished_run_finished(tmp_path):
    root = tmp_path / "root"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr  # killed, at the merge
    meta = json.loads((root / "default" / "r" / RUN_FILE).read_text())
    assert meta["status"] == "completed", meta
    assert meta["ended"] and meta["last_step"] == 19
    run = distlog.open_run(root / "default" / "r")
    assert run.info.status == "completed"
    assert run.metrics.read("loss")["value"].tolist() == [1.0 / (s + 1) for s in range(20)]
    # the logs read from the text (no table was written)
    assert "last line" in [r.message for r in run.logs.query(level="INFO")]
