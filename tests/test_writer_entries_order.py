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
        if threading.current_thread().name == "distlog-writer" and type(item) is RS._Entries:
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


@pytest.mark.timeout(60)
def test_entries_queued_one_after_another_are_handled_together_in_order(tmp_path):
    """A writer behind its training thread (as at close) finds its entries queued in many
    small batches: it hands those that follow one another to the handler together (up to a
    chunk's worth), and an item queued between them still comes between them."""
    w = RS.BackgroundWriter({}, commit_interval=3600)
    calls, order = [], []

    def handler(items, tables):
        calls.append(len(items))
        order.extend(items)

    append = w.attach_entries(handler)
    hold = threading.Event()
    w.call(lambda tables: hold.wait(10))  # the writer is busy while the batches queue
    n = 0
    for batch in range(6):
        for _ in range(512):
            append(n)
            n += 1
        w._take_entries()
        if batch == 3:
            w.call(lambda tables: order.append("call"))
    w._take_entries()
    hold.set()
    w.close(finalize=False, timeout=30)
    assert calls == [4 * 512, 2 * 512]  # (each batch of 512 on its own before)
    assert order == [*range(4 * 512), "call", *range(4 * 512, 6 * 512)]
    assert w._backlog == 0


@pytest.mark.timeout(60)
def test_batches_of_entries_together_stay_within_a_chunks_worth(tmp_path, monkeypatch):
    monkeypatch.setattr(RS, "ENTRY_SLICE", 1000)
    w = RS.BackgroundWriter({}, commit_interval=3600)
    calls = []
    append = w.attach_entries(lambda items, tables: calls.append(len(items)))
    hold = threading.Event()
    w.call(lambda tables: hold.wait(10))
    for _ in range(7):
        for i in range(300):
            append(i)
        w._take_entries()
    hold.set()
    w.close(finalize=False, timeout=30)
    assert calls == [900, 900, 300]
