"""The one-process flush fast path gives what the general path gives, checked with NumPy.

A one-process steady-state flush (``_flush_one_process``) hands its window to the writer
thread and returns a lazily computed ``Reduced``. The same inputs with the fast path switched
off (the general path: pack, collective, unpack) must give the same ``Reduced`` and the same
stored rows, equal to a NumPy oracle; the integrity rules (strictly increasing steps, raw
statistics in ``get_stats``, ``last_step``) hold on both.
"""

import json
import os

import numpy as np
import pytest

import distlog
from distlog import reduce as R
from distlog.comm import Comm
from distlog.metrics import MetricsLogger
from distlog.storage import open_storage
from distlog.writers.rowstore import read_series

STATS = ("mean", "min", "max", "sum", "count", "nonfinite")


def _oracle(values):
    v = np.asarray(values, dtype=np.float64)
    fin = v[np.isfinite(v)]
    if not fin.size:
        return {"mean": np.nan, "min": np.nan, "max": np.nan, "sum": 0.0, "count": 0.0,
                "nonfinite": float((~np.isfinite(v)).sum())}
    return {"mean": fin.sum() / fin.size, "min": fin.min(), "max": fin.max(), "sum": fin.sum(),
            "count": float(fin.size), "nonfinite": float((~np.isfinite(v)).sum())}


def _windows(rng):
    """Flush windows: (view, {key: [values]}) — key order unsorted, one view namespaced, a key
    set that shrinks (union keys absent), a window with a NaN, a window of mixed key sets."""
    a = {k: list(rng.normal(size=7)) for k in ("zeta", "alpha", "mid")}
    return [
        ("", a),
        ("", {k: list(rng.normal(size=3)) for k in ("zeta", "alpha", "mid")}),
        ("", {"alpha": list(rng.normal(size=5))}),  # zeta and mid absent this window
        ("train", {"loss": list(rng.normal(size=4)), "acc": list(rng.uniform(size=4))}),
        ("train", {"loss": [1.0, float("nan"), 3.0], "acc": [0.5, 0.25, float("inf")]}),
        ("", {"alpha": [1e300, 1e300]}),  # a finite sum that overflows
    ]


def _run(root, run_id, windows, fast):
    exp = distlog.get_logger(root)
    results = []
    with exp.run(run_id):
        # a first flush with every key agrees the union (both runs take the general path here)
        exp.metrics.collect(step=0, zeta=0.0, alpha=0.0, mid=0.0)
        exp.metrics("train").collect(step=0, loss=0.0, acc=0.0)
        exp.metrics.flush()
        for w, (view, kv) in enumerate(windows, start=1):
            m = exp.metrics(view) if view else exp.metrics
            n = max(len(v) for v in kv.values())
            for i in range(n):
                vals = {k: v[i] for k, v in kv.items() if i < len(v)}
                m.collect(step=w * 100 + i, **vals)
            results.append(exp.metrics.flush())
    return results, open_storage(os.path.join(root, "default", run_id))


def _general_path_only(monkeypatch):
    """Switch the fast path off (it then always defers to the general path)."""
    monkeypatch.setattr(MetricsLogger, "_flush_one_process", lambda self, agg, step: None)


def test_fast_path_equals_general_path_and_numpy(root, monkeypatch):
    windows = _windows(np.random.default_rng(0))
    fast, fast_store = _run(root, "fast", windows, fast=True)
    assert all(isinstance(r, R.LazyReduced) for r in fast[1:])  # the fast path was taken
    _general_path_only(monkeypatch)
    slow, slow_store = _run(root, "slow", windows, fast=False)
    assert not any(isinstance(r, R.LazyReduced) for r in slow)
    union = ("alpha", "mid", "train/acc", "train/loss", "zeta")
    for (view, kv), f, s in zip(windows, fast, slow):
        assert f.keys == s.keys == union
        for key in union:
            name = key.split("/")[-1]
            mine = kv.get(name) if (view == "train") == key.startswith("train/") else None
            want = _oracle(mine if mine is not None else [])
            for c in STATS + ("argmin_rank", "argmax_rank"):
                fi, si = f.keys.index(key), s.keys.index(key)
                assert getattr(f, c)[fi] == pytest.approx(getattr(s, c)[si], nan_ok=True)
            for c in STATS:
                assert f[key][c] == pytest.approx(s[key][c], nan_ok=True, rel=1e-12)
                assert f[key][c] == pytest.approx(want[c], nan_ok=True, rel=1e-12), (key, c)
    for key in union:  # the stored series too, row for row
        a, b = read_series(fast_store, "scalars", key), read_series(slow_store, "scalars", key)
        np.testing.assert_array_equal(a[:, 0], b[:, 0])
        np.testing.assert_allclose(a[:, 2:], b[:, 2:], rtol=1e-12)
        assert a.shape[1] == 2 + len(R.STAT_COLUMNS)


