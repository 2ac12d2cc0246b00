"""A steady flush of several ranks reads only the header of the gathered rows and hands the
window on unreduced (``GatheredWindow``): rank 0's writer reduces it for the stored rows,
many flushes at once, and a rank's training thread only when the script reads the result.

Checked here: the batched reduction equals the per-flush one (``buckets_of_rows`` +
``unpack``, the path every other flush takes) on random buckets from ``pack``; and real
ranks give the same returned statistics, ``get_stats`` and stored rows on the all_gather
transport (windows handed on) as on the all_reduce transport (every flush reduced at once),
both against a NumPy oracle, across more flushes than a rank keeps unreduced; and ranks
packing their window straight from one matrix (``pack_block``) beside ranks that do not.
"""

import os

import numpy as np
import pytest

from distlog import reduce as R
from distlog.entries import GatheredWindow, reduce_windows
from support.ranks import run_ranks

FIELDS = ("mean", "min", "max", "sum", "count", "nonfinite", "argmin_rank", "argmax_rank")


def _local(rng, keys, world_rank):
    """One rank's LocalStats: random presence, small integers (ties), NaN/inf sometimes."""
    n = len(keys)
    total, count, mn, mx, bad = (np.zeros(n), np.zeros(n), np.full(n, np.inf), np.full(n, -np.inf),
                                 np.zeros(n))
    for i in range(n):
        if rng.random() < 0.3:
            continue  # this rank has no value for the key
        vals = rng.integers(-3, 4, size=int(rng.integers(1, 4))).astype(float)
        if rng.random() < 0.2:
            vals[0] = rng.choice([np.nan, np.inf, -np.inf])
        fin = vals[np.isfinite(vals)]
        total[i], count[i], bad[i] = fin.sum(), len(fin), len(vals) - len(fin)
        if len(fin):
            mn[i], mx[i] = fin.min(), fin.max()
    return R.LocalStats(tuple(keys), total, count, mn, mx, bad)


def _gathered(rng, keys, world, seq):
    """The gathered rows of one flush: each rank's pack(s, m) side by side."""
    extra = np.zeros(3)
    rows = []
    for r in range(world):
        header = (rng.random(R.HEADER_LEN) < 0.1).astype(float)  # a flag now and then
        s, m = R.pack(keys, _local(rng, keys, r), header, R.FlushIdentity(seq, False, float(seq), None), None, extra)
        rows.append(np.concatenate([s, m]))
    return np.array(rows), s.size


@pytest.mark.parametrize("n", [1, 3, 10])
def test_a_steady_block_packs_as_its_statistics_do(n):
    """``pack_block`` (the steady flush's local work straight from one call site's matrix)
    gives the row ``pack`` gives from the matrix's statistics, slot for slot, for any flush
    identity; and leaves a block with a value that is not finite (or whose sums overflow) to
    ``pack``, which counts those apart."""
    rng = np.random.default_rng(n)
    keys = tuple(f"k{i}" for i in range(6))
    for ident in (R.FlushIdentity(3, False, 7.0, None), R.FlushIdentity(4, False, None, None),
                  R.FlushIdentity(5, True, 9.0, 9.0), R.FlushIdentity(0, False, -2.5, None)):
        for extra in (None, rng.normal(size=4)):
            v = rng.normal(size=(n, len(keys))) * 10.0 ** rng.integers(-3, 4, size=len(keys))
            header = [0.0, float(rng.integers(2)), 0.0, float(rng.integers(2)), float(rng.integers(2))]
            row, s_size = R.pack_block(v, None, len(keys), header, ident, extra)
            s, m = R.pack(keys, R.LocalStats(keys, *R.block_stats(v, axis=0)), header, ident,
                          np.arange(len(keys)), extra)
            assert s_size == s.size
            np.testing.assert_array_equal(row, np.concatenate([s, m]))
            # the columns a part of the union (an evaluation's keys absent this window), or
            # all of it in another order: at their union positions, the other keys empty
            for cols in (rng.permutation(len(keys)), rng.permutation(len(keys))[:4], np.array([5])):
                row, s_size = R.pack_block(v[:, : len(cols)], cols, len(keys), header, ident, extra)
                part = tuple(keys[c] for c in cols)
                s, m = R.pack(keys, R.LocalStats(part, *R.block_stats(v[:, : len(cols)], axis=0)), header,
                              ident, cols, extra)
                assert s_size == s.size
                np.testing.assert_array_equal(row, np.concatenate([s, m]), err_msg=str(cols))
    v = rng.normal(size=(n, len(keys)))
    for cols in (None, np.array([3, 1, 0])):
        w0 = v if cols is None else v[:, :3]
        for bad in (np.nan, np.inf, -np.inf):
            w = w0.copy()
            w[-1, 2] = bad
            assert R.pack_block(w, cols, len(keys), [0.0] * R.HEADER_LEN, R.FlushIdentity(1), None) is None
    # every value finite, a column's sum not; +inf beside -inf (their sum NaN): left to pack,
    # silently (a NumPy RuntimeWarning reached the user's stderr, and failed a run under -W error)
    huge = np.full((2, len(keys)), 1e308)
    both = v.copy()
    both[0, 1], both[-1, 1] = np.inf, -np.inf
    for w in (huge, both):
        assert R.pack_block(w, None, len(keys), [0.0] * R.HEADER_LEN, R.FlushIdentity(1), None) is None


