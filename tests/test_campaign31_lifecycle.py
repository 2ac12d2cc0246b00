"""Campaign 31: the run lifecycle as training scripts really end it — sys.exit inside the run,
a forked child, Ctrl-C while closing, threads logging while the run closes."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import distlog
from distlog.layout import RUN_FILE


def _meta(root, exp, run):
    with open(os.path.join(root, exp, run, RUN_FILE)) as f:
        return json.load(f)


def _script(tmp_path, body):
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    return p


@pytest.mark.timeout(120)
def test_sys_exit_in_another_thread_or_caught_does_not_fail_the_run(tmp_path):
    """``sys.exit`` in a thread ends that thread only, and one the script catches ends
    nothing: a run left open to the exit hook still ends ``completed``."""
    root = str(tmp_path / "root")
    p = _script(tmp_path, f"""
        import sys, threading, distlog
        exp = distlog.get_logger({root!r}, heartbeat_interval=0)
        exp.start_run("r")
        exp.metrics.log(step=0, loss=1.0)
        t = threading.Thread(target=sys.exit, args=(4,))
        t.start(); t.join()
        try:
            sys.exit(0)
        except SystemExit:
            pass
    """)
    assert p.returncode == 0, p.stderr
    assert _meta(root, "default", "r")["status"] == "completed"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("scoped", [True, False])
@pytest.mark.parametrize("exit_code, preempt, status", [
    (0, False, "completed"), (None, False, "completed"), (3, True, "preempted"), (2, False, "failed")])
def test_sys_exit_inside_the_run_ends_it_as_the_program_meant(tmp_path, exit_code, preempt, status, scoped):
    """``sys.exit(0)`` inside ``with exp.run()`` is a normal end (it was recorded ``failed:
    SystemExit: 0``, with an ERROR in the log), and so is the preemption protocol's exit with
    code 3 once every rank agreed to stop (it was ``failed``, not ``preempted``). Another code
    without a stop is still a failure naming it. The same for a run the script started with
    ``start_run`` and never closed (the exit hook closes it: ``sys.exit(2)`` was recorded
    ``completed``)."""
    root = str(tmp_path / "root")
    # (unscoped: the run is started in experiment "e", whose scope the exit leaves first)
    opened = 'exp.run("r")' if scoped else 'contextlib.nullcontext(exp.start_run("r"))'
    p = _script(tmp_path, f"""
        import contextlib, sys, distlog
        exp = distlog.get_logger({root!r}, heartbeat_interval=0)
        with exp.experiment("e"), {opened}:
            for step in range(20):
                exp.metrics.collect(step=step, loss=float(step))
                if step % 10 == 9:
                    exp.metrics.flush()
                if step == 14:
                    if {preempt}:
                        exp.request_stop()
                        exp.metrics.flush()
                    sys.exit({exit_code!r})
    """)
    assert p.returncode == (exit_code or 0), p.stderr
    m = _meta(root, "e", "r")
    assert m["status"] == status, (m["status"], m["error"])
    if status == "failed":
        assert m["error"]["type"] == "SystemExit"
    else:
        assert m["error"] is None and "run failed" not in p.stderr
    loss = distlog.open_run(os.path.join(root, "e", "r")).metrics.read("loss").to_frame()
    assert loss["count"].sum() == 15 and loss["step"].iloc[-1] == 14  # the tail was flushed


@pytest.mark.timeout(120)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("child_logs", [False, True])
def test_a_forked_child_that_exits_does_not_end_the_parents_run(tmp_path, child_logs):
    """A child forked inside the run (a hand-rolled worker, a fork-started pool) that leaves
    the ``with`` block by ``sys.exit`` or exits normally closed the *parent's* run: run.json
    said ``failed: SystemExit`` while the parent went on writing, and stayed ``failed``."""
    root = str(tmp_path / "root")
    p = _script(tmp_path, f"""
        import json, os, sys, distlog
        exp = distlog.get_logger({root!r}, heartbeat_interval=0)
        with exp.experiment("f"), exp.run("r"):
            for step in range(50):
                exp.metrics.log(step=step, x=float(step))
            pid = os.fork()
            if pid == 0:
                if {child_logs}:
                    exp.logs.info("child")
                sys.exit(0)
            os.waitpid(pid, 0)
            with open(os.path.join({root!r}, "f", "r", "run.json")) as f:
                print("MID", json.load(f)["status"])
            for step in range(50, 100):
                exp.metrics.log(step=step, x=float(step))
    """)
    assert p.returncode == 0, p.stderr
    assert "MID running" in p.stdout, p.stdout + p.stderr
    m = _meta(root, "f", "r")
    assert m["status"] == "completed" and m["error"] is None and m["rank_errors"] == []
    run = distlog.open_run(os.path.join(root, "f", "r"))
    assert run.metrics.read("x").to_frame()["step"].tolist() == list(range(100))
    messages = [r.message for r in run.logs.query()]
    assert messages.count("run ended: completed") == 1 and not any("failed" in m for m in messages)


@pytest.mark.timeout(120)
def test_a_thread_logging_while_the_run_closes_loses_no_row_it_was_told_was_taken(tmp_path):
    """A system-monitor thread keeps calling ``log()`` while the main thread leaves the run:
    every call that returned is stored, the first one after the last flush raises
    ``RunStateError``. Calls made while close waited for the writer used to return and be
    dropped (tens of thousands here)."""
    import threading
    import time

    from distlog.errors import RunStateError

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0)
    taken, refused, started = [], [], threading.Event()
    with exp.experiment("t"), exp.run("r"):
        m = exp.metrics("sys")

        def monitor():
            i = 0
            started.set()
            while True:
                try:
                    m.log(step=i, cpu=float(i))
                except RunStateError as e:
                    refused.append(e)
                    return
                taken.append(i)
                i += 1

        t = threading.Thread(target=monitor)
        t.start()
        started.wait()
        time.sleep(0.3)
    t.join(60)
    assert not t.is_alive() and refused
    stored = distlog.open_run(os.path.join(root, "t", "r")).metrics.read("sys/cpu").to_frame()
    assert stored["step"].tolist() == taken


_SLOW_CLOSE = """
    import os, signal, threading, time, distlog
    from distlog.writers import rowstore

    write = rowstore.RowTable.write
    def slow_final_write(self, final=False):  # the store is slow at close: Ctrl-C comes in
        if final:
            time.sleep(0.6)
        return write(self, final=final)
    rowstore.RowTable.write = slow_final_write

    exp = distlog.get_logger({root!r}, heartbeat_interval=0)
    ctx = exp.experiment("k")
    ctx.__enter__()
    exp.start_run("r")
    for step in range(3000):
        exp.metrics.log({{"a": float(step)}}, step=step)
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C while closing
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("then, code, status", [
    ("raise", 130, "failed"),                            # Ctrl-C ends the program
    ("exp.close()", 0, "completed"),                      # caught; the script closes again
    ("pass", 0, "completed"),                             # caught and forgotten: closed at exit
])
def test_ctrl_c_while_the_run_closes_still_stores_its_rows(tmp_path, then, code, status):
    """Ctrl-C while ``close()`` waits for the writer left the run ``running`` with none of its
    rows stored: the run was already forgotten by its experiment (the exit hook skipped it), and
    on Python 3.11 the interrupted ``Thread.join`` marked the still-running writer stopped, so
    nothing waited for it. Now a later close (the script's, or the exit hook's) finishes it."""
    root = str(tmp_path / "root")
    body = textwrap.dedent(_SLOW_CLOSE.format(root=root)) + textwrap.dedent(f"""
        try:
            exp.close()
        except KeyboardInterrupt:
            print("interrupted")
            if {then!r} == "raise":
                raise
            {then}
    """)
    p = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=120)
    assert "interrupted" in p.stdout, p.stdout + p.stderr
    assert p.returncode in (code, -2 if code == 130 else code), p.stderr
    m = _meta(root, "k", "r")
    assert m["status"] == status, (m["status"], m["error"])
    if status == "failed":
        assert m["error"]["type"] == "KeyboardInterrupt"
    stored = distlog.open_run(os.path.join(root, "k", "r")).metrics.read("a").to_frame()
    assert stored["step"].tolist() == list(range(3000))
    assert "Exception in thread" not in p.stderr and "interpreter shutdown" not in p.stderr


