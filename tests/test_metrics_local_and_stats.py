"""log() keeps every rank's values; histograms; statistics; steady-state collective count."""

import os

import numpy as np
import pytest

from distlog.layout import HISTOGRAMS_TABLE, LOGS_DIR, RUN_FILE, SCALARS_TABLE, rank_dir, rank_log_path
import distlog
from distlog.storage import open_storage
from distlog.writers.rowstore import read_commit, read_series
from support.ranks import run_ranks


def _log_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("perrank"):
        for s in range(3):
            exp.metrics("own").log(step=s, value=rank * 10 + s)  # no communication
        if rank == 0:
            exp.metrics.log(step=9, only_rank0=1.0)  # safe inside `if rank == 0`
        exp.log_histogram("weights", np.arange(100) + rank, bins=10, step=1)
    return exp.current_run.url if exp._run else None


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_log_keeps_every_ranks_values(tmp_path):
    root = str(tmp_path / "root")
    run_ranks(_log_worker, 3, tmp_path, root, timeout=90)
    run = open_storage(os.path.join(root, "default", "perrank"))
    np.testing.assert_array_equal(read_series(run, SCALARS_TABLE, "own/value")[:, 2], [0, 1, 2])
    assert read_series(run, SCALARS_TABLE, "only_rank0")[0, 0] == 9
    for r in (1, 2):
        mine = run.child(rank_dir(r))
        rows = read_series(mine, SCALARS_TABLE, "own/value")
        np.testing.assert_array_equal(rows[:, 0], [0, 1, 2])
        np.testing.assert_array_equal(rows[:, 2], [r * 10, r * 10 + 1, r * 10 + 2])
        assert "only_rank0" not in read_commit(mine, SCALARS_TABLE)["lengths"]
        h = read_series(mine, HISTOGRAMS_TABLE, "weights")
        assert h.shape == (1, 2 + 11 + 10)
        np.testing.assert_array_equal(h[0, 2:13], np.histogram(np.arange(100) + r, bins=10)[1])
        np.testing.assert_array_equal(h[0, 13:], [10] * 10)


def test_conveniences_and_statistics(root):
    exp = distlog.get_logger(root)
    with exp.run("stats"):
        rng = np.random.default_rng(0)
        vals = rng.normal(size=500)
        for i, v in enumerate(vals):
            with exp.step(i):
                exp.log_metric("loss", v)
        exp.log_metrics({"a": 1, "b": np.float32(2.5)}, step=3)
        assert exp.scalars is exp.metrics or exp.scalars.prefix == ""
        st = exp.metrics.get_stats("loss")
        assert st.count == 500 and st.mean == pytest.approx(vals.mean()) and st.std == pytest.approx(vals.std())
        assert (st.min, st.max) == (vals.min(), vals.max())
        w = exp.metrics.get_stats("loss", window=100)
        assert w.mean == pytest.approx(vals[-100:].mean())
        for p in (0, 5, 50, 95, 100):
            assert exp.metrics.get_percentile("loss", p) == pytest.approx(np.percentile(vals, p))
        summ = exp.metrics.get_summary("loss", frequency=100)
        assert [s["step"] for s in summ] == [0, 100, 200, 300, 400]
        assert summ[1]["mean"] == pytest.approx(vals[100:200].mean()) and summ[1]["count"] == 100
        with pytest.raises(ValueError, match="frequency must be one of"):
            exp.metrics.get_summary("loss", frequency=7)
        with pytest.raises(KeyError, match="known: a, b, loss"):
            exp.metrics.get_stats("nope")
    rows = read_series(open_storage(os.path.join(root, "default", "stats")), SCALARS_TABLE, "loss")
    np.testing.assert_array_equal(rows[:, 0], np.arange(500))
    np.testing.assert_array_equal(rows[:, 2], vals)


def _count_worker(rank, world, root, nkeys):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run(f"count{nkeys}"):
        comm = exp.current_run.comm
        calls = []
        for flush in range(3):
            for k in range(nkeys):
                exp.metrics.collect(step=flush, **{f"k{k:05d}": float(rank + k)})
            before = comm.calls
            red = exp.metrics.flush()
            calls.append(comm.calls - before)
        return calls, red[f"k{nkeys - 1:05d}"]["mean"]


# small buckets: one all_gather (argmin/argmax ranks from its rows); large: two all_reduces and
# one more MAX for the argmin/argmax ranks (see Comm.reduce_buckets_ranked)
@pytest.mark.dist
@pytest.mark.parametrize("nkeys,gather_max,steady", [(1, None, 1), (2_000, "0", 3)])
@pytest.mark.timeout(180)
def test_steady_state_flush_collective_count(tmp_path, nkeys, gather_max, steady):
    env = {"DISTLOG_GATHER_MAX_BYTES": gather_max} if gather_max else {}
    res = run_ranks(_count_worker, 2, tmp_path, str(tmp_path / "root"), nkeys, timeout=150, env=env)
    for calls, mean in res:
        # one all_gather (small buckets) or three all_reduces, whatever the number of keys;
        # the first flush agrees on the key set with one exchange more (and, its union being
        # empty until then, needs no argmin/argmax pass on the all_reduce transport)
        first = {1: 2, 3: 3}[steady]
        assert calls == [first, steady, steady]
        assert mean == pytest.approx(nkeys - 1 + 0.5)