@pytest.mark.parametrize("world", [2, 3, 5])
def test_batched_reduction_equals_each_flush_reduced_alone(world):
    rng = np.random.default_rng(world)
    keys = tuple(f"k{i}" for i in range(7))
    flushes = [_gathered(rng, keys, world, seq) for seq in range(40)]
    windows = [GatheredWindow(keys, rows, s_size, "mean") for rows, s_size in flushes]
    reduce_windows(windows[:25])  # as rank 0's writer does: many at once (in two batches)
    reduce_windows(windows[20:])
    ties = 0
    for (rows, s_size), w in zip(flushes, windows):
        s, m, ranks = R.buckets_of_rows(rows, s_size, R.MAX_HEADER_LEN)
        header, agreed, want = R.unpack(keys, s, m, ranks)
        h, a, any_value = R.header_of_rows(rows, s_size, len(keys))
        np.testing.assert_array_equal(h, header > 0)
        assert a == agreed
        assert any_value == bool(((want.count + want.nonfinite) > 0).any())
        got = w.reduced()
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f), err_msg=f)
        k, st, mask = w.present()
        wk, wst, wmask = R.present_rows(want, "mean")
        assert k == wk
        np.testing.assert_array_equal(st, wst)
        np.testing.assert_array_equal(mask, wmask)
        top = rows[:, s_size + R.MAX_HEADER_LEN : s_size + R.MAX_HEADER_LEN + len(keys)]
        ties += int(((top == top.max(axis=0)) & np.isfinite(top)).sum(axis=0).max() > 1)
    assert ties  # the lowest-rank rule was exercised


FLUSHES, KEYS = 150, ("a", "b", "c", "d")


def _values(flush, rank):
    """Rank ``rank``'s values per key at ``flush`` (steps increase; every key in the union
    from the first flush on, each missing here and there; one flush without any value)."""
    if flush == 77:
        return {}
    rng = np.random.default_rng([flush, rank])
    out = {}
    for k in KEYS:
        if flush and rng.random() < 0.25:
            continue
        vals = rng.integers(-4, 5, size=int(rng.integers(1, 4))).astype(float)
        if rng.random() < 0.15:
            vals[-1] = rng.choice([np.nan, np.inf])
        out[k] = vals.tolist()
    return out


def _worker(rank, world, root):
    import distlog
    import distlog.metrics

    # ranks other than 0 reduce the windows they keep in batches: rank 1 by their bytes,
    # rank 2 by their number
    distlog.metrics.UNSETTLED_MAX, distlog.metrics.UNSETTLED_BYTES = (1000, 4096) if rank == 1 else (40, 1 << 30)
    exp = distlog.get_logger(root, heartbeat_interval=0)
    got, calls, held = [], [], 0
    with exp.run("gathered"):
        run, m = exp.current_run, exp.metrics("t")
        for f in range(FLUSHES):
            for k, vals in _values(f, rank).items():
                for v in vals:
                    m.collect(step=f, **{k: v})
            before = run.comm.calls
            red = m.flush()
            calls.append(run.comm.calls - before)
            pending = m._core._unsettled  # the windows this rank keeps stay bounded
            held = max(held, sum(w.nbytes for w in pending))
            assert len(pending) <= distlog.metrics.UNSETTLED_MAX + 64
            if f % 7 == 3:  # the script reads some results (reduced there and then)
                got.append((f, {k: [float(getattr(red, c)[i]) for c in FIELDS] for i, k in enumerate(red.keys)}))
        stats = {k: m.get_stats(k, window=50) for k in KEYS}
        summary = {k: [sorted(d.items()) for d in m.get_summary(k, 25)] for k in KEYS}
    if rank == 1 and os.environ.get("DISTLOG_GATHER_MAX_BYTES") != "0":  # (a window: ~1 KiB)
        assert 0 < held <= distlog.metrics.UNSETTLED_BYTES + 2048, held
    return got, calls, {k: (s.mean, s.min, s.max, s.count) for k, s in stats.items()}, summary