@pytest.mark.timeout(120)
def test_values_another_thread_collects_during_a_flush_are_kept_for_the_next_one(tmp_path):
    """A flush took its window's lists with ``entries[:]`` and then emptied them with ``del
    entries[:]``: a value another thread (a data-loader thread collecting its queue length)
    appended in between was in neither window, lost without a word (~250 of 72,000, up to 10 %
    here, with a 1 µs switch interval). A flush now takes and removes the same prefix of each
    list, and a value of the checked path (a key's first, a NumPy scalar) is kept as a dict
    entry, not as an id and a value in two lists another thread appends to as well."""
    import sys
    import threading

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    sent = {"data/qlen": 0, "data2/x": 0}
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # thread switches inside the flush's few lines
    try:
        with exp.run("r"):
            m = exp.metrics
            done = threading.Event()

            def by_dict():
                view = m("data")
                while not done.is_set():
                    view.collect(qlen=1.0)
                    sent["data/qlen"] += 1

            def by_collector():
                add = m("data2").collector("x")
                while not done.is_set():
                    add(2.0)
                    sent["data2/x"] += 1

            threads = [threading.Thread(target=by_dict), threading.Thread(target=by_collector)]
            for t in threads:
                t.start()
            for step in range(4000):
                m("train").collect(step=step, loss=1.0)
                if step % 10 == 9:
                    m.flush()
            done.set()
            for t in threads:
                t.join()
    finally:
        sys.setswitchinterval(old)
    run = distlog.open_run(f"{tmp_path}/default/r")
    assert run.metrics.frame("train/loss")["count"].sum() == 4000
    for key, n in sent.items():
        f = run.metrics.frame(key)
        assert n > 0 and (f["count"].sum(), f["sum"].sum()) == (n, n * (1.0 if key == "data/qlen" else 2.0)), key


def test_a_key_another_thread_collects_first_during_a_flush_is_not_a_key_the_union_lacks(tmp_path, monkeypatch):
    """The one-process flush read the keys' union positions, then took the window: a key
    another thread's collect() registered in between came with its value in a window whose
    union lacked it, and the writer failed the run (KeyError). The thread switch is forced
    here at that point; the value now goes through the general flush, under its key."""
    from distlog import metrics as M

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        m = exp.metrics
        m.collect(a=1.0)
        m.flush(step=0)
        positions, fired = M._Core.positions, []

        def positions_then_another_thread(core):
            pos = positions(core)
            if not fired:
                fired.append(True)
                m("data").collect(qlen=np.float32(3.0))  # (what another thread does here)
            return pos

        monkeypatch.setattr(M._Core, "positions", positions_then_another_thread)
        m.collect(a=2.0)
        m.flush(step=1)
        monkeypatch.setattr(M._Core, "positions", positions)
        m.collect(a=3.0)
        m.flush(step=2)
    run = distlog.open_run(f"{tmp_path}/default/r")
    assert run.info.status == "completed"
    assert run.metrics.frame("a")[["step", "value"]].values.tolist() == [[0, 1], [1, 2], [2, 3]]
    assert run.metrics.frame("data/qlen")[["step", "value"]].values.tolist() == [[1, 3]]

