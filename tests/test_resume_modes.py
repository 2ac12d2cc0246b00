"""Every stored series has strictly increasing steps, always: running a named run again,
resuming without a checkpoint, and repeated steps (issue 10)."""

import json
import os

import numpy as np
import pytest

from distlog.layout import RUN_FILE, SCALARS_TABLE, rank_dir
import distlog
from distlog.storage import open_storage
from distlog.writers.rowstore import read_commit, read_series
from support.ranks import run_ranks


def _quickstart(root, run_id="quickstart", resume="allow", steps=100):
    exp = distlog.get_logger(root)
    with exp.experiment("mnist"), exp.run(run_id, resume=resume):
        for step in range(steps):
            exp.metrics("train").collect(step=step, loss=1.0 / (step + 1))
            if step % 10 == 9:
                exp.metrics.flush()
        exp.metrics("val").log(step=steps - 1, accuracy=0.95)


def _series(root, run, key, table=SCALARS_TABLE, sub=""):
    store = open_storage(os.path.join(root, "mnist", run, sub) if sub else os.path.join(root, "mnist", run))
    return read_series(store, table, key, read_commit(store, table))


def test_running_a_named_run_twice_rewinds_instead_of_appending(tmp_path):
    root = str(tmp_path)
    _quickstart(root)
    _quickstart(root)
    rows = _series(root, "quickstart", "train/loss")
    np.testing.assert_array_equal(rows[:, 0], np.arange(9, 100, 10))  # 10 rows, not 20
    assert len(_series(root, "quickstart", "val/accuracy")) == 1
    meta = json.load(open(os.path.join(root, "mnist", "quickstart", RUN_FILE)))
    assert [a["attempt"] for a in meta["attempts"]] == [0, 1] and meta["status"] == "completed"
    run = distlog.open_run(os.path.join(root, "mnist", "quickstart"))
    assert run.metrics.frame("train/loss")["step"].tolist() == list(range(9, 100, 10))


def test_a_shorter_second_attempt_keeps_only_what_it_did_not_replace(tmp_path):
    root = str(tmp_path)
    _quickstart(root, steps=100)
    _quickstart(root, steps=50)  # restarts at step 9: everything from 9 on is replaced
    rows = _series(root, "quickstart", "train/loss")
    np.testing.assert_array_equal(rows[:, 0], np.arange(9, 50, 10))
    np.testing.assert_allclose(rows[:, 3], [np.mean(1.0 / (np.arange(s - 9, s + 1) + 1)) for s in range(9, 50, 10)])


def test_resume_never_and_must(tmp_path):
    root = str(tmp_path)
    with pytest.raises(ValueError, match="resume='must'.*does not exist|does not exist.*resume='must'"):
        _quickstart(root, run_id="nope", resume="must")
    _quickstart(root, run_id="r1", resume="never")
    with pytest.raises(ValueError, match="already exists .*resume='allow'"):
        _quickstart(root, run_id="r1", resume="never")
    _quickstart(root, run_id="r1", resume="must")
    with pytest.raises(ValueError, match="resume must be one of"):
        distlog.get_logger(root).run("x", resume="sometimes").__enter__()
    # the refused attempts left no attempt behind
    meta = json.load(open(os.path.join(root, "mnist", "r1", RUN_FILE)))
    assert len(meta["attempts"]) == 2


