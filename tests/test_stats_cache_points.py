"""``get_stats``/``get_summary``/``get_percentile`` keep the last ``window`` points of each
key, whatever the other keys do and whichever way its rows came (flushes, ``log()``).

The cache once held the last ``window`` *flushes*: a key present in one flush of several lost
points (a key of only early flushes vanished: ``KeyError``), and its logged points came before
its flushed ones whatever their steps."""

import numpy as np
import pytest

import distlog
from distlog.stats import ScalarCache


def _oracle(values):
    v = np.asarray(values, dtype=float)
    fin = v[np.isfinite(v)]
    return fin.mean(), fin.min(), fin.max(), len(fin)


@pytest.mark.parametrize("window", [5, 20])
def test_sparse_keys_keep_their_last_points(root, window):
    rng = np.random.default_rng(window)
    exp = distlog.get_logger(root, window=window)
    seen = {"rare": [], "half": [], "often": [], "loss": []}
    with exp.run("sparse"):
        m = exp.metrics
        for f in range(10 * window + 3):
            vals = {"loss": float(f)}
            if f == 0:
                vals["rare"] = 1.5  # known once, at the start
            if f % 2 == 0:
                vals["half"] = float(rng.normal())
            if f % 7 != 3:
                vals["often"] = float(rng.choice([rng.normal(), np.nan]))
            m.collect(vals, step=f)
            m.flush()
            for k, v in vals.items():
                seen[k].append((f, v))
            if f % 9 == 4:  # a query now and then (the rest materialised in runs)
                m.get_stats("loss")
        for k, pts in seen.items():
            last = pts[-window:]
            st = m.get_stats(k)
            mean, lo, hi, count = _oracle([v for _, v in last])
            assert st.rows == len(last), k
            assert (st.mean, st.min, st.max, st.count) == pytest.approx((mean, lo, hi, count)), k
            assert m.get_stats(k, window=2).rows == min(2, len(last))
            steps = [s["step"] for s in m.get_summary(k, 1)]
            assert steps == [float(f) for f, _ in last], k


def test_logged_and_flushed_points_of_one_key_follow_their_steps(root):
    exp = distlog.get_logger(root)
    with exp.run("mixed"):
        m = exp.metrics
        m.collect(step=0, x=0.0)
        m.flush()
        m.collect(step=5, x=5.0)
        m.flush()  # a flushed row at step 5, not taken by the cache yet
        m.log(step=10, x=10.0)  # then a logged one at step 10
        m.commit()
        assert m.get_stats("x", window=1).mean == 10.0
        assert [s["step"] for s in m.get_summary("x", 1)] == [0.0, 5.0, 10.0]


def test_reduced_rows_of_changing_key_sets_equal_numpy():
    """The general path's rows (``add_batch``: the keys of each flush) taken in runs."""
    rng = np.random.default_rng(3)
    cache = ScalarCache(window=7)
    keys_all = ("a", "b", "c", "d")
    seen = {k: [] for k in keys_all}
    sets = [("a", "b"), ("a", "b", "c"), ("d",)]
    for f in range(60):
        keys = sets[int(rng.integers(len(sets)))] if f % 10 else tuple(keys_all)
        rows = np.zeros((len(keys), 9))
        for u, k in enumerate(keys):
            v = float(rng.normal())
            rows[u, :7] = [v, v, v, v, v, 1.0, 0.0]  # value, mean, min, max, sum, count, nonfinite
            seen[k].append((f, v))
        cache.add_batch(keys, float(f), rows)
        if f % 13 == 5:
            cache.stats("a")
    for k, pts in seen.items():
        last = pts[-7:]
        st = cache.stats(k)
        assert st.rows == len(last)
        assert (st.mean, st.min, st.max, st.count) == pytest.approx(_oracle([v for _, v in last]))
        assert [s["step"] for s in cache.summary(k, 1)] == [float(f) for f, _ in last]


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_a_window_that_is_no_count_of_points_is_refused(bad):
    cache = ScalarCache(window=5)
    cache.add_batch(("a",), 0.0, np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"window must be a number of points, at least 1 .*got"):
        cache.stats("a", window=bad)
    assert cache.stats("a", window=1).rows == 1



def test_memory_per_key_stays_near_the_window(root):
    """A review of a wide run: 1,000 keys flushed every step held up to 20,000 points a key
    (the default window was 10,000, trimmed at twice it): about 1 GB, on every rank, growing
    for 20,000 flushes and slowing each flush. The default window is 1,000 now and a key
    keeps at most half a window more; get_stats over the window is unchanged."""
    exp = distlog.get_logger(root)
    keys = [f"k{i:03d}" for i in range(50)]
    with exp.run("wide"):
        for step in range(3_100):
            exp.metrics.collect({k: float(step) for k in keys}, step=step)
            exp.metrics.flush()
        cache = exp.metrics._synced_cache()
        assert cache.window == 1_000
        st = exp.metrics.get_stats("k007")
        assert st.count == 1_000 and st.mean == pytest.approx(np.mean(np.arange(2_100, 3_100)))
        held = [sum(len(b) for b in cache._blocks[k]) + len(cache._tails.get(k, ())) for k in keys]
        assert max(held) <= 1_500, max(held)