def test_rows_are_stored_at_the_last_collected_step_with_the_chosen_aggregation(root):
    exp = distlog.get_logger(root)
    with exp.run("agg"):
        for w, agg in enumerate(("mean", "mean", "min", "max", "sum")):
            for s, v in enumerate([3.0, 1.0, 2.0]):
                exp.metrics.collect(step=3 * w + s, b=v, a=10 * v)
            red = exp.metrics.flush(agg)
            assert red["a"] == {"mean": 20.0, "min": 10.0, "max": 30.0, "sum": 60.0, "count": 3.0,
                                "nonfinite": 0.0}
        with pytest.raises(ValueError, match="_aggregation must be one of"):
            exp.metrics.flush("median")
    rows = read_series(open_storage(os.path.join(root, "default", "agg")), "scalars", "b")
    np.testing.assert_array_equal(rows[:, 0], [2, 5, 8, 11, 14])
    np.testing.assert_array_equal(rows[:, 2], [2.0, 2.0, 1.0, 3.0, 6.0])
    np.testing.assert_array_equal(rows[:, 3:], [[2.0, 1.0, 3.0, 6.0, 3.0, 0.0, 0.0, 0.0]] * 5)


def test_reduce_window_and_present_rows_match_numpy():
    rng = np.random.default_rng(1)
    keys = ("a", "b", "c", "d")
    ids = rng.permutation(np.repeat(np.arange(3), [4, 1, 6]))  # "d" has no value
    vals = rng.normal(size=ids.size)
    vals[3] = np.nan
    red = R.reduce_window(keys, ids, vals)
    for i, k in enumerate(keys):
        want = _oracle(vals[ids == i])
        assert [red[k][c] for c in STATS] == pytest.approx([want[c] for c in STATS], nan_ok=True, rel=1e-12)
    np.testing.assert_array_equal(red.argmin_rank, np.where(red.count > 0, 0.0, np.nan))
    np.testing.assert_array_equal(red.argmax_rank, red.argmin_rank)
    assert np.isnan(red.argmin_rank[3])
    present, rows, mask = R.present_rows(red, "max")
    assert present == ("a", "b", "c")
    np.testing.assert_array_equal(mask, [True, True, True, False])
    np.testing.assert_array_equal(rows[:, 0], red.max[:3])
    np.testing.assert_array_equal(rows, red.rows("max")[:3])


def test_lazy_reduced_computes_once_on_first_use():
    calls = []
    plain = R.reduce_window(("x", "y"), np.array([0, 1, 1]), np.array([1.0, 2.0, 4.0]))

    def compute():
        calls.append(1)
        return plain

    lazy = R.LazyReduced(("x", "y"), compute)
    assert len(lazy) == 2 and lazy.keys == ("x", "y") and not calls  # keys need no reduction
    assert lazy["y"] == {"mean": 3.0, "min": 2.0, "max": 4.0, "sum": 6.0, "count": 2.0, "nonfinite": 0.0}
    np.testing.assert_array_equal(lazy.rows("sum"), plain.rows("sum"))
    assert lazy == plain and calls == [1]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        lazy.nope  # noqa: B018


