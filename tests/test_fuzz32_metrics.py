"""Fuzz campaign 32: a seeded fuzz of ``exp.metrics`` across real gloo ranks against a NumPy
oracle (``support/metrics_fuzz.py``), and the bugs it found, each as a deterministic test.

* A thread's ``collect()`` of a key new to its rank while the training thread is inside a
  flush of several ranks: the flush paired the window's statistics (the keys before it) with
  the positions of every key (one more): ``IndexError`` on that rank alone, before the
  collective, so the ranks fell out of step (every later flush ``FlushMismatch``, or a wait
  for ``flush_timeout``) and no row was stored from there on.
* The same race inside ``_Core.positions()``: it re-read ``_pos``, which that ``collect()``
  sets to None, and returned None (a flush raised ``TypeError: object of type 'NoneType' has
  no len()``).
* ``flush("sum")`` of a window whose values were all NaN/inf stored ``value`` 0.0 (the sum of
  no finite value) where docs/FORMAT.md says ``value`` is NaN (``sum`` is 0): a series that
  went non-finite read as a clean zero.
"""

from __future__ import annotations

import inspect
import math
import sys
import threading

import numpy as np
import pytest

from support.ranks import run_ranks
from support import metrics_fuzz as F


# ---- the fuzz itself ---------------------------------------------------------------------------
# seeds picked to cover: world-size changes on resume (2 -> 1 -> 2), both transports, threads
# collecting across flushes, bad input on one rank, flush("max"/"min"/"sum"/bad), log() on
# both ranks (rank 0 also under a key the ranks collect), log_histogram, commit(barrier=True),
# flush() results read on every rank
FUZZ_SEEDS = [28, 64, 92, 11, 8, 100, 27, 51]


@pytest.mark.dist
@pytest.mark.timeout(240)
def test_fuzz_metrics_across_ranks_equals_numpy(tmp_path):
    res = F.run_seeds(FUZZ_SEEDS, tmp_path, timeout=150)
    problems = []
    for seed, (p, root, recs) in res.items():
        problems += F.check(seed, p, root, recs)
    assert not problems, "\n".join(x[:2000] for x in problems)


# ---- a thread's new key during a flush of several ranks ----------------------------------------
def _new_key_worker(rank, world, root, path):
    import distlog
    from distlog import metrics as M
    from distlog import reduce as R

    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=20)
    out = {}
    with exp.run("t"):
        m = exp.metrics
        side = exp.metrics("side")
        fired = []

        def other_thread_collects():
            # a data-loader thread collects a key new to this rank, right now
            t = threading.Thread(target=lambda: side.collect({f"k{len(fired)}": 7.0}))
            t.start()
            t.join()
            fired.append(1)

        if rank == 0:  # the thread runs just after this rank computed its window's statistics
            if path == "one_site":
                real = M._Core.one_site_stats

                def hooked(self):
                    got = real(self)
                    if got is not None and not fired:
                        other_thread_collects()
                    return got

                M._Core.one_site_stats = hooked
            else:
                real = R.summarize_ids

                def hooked(*a, **kw):
                    got = real(*a, **kw)
                    if not fired:
                        other_thread_collects()
                    return got

                M.R.summarize_ids = hooked
        for step in range(3):
            if path == "one_site":
                m.collect({"loss": float(step + rank)}, step=step)
            else:
                add = m.collector("loss")
                add(float(step + rank), step)
            m.flush()
        out["ok"] = True
    return out


@pytest.mark.dist
@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", ["one_site", "ids"])
def test_a_thread_new_key_during_a_flush_of_ranks_keeps_them_in_step(tmp_path, path):
    import distlog

    root = str(tmp_path / "root")
    res = run_ranks(_new_key_worker, 2, tmp_path, root, path, timeout=90, expect_failure=True)
    assert all(ok for ok, _ in res), "\n".join(str(v)[:3000] for _, v in res)
    run = distlog.open_run(f"{root}/default/t")
    loss = run.metrics.read("loss")
    assert loss["step"].tolist() == [0, 1, 2]
    np.testing.assert_array_equal(loss["sum"], [1.0, 3.0, 5.0])  # rank 0: s, rank 1: s + 1
    np.testing.assert_array_equal(loss["argmax_rank"], [1.0, 1.0, 1.0])
    # the thread's value went to the next flush (none lost)
    side = run.metrics.read("side/k0")
    assert side["step"].tolist() == [1] and side["count"].tolist() == [1.0]
    assert side["sum"].tolist() == [7.0]
    assert run.info.status == "completed"


