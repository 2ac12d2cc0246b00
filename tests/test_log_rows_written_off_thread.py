"""log() hands keyword dicts to the writer; the stored rows are exactly what was logged.

Checked against a NumPy oracle: many steps across chunk boundaries, several views and key
sets interleaved, non-finite values, ints, statistics right after logging, every row committed
when close() returns, and a repeated step still refused at the call.
"""

import os

import numpy as np
import pytest

import distlog
from distlog import reduce as R
from distlog.storage import open_storage
from distlog.writers.rowstore import BackgroundWriter, RowTable, read_commit, read_series


def test_logged_rows_equal_the_oracle_across_chunks_and_views(root):
    rng = np.random.default_rng(2)
    n = 1000
    loss, acc = rng.normal(size=n), rng.uniform(size=n)
    loss[[5, 500]] = [np.nan, np.inf]
    exp = distlog.get_logger(root, chunk_rows=64)
    with exp.run("logged"):
        for s in range(n):
            exp.metrics.log(step=s, loss=float(loss[s]), acc=float(acc[s]))
            if s % 10 == 0:
                exp.metrics("val").log(step=s, score=s)  # an int, another view
            if s % 97 == 0:
                exp.metrics.log(step=s, rare=1.5, extra=float(s))  # another key set, same step
        st = exp.metrics.get_stats("loss", window=25)  # sees every value logged so far
        fin = loss[-25:][np.isfinite(loss[-25:])]
        assert st.mean == pytest.approx(fin.mean()) and st.count == fin.size
        assert exp.metrics("val").get_stats("score").max == 990
    store = open_storage(os.path.join(root, "default", "logged"))
    assert read_commit(store, "scalars")["final"] is True
    rows = read_series(store, "scalars", "loss")
    np.testing.assert_array_equal(rows[:, 0], np.arange(n))
    want = np.array([R.single_row(x) for x in loss])
    np.testing.assert_array_equal(rows[:, 2:], want)
    np.testing.assert_array_equal(read_series(store, "scalars", "acc")[:, 2], acc)
    val = read_series(store, "scalars", "val/score")
    np.testing.assert_array_equal(val[:, 0], np.arange(0, n, 10))
    np.testing.assert_array_equal(val[:, 2], np.arange(0, n, 10))
    np.testing.assert_array_equal(read_series(store, "scalars", "rare")[:, 2], [1.5] * len(range(0, n, 97)))
    np.testing.assert_array_equal(read_series(store, "scalars", "extra")[:, 0], np.arange(0, n, 97))


