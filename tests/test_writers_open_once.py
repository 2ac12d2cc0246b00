"""A run's writer opens once, whichever threads ask first.

``log()`` may be called from any thread (a system monitor's) while the training thread
collects and flushes. Two threads handing the run its first rows at the same moment each
opened a background writer: each took part of the rows, the commit of one lost the other's,
and the run ended ``completed`` with no word (5 runs of 8 in a user review; a leaked writer
thread per run in an HPO loop)."""

from __future__ import annotations

import threading
import time

import pytest

import distlog


@pytest.mark.timeout(120)
def test_two_threads_logging_their_first_rows_at_once_share_one_writer(tmp_path):
    earlier = _writer_threads()  # (another test's in this worker: not this one's to judge)
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        writers = exp.current_run.writers
        real = writers._open_writer

        def slow_open(*args):  # (as on an object store: it reads what earlier attempts stored)
            time.sleep(0.05)
            return real(*args)

        writers._open_writer = slow_open
        go = threading.Barrier(3)

        def monitor():
            go.wait()
            for step in range(300):
                exp.metrics("sys").log(step=step, cpu=float(step))

        def train():
            go.wait()
            for step in range(200):
                exp.metrics("train").collect(step=step, loss=float(step))
                if step % 10 == 9:
                    exp.metrics.flush()

        threads = [threading.Thread(target=monitor), threading.Thread(target=train)]
        for t in threads:
            t.start()
        go.wait()
        for t in threads:
            t.join(60)
        assert len(_writer_threads() - earlier) == 1
    assert not _writer_threads() - earlier
    run = distlog.open_run(f"{root}/default/r")
    assert run.metrics.lengths() == {"sys/cpu": 300, "train/loss": 20}
    assert run.metrics.read("sys/cpu")["value"].tolist() == [float(s) for s in range(300)]
    assert run.metrics.read("train/loss")["mean"].tolist() == [s * 10 + 4.5 for s in range(20)]


def _writer_threads() -> set:
    return {t for t in threading.enumerate() if t.name == "distlog-writer"}
