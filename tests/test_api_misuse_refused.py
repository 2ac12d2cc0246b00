"""Misuse a review of the API found taken silently, now refused with a clear error and nothing
already logged lost: a histogram whose bin count changes (it killed rank 0's writer thread:
every row of the run lost, the run "completed"), steps that are no finite number (a NaN step
made later valid rows vanish; a bad step on one rank raised on that rank only), and a metrics
logger kept past its run's end (it took everything and stored nothing)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import distlog
from distlog.errors import RunStateError, WriterError
from distlog.storage import open_storage
from distlog.writers.rowstore import BackgroundWriter, RowTable, read_series
from support.ranks import run_ranks


def test_a_histogram_whose_bins_change_is_refused_and_earlier_rows_are_kept(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("h"):
        exp.metrics.log(step=0, loss=1.0)
        exp.log_histogram("h", [1, 2, 3], bins=4, step=1)
        with pytest.raises(ValueError, match=r"'h' has 4 bins in this run, got 8; keep bins=4"):
            exp.log_histogram("h", [1, 2, 3], bins=8, step=2)
        exp.log_histogram("h", [4, 5], bins=4, step=3)
        exp.metrics.log(step=4, loss=0.5)
    run = distlog.open_run(f"{tmp_path}/default/h")
    assert run.info.status == "completed"
    assert run.metrics.read("loss").step.tolist() == [0, 4]
    assert run.metrics.histogram("h").step.tolist() == [1, 3]


def test_the_writer_thread_survives_rows_it_refuses(tmp_path):
    """Rows the writer cannot take (another width than their series: e.g. a resumed attempt's
    histogram with other bins) are an error on the training thread at the next commit, at
    once; the writer thread goes on and every other row is stored."""
    store = open_storage(str(tmp_path))
    w = BackgroundWriter({"t": RowTable(store, "t", ("step", "a", "b"), chunk_rows=4)}, commit_interval=3600)
    w.put("t", "x", np.array([[0.0, 1.0, 2.0]]))
    w.put("t", "x", np.array([[1.0, 1.0, 2.0, 3.0, 4.0]]))  # 5 columns: refused
    w.put("t", "y", np.array([[0.0, 5.0, 6.0]]))
    t = time.monotonic()
    with pytest.raises(WriterError, match="rows refused by the writer: .*has 3 columns, got rows of 5.*not stored"):
        w.flush(timeout=60)
    assert time.monotonic() - t < 30 and w._thread.is_alive()
    w.put("t", "x", np.array([[2.0, 7.0, 8.0]]))
    w.close()
    np.testing.assert_array_equal(read_series(store, "t", "x"), [[0, 1, 2], [2, 7, 8]])
    np.testing.assert_array_equal(read_series(store, "t", "y"), [[0, 5, 6]])


def test_steps_that_are_no_finite_number_are_bad_input_in_one_process(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("s"):
        m = exp.metrics
        m.collect(step=1, a=1.0)
        m.flush()
        for bad in (float("nan"), float("inf")):
            m.collect(step=bad, a=2.0)
            with pytest.raises(ValueError, match=r"collect\(step=(nan|inf)\): a step must be a finite number"):
                m.flush()
        m.collect(a=3.0)
        with pytest.raises(ValueError, match=r"flush\(step=nan\)"):
            m.flush(step=float("nan"))
        with pytest.raises(ValueError, match="finite number"):
            m.log(step=float("inf"), b=1.0)
        m.collect(step=10, a=4.0)
        m.flush()  # valid steps after them are stored (a NaN step made the writer drop them)
        m.collect(step=float("nan"), a=5.0)  # bad input even when flush() is given the step
        with pytest.raises(ValueError, match=r"collect\(step=nan\): a step must be a finite number"):
            m.flush(step=11)
    run = distlog.open_run(f"{tmp_path}/default/s")
    assert run.info.status == "completed"
    a = run.metrics.read("a")
    assert np.isfinite(a["step"]).all() and a["step"][-2:].tolist() == [10, 11]
    assert a["mean"][-2:].tolist() == [4.0, 5.0]  # (the row is written at flush()'s step)
    assert "b" not in run.metrics.keys()


def _bad_step_on_rank_1(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=60)
    raised = []
    with exp.run("r"):
        m = exp.metrics("t")
        m.collect(step=0, loss=float(rank))
        m.flush()
        for how in ("collect", "flush"):
            try:
                if how == "collect":
                    m.collect(step="abc" if rank == 1 else 1, loss=1.0 + rank)
                    m.flush()
                else:
                    m.collect(loss=2.0 + rank)
                    m.flush(step=float("nan") if rank == 1 else 2)
                raised.append(None)
            except ValueError as e:
                raised.append(str(e))
        m.collect(step=3, loss=3.0 + rank)
        m.flush()
    return raised


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_a_bad_step_on_one_rank_raises_the_same_error_on_every_rank(tmp_path):
    root = str(tmp_path / "root")
    res = run_ranks(_bad_step_on_rank_1, 2, tmp_path, root, timeout=150)
    assert res[0] == res[1]  # the same error, on every rank, at the same flush
    assert "rank 1: collect(step='abc'): a step must be a finite number" in res[0][0]
    assert "rank 1: flush(step=nan): a step must be a finite number" in res[0][1]
    loss = distlog.open_run(f"{root}/default/r").metrics.read("t/loss")
    # every flush wrote its row: the bad step's rank counted without its step (rank 0's is kept)
    assert loss.step.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(loss["mean"], [0.5, 1.5, 2.5, 3.5])


def test_a_metrics_logger_kept_past_its_run_refuses(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        m = exp.metrics("train")
        root_view = exp.metrics
        m.log(step=0, loss=1.0)
        for step in range(2):  # (a call site on collect()'s hot path, and a collector())
            m.collect(step=step, acc=0.5)
            add = m.collector("lr")
            add(0.1, step)
    # collect() and collector() too: their values vanished (flushed by no run, not an error)
    for call in (lambda: m.collect(step=2, acc=0.5), lambda: add(0.1, 2), lambda: m.collect({"new": 1.0}),
                 lambda: (m.collect(loss=2.0), m.flush()), lambda: m.log(step=1, loss=2.0),
                 lambda: m.log_histogram("h", [1.0], step=1), lambda: m.commit()):
        with pytest.raises(RunStateError, match=r"run 'r' has ended.*take exp.metrics\('train'\) again"):
            call()
    with pytest.raises(RunStateError, match=r"take exp.metrics again"):
        root_view.log(step=1, x=1.0)
    run = distlog.open_run(f"{tmp_path}/default/r")
    assert run.metrics.keys() == ["train/acc", "train/loss", "train/lr"]
    assert run.metrics.read("train/loss").step.tolist() == [0] and run.metrics.read("train/acc").step.tolist() == [1]
    # the experiment itself goes on: a new run takes values as before
    with exp.run("r2"):
        exp.metrics("train").log(step=0, loss=3.0)
    assert distlog.open_run(f"{tmp_path}/default/r2").metrics.read("train/loss")["value"].tolist() == [3.0]


def test_an_artifact_logger_kept_past_its_run_refuses_to_save(tmp_path):
    """A late save would land in the manifest after the files table was written."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        files = exp.files
        ckpts = exp.files("ckpt")
        files.save(b"a", "a.bin")
    for call in (lambda: files.save(b"late", "late.bin"), lambda: ckpts.save_pkl({}, "s.pkl")):
        with pytest.raises(RunStateError, match=r"run .*/default/r has ended.*take exp.files again"):
            call()
    assert files.load("a.bin") == b"a"  # reading what it saved still works
    assert distlog.open_run(f"{tmp_path}/default/r").files.paths() == ["a.bin"]
    with exp.run("r2"):
        assert exp.files.save(b"late", "late.bin").version == 1