def test_repeated_step_raises_at_the_call_and_stats_stay_raw(root):
    exp = distlog.get_logger(root)
    with exp.run("rep"):
        m = exp.metrics
        for s in range(5):
            m.log(step=s, a=float(s), b=-float(s))
        m.log(step=2, c=7.0)  # at or below the largest step, but a new series: allowed
        with pytest.raises(ValueError, match=r"log\(\) of 'a' at step 4: a row at step 4"):
            m.log(step=4, a=1.0)
        with pytest.raises(ValueError, match="'b' at step 1"):
            m.log(step=1, b=1.0)
        m.log(a=10.0)  # no step: one past the largest (5)
        m.log(step=6, a=float("nan"))
        st = m.get_stats("a")
        assert (st.min, st.max, st.count, st.rows) == (0.0, 10.0, 6, 7)
        assert st.mean == pytest.approx(20.0 / 6)
    store = open_storage(os.path.join(root, "default", "rep"))
    np.testing.assert_array_equal(read_series(store, "scalars", "a")[:, 0], [0, 1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(read_series(store, "scalars", "c")[:, 0], [2])


def test_log_rejects_bad_input_at_once(root):
    exp = distlog.get_logger(root)
    with exp.run("bad"):
        exp.metrics.log(step=0, loss=1.0)
        with pytest.raises(TypeError, match="metric 'loss' got a str"):
            exp.metrics.log(step=1, loss="nan?")
        with pytest.raises(ValueError, match="clashes"):
            exp.metrics.log(step=1, **{"loss/x": 1.0})
        exp.metrics.log(step=2, loss=np.float32(2.0))  # other number types take the checked path
    rows = read_series(open_storage(os.path.join(root, "default", "bad")), "scalars", "loss")
    np.testing.assert_array_equal(rows[:, :1].ravel(), [0, 2])
    np.testing.assert_array_equal(rows[:, 2], [1.0, 2.0])


def test_entries_keep_their_order_with_queued_rows(tmp_path):
    store = open_storage(str(tmp_path))
    seen = []
    w = BackgroundWriter({"t": RowTable(store, "t", ("step",), chunk_rows=4)}, commit_interval=3600)
    append = w.attach_entries(lambda items, tables: (seen.extend(items), [tables["t"].add("k", np.array([[float(i)]])) for i in items]))
    append(0)
    append(1)
    w.put("t", "k", np.array([[2.0]]))  # queued after the entries appended before it
    append(3)
    w.sync_entries()
    assert seen == [0, 1, 3]
    w.close()
    np.testing.assert_array_equal(read_series(store, "t", "k")[:, 0], [0, 1, 2, 3])


def test_writer_writes_full_chunks_before_the_commit(tmp_path):
    store = open_storage(str(tmp_path))
    t = RowTable(store, "scalars", ("step", "v"), chunk_rows=8)
    rows = np.stack([np.arange(20.0), np.arange(20.0) * 2], axis=1)
    t.add("k", rows[:5])
    assert not t.complete_ready and not t.write_complete()  # no full chunk yet
    t.add("k", rows[5:13])
    assert t.complete_ready
    assert t.write_complete()  # chunk [0, 8) only, and no commit record
    assert read_commit(store, "scalars") == {}
    assert not t.write_complete()  # nothing complete is left unwritten
    t.write()  # the commit publishes 13 rows
    assert read_commit(store, "scalars")["lengths"] == {"k": 13}
    t.add("k", rows[13:20])  # fills chunk [8, 16), which the commit wrote in part
    assert t.write_complete()
    assert read_commit(store, "scalars")["lengths"] == {"k": 13}  # still the committed length
    np.testing.assert_array_equal(read_series(store, "scalars", "k"), rows[:13])
    t.write(final=True)
    np.testing.assert_array_equal(read_series(store, "scalars", "k"), rows)


def test_full_chunks_wait_for_a_published_truncation(tmp_path):
    store = open_storage(str(tmp_path))
    rows = np.stack([np.arange(20.0), np.arange(20.0) * 2], axis=1)
    t = RowTable(store, "scalars", ("step", "v"), chunk_rows=8)
    t.add("k", rows)
    t.write(final=True)
    again = RowTable(store, "scalars", ("step", "v"), chunk_rows=8)
    again.load()
    resumed = np.stack([np.arange(4.0, 14.0), -np.arange(4.0, 14.0)], axis=1)
    again.add("k", resumed)  # rewinds the stored series to steps < 4, then 10 new rows
    assert again.truncated
    assert not again.write_complete()  # the shorter length must be committed first
    assert read_commit(store, "scalars")["lengths"] == {"k": 20}
    again.write()
    want = np.concatenate([rows[:4], resumed])
    np.testing.assert_array_equal(read_series(store, "scalars", "k"), want)


class _Cache:
    def __init__(self):
        self.got = []

    def add_logged(self, keys, steps, values):
        self.got.append((keys, steps.copy(), values.copy()))


@pytest.mark.parametrize("case", ["one_site", "key_order", "key_sets", "prefixes", "two_sites", "with_flushes"])
def test_entry_handler_rows_equal_the_oracle_whatever_the_batch(tmp_path, case):
    """The writer's handler reads a run of log() calls with one view and key set as one matrix
    (keys in any order per call); calls from several call sites with distinct keys (another
    view, ``log(lr=)`` beside ``log(loss=)``) one matrix per call site; and falls back to runs
    of consecutive calls where a key comes from two call sites or flushes come in between.
    Every series gets exactly its own values, in call order."""
    from distlog import entries
    from distlog.reduce import SCALAR_COLUMNS

    rng = np.random.default_rng(7)
    table = RowTable(open_storage(str(tmp_path)), "scalars", SCALAR_COLUMNS, chunk_rows=16)
    cache, logged = _Cache(), {}
    handle = entries.EntryHandler("scalars", cache, logged)
    items, want = [], {}
    for s in range(40):
        keys = ["a", "b", "c"]
        prefix = ""
        if case == "key_order" and s % 3:
            keys = keys[::-1] if s % 2 else ["b", "c", "a"]  # same keys, another order
        if case == "key_sets" and s % 5 == 0:
            keys = ["a", "b", "d"]  # as many keys, another set: must not be read as a, b, c
        if case == "prefixes" and s % 4 == 0:
            prefix = "val/"
        vals = {k: float(rng.normal()) for k in keys}
        if s == 11:
            vals[keys[0]] = float("nan")
        items.append((prefix, float(s), 1e9 + s, vals))
        for k, v in vals.items():
            want.setdefault(prefix + k, []).append((s, v))
        if case == "two_sites":  # a second call at the same step, other keys
            lr = {"lr": float(rng.uniform()), "gnorm": float(rng.uniform())}
            items.append(("", float(s), 1e9 + s, lr))
            for k, v in lr.items():
                want.setdefault(k, []).append((s, v))
    flushed = []
    if case == "with_flushes":  # one-process flushes between the calls keep their place
        for at in (30, 20, 9, 3):
            vals = rng.normal(size=3)
            w = entries.Window(("f",), {}, [], [0, 0, 0], vals.tolist(), np.array([0]), "mean")
            w.step, w.time = float(at), 2e9
            items.insert(at, w)
            flushed.insert(0, (at, vals))
    for batch in (items[:7], items[7:8], items[8:]):  # the writer takes the list in pieces
        handle(batch, {"scalars": table})
    table.write(final=True)
    for key, pts in want.items():
        rows = read_series(table.backend, "scalars", key)
        np.testing.assert_array_equal(rows[:, 0], [p[0] for p in pts])
        np.testing.assert_array_equal(rows[:, 2:], np.array([R.single_row(p[1]) for p in pts]))
        assert logged[key] == pts[-1][0]
    if flushed:
        rows = read_series(table.backend, "scalars", "f")
        np.testing.assert_array_equal(rows[:, 0], [at for at, _ in flushed])
        np.testing.assert_allclose(rows[:, 2], [v.mean() for _, v in flushed], rtol=1e-15)
        np.testing.assert_array_equal(rows[:, 4:6], [[v.min(), v.max()] for _, v in flushed])
    cached = {}
    for keys, steps, values in cache.got:
        for j, k in enumerate(keys):
            cached.setdefault(k, []).extend(zip(steps.tolist(), values[:, j].tolist()))
    assert {k: np.array(v) for k, v in cached.items()}.keys() == want.keys()
    for k, pts in want.items():
        np.testing.assert_array_equal(np.array(cached[k]), np.array(pts, dtype=float))


def test_a_burst_of_entries_is_handled_a_chunk_at_a_time_in_order(tmp_path, root):
    """More entries than ``ENTRY_SLICE`` at once go to the handler in slices, in order (the
    writer stores each filled chunk before building the next); a logged burst of 20,000 steps
    reads back exactly."""
    from distlog.writers import rowstore

    store = open_storage(str(tmp_path))
    slices = []
    w = BackgroundWriter({"t": RowTable(store, "t", ("step",), chunk_rows=4)}, commit_interval=3600)
    append = w.attach_entries(lambda items, tables: slices.append(list(items)))
    n = 2 * rowstore.ENTRY_SLICE + 5
    for i in range(n):
        append(i)
    w.sync_entries()
    w.close()
    assert [len(s) for s in slices] == [rowstore.ENTRY_SLICE, rowstore.ENTRY_SLICE, 5]
    assert [x for s in slices for x in s] == list(range(n))

    rng = np.random.default_rng(5)
    vals = rng.normal(size=(20_000, 2))
    exp = distlog.get_logger(root)
    with exp.run("burst"):
        for s in range(len(vals)):
            exp.metrics.log({"a": float(vals[s, 0]), "b": float(vals[s, 1])}, step=s)
    run = os.path.join(root, "default", "burst")
    for j, key in enumerate("ab"):
        rows = read_series(open_storage(run), "scalars", key)
        np.testing.assert_array_equal(rows[:, 0], np.arange(len(vals)))
        np.testing.assert_array_equal(rows[:, 2:], np.array([R.single_row(x) for x in vals[:, j]]))