def test_resumed_run_rewinds_and_continues(root):
    exp = distlog.get_logger(root, chunk_rows=16)
    with exp.run("resume"):
        for s in range(40):
            exp.metrics.collect(step=s, loss=float(s))
            exp.metrics.flush()
        exp.info("first attempt")
    # the job died after step 39; its checkpoint is from step 25: the next attempt rewinds
    with exp.run("resume", resume_step=25):
        for s in range(26, 30):
            exp.metrics.collect(step=s, loss=float(s))
            exp.metrics.flush()
        exp.info("second attempt")
    store = open_storage(os.path.join(root, "default", "resume"))
    rows = read_series(store, SCALARS_TABLE, "loss")
    np.testing.assert_array_equal(rows[:, 0], np.arange(30))
    import json

    meta = json.loads(store.read_text(RUN_FILE))
    assert [a["attempt"] for a in meta["attempts"]] == [0, 1]
    assert meta["attempts"][1]["resume_step"] == 25 and meta["status"] == "completed"
    assert sorted(store.list_dir(LOGS_DIR)) == [os.path.basename(rank_log_path(0, a)) for a in (0, 1)]


def test_collector_handle_equals_collect(root):
    exp = distlog.get_logger(root)
    with exp.run("collector"):
        add = exp.metrics("train").collector("loss")
        for i, v in enumerate([1.0, 2.0, float("nan"), 4.0]):
            add(v, step=i)
        add(np.float32(5.0))  # other types take the checked path
        exp.metrics("train").collect(step=9, loss=6)
        red = exp.metrics.flush()
        assert red["train/loss"] == {"mean": 18 / 5, "min": 1.0, "max": 6.0, "sum": 18.0, "count": 5.0, "nonfinite": 1.0}
        with pytest.raises(TypeError, match="metric 'train/loss' got a str"):
            add("x")
    store = open_storage(os.path.join(root, "default", "collector"))
    rows = read_series(store, SCALARS_TABLE, "train/loss")
    assert rows[0, 0] == 9  # the last collected step


def _flush_at_largest_step(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("steps"):
        train, val = exp.metrics("train"), exp.metrics("val")
        add = train.collector("acc")
        for epoch in range(3):
            for i in range(10):
                step = epoch * 10 + i
                train.collect(step=step, loss=float(step + rank))
                add(float(rank), step)
            val.collect(step=epoch, acc=0.5 + epoch + rank)  # the epoch as its step, last
            exp.metrics.flush()  # no step=: the window's largest collected step
    return None


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.timeout(120)
def test_flush_without_step_stores_the_largest_step_collected_in_its_window(tmp_path, world):
    """Training collected at the global step, then validation at the epoch (the last call),
    then ``flush()``: the row took the step of the last call (the epoch), below the training
    rows already written, so from the second epoch on every key of the flush was refused with
    an error and the training window was lost. The row now goes at the window's largest
    step; the values are reduced across ranks as ever (NumPy oracle)."""
    root = str(tmp_path / "root")
    if world == 1:
        _flush_at_largest_step(0, 1, root)
    else:
        run_ranks(_flush_at_largest_step, world, tmp_path, root, timeout=90)
    run = distlog.open_run(f"{root}/e/steps")
    for epoch in range(3):
        steps = np.arange(epoch * 10, epoch * 10 + 10, dtype=float)
        want = np.mean([steps + r for r in range(world)])
        assert run.metrics.read("train/loss")["mean"][epoch] == pytest.approx(want)
    for key, want in (("val/acc", [np.mean([0.5 + e + r for r in range(world)]) for e in range(3)]),):
        assert run.metrics.read(key)["mean"].tolist() == pytest.approx(want)
    for key in ("train/loss", "train/acc", "val/acc"):
        assert run.metrics.read(key)["step"].tolist() == [9, 19, 29], key


def test_a_refused_step_is_named_in_full_and_float64_precision_is_said(root):
    """``log(step=2**60 + 1)`` after ``2**60`` said "at step 1.15292e+18: a row at step
    1.15292e+18 was already written": two steps that read alike, and no word that float64
    steps cannot tell them apart."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.metrics.log(step=2**60, a=1.0)
        with pytest.raises(ValueError, match=r"at step 1152921504606846976 \(a float64: integers past 2\*\*53 "
                                             r"= 9007199254740992 are not all distinct\): a row at step "
                                             r"1152921504606846976 was already written"):
            exp.metrics.log(step=2**60 + 1, a=2.0)
        exp.metrics.log(step=1_000_000.5, b=1.0)
        with pytest.raises(ValueError, match=r"at step 1000000: a row at step 1000000.5 was already written"):
            exp.metrics.log(step=1_000_000, b=2.0)


def test_a_histogram_says_once_that_it_left_nan_and_inf_out(root, caplog):
    """NaN and ±inf in ``log_histogram`` values went into no bin with no word (a weights
    histogram with infs looked healthy); they still go into no bin, and the first time per
    key it is said, with the count."""
    import logging

    from distlog import report

    report.reset()
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with caplog.at_level(logging.WARNING, logger="distlog"):
        with exp.run("r"):
            exp.log_histogram("w", np.array([0.0, 1.0, np.nan, np.inf, -np.inf]), bins=2, step=0)
            exp.log_histogram("w", np.array([np.nan, 1.0]), bins=2, step=1)
            exp.log_histogram("clean", np.array([0.0, 1.0]), bins=2, step=0)
    said = [r.getMessage() for r in caplog.records if "log_histogram" in r.getMessage()]
    assert len(said) == 1 and "log_histogram('w'): 3 of 5 values are NaN or ±inf" in said[0], said
    hist = distlog.open_run(f"{root}/default/r").metrics.histogram("w")
    assert hist.counts[0].sum() == 2 and hist.counts[1].sum() == 1