def _oracle(flush, world, key):
    vals = np.array([v for r in range(world) for v in _values(flush, r).get(key, [])], dtype=float)
    fin = vals[np.isfinite(vals)]
    if not len(vals):
        return None
    return (fin.mean() if len(fin) else np.nan, fin.min() if len(fin) else np.nan,
            fin.max() if len(fin) else np.nan, float(len(fin)), float(len(vals) - len(fin)))


def _same(a, b, what):
    """Two ranks' (or runs') read flush results: the same flushes, keys and statistics (NaN alike)."""
    assert [(f, list(d)) for f, d in a] == [(f, list(d)) for f, d in b], what
    np.testing.assert_array_equal(np.array([list(d.values()) for _, d in a]),
                                  np.array([list(d.values()) for _, d in b]), err_msg=what)


@pytest.mark.dist
@pytest.mark.timeout(300)
def test_handed_on_windows_equal_flushes_reduced_at_once(tmp_path):
    import distlog

    world = 3
    out = {}
    for transport, env in (("all_gather", {}), ("all_reduce", {"DISTLOG_GATHER_MAX_BYTES": "0"})):
        root = str(tmp_path / transport)
        res = run_ranks(_worker, world, tmp_path, root, timeout=240, env=env)
        for r in range(1, world):  # every rank returns the same statistics
            _same(res[0][0], res[r][0], f"{transport}: rank {r}")
        run = distlog.open_run(f"{root}/default/gathered")
        stored = {k: run.metrics.read(f"t/{k}").to_frame() for k in KEYS}
        out[transport] = (res, stored)
    (gres, gstored), (rres, rstored) = out["all_gather"], out["all_reduce"]
    # one all_gather per flush once the keys are agreed (the first flush exchanges them);
    # the all_reduce transport's take 2 + 1 (ranks) calls
    assert set(gres[0][1][1:]) == {1} and set(rres[0][1][1:]) == {3}
    for r in range(world):
        _same(gres[r][0], rres[r][0], f"rank {r}")
        np.testing.assert_array_equal(np.array(list(gres[r][2].values())), np.array(list(rres[r][2].values())))
        for k in KEYS:  # per-window summaries (steps and values) from the stats cache
            assert [[n for n, _ in d] for d in gres[r][3][k]] == [[n for n, _ in d] for d in rres[r][3][k]]
            np.testing.assert_array_equal(np.array([[v for _, v in d] for d in gres[r][3][k]]),
                                          np.array([[v for _, v in d] for d in rres[r][3][k]]), err_msg=k)
    for k in KEYS:
        a, b = gstored[k].drop(columns="time"), rstored[k].drop(columns="time")
        assert list(a.columns) == list(b.columns)
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy(), err_msg=k)
        # and against NumPy: one row per flush with any value for the key, at its step
        want = [(f, _oracle(f, world, k)) for f in range(FLUSHES)]
        want = [(f, o) for f, o in want if o is not None]
        assert a["step"].tolist() == [float(f) for f, _ in want]
        np.testing.assert_allclose(a[["mean", "min", "max", "count", "nonfinite"]].to_numpy(),
                                   np.array([o for _, o in want]), rtol=1e-12, equal_nan=True)
    for f, per_key in gres[0][0]:
        for k, vals in per_key.items():
            o = _oracle(f, world, k.split("/")[-1])
            if o is not None:
                np.testing.assert_allclose(vals[:3] + vals[4:6], list(o), rtol=1e-12, equal_nan=True)


def _block_steps(flush, rank):
    """Rank ``rank``'s ``collect()`` dicts at ``flush``, one per step: every key, in one order
    per rank (the steady loop, packed straight from its matrix), now and then a value that is not
    finite, or a step with a key left out (that rank's window then takes the general path
    while the others take the steady one); and windows without "d" (a key of the union
    collected only now and then, as an evaluation's: packed straight as well)."""
    rng = np.random.default_rng([flush, rank, 7])
    # each rank its own key order (rank 0 the union's; the others' columns are put in it)
    order = [KEYS, KEYS[::-1], ("c", "a", "d", "b")][rank % 3]
    if flush > 1 and (flush % 4 == 1 or rng.random() < 0.15):  # (every rank at times: no row)
        order = tuple(k for k in order if k != "d")
    steps = []
    for _ in range(int(rng.integers(1, 4))):
        d = {k: float(rng.integers(-4, 5)) for k in order}
        if rng.random() < 0.08:
            d["b"] = float(rng.choice([np.nan, np.inf, -np.inf]))
        if flush and rng.random() < 0.05:
            del d["c"]
        steps.append(d)
    return steps


