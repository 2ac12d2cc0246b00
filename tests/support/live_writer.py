"""A writer in another process, for tests that read a run while it is being written.

``start_live_writer(tmp_path)`` spawns a process that logs ``steps`` metric rows and log lines
into ``<tmp_path>/root`` (experiment ``live``, run ``w``), waits until the run exists and
returns ``(process, run_url)``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

STEPS = 1500


def _writer(root: str, ready: str, steps: int, pause: float) -> None:
    import distlog

    exp = distlog.get_logger(root, commit_interval=0.02, chunk_rows=64)
    with exp.experiment("live"), exp.run("w"):
        with open(ready + ".tmp", "w") as f:
            f.write(exp.run_url)
        os.replace(ready + ".tmp", ready)
        for i in range(steps):
            exp.metrics.log(step=i, x=float(i))
            exp.metrics.collect(step=i, y=float(i))
            exp.info(f"line {i} " + "x" * (i % 50), step=i)
            if i % 100 == 99:
                exp.metrics.flush()
            if pause:
                time.sleep(pause)


def start_live_writer(tmp_path, steps=STEPS, pause=0.0005):
    ready = str(tmp_path / "ready")
    proc = mp.get_context("spawn").Process(target=_writer, args=(str(tmp_path / "root"), ready, steps, pause))
    proc.start()
    deadline = time.monotonic() + 60
    while not os.path.exists(ready):
        assert proc.is_alive() or proc.exitcode == 0, f"writer died: {proc.exitcode}"
        assert time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.02)
    with open(ready) as f:
        return proc, f.read()