def _log_on_rank_0_after_the_run(rank, world, root):
    import time

    import distlog
    from distlog.errors import RunStateError

    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("r"):
        exp.metrics.collect(step=0, loss=float(rank))
        exp.metrics.flush()
    if rank != 0:
        return None
    t = time.monotonic()
    try:
        exp.metrics("val").log(step=1, acc=0.5)  # no run open: it would start one, alone
    except RunStateError as e:
        return str(e), time.monotonic() - t
    return "no error", time.monotonic() - t


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_using_a_component_on_one_rank_after_the_run_is_refused_not_a_hang(tmp_path):
    """After a run ended, a component used with no run open would start one: a collective,
    so a call on rank 0 alone waited for the other ranks until the process group's timeout and
    then raised gloo's bare "Wait timeout". Under several ranks that is refused at once; in
    one process it still starts the next run."""
    root = str(tmp_path / "root")
    res = run_ranks(_log_on_rank_0_after_the_run, 2, tmp_path, root, timeout=150)
    msg, took = res[0]
    assert "no run is open (run 'r' ended)" in msg and "on every rank" in msg and took < 5
    exp = distlog.get_logger(str(tmp_path / "one"), heartbeat_interval=0)
    with exp.run("a"):
        exp.metrics.log(step=0, x=1.0)
    exp.metrics.log(step=0, x=2.0)  # one process: the next run starts on first use
    exp.close()
    assert len(distlog.open_root(str(tmp_path / "one")).runs()) == 2