def test_collector_fast_path_equals_collect(root):
    rng = np.random.default_rng(4)
    v = rng.normal(size=(30, 3))
    exp = distlog.get_logger(root)
    got = []
    with exp.run("handles"):
        adds = [exp.metrics("h").collector(k) for k in ("b", "c", "a")]
        for w in range(3):
            for s in range(10):
                for add, x in zip(adds, v[w * 10 + s]):
                    add(float(x), w * 10 + s)
            got.append(exp.metrics.flush())
        adds[0](float("nan"), 30)  # a window where "c" and "a" are absent and "b" is NaN
        got.append(exp.metrics.flush())
    for w in range(3):
        for j, k in enumerate(("b", "c", "a")):
            want = _oracle(v[w * 10 : w * 10 + 10, j])
            assert [got[w][f"h/{k}"][c] for c in STATS] == pytest.approx([want[c] for c in STATS], rel=1e-12)
    assert got[3]["h/b"]["nonfinite"] == 1.0 and np.isnan(got[3]["h/a"]["mean"])
    rows = read_series(open_storage(os.path.join(root, "default", "handles")), "scalars", "h/c")
    np.testing.assert_array_equal(rows[:, 0], [9, 19, 29])


def test_repeated_step_still_raises_and_nothing_repeated_is_written(root):
    exp = distlog.get_logger(root)
    with exp.run("rep"):
        m = exp.metrics
        m.collect(step=0, a=1.0, b=2.0)
        m.flush()  # general path (new keys)
        m.collect(step=5, a=1.0, b=2.0)
        assert isinstance(m.flush(), R.LazyReduced)
        m.collect(step=5, a=7.0)  # the same step again: the general path names the key
        with pytest.raises(ValueError, match=r"flush at step 5 would write 'a'.*steps of a series must increase"):
            m.flush()
        m.collect(step=3, b=7.0)  # going back
        with pytest.raises(ValueError, match="'b'"):
            m.flush()
        with pytest.raises(ValueError, match="log\\(\\) of 'a' at step 5"):
            m.log(step=5, a=1.0)  # a flushed row at step 5 (settled from the fast path)
        m.log(step=6, c=1.0)
        m.collect(a=3.0)  # no step: one past the last flush's step (5)
        red = m.flush()
        assert isinstance(red, R.LazyReduced)
        m.collect(step=9, b=1.0)
        m.flush()
    store = open_storage(os.path.join(root, "default", "rep"))
    np.testing.assert_array_equal(read_series(store, "scalars", "b")[:, 0], [0, 5, 9])
    a = read_series(store, "scalars", "a")
    np.testing.assert_array_equal(a[:, 0], [0, 5, 6])
    np.testing.assert_array_equal(a[:, 2], [1.0, 1.0, 3.0])
    assert red["a"]["sum"] == 3.0
    assert json.loads(store.read_bytes("run.json"))["last_step"] == 9


def test_get_stats_reports_raw_values_after_fast_flushes(root):
    exp = distlog.get_logger(root)
    with exp.run("st"):
        m = exp.metrics
        vals = np.arange(30, dtype=np.float64)
        for w in range(3):
            for s in range(10):
                m.collect(step=w * 10 + s, x=float(vals[w * 10 + s]))
            m.flush()
        st = m.get_stats("x")
        assert (st.min, st.max, st.count, st.rows) == (0.0, 29.0, 30, 3)
        assert st.mean == pytest.approx(vals.mean())