# ---- the same race inside positions() (one process) -------------------------------------------
@pytest.mark.timeout(60)
def test_positions_survive_a_thread_registering_a_key_meanwhile(tmp_path):
    """A thread switch inside ``_Core.positions()`` after the positions were computed, to a
    thread whose ``collect()`` registers a new key (made deterministic with a trace hook)."""
    import distlog
    from distlog import metrics as M

    src, first = inspect.getsourcelines(M._Core.positions)
    after = first + next(i for i, line in enumerate(src) if "np.fromiter" in line)  # the computing line
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("p"):
        m, side = exp.metrics, exp.metrics("side")
        m.collect({"a": 1.0}, step=0)
        m.flush()
        m.collect({"b": 2.0}, step=1)  # a new key: the next flush computes positions again
        fired = []

        def tracer(frame, event, arg):
            if frame.f_code is not M._Core.positions.__code__:
                return None

            def local(frame, event, arg):
                if event == "line" and frame.f_lineno > after and not fired:
                    fired.append(1)
                    t = threading.Thread(target=lambda: side.collect({"new": 5.0}))
                    t.start()
                    t.join()
                return local
            return local

        sys.settrace(tracer)
        try:
            m.flush()
        finally:
            sys.settrace(None)
        assert fired
        m.collect({"a": 3.0}, step=2)
        m.flush()
    run = distlog.open_run(f"{tmp_path}/default/p")
    assert run.metrics.read("a")["step"].tolist() == [0, 2]
    assert run.metrics.read("b")["step"].tolist() == [1]
    new = run.metrics.read("side/new")  # collected during the flush at step 1: the next one's
    assert new["count"].tolist() == [1.0] and new["sum"].tolist() == [5.0]


# ---- flush("sum") of a window with no finite value ---------------------------------------------
@pytest.mark.timeout(60)
def test_sum_headline_of_a_window_without_a_finite_value_is_nan_one_process(tmp_path):
    import distlog

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("s"):
        m = exp.metrics
        got = []
        for step, vals in enumerate(([math.nan], [math.inf, 1.0], [-math.inf, math.nan], [2.0, 3.0])):
            for v in vals:
                m.collect({"x": v}, step=step)
            red = m.flush("sum")  # the first: a new key (general path); later: handed on
            got.append(red.rows("sum")[0, 0])
    run = distlog.open_run(f"{tmp_path}/default/s")
    s = run.metrics.read("x")
    # docs/FORMAT.md: a row with no finite value has value, mean, min, max NaN and sum 0
    np.testing.assert_array_equal(s["value"], [np.nan, 1.0, np.nan, 5.0])
    np.testing.assert_array_equal(s["sum"], [0.0, 1.0, 0.0, 5.0])
    np.testing.assert_array_equal(got, [np.nan, 1.0, np.nan, 5.0])


def _sum_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=30)
    with exp.run("s"):
        m = exp.metrics
        for step in range(3):
            # step 0: a new key (general path); then the steady path (the writer reduces)
            m.collect({"x": math.nan if step != 1 else float(rank)}, step=step)
            m.flush("sum")
    return True


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_sum_headline_of_a_window_without_a_finite_value_is_nan_ranks(tmp_path):
    import distlog

    root = str(tmp_path / "root")
    run_ranks(_sum_worker, 2, tmp_path, root, timeout=60)
    s = distlog.open_run(f"{root}/default/s").metrics.read("x")
    np.testing.assert_array_equal(s["value"], [np.nan, 1.0, np.nan])
    np.testing.assert_array_equal(s["sum"], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(s["nonfinite"], [2.0, 0.0, 2.0])