def test_repeated_steps_are_refused_at_the_call(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("mnist"), exp.run("rep"):
        exp.metrics.log(step=5, a=1.0)
        with pytest.raises(ValueError, match="'a' at step 5: a row at step 5 was already written"):
            exp.metrics.log(step=5, a=2.0)
        exp.metrics.log(step=5, b=1.0)  # another key at the same step is fine
        exp.metrics.log(a=3.0)  # no step: one past the largest so far
        exp.metrics.collect(step=9, c=1.0, d=1.0)
        exp.metrics.flush()
        exp.metrics.collect(step=9, c=2.0)
        exp.metrics.collect(step=9, e=2.0)
        with pytest.raises(ValueError, match="'c' at or before the last step already written"):
            exp.metrics.flush()
    rows = _series(str(tmp_path), "rep", "a")
    assert rows[:, 0].tolist() == [5.0, 6.0]
    assert _series(str(tmp_path), "rep", "c")[:, 0].tolist() == [9.0]
    assert _series(str(tmp_path), "rep", "e")[:, 0].tolist() == [9.0]  # valid keys still written


def _per_rank(rank, world, root, attempt):
    import distlog

    exp = distlog.get_logger(root, commit_interval=0.05)
    with exp.experiment("mnist"), exp.run("pr"):
        for step in (5, 15, 25):
            exp.metrics.log(step=step, own=float(100 * attempt + step + rank))
            exp.metrics.collect(step=step, loss=float(step))
            exp.metrics.flush()
    return True


@pytest.mark.dist
@pytest.mark.timeout(240)
def test_resume_without_checkpoint_rewinds_per_rank_series(tmp_path):
    root = str(tmp_path)
    run_ranks(_per_rank, 2, tmp_path, root, 0, timeout=120)
    run_ranks(_per_rank, 2, tmp_path, root, 1, timeout=120)
    own1 = _series(root, "pr", "own", sub=rank_dir(1))
    assert own1[:, 0].tolist() == [5.0, 15.0, 25.0]  # not 5, 15, 25, 5, 15, 25
    assert own1[:, 2].tolist() == [106.0, 116.0, 126.0]  # the second attempt's values
    own0 = _series(root, "pr", "own")
    assert own0[:, 2].tolist() == [105.0, 115.0, 125.0]
    assert _series(root, "pr", "loss")[:, 0].tolist() == [5.0, 15.0, 25.0]


@pytest.mark.parametrize("telemetry", [False, True])
def test_a_checkpoint_resume_that_writes_no_row_still_drops_the_rows_after_it(tmp_path, telemetry):
    """``resume_step=``: the stored rows past the checkpoint are dropped even when the new
    attempt hands over no row (it only set params, or died before its first log); they were
    dropped only when a writer opened, i.e. at the attempt's first row (with telemetry off)."""
    root = str(tmp_path)
    exp = distlog.get_logger(root, telemetry=telemetry)
    with exp.run("r"):
        for s in range(100):
            exp.metrics("train").log(step=s, loss=float(s))
    exp = distlog.get_logger(root, telemetry=telemetry)
    with exp.run("r", resume_step=50):
        exp.params.set(lr=0.1)
    steps = distlog.open_run(f"{root}/default/r").metrics.read("train/loss")["step"]
    assert steps.tolist() == list(range(51))


def test_last_step_is_the_largest_stored_step_across_attempts(tmp_path):
    """``run.json``'s ``last_step`` (shown by ``distlog ls``): the largest step of a stored
    metric row, not only of this attempt's (an attempt that logged one eval row at step 3, or
    none, set it to 3 or null while step 99 stayed stored)."""
    root = str(tmp_path)

    def attempt(body, **kw):
        exp = distlog.get_logger(root, telemetry=False)
        with exp.run("r", **kw):
            body(exp)
        return distlog.open_run(f"{root}/default/r").info.last_step

    assert attempt(lambda exp: [exp.metrics("train").log(step=s, loss=1.0) for s in range(100)]) == 99
    assert attempt(lambda exp: exp.params.set(lr=0.1)) == 99
    assert attempt(lambda exp: exp.metrics("val").log(step=3, acc=1.0)) == 99
    assert attempt(lambda exp: exp.params.set(lr=0.2), resume_step=50) == 50


def _flushes(rank, world, root, start, stop, resume_step):
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("r", resume_step=resume_step):
        for step in range(start, stop):
            exp.metrics.collect(step=step, loss=float(step))
            exp.metrics.flush()


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_a_checkpoint_resume_at_another_world_size_cuts_the_telemetry_back_too(tmp_path):
    """Attempt 0 on 2 ranks (steps 0..7); attempt 1 on 1 rank resumes at the checkpoint of
    step 3: the telemetry table (one column per rank: not extended at another world size)
    drops its rows past step 3 as every series does."""
    root = str(tmp_path / "root")
    run_ranks(_flushes, 2, tmp_path, root, 0, 8, None, timeout=120)
    _flushes(0, 1, root, 4, 6, 3)
    run = distlog.open_run(f"{root}/default/r")
    assert run.metrics.read("loss")["step"].tolist() == [0, 1, 2, 3, 4, 5]
    tel = run.telemetry.matrix("interval")
    assert tel.step.tolist() == [0, 1, 2, 3] and tel.values.shape == (4, 2)



@pytest.mark.dist
@pytest.mark.timeout(180)
def test_a_restart_at_another_world_size_rewinds_the_telemetry_too(tmp_path):
    """Attempt 0 on 2 ranks (steps 0..7); attempt 1 on 1 rank, without a checkpoint, starts
    again at step 4: every series is rewound to before step 4, but the telemetry table (not
    extended at another world size) kept attempt 0's rows of steps 4..8, so ``distlog ranks``
    showed ranks and step times of training the run no longer holds beside attempt 1's rows."""
    root = str(tmp_path / "root")
    run_ranks(_flushes, 2, tmp_path, root, 0, 8, None, timeout=120)
    _flushes(0, 1, root, 4, 6, None)
    run = distlog.open_run(f"{root}/default/r")
    assert run.metrics.read("loss")["step"].tolist() == [0, 1, 2, 3, 4, 5]
    for field in ("interval", "wait_prev", "rss"):
        tel = run.telemetry.matrix(field)
        assert tel.step.tolist() == [0, 1, 2, 3] and tel.values.shape == (4, 2), field
    # distlog ranks says whose ranks these are (it showed 2 ranks of a run of 1, without a word)
    import io
    from contextlib import redirect_stdout

    from distlog.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["ranks", f"{root}/default/r"]) == 0
    assert "(telemetry of 2 ranks, from an earlier attempt: the run's last attempt ran 1 rank," in out.getvalue()