def test_windows_reduced_together_equal_each_window_reduced_alone():
    """The writer reduces a run of queued windows in one pass (entries.reduce_windows); each
    window's statistics and stored rows equal the NumPy oracle of that window alone."""
    from distlog.entries import Window, reduce_windows, write_windows

    rng = np.random.default_rng(7)
    union = ("p/a", "p/b", "c", "d")
    positions = np.array([2, 3], dtype=np.intp)  # collector ids 0, 1 -> "c", "d"
    windows, oracles = [], []
    for w in range(40):
        dicts = []
        for _ in range(int(rng.integers(0, 5))):
            kt = ("a", "b") if rng.random() < 0.7 else ("b",)
            dicts.append({k: float(rng.normal()) for k in kt})
        if dicts and rng.random() < 0.2:
            dicts[0][next(iter(dicts[0]))] = float(rng.choice([np.nan, np.inf, -np.inf]))
        ids = [int(i) for i in rng.integers(0, 2, size=int(rng.integers(0, 4)))]
        vals = [float(v) for v in rng.normal(size=len(ids))]
        agg = ("mean", "min", "max", "sum")[w % 4] if w % 7 else "mean"
        windows.append(Window(union, {}, [("p/", list(dicts))], ids, vals, positions, agg))
        per_key = {k: [] for k in union}
        for d in dicts:
            for k, v in d.items():
                per_key["p/" + k].append(v)
        for i, v in zip(ids, vals):
            per_key[union[positions[i]]].append(v)
        oracles.append((per_key, agg))
    reduce_windows(windows[5:30])  # some reduced in a batch, the others alone on first use
    for w, (per_key, agg) in zip(windows, oracles):
        red = w.reduced()
        keys, rows, mask = w.present()
        assert keys == tuple(k for k in union if per_key[k])
        np.testing.assert_array_equal(mask, [bool(per_key[k]) for k in union])
        for k in union:
            want = _oracle(np.array(per_key[k]))
            assert [red[k][c] for c in STATS] == pytest.approx([want[c] for c in STATS], nan_ok=True, rel=1e-12)
        for k, row in zip(keys, rows):
            want = _oracle(np.array(per_key[k]))
            assert row[0] == pytest.approx(want[agg], nan_ok=True, rel=1e-12)
            fin = np.isfinite(per_key[k]).any()
            assert np.isnan(row[7]) != fin and np.isnan(row[8]) != fin  # argmin/argmax rank 0
    # the stored rows of a batch: every window at its step, only keys with a value
    class Table:
        def __init__(self):
            self.rows = {}

        def add(self, key, rows):
            self.rows.setdefault(key, []).extend(np.atleast_2d(rows).tolist())

        def add_many(self, keys, rows):
            for k, r in zip(keys, rows):
                self.add(k, r)

        add_block = add_many  # (row blocks of several keys: one per key)

    fresh = [Window(union, {}, [("p/", [{"a": 1.0, "b": float(s)}])], [0, 1], [2.0, 3.0], positions, "sum")
             for s in range(5)]
    fresh[2] = Window(union, {}, [("p/", [{"b": 9.0}])], [], [], positions, "sum")
    t = Table()
    for s, w in enumerate(fresh):  # handed on at their steps, as a flush does
        w.step, w.time = float(10 + s), 100.0 + s
    write_windows(t, fresh)
    assert [r[0] for r in t.rows["p/a"]] == [10, 11, 13, 14]
    assert [r[0] for r in t.rows["p/b"]] == [10, 11, 12, 13, 14]
    assert [r[2] for r in t.rows["p/b"]] == [0.0, 1.0, 9.0, 3.0, 4.0]
    assert [r[1] for r in t.rows["c"]] == [100.0, 101.0, 103.0, 104.0]
    assert [r[2] for r in t.rows["d"]] == [3.0] * 4


@pytest.mark.parametrize("odd", [None, "uniform", "uniform, finite", "uniform, a collector value", "missing key",
                                 "extra key", "second view"])
