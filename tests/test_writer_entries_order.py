"""Rows put by the training thread never overtake entries the writer thread took from its
entry list but has not queued yet (a general-path flush's ``put_many`` after steady flushes'
windows: the later rows went first and the earlier row was refused as a repeated step).

The writer thread is slowed down at exactly that point (its queue's ``put`` sleeps when the
writer thread queues a batch of entries): timing only, everything else is the real writer."""

import threading
import time

import pytest

import distlog
from distlog.writers import rowstore as RS


class _SlowWriterPuts:
    def __init__(self, q):
        self.q = q

    def put(self, item):
        if threading.current_thread().name == "distlog-writer" and type(item) is RS._Call:
            time.sleep(0.5)  # the writer thread, between taking its entries and queueing them
        self.q.put(item)

    def get(self, *a, **k):
        return self.q.get(*a, **k)

    def get_nowait(self):
        return self.q.get_nowait()


@pytest.mark.timeout(60)
def test_rows_put_while_the_writer_takes_its_entries_keep_their_order(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    exp.start_run("r")
    m = exp.metrics
    m.collect(step=0, a=0.0)
    m.flush()  # the general path (a new key): opens the writer
    w = exp.current_run.writers.main()
    w._q = _SlowWriterPuts(w._q)
    m.collect(step=1, a=1.0)
    m.flush()  # steady: a window on the entry list
    time.sleep(0.1)  # the writer's poll takes the entry list...
    m.collect(step=2, a=2.0, b=5.0)
    m.flush()  # ...while this general-path flush (new key b) hands over its rows
    exp.close()
    run = distlog.open_run(f"{tmp_path}/default/r")
    assert run.metrics.read("a").to_frame()["step"].tolist() == [0, 1, 2]
    assert run.metrics.read("a").to_frame()["mean"].tolist() == [0.0, 1.0, 2.0]