def test_a_restart_rewinds_the_telemetry_series_it_writes_no_row_to(tmp_path, monkeypatch):
    """Attempt 0 reported GPU memory (steps 0..7); attempt 1 starts again at step 4 and has no
    GPU figure (yet): its interval, wait and memory rows replaced steps 4.. while the GPU
    series kept attempt 0's rows of steps 4..7, a mix of two attempts in one table."""
    from distlog import telemetry as T

    root = str(tmp_path / "root")

    def fake_gpu(self, out):
        out[4:7] = (1e9, 2e9, 3e9)

    with monkeypatch.context() as m:
        m.setattr(T._SystemProbe, "_gpu", fake_gpu)
        _flushes(0, 1, root, 0, 8, None)
    _flushes(0, 1, root, 4, 6, None)
    tel = distlog.open_run(f"{root}/default/r").telemetry
    assert tel.matrix("interval").step.tolist() == [0, 1, 2, 3, 4, 5, 6]  # (6: the closing flush)
    for field in T.GPU_FIELDS:
        assert tel.matrix(field).step.tolist() == [0, 1, 2, 3], field

def test_a_checkpoint_resume_drops_the_later_rows_at_its_start_and_counts_on_after_it(tmp_path):
    """``resume_step=9``: readers see the rows after the checkpoint gone as soon as the attempt
    has started (they stayed until its first row: an attempt killed before it left the dead
    attempt's rows standing for good), and ``log()``/``flush()`` without a step continue after
    the checkpoint (they began at 0 again and rewound rows 0..9 away)."""
    root = str(tmp_path)
    exp = distlog.get_logger(root, telemetry=False, heartbeat_interval=0)
    with exp.run("r"):
        for i in range(20):
            exp.metrics.collect(loss=float(i))
            exp.metrics.flush()
    exp = distlog.get_logger(root, telemetry=False, heartbeat_interval=0)
    with exp.run("r", resume="must", resume_step=9):
        assert distlog.open_run(f"{root}/default/r").metrics.read("loss").step.tolist() == list(range(10))
        for i in range(3):
            exp.metrics.collect(loss=100.0 + i)
            exp.metrics.flush()
        exp.metrics.log(lr=1.0)
    m = distlog.open_run(f"{root}/default/r").metrics
    loss = m.read("loss")
    assert loss.step.tolist() == list(range(13))
    assert loss["value"].tolist() == [float(i) for i in range(10)] + [100.0, 101.0, 102.0]
    assert m.read("lr").step.tolist() == [13]


