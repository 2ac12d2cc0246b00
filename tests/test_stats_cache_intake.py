"""The stats cache and the keys' last flushed steps leave the reduction of one-process flush
windows to rank 0's writer: the training thread takes what the writer reduced already and
reduces windows itself only when a query needs them or too many wait (a bound in count and,
for MetricsCore, in bytes). Before, every 1,024 flushes the cache reduced on the training
thread every window the writer had not reached (8-27 ms there, 45 % of a tight loop's flush
time), and a one-process window counted no bytes, so any number of them could wait."""

import os
import threading

import numpy as np
import pytest

import distlog
from distlog import entries as E
from distlog import metrics as M
from distlog.entries import VALUE_BYTES, Window, reduce_windows
from distlog.stats import WAITING_MAX, ScalarCache
from distlog.storage import open_storage
from distlog.writers.rowstore import read_series

UNION = ("a", "b")


def _window(values: list[dict[str, float]]) -> Window:
    return Window(UNION, {}, [("", values)], [], [], np.arange(len(UNION)), "mean")


def _windows(n: int, rng: np.random.Generator) -> tuple[list[Window], np.ndarray]:
    vals = rng.normal(size=(n, 3, 2))  # three collect() calls per flush, two keys
    return [_window([{"a": float(r[0]), "b": float(r[1])} for r in w]) for w in vals], vals


def _at(w, step):
    w.step = float(step)  # (a flush hands a window on at its step: metrics._hand_on)
    return w


def test_the_cache_takes_only_windows_reduced_elsewhere_and_answers_like_numpy():
    rng = np.random.default_rng(0)
    cache = ScalarCache(window=100_000)
    ws, vals = _windows(3000, rng)
    for i, w in enumerate(ws[:2000]):
        cache.add_window(_at(w, i))
    assert not any(w.done for w in ws), "the training thread reduced windows nobody asked for"
    reduce_windows(ws[:1500])  # the writer's share, in order
    for i, w in enumerate(ws[2000:], start=2000):
        cache.add_window(_at(w, i))
    assert len(cache._pending) <= 3000 - 1500, "windows the writer reduced stayed waiting"
    assert not any(w.done for w in ws[1500:]), "the cache reduced what the writer had not reached"
    st = cache.stats("a")  # a query reduces the rest
    assert all(w.done for w in ws)
    a = vals[:, :, 0]
    assert st.rows == 3000 and st.count == a.size
    assert st.mean == pytest.approx(a.mean())
    assert (st.min, st.max) == (a.min(), a.max())
    assert st.var == pytest.approx(a.mean(axis=1).var())  # of the points: one per flush


def test_windows_nobody_reduces_are_reduced_once_the_bound_waits():
    rng = np.random.default_rng(1)
    cache = ScalarCache(window=10)
    ws, vals = _windows(WAITING_MAX, rng)
    for i, w in enumerate(ws):
        cache.add_window(_at(w, i))
    assert all(w.done for w in ws) and not cache._pending
    st = cache.stats("b", window=10)
    assert st.mean == pytest.approx(vals[-10:, :, 1].mean())


def test_a_one_process_window_counts_its_values_bytes_and_many_wait_no_longer(root, monkeypatch):
    # the writer is held back: the bytes bound makes the training thread settle the windows
    # itself, and every row still reaches the store once the writer goes on
    monkeypatch.setattr(M, "UNSETTLED_BYTES", 50 * 24 * VALUE_BYTES)
    go = threading.Event()
    write = E.write_windows

    def held(t, items):
        assert go.wait(60), "the test never let the writer go on"
        write(t, items)

    monkeypatch.setattr(E, "write_windows", held)
    exp = distlog.get_logger(root)
    keys = [f"k{j}" for j in range(12)]
    with exp.run("bytes"):
        m = exp.metrics
        core = m._core
        m.collect({k: 0.0 for k in keys}, step=0)
        m.flush()  # (the first flush agrees the union)
        most = 0
        for f in range(1, 200):
            for s in range(2):
                m.collect({k: float(f * 10 + s + j) for j, k in enumerate(keys)}, step=f)
            m.flush()
            w = core._unsettled[-1] if core._unsettled else None
            assert w is None or w.done or w.nbytes == 2 * 12 * VALUE_BYTES
            most = max(most, len(core._unsettled))
        assert most <= 51, f"{most} windows waited past the bytes bound (50)"
        assert m.get_stats("k3").count == 1 + 2 * 199
        go.set()
    rows = read_series(open_storage(os.path.join(root, "default", "bytes")), "scalars", "k3")
    np.testing.assert_array_equal(rows[:, 0], np.arange(200))
    assert rows[-1, 2] == pytest.approx(199 * 10 + 0.5 + 3)