def test_one_call_site_batches_are_reduced_in_one_pass_and_match_numpy(odd, monkeypatch):
    """The usual loop (every collect() dict of a batch from one view with one key set, in any
    key order, some windows empty) takes the one-pass reduction (``entries._one_site``); with
    as many dicts in every window (a flush every n steps) one block reduced along its middle
    axis (``_reduce_uniform``); a batch with one odd dict takes the general grouping. All
    equal the NumPy oracle per window."""
    from distlog import entries
    from distlog.entries import Window, _one_site, reduce_windows

    uniform = []
    real_uniform = entries._reduce_uniform
    monkeypatch.setattr(entries, "_reduce_uniform", lambda *a: uniform.append(1) or real_uniform(*a))

    rng = np.random.default_rng(11)
    union = ("p/a", "p/b", "p/c", "q/a")
    positions = np.array([3])  # collector values: local id 0 is union position 3 ("q/a")
    windows, oracles = [], []
    for w in range(60):
        dicts = []
        for _ in range(3 if odd and odd.startswith("uniform") or not w else int(rng.integers(0, 4))):
            kt = list(("a", "b", "c"))
            rng.shuffle(kt)  # one key set, any order
            dicts.append({k: float(rng.normal()) for k in kt})
        if dicts and w % 9 == 4 and odd != "uniform, finite":
            dicts[-1]["b"] = float(rng.choice([np.nan, np.inf]))
        lists = [("p/", dicts)]
        if w == 30 and odd == "missing key":
            dicts.append({"a": 1.0, "c": 2.0})
        elif w == 30 and odd == "extra key":
            dicts.append({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
            union = union if "p/d" in union else union + ("p/d",)
        elif w == 30 and odd == "second view":
            lists.append(("q/", [{"a": 5.0}]))
        windows.append((lists, w % 4))
    out = []
    for i, (lists, agg_i) in enumerate(windows):
        ids, vals = ([0], [7.5]) if odd == "uniform, a collector value" and i == 17 else ([], [])
        w = Window(union, {}, [(p, list(d)) for p, d in lists], ids, vals, positions,
                   ("mean", "min", "max", "sum")[agg_i])
        per_key = {k: [] for k in union}
        for p, ds in lists:
            for d in ds:
                for k, v in d.items():
                    per_key[p + k].append(v)
        per_key["q/a"] += vals
        out.append((w, per_key))
    ws = [w for w, _ in out]
    assert (_one_site(ws) is not None) == (odd is None or odd.startswith("uniform"))
    reduce_windows(ws)
    assert bool(uniform) == (odd in ("uniform", "uniform, finite"))
    for w, per_key in out:
        red = w.reduced()
        for k in union:
            want = _oracle(np.array(per_key[k]))
            assert [red[k][c] for c in STATS] == pytest.approx([want[c] for c in STATS], nan_ok=True, rel=1e-12)


class _EchoComm(Comm):
    """A 2-rank ``Comm`` in one process whose peer holds the same values (a double of the
    transport only: the flush path under test is the general, multi-rank one)."""

    def __init__(self) -> None:
        self.rank, self.world_size, self.calls = 0, 2, 0

    def all_reduce(self, arr, op):
        return arr * 2 if op == "sum" else arr

    def all_gather_object(self, obj):
        return [obj, obj]

    def all_gather_array(self, arr):
        return np.stack([arr, arr])

    def broadcast_object(self, obj, src=0):
        return obj


@pytest.mark.parametrize("shuffled", [True, False])
@pytest.mark.parametrize("mixed", [False, True])
def test_general_flush_of_one_call_site_windows_matches_numpy(root, mixed, shuffled, monkeypatch):
    """The general (multi-rank) flush reduces a window whose values all came from one call
    site as one matrix (``_Core.one_site_stats``; packed straight from it, ``steady_block``,
    when the call site's keys are every local key in id order, as with a fixed key order); with a second
    call site or collector values it takes the bincount path. All equal NumPy over both
    ranks' values (the peer holds the same ones), NaN and inf included."""
    import distlog
    from distlog.metrics import _Core

    taken = []
    real, real_block = _Core.one_site_stats, _Core.steady_block
    monkeypatch.setattr(_Core, "one_site_stats", lambda self: taken.append(real(self)) or taken[-1])
    # (a window whose dicts happen to list every key in id order is packed straight from its
    # matrix: ``steady_block``, then ``pack_block``, or ``block_stats`` when a value is not finite)
    monkeypatch.setattr(_Core, "steady_block", lambda self: taken.append(real_block(self)) or taken[-1])
    rng = np.random.default_rng(5)
    exp = distlog.get_logger(root, comm=_EchoComm(), telemetry=False)
    exp.start_run("echo")
    m = exp.metrics("p")
    for w in range(6):
        seen = {k: [] for k in ("a", "b", "c")}
        for i in range(int(rng.integers(1, 6))):
            kt = ["a", "b", "c"]
            if shuffled:
                rng.shuffle(kt)
            d = {k: float(rng.normal()) for k in kt}
            if w % 2 and i == 0:  # every other window: a non-finite value
                d["b"] = float(rng.choice([np.nan, np.inf, -np.inf]))
            m.collect(d, step=w * 10 + i)
            for k, v in d.items():
                seen[k].append(v)
        if mixed:
            m.collect(step=w * 10 + 9, a=0.25)
            seen["a"].append(0.25)
            add = m.collector("c")
            add(-1.5)
            seen["c"].append(-1.5)
        red = m.flush()
        for k, vals in seen.items():
            want = _oracle(np.array(vals + vals))  # both ranks
            got = red[f"p/{k}"]
            assert [got[c] for c in STATS] == pytest.approx([want[c] for c in STATS], nan_ok=True, rel=1e-12)
    exp.close()
    matrix = [t for t in taken if t is not None]
    # the path each case is meant to take (the first window's values went through collect()'s
    # checking path, as every key's first value does: that window is reduced by bincount)
    assert len(matrix) == (0 if mixed else 5)