def test_histogram_names_that_would_nest_are_refused_at_once(tmp_path):
    """``h`` and ``h/x`` cannot both be series (one would be the other's folder): the second
    name is refused when it is logged, as clashing scalar keys are; the run stays healthy
    (it failed at close with a WriterError)."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("h"):
        exp.log_histogram("h", [1.0, 2.0], bins=4, step=0)
        with pytest.raises(ValueError, match=r"'h/x' and the histogram 'h' .*rename one"):
            exp.log_histogram("h/x", [1.0], bins=4, step=0)
        exp.log_histogram("g/x", [1.0], bins=4, step=0)
        with pytest.raises(ValueError, match=r"'g' and the histogram 'g/x'"):
            exp.log_histogram("g", [1.0], bins=4, step=0)
        exp.log_histogram("hh", [1.0], bins=4, step=0)  # a prefix that is no folder is fine
    run = distlog.open_run(f"{tmp_path}/default/h")
    assert run.info.status == "completed"
    assert sorted(run.metrics.histogram_keys()) == ["g/x", "h", "hh"]


def test_tags_are_strings_and_a_root_with_other_tags_still_lists(tmp_path, capsys):
    import json
    import os

    from distlog.cli import main
    from distlog.layout import RUN_FILE

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with pytest.raises(TypeError, match=r"tags must be strings, got 1 \(int\) in \[1, 2\]; pass e.g. tags=\['1', '2'\]"):
        with exp.run("numbers", tags=[1, 2]):
            pass
    with exp.run("one", tags="baseline"):  # one string is one tag (it was stored letter by letter)
        pass
    assert distlog.open_run(f"{tmp_path}/default/one").info.tags == ("baseline",)
    # a run.json written with a number among its tags (before this check) breaks no listing
    path = os.path.join(str(tmp_path), "default", "one", RUN_FILE)
    with open(path) as f:
        meta = json.load(f)
    meta["tags"] = [1, "x"]
    with open(path, "w") as f:
        json.dump(meta, f)
    assert distlog.open_root(str(tmp_path)).table()["tags"].tolist() == ["1,x"]
    assert main(["ls", str(tmp_path)]) == 0 and "one" in capsys.readouterr().out


def test_a_histogram_refused_for_its_step_fixes_no_bin_count(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("h"):
        with pytest.raises(ValueError, match="finite number"):
            exp.log_histogram("h", [1.0, 2.0], bins=4, step=float("nan"))
        exp.log_histogram("h", [1.0, 2.0], bins=8, step=0)  # no row had 4 bins
    assert distlog.open_run(f"{tmp_path}/default/h").metrics.histogram("h").counts.shape == (1, 8)


def test_a_refused_histogram_without_a_step_uses_up_no_automatic_step(tmp_path):
    """A stepless ``log_histogram`` refused for its bins or its name took the next automatic
    step before the checks: the next call without step= left a gap in the steps."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("h"):
        exp.log_histogram("h", [1.0, 2.0], bins=4)  # step 0
        with pytest.raises(ValueError, match="has 4 bins"):
            exp.log_histogram("h", [1.0, 2.0], bins=8)
        with pytest.raises(ValueError, match="cannot both exist"):
            exp.log_histogram("h/x", [1.0], bins=4)
        exp.log_histogram("h", [3.0], bins=4)
        exp.metrics.log(loss=0.5)
    run = distlog.open_run(f"{tmp_path}/default/h")
    assert run.metrics.histogram("h").step.tolist() == [0, 1]
    assert run.metrics.read("loss").step.tolist() == [2]


