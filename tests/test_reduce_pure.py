"""The reduction maths without any process group, against NumPy directly."""

import numpy as np
import pytest

from distlog import reduce as R


def stats_of(keys_values):
    """Values interleaved across keys, as collect() sees them."""
    keys = list(keys_values)
    pairs = [(i, v) for i, k in enumerate(keys) for v in keys_values[k]]
    pairs = pairs[1::2] + pairs[::2]  # any order
    ids = np.array([p[0] for p in pairs], dtype=np.intp)
    vals = np.array([p[1] for p in pairs], dtype=np.float64)
    return R.summarize_ids(keys, ids, vals)


def test_segments_match_numpy():
    data = {"a": [1.0, 2.0, np.nan], "b": [np.inf, -np.inf], "c": [5.0]}
    st = stats_of(data)
    assert st.keys == ("a", "b", "c") and st.present.tolist() == [True, True, True]
    np.testing.assert_array_equal(st.sum, [3.0, 0.0, 5.0])
    np.testing.assert_array_equal(st.count, [2, 0, 1])
    np.testing.assert_array_equal(st.nonfinite, [1, 2, 0])
    np.testing.assert_array_equal(st.min, [1.0, np.inf, 5.0])
    np.testing.assert_array_equal(st.max, [2.0, -np.inf, 5.0])


def simulate(per_rank, union):
    """Element-wise SUM / MAX over ranks, as the collectives would."""
    packs = [R.pack(union, stats_of(d), [0.0] * R.HEADER_LEN, R.FlushIdentity(0, step=1.0)) for d in per_rank]
    s = np.sum([p[0] for p in packs], axis=0)
    m = np.max([p[1] for p in packs], axis=0)
    return R.unpack(union, s, m)[2]


def test_pack_unpack_is_mean_of_all_values_not_mean_of_means():
    per_rank = [{"loss": [1.0]}, {"loss": [2.0, 2.0, 2.0, 2.0]}, {}]
    red = simulate(per_rank, ["loss"])
    assert red["loss"]["mean"] == pytest.approx(9 / 5)  # mean of means would be 1.5
    assert (red["loss"]["min"], red["loss"]["max"], red["loss"]["count"]) == (1.0, 2.0, 5.0)


def test_key_missing_everywhere_is_nan_not_inf():
    red = simulate([{"a": [1.0]}, {"a": [2.0]}], ["a", "ghost"])
    assert np.isnan(red["ghost"]["mean"]) and np.isnan(red["ghost"]["min"]) and red["ghost"]["count"] == 0


def test_gathered_reduction_equals_collective_reduction():
    rng = np.random.default_rng(3)
    per_rank = [{k: rng.normal(size=rng.integers(1, 5)).tolist() for k in rng.choice(list("abcdef"), 3, replace=False)}
                for _ in range(4)]
    union = sorted({k for d in per_rank for k in d})
    a = simulate(per_rank, union)
    b = R.reduce_gathered(union, [stats_of(d) for d in per_rank])
    for k in union:
        for stat, v in a[k].items():
            assert b[k][stat] == pytest.approx(v), (k, stat)
    first, rest = union[:1], union[1:]
    joined = R.reduce_gathered(rest, [stats_of(d) for d in per_rank]).reordered(
        union[::-1], R.reduce_gathered(first, [stats_of(d) for d in per_rank]))
    assert joined.keys == tuple(union[::-1])
    for k in union:
        assert joined[k]["sum"] == pytest.approx(a[k]["sum"])


def test_local_keys_outside_the_union_are_left_out():
    s, m = R.pack(["a"], stats_of({"a": [1.0], "zzz": [9.0]}), [1, 0, 0, 0, 0], R.FlushIdentity(0, step=7.0))
    assert s.tolist() == [1, 0, 0, 0, 0, 1.0, 1.0, 0.0]
    assert m[R.M_STEP] == 7.0 and m[R.MAX_HEADER_LEN:].tolist() == [1.0, -1.0]


def _agree(*idents):
    packs = [R.pack(["a"], stats_of({"a": [1.0]}), [0.0] * R.HEADER_LEN, i) for i in idents]
    return R.unpack(["a"], np.sum([p[0] for p in packs], axis=0), np.max([p[1] for p in packs], axis=0))[1]


def test_ranks_in_the_same_flush_agree():
    a = _agree(R.FlushIdentity(3, step=9.0), R.FlushIdentity(3, step=19.0), R.FlushIdentity(3))
    assert a.matched and a.step == 19.0 and a.seq == (3, 3)
    assert _agree(R.FlushIdentity(0, explicit_step=5.0, step=5.0), R.FlushIdentity(0, explicit_step=5.0)).matched
    assert _agree(R.FlushIdentity(2, closing=True), R.FlushIdentity(2, closing=True)).matched


@pytest.mark.parametrize("idents", [
    (R.FlushIdentity(0), R.FlushIdentity(0, closing=True)),          # flush() against close()
    (R.FlushIdentity(4), R.FlushIdentity(3)),                        # a skipped flush
    (R.FlushIdentity(1, explicit_step=10.0), R.FlushIdentity(1, explicit_step=20.0)),
])
def test_ranks_in_different_flushes_disagree(idents):
    assert not _agree(*idents).matched
    assert not _agree(*idents[::-1]).matched


def test_single_row_for_logged_values():
    r = R.single_row(2.0)
    assert r[:7].tolist() == [2.0, 2.0, 2.0, 2.0, 2.0, 1.0, 0.0] and np.isnan(r[7:]).all()  # no argmin/argmax rank
    r = R.single_row(float("nan"))
    assert np.isnan(r[0]) and r[5:7].tolist() == [0.0, 1.0] and len(r) == len(R.STAT_COLUMNS)


def test_merging_cpu_and_device_parts():
    a, b = stats_of({"x": [1.0, 2.0]}), stats_of({"x": [10.0], "y": [np.nan]})
    m = a.merged(b)
    assert m.keys == ("x", "y")
    np.testing.assert_array_equal(m.sum, [13.0, 0.0])
    np.testing.assert_array_equal(m.max, [10.0, -np.inf])
    np.testing.assert_array_equal(m.nonfinite, [0, 1])


def test_block_stats_match_numpy_along_either_axis():
    rng = np.random.default_rng(11)
    v = rng.normal(size=(6, 7, 5))
    v[0, 0, 0], v[1, 2, 3], v[:, 4, 1] = np.nan, np.inf, -np.inf  # one column with nothing finite
    for axis in (0, 1):
        total, count, mn, mx, bad = R.block_stats(v, axis)
        fin = np.isfinite(v)
        np.testing.assert_array_equal(count, fin.sum(axis=axis))
        np.testing.assert_array_equal(bad, (~fin).sum(axis=axis))
        np.testing.assert_allclose(total, np.where(fin, v, 0).sum(axis=axis), rtol=1e-12)
        np.testing.assert_array_equal(mn, np.where(fin, v, np.inf).min(axis=axis))
        np.testing.assert_array_equal(mx, np.where(fin, v, -np.inf).max(axis=axis))
    clean = rng.normal(size=(4, 3))
    total, count, mn, mx, bad = R.block_stats(clean, 0)
    np.testing.assert_array_equal(count, [4.0] * 3)
    np.testing.assert_array_equal(bad, [0.0] * 3)
    np.testing.assert_array_equal(mn, clean.min(axis=0))