KILLED_AFTER_COMMIT = r"""
import os, sys
import distlog
exp = distlog.get_logger(sys.argv[1], telemetry=False, heartbeat_interval=0)
exp.start_run("r", resume=sys.argv[2])
for s in range(int(sys.argv[3])):
    exp.metrics.log(step=s, loss=float(s))
exp.metrics.commit()
os._exit(0)  # killed: run.json never learns its last step
"""


def test_last_step_after_a_killed_attempt_and_a_resume_that_writes_nothing(tmp_path):
    import subprocess
    import sys

    root = str(tmp_path)
    script = tmp_path / "killed.py"
    script.write_text(KILLED_AFTER_COMMIT)
    subprocess.run([sys.executable, str(script), root, "allow", "10"], check=True, timeout=120)
    exp = distlog.get_logger(root, telemetry=False, heartbeat_interval=0)
    with exp.run("r", resume="must"):
        exp.params.set(lr=0.1)  # no metric row in this attempt
    info = distlog.open_run(f"{root}/default/r").info
    assert info.status == "completed" and info.last_step == 9  # it was null: `distlog ls` showed "-"


def test_a_resumed_attempt_refuses_at_the_call_what_clashes_with_the_stored_series(tmp_path):
    """A key that would be the namespace of a stored series, a histogram with other bins
    than the stored one, a histogram name that nests with a stored one: refused at the call,
    as in the attempt that stored them (the resumed attempt took them, and its writer failed
    the whole run at close)."""
    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("r"):
        exp.metrics.log(step=0, **{"train/loss": 1.0})
        exp.log_histogram("h", [1.0, 2.0], bins=4, step=0)
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("r", resume="must"):
        with pytest.raises(ValueError, match="metric key 'train' clashes with 'train/loss'"):
            exp.metrics.log(step=1, train=2.0)
        with pytest.raises(ValueError, match="'h' has 4 bins in this run, got 8"):
            exp.log_histogram("h", [1.0], bins=8, step=1)
        with pytest.raises(ValueError, match="'h/x' and the histogram 'h'"):
            exp.log_histogram("h/x", [1.0], bins=4, step=1)
        exp.log_histogram("h", [3.0], bins=4, step=1)
        exp.metrics.log(step=1, other=3.0)
    run = distlog.open_run(f"{root}/default/r")
    assert run.info.status == "completed"
    assert run.metrics.histogram("h").step.tolist() == [0, 1]
    assert sorted(run.metrics.keys()) == ["other", "train/loss"]


def _own_rows_then_resume(rank, world, root, resume_step):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("own", resume_step=resume_step):
        if resume_step is not None:  # right after the start, before any row of this attempt
            return distlog.open_run(f"{root}/default/own").metrics.read("own/v", rank=rank).step.tolist()
        for s in range(10):
            exp.metrics.log(step=s, **{"own/v": float(s)})
    return None


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_a_checkpoint_resume_cuts_every_ranks_own_series_at_its_start(tmp_path):
    """Rank 0's series were cut at the start of a checkpoint resume, a rank's own series
    (``ranks/rank-N``) only at its first row: an attempt killed before it left them standing."""
    root = str(tmp_path / "root")
    run_ranks(_own_rows_then_resume, 2, tmp_path, root, None, timeout=120)
    assert run_ranks(_own_rows_then_resume, 2, tmp_path, root, 4, timeout=120) == [[0, 1, 2, 3, 4]] * 2