def test_histogram_bins_and_range_given_as_tensors_are_read_on_the_host(tmp_path):
    """Edges, a count and range bounds as tensors (the GPU check does the same on CUDA, where
    np.histogram could not read them)."""
    import torch

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    values = torch.linspace(-3.0, 3.0, 50)
    with exp.run("h"):
        exp.log_histogram("h", values, bins=torch.linspace(-4, 4, 9), step=0)
        exp.log_histogram("h", values, bins=torch.tensor(8), range=(torch.tensor(-4.0), torch.tensor(4.0)), step=1)
        with pytest.raises(TypeError, match=r"expected a number of bins .* got float"):
            exp.log_histogram("h", values, bins=torch.tensor(2.5), step=2)
    want = np.histogram(values.double().numpy(), bins=np.linspace(-4, 4, 9))[0].tolist()
    assert distlog.open_run(f"{tmp_path}/default/h").metrics.histogram("h").counts.tolist() == [want, want]


def test_histogram_edges_as_a_bfloat16_tensor(tmp_path):
    """Values in bfloat16 were read (as float32); edges in bfloat16 raised torch's "Got
    unsupported ScalarType BFloat16" from ``.numpy()``, naming no histogram."""
    import torch

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    values = torch.linspace(-3.0, 3.0, 50)
    with exp.run("h"):
        exp.log_histogram("h", values, bins=torch.linspace(-4, 4, 9, dtype=torch.bfloat16), step=0)
    got = distlog.open_run(f"{tmp_path}/default/h").metrics.histogram("h")
    assert got.edges.tolist() == [np.linspace(-4, 4, 9).tolist()]
    assert got.counts.tolist() == [np.histogram(values.double().numpy(), bins=np.linspace(-4, 4, 9))[0].tolist()]


def test_histogram_steps_follow_log_rules_an_automatic_step_goes_past_them_and_a_backwards_one_raises(tmp_path):
    """A histogram row at a step its series already passed was dropped on the writer thread
    (one rate-limited warning for any number of rows), and a call without step= after an
    explicit one took step 0: the automatic step did not know histogram steps."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("h"):
        m = exp.metrics
        m.log_histogram("h", [1, 2, 3], bins=4, step=100)
        m.log_histogram("h", [4, 5, 6], bins=4)  # one past the largest step so far
        with pytest.raises(ValueError, match=r"'h' at step 50: a row at step 101 was already written"):
            m.log_histogram("h", [7, 8, 9], bins=4, step=50)
        with pytest.raises(ValueError, match=r"at step 101: a row at step 101"):
            m.log_histogram("h", [7, 8, 9], bins=4, step=101)
        m.log(loss=1.0)  # log() without a step also goes past the histogram's steps
        m.log_histogram("h", [1.0], bins=4, step=102.5)
        m.log_histogram("g", [1.0], bins=4, step=3)  # another series has its own steps
    run = distlog.open_run(f"{tmp_path}/default/h")
    assert run.metrics.histogram("h").step.tolist() == [100, 101, 102.5]
    assert run.metrics.histogram("g").step.tolist() == [3]
    assert run.metrics.read("loss").step.tolist() == [102]


def test_a_refused_one_process_collect_keeps_none_of_its_values_whatever_their_order(tmp_path):
    """One process raises at the call: the values before the bad one (in dict order) were
    kept, so a caller that caught the error and collected again counted them twice."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("c"):
        m = exp.metrics
        for call in ({"x": 1.0, "y": "bad"}, {"y": "bad", "z": 1.0}, {"x": 7.0, "w": [1.0, 2.0]}):
            with pytest.raises(TypeError):
                m.collect(call, step=1)
        with pytest.raises(TypeError):
            m.collect(step=1, x=5.0, y=object())
        m.collect(step=1, x=3.0, y=0.0, z=3.0)  # the corrected call
        r = m.flush()
    assert {k: (r[k]["count"], r[k]["mean"]) for k in ("x", "y", "z")} == {
        "x": (1, 3.0), "y": (1, 0.0), "z": (1, 3.0)}
    assert r.keys == ("x", "y", "z")
    assert distlog.open_run(f"{tmp_path}/default/c").metrics.read("x")["mean"].tolist() == [3.0]