def _block_worker(rank, world, root):
    import distlog
    from distlog import reduce as R

    packed = []  # (whether the block was part of the union, what pack_block gave)
    real = R.pack_block
    R.pack_block = lambda *a: packed.append((a[1] is not None and len(a[1]) < a[2], real(*a))) or packed[-1][1]
    exp = distlog.get_logger(root, heartbeat_interval=0)
    got = []
    with exp.run("block"):
        m = exp.metrics("t")
        for f in range(FLUSHES):
            for d in _block_steps(f, rank):
                m.collect(d, step=f)
            red = m.flush()
            if f % 5 == 2:
                got.append((f, {k: [float(getattr(red, c)[i]) for c in FIELDS] for i, k in enumerate(red.keys)}))
    return got, sum(p is not None for _, p in packed), sum(part and p is not None for part, p in packed)


@pytest.mark.dist
@pytest.mark.timeout(300)
def test_steady_blocks_packed_at_some_ranks_equal_numpy(tmp_path):
    """Ranks whose window is one matrix of every key pack it straight (``pack_block``) while
    another rank, in the same flush, takes the general path (a key left out, a value not
    finite): the returned and stored statistics equal NumPy over every rank's values, on both
    transports."""
    import distlog

    world = 3

    def oracle(f, key):
        vals = np.array([d[key] for r in range(world) for d in _block_steps(f, r) if key in d])
        fin = vals[np.isfinite(vals)]
        return (fin.mean() if len(fin) else np.nan, fin.min() if len(fin) else np.nan,
                fin.max() if len(fin) else np.nan, float(len(fin)), float(len(vals) - len(fin)))

    for transport, env in (("all_gather", {}), ("all_reduce", {"DISTLOG_GATHER_MAX_BYTES": "0"})):
        root = str(tmp_path / transport)
        res = run_ranks(_block_worker, world, tmp_path, root, timeout=240, env=env)
        for r in range(world):
            assert res[r][1] > FLUSHES // 2, (transport, r, res[r][1])  # the steady packing ran
            assert res[r][2] > FLUSHES // 5, (transport, r, res[r][2])  # of a part of the union too
            _same(res[0][0], res[r][0], f"{transport}: rank {r}")
        for f, per_key in res[0][0]:
            for k, vals in per_key.items():
                np.testing.assert_allclose(vals[:3] + vals[4:6], list(oracle(f, k.split("/")[-1])),
                                           rtol=1e-12, equal_nan=True, err_msg=f"{transport} {f} {k}")
        run = distlog.open_run(f"{root}/default/block")
        for k in KEYS:
            a = run.metrics.read(f"t/{k}").to_frame()
            steps = [f for f in range(FLUSHES) if any(k in d for r in range(world) for d in _block_steps(f, r))]
            assert len(steps) < FLUSHES or k != "d"
            assert a["step"].tolist() == [float(f) for f in steps]
            np.testing.assert_allclose(a[["mean", "min", "max", "count", "nonfinite"]].to_numpy(),
                                       np.array([oracle(f, k) for f in steps]), rtol=1e-12,
                                       equal_nan=True, err_msg=f"{transport} {k}")


def test_a_result_computed_on_first_use_pickles_and_copies_as_a_reduced(tmp_path):
    """flush()'s result when the window went on unreduced (one process here; a steady flush of
    several ranks alike) is a LazyReduced: it must pickle, deep-copy and ``replace`` like the
    plain Reduced the general path returns (a script may checkpoint or broadcast it)."""
    import copy
    import dataclasses
    import pickle

    import distlog

    exp = distlog.get_logger(str(tmp_path))
    with exp.run("lazy"):
        exp.metrics.collect({"a": 1.0, "b": float("nan")}, step=0)
        exp.metrics.flush()
        exp.metrics.collect({"a": 3.0, "b": 2.0}, step=1)
        red = exp.metrics.flush()
        assert isinstance(red, R.LazyReduced)
        for other in (pickle.loads(pickle.dumps(red)), copy.deepcopy(red), copy.copy(red)):
            assert type(other) is R.Reduced and red == other  # (LazyReduced's NaN-aware ==)
        assert dataclasses.replace(red, keys=("x", "y")).keys == ("x", "y")
        assert float(red.mean[0]) == 3.0 and float(red.count[1]) == 1.0
    rows = np.array([[float(i)] * 8 for i in range(2)]).T  # any statistics, as computed
    lazy = R.LazyReduced(("p", "q"), lambda: R.Reduced(("p", "q"), *rows))
    back = pickle.loads(pickle.dumps(lazy))  # never read before: computed to be pickled
    assert back.keys == ("p", "q")
    for f, want in zip(FIELDS, rows):
        np.testing.assert_array_equal(getattr(back, f), want)