def _bad_commit_timeout_worker(rank, world, root, bad="timeout"):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=20)
    with exp.run("c"):
        exp.metrics.log(step=0, loss=float(rank))
        # one rank's timeout or barrier flag is bad (computed per rank, say)
        kw = ({"timeout": -1 if rank == 1 else 300, "barrier": True} if bad == "timeout" else
              {"barrier": "yes" if rank == 1 else True})
        try:
            exp.metrics.commit(**kw)
            said = None
        except Exception as e:  # noqa: BLE001
            said = (type(e).__name__, str(e))
        exp.metrics.collect(step=1, acc=1.0)  # the ranks are still in step
        red = exp.metrics.flush()
    return said, red["acc"]["count"]


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_a_bad_commit_timeout_on_one_rank_raises_on_every_rank_without_waiting(tmp_path):
    """``commit(timeout=-1, barrier=True)`` on one rank raised there before the barrier: the
    other ranks waited in it until the flush timeout (FlushTimeout, a hang by default)."""
    root = str(tmp_path / "root")
    (said0, n0), (said1, n1) = run_ranks(_bad_commit_timeout_worker, 2, tmp_path, root, timeout=90)
    assert said1[0] == "ValueError" and "commit(timeout=-1): expected a number of seconds > 0" in said1[1]
    assert said0[0] == "WriterError" and "another rank's commit failed" in said0[1]
    assert n0 == n1 == 2
    run = distlog.open_run(f"{root}/default/c")
    assert run.info.status == "completed" and run.metrics.read("loss")["value"].tolist() == [0.0]


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_a_bad_commit_barrier_flag_on_one_rank_raises_on_every_rank_without_waiting(tmp_path):
    """``commit(barrier="yes")`` on one rank (the others ``barrier=True``) raised its TypeError
    there before the barrier: the other ranks waited in it until the flush timeout. A truthy
    flag that is no bool now joins the barrier, then raises; the others learn it at once."""
    root = str(tmp_path / "root")
    (said0, n0), (said1, n1) = run_ranks(_bad_commit_timeout_worker, 2, tmp_path, root, "barrier",
                                         timeout=90)
    assert said1[0] == "TypeError" and "commit(barrier='yes'): expected True" in said1[1]
    assert said0[0] == "WriterError" and "another rank's commit failed" in said0[1]
    assert n0 == n1 == 2


def test_a_positional_step_to_flush_is_the_step(tmp_path):
    """``flush(5)`` read 5 as the (private) aggregation and raised "_aggregation must be one
    of ..." — while ``log(5, ...)`` and ``collect(5, ...)`` take a positional step."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("p"):
        m = exp.metrics("train")
        m.collect(loss=1.0)
        red = m.flush(5)
        assert red["train/loss"]["mean"] == 1.0
        exp.metrics.collect(loss=3.0, step=6)
        exp.flush(np.int64(7))  # the experiment's flush, a NumPy int
        with pytest.raises(TypeError, match=r"flush\(8, step=9\): got the step twice; pass it once"):
            m.flush(8, step=9)
    loss = distlog.open_run(f"{tmp_path}/default/p").metrics.read("train/loss")
    assert loss.step.tolist() == [5] and loss["mean"].tolist() == [1.0]
    assert distlog.open_run(f"{tmp_path}/default/p").metrics.read("loss").step.tolist() == [7]
