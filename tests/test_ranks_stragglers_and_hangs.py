"""Every rank visible: the straggler report names a slow rank, a flush timeout names the rank
that did not arrive, and a killed run turns stale (real gloo ranks, real processes)."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import distlog
from distlog import cli
from support.ranks import run_ranks

pytestmark = pytest.mark.dist

DELAY, SLOW, STEPS = 0.25, 2, 7


def _straggler(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0.5)
    with exp.run("straggle"):
        for step in range(STEPS):
            if rank == SLOW:
                time.sleep(DELAY)
            exp.metrics.collect(step=step, loss=float(rank))
            exp.metrics.flush()
    return True


@pytest.mark.timeout(240)
def test_distlog_ranks_names_the_slow_rank(tmp_path, capsys):
    root = str(tmp_path / "root")
    run_ranks(_straggler, 4, tmp_path, root, timeout=180)
    path = f"{root}/default/straggle"
    rep = distlog.open_run(path).telemetry.report()
    assert rep.slowest == SLOW
    # the injected delay, seen as step time over the other ranks (medians over the flushes)
    assert rep.excess == pytest.approx(DELAY, rel=0.10), rep.summary()
    assert list(rep.ranks["rank"]) == [0, 1, 2, 3]
    share = rep.ranks.set_index("rank")["slowest_share"]
    assert share[SLOW] > 0.5 and share.sum() == pytest.approx(1.0)
    wait = rep.ranks.set_index("rank")["wait_median"]
    assert wait.drop(SLOW).min() > wait[SLOW]  # the slowest rank waits least
    assert (rep.ranks["rss_peak"] > 0).all()

    png = tmp_path / "ranks.png"
    assert cli.main(["ranks", path, "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"slowest rank: {SLOW}," in out and "step_time_median" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["ranks", path, "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("rank,step_time_median") and len(lines) == 5
    tm = distlog.open_run(path).telemetry.matrix("interval")
    assert tm.values.shape == (STEPS + 1, 4)  # one row per flush (the closing one too)
    np.testing.assert_array_equal(tm.flush, np.arange(STEPS + 1))


def _stops_flushing(rank, world, root, timeout):
    import distlog
    from distlog.errors import FlushTimeout

    exp = distlog.get_logger(root, flush_timeout=timeout, heartbeat_interval=0.2)
    try:
        with exp.run("hang"):
            for step in range(5):
                exp.metrics.collect(step=step, loss=1.0)
                if rank == 1 and step == 3:
                    exp.info("rank 1 goes off to do something else")
                    time.sleep(timeout + 5)  # never reaches flush #4
                    raise RuntimeError("rank 1 gave up")
                exp.metrics.flush()
    except FlushTimeout as e:
        return str(e)
    except RuntimeError as e:
        return f"{type(e).__name__}: {e}"
    return "no error"


@pytest.mark.timeout(240)
def test_flush_timeout_names_the_rank_that_did_not_arrive(tmp_path, capsys):
    res = run_ranks(_stops_flushing, 3, tmp_path, str(tmp_path / "root"), 4.0, timeout=180)
    assert res[1] == "RuntimeError: rank 1 gave up"
    for r in (0, 2):
        msg = res[r]
        assert "ranks that did not arrive at flush #4: 1\n" in msg, msg
        line = next(x for x in msg.splitlines() if x.strip().startswith("rank 1:"))
        assert "last step 3" in line and "3 flush(es) done" in line, line
        assert "rank 1 goes off to do something else" in line, line
        # (its heartbeat is fresh: alive in its own code, which py-spy shows; a review read
        # "raise flush_timeout=" as the fix for a rank plainly stuck)
        assert "rank 1 is alive (its heartbeat is fresh) but not in this flush" in msg and "py-spy dump --pid" in msg
    # a rank that failed inside flush #4 was at step 3 (it collected step 3 for it): its final
    # heartbeat and its "run failed" record said step 2, the previous flush's
    from distlog.heartbeat import describe, read_heartbeats
    from distlog.storage import open_storage

    run_path = str(tmp_path / "root" / "default" / "hang")
    beats = read_heartbeats(open_storage(run_path), 0)
    for r in (0, 2):
        assert beats[r]["state"] == "failed" and beats[r]["step"] == 3, beats[r]
        # an ended rank is not "inside flush #4 for <seconds since it entered, growing>"
        later = describe(beats[r], now=beats[r]["time"] + 100)
        assert "was inside flush #4 when it ended" in later and "for 10" not in later, later
    failed = distlog.open_run(run_path).logs.query(level="ERROR", grep="run failed").to_frame()
    assert sorted(failed["rank"]) == [0, 1, 2] and set(failed["step"]) == {3}, failed
    # `distlog show` names the rank that failed first (a waiting rank's FlushTimeout, which
    # names rank 1) and where to read its traceback
    capsys.readouterr()
    assert cli.main(["show", run_path]) == 0
    out = capsys.readouterr().out
    first = distlog.open_run(run_path).info.error
    assert f"error       FlushTimeout on rank {first['rank']} (attempt 0, host {first['host']}): " in out, out
    assert f"its traceback: distlog logs file://{run_path} --level ERROR --fields" in out, out



def _one_hangs_one_arrives_late(rank, world, root, timeout):
    import distlog
    from distlog.errors import FlushError

    exp = distlog.get_logger(root, flush_timeout=timeout, heartbeat_interval=0.2)
    try:
        with exp.run("hang-late"):
            for step in range(5):
                exp.metrics.collect(step=step, loss=1.0)
                if step == 3 and rank == 1:
                    time.sleep(timeout + 5)  # never reaches flush #4
                    raise RuntimeError("rank 1 gave up")
                if step == 3 and rank == 3:
                    time.sleep(timeout / 2)  # reaches flush #4, after rank 0
                exp.metrics.flush()
    except FlushError as e:  # (FlushTimeout is one)
        return f"{type(e).__name__}: {e}"
    except RuntimeError as e:
        return f"{type(e).__name__}: {e}"
    return "no error"


@pytest.mark.timeout(240)
def test_every_waiting_rank_names_the_rank_that_did_not_arrive(tmp_path):
    """Rank 0 times out first and its run ends: rank 3, which arrived later and was still
    waiting, got gloo's "connection closed" (a FlushError) with no word of the hang, so only
    some ranks said which rank never came. Every rank waiting in the flush names it."""
    res = run_ranks(_one_hangs_one_arrives_late, 4, tmp_path, str(tmp_path / "root"), 4.0, timeout=180)
    assert res[1] == "RuntimeError: rank 1 gave up"
    assert res[0].startswith("FlushTimeout: "), res[0]
    for r in (0, 2, 3):
        assert "ranks that did not arrive at flush #4: 1\n" in res[r], (r, res[r])
        line = next(x for x in res[r].splitlines() if x.strip().startswith("rank 1:"))
        assert "last step 3" in line and "3 flush(es) done" in line, line


def _second_run_on_one_comm_hangs(rank, world, root):
    import distlog
    from distlog.comm import TorchComm
    from distlog.errors import FlushError

    comm = TorchComm(timeout=3.0)  # one comm handed to both runs
    with distlog.get_logger(root, comm=comm, heartbeat_interval=0.2).run("first"):
        pass  # rank 1's heartbeats of this run: past every flush (it completed)
    exp = distlog.get_logger(root, comm=comm, heartbeat_interval=0)
    try:
        with exp.run("second"):
            for step in range(3):
                exp.metrics.collect(step=step, loss=1.0)
                if rank == 1 and step == 1:
                    time.sleep(8)
                    raise RuntimeError("rank 1 gave up")
                exp.metrics.flush()
    except FlushError as e:
        return f"{type(e).__name__}: {e}"
    except RuntimeError as e:
        return f"{type(e).__name__}: {e}"
    return "no error"


@pytest.mark.timeout(240)
def test_a_run_without_heartbeats_reports_no_other_runs_heartbeats(tmp_path):
    """A comm handed to two runs kept the first run's diagnosis: the second run (heartbeats
    off) hung and its FlushTimeout cited the first run's heartbeats (rank 1 "completed", the
    flush numbers of another run) as if they were this run's evidence."""
    res = run_ranks(_second_run_on_one_comm_hangs, 2, tmp_path, str(tmp_path / "root"), timeout=180)
    assert res[1] == "RuntimeError: rank 1 gave up"
    assert res[0].startswith("FlushTimeout: "), res[0]
    assert "heartbeat" not in res[0].split("Cause:")[1], res[0]

VICTIM = r"""
import sys, time
import distlog

root = sys.argv[1]
exp = distlog.get_logger(root, heartbeat_interval=0.2)
exp.start_run("victim")
other = distlog.get_logger(root, heartbeat_interval=0.2)
other.start_run("victim-failed")
for s in range(3):
    for e in (exp, other):
        e.metrics.collect(step=s, loss=float(s))
        e.metrics.flush()
for e in (exp, other):
    e.metrics.commit()  # rows committed; run.json's last_step stays null until a close
# a rank recorded its failure, then its process was killed before run.json said so
other.current_run._write_failure(RuntimeError("disk on fire"))
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.timeout(120)
def test_killed_run_turns_stale(tmp_path, capsys, monkeypatch):
    root = str(tmp_path / "root")
    script = tmp_path / "victim.py"
    script.write_text(VICTIM)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), root], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        runs = {r.info.run_id: r for r in distlog.open_root(root).runs()}
        assert runs["victim"].info.status == "running"  # alive: fresh heartbeats (default 300 s)
        deadline = time.time() + 60
        while runs["victim"].heartbeats()[0]["flushes"] < 3:  # the next periodic heartbeat
            assert time.time() < deadline, runs["victim"].heartbeats()
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: no close, no atexit
        proc.wait(30)
    killed = time.time()
    monkeypatch.setenv("DISTLOG_STALE_AFTER", "1")
    while time.time() < killed + 1.5:
        time.sleep(0.1)
    runs = {r.info.run_id: r for r in distlog.open_root(root).runs()}
    info = runs["victim"].info
    assert info.status == "stale" and info.raw["recorded_status"] == "running"
    assert info.end_time is not None and info.end_time <= killed  # its duration stops growing
    failed = runs["victim-failed"].info
    assert failed.status == "failed" and failed.error["message"] == "disk on fire"
    assert [r.info.run_id for r in distlog.open_root(root).runs(status="stale")] == ["victim"]
    # run.json has no last step (it is written at close): readers take it from the series
    assert info.last_step is None and failed.last_step is None
    table = distlog.open_root(root).table()
    assert dict(zip(table["run_id"], table["last_step"])) == {"victim": 2, "victim-failed": 2}
    assert cli.main(["ls", root]) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[1]: ln.split() for ln in out.splitlines()[2:]}
    # (columns: experiment run status started(2) duration world "last step", then why it failed)
    assert lines["victim"][2] == "stale" and lines["victim"][7] == "2" and lines["victim"][8] == "-", out
    assert lines["victim-failed"][2] == "failed" and lines["victim-failed"][7] == "2", out
    assert " ".join(lines["victim-failed"][8:]) == "RuntimeError on rank 0: disk on fire", out
    assert cli.main(["show", f"{root}/default/victim", "--ranks"]) == 0
    out = capsys.readouterr().out
    assert "status      stale" in out and "rank 0: last heartbeat" in out
    # its record says "(running)": the rank's state when it beat last, which the page says
    assert "(the run is stale: each rank's last heartbeat before it ended)" in out
    assert "last step   2" in out


def test_a_run_that_beats_less_often_than_the_stale_threshold_is_running_between_beats(tmp_path, monkeypatch):
    """heartbeat_interval above DISTLOG_STALE_AFTER (900 s against 300 s, to save requests):
    alive between its beats; stale once two of its intervals pass with none."""
    from distlog.heartbeat import liveness

    monkeypatch.setenv("DISTLOG_STALE_AFTER", "1")
    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=30)
    with exp.run("slow-beats"):
        run = distlog.open_run(f"{root}/default/slow-beats")
        beat = run.heartbeats()[0]
        meta = run.info.raw
        assert beat["interval"] == 30
        for age, want in ((5, "running"), (59, "running"), (61, "stale")):
            assert liveness(run.storage, meta, now=beat["time"] + age)[0] == want, age


def test_telemetry_off_writes_no_table_and_heartbeats_off_write_none(root):
    exp = distlog.get_logger(root, telemetry=False, heartbeat_interval=0)
    with exp.run("quiet"):
        for s in range(3):
            exp.metrics.collect(step=s, loss=1.0)
            exp.metrics.flush()
    run = distlog.open_run(f"{root}/default/quiet")
    assert not run.telemetry and run.telemetry.fields() == []
    assert run.heartbeats() == {} and run.info.status == "completed"
    assert len(run.metrics.read("loss")) == 3


@pytest.mark.parametrize("left", [False, True])
def test_a_closing_flush_with_nothing_to_reduce_times_no_step(root, left):
    """The closing flush of a run whose last values were flushed already times what the
    script did after its loop, not a training step: its ``interval`` is NaN, so ``step_time``
    and the straggler report leave it out (it came out as that whole time over one step);
    its ``wait_prev`` (the last real flush's wait) is kept. A closing flush that reduces values
    left over keeps its interval."""
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run(f"after-loop-{left}"):
        for s in range(5):
            exp.metrics.collect(step=s, loss=float(s))
            exp.metrics.flush()
            time.sleep(0.01)
        if left:
            exp.metrics.collect(step=5, loss=5.0)
        time.sleep(0.4)  # evaluation, a checkpoint...
    tel = distlog.open_run(f"{root}/default/after-loop-{left}").telemetry
    iv, st = tel.matrix("interval"), tel.matrix("step_time")
    assert iv.step.tolist() == [0, 1, 2, 3, 4, 5]
    assert np.isfinite(iv.values[1:5]).all() and (st.values[1:5] < 0.3).all()
    if left:
        assert iv.values[5, 0] >= 0.4 and st.values[5, 0] >= 0.4
    else:
        assert np.isnan(iv.values[5]).all() and np.isnan(st.values[5]).all()
    assert np.isfinite(tel.matrix("wait_prev").values[5]).all()
    assert tel.report().ranks["step_time_median"][0] < 0.3


def test_a_flush_with_nothing_to_reduce_mid_run_makes_no_telemetry_row(root):
    """An evaluation's flush (no rank collected anything) made a telemetry row at a step one
    past the last flush's, with the evaluation's time as its interval: `distlog ranks` took
    that for a training step (and named the rank that evaluated the slowest), and the next
    real row divided its interval by one step too few."""
    exp = distlog.get_logger(root, heartbeat_interval=0)
    step = 0
    with exp.run("evaluates"):
        for epoch in range(3):
            for _ in range(4):
                exp.metrics.collect(step=step, loss=float(step))
                exp.metrics.flush()
                step += 1
            time.sleep(0.4)  # evaluation
            exp.metrics.flush()  # nothing collected
    tel = distlog.open_run(f"{root}/default/evaluates").telemetry
    iv, st = tel.matrix("interval"), tel.matrix("step_time")
    assert iv.step.tolist() == list(range(12)) + [12]  # (the closing flush's row last)
    assert (st.values[1:12] < 0.3).all(), st.values[:, 0]  # no evaluation counted as a step
    assert tel.report().ranks["step_time_median"][0] < 0.3


def _evaluates_on_rank_0(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0)
    step = 0
    with exp.run("evaluates-2"):
        for epoch in range(4):
            for _ in range(4):
                time.sleep(0.05 if rank == 1 else 0.01)  # rank 1 trains slower
                exp.metrics.collect(step=step, loss=float(step))
                step += 1
            exp.metrics.flush()
            if rank == 0:
                time.sleep(0.5)  # rank 0 evaluates
            exp.metrics.flush()  # nothing collected on any rank
    return True


@pytest.mark.timeout(240)
def test_an_evaluation_flush_on_two_ranks_names_the_rank_that_trains_slower(tmp_path):
    """The same with two gloo ranks (the gathered flush): rank 0 evaluating was named the
    slowest rank, though rank 1 trains slower."""
    root = str(tmp_path / "root")
    run_ranks(_evaluates_on_rank_0, 2, tmp_path, root, timeout=180)
    tel = distlog.open_run(f"{root}/default/evaluates-2").telemetry
    assert tel.matrix("interval").step.tolist() == [3, 7, 11, 15, 16]  # (16: the closing flush)
    assert tel.report().slowest == 1


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_gpu_memory_and_utilisation_in_telemetry(root):
    import torch

    x = torch.ones(1 << 20, device="cuda")  # 4 MiB: CUDA initialised, memory allocated
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("gpu"):
        for s in range(3):
            exp.metrics.collect(step=s, loss=x.sum())  # a CUDA tensor, reduced on its device
            exp.metrics.flush()
    tel = distlog.open_run(f"{root}/default/gpu").telemetry
    assert {"gpu_allocated", "gpu_reserved", "gpu_peak"} <= set(tel.fields())
    assert (tel.matrix("gpu_allocated").values >= x.numel() * 4).all()
    assert (tel.matrix("gpu_peak").values >= tel.matrix("gpu_allocated").values).all()
    try:
        import pynvml  # noqa: F401  (nvidia-ml-py)
    except ImportError:
        return
    util = tel.matrix("gpu_util").values
    assert np.isfinite(util).all() and ((util >= 0) & (util <= 100)).all()


def _failing_after_flushes(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0)
    try:
        with exp.run("r"):
            for step in range(20):  # well within one telemetry hand-off interval (1 s)
                exp.metrics.collect(step=step, loss=float(step))
                exp.metrics.flush()
            raise RuntimeError(f"rank {rank} fails")
    except RuntimeError:
        return True


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_a_failing_run_keeps_the_telemetry_of_every_flush(tmp_path):
    """A multi-rank run that fails has no closing flush to force rank 0's kept telemetry out:
    close hands it to the writer, so every flush's row is stored."""
    root = str(tmp_path / "root")
    run_ranks(_failing_after_flushes, 2, tmp_path, root, timeout=90)
    run = distlog.open_run(f"{root}/default/r")
    assert run.info.status == "failed"
    assert run.metrics.read("loss")["step"].tolist() == list(range(20))
    assert run.telemetry.matrix("interval").flush.tolist() == list(range(20))


def test_a_run_whose_rank_0_died_is_not_kept_running_by_its_peers_final_records(tmp_path):
    """Rank 0 killed (no end written); rank 1 ended "failed" (a FlushError) and wrote a fresh
    final heartbeat: the run is judged ended at once (failed, with failure records; stale
    without), not "running" until rank 1's record ages past the stale threshold."""
    from distlog.heartbeat import heartbeat_path, liveness
    from distlog.layout import RUN_FILE
    from distlog.storage import open_storage

    store = open_storage(str(tmp_path / "run"))
    now = time.time()
    meta = {"status": "running", "attempt": 0}
    store.write_json(RUN_FILE, meta)
    beat = {"format": 1, "attempt": 0, "interval": 30, "state": "running", "time": now - 400}
    store.write_json(heartbeat_path(0), {**beat, "rank": 0})  # killed 400 s ago
    store.write_json(heartbeat_path(1), {**beat, "rank": 1, "state": "failed", "time": now - 1})
    assert liveness(store, meta, now=now, threshold=300)[0] == "stale"  # (no failure record here)
    store.write_json(heartbeat_path(1), {**beat, "rank": 1, "state": "completed", "time": now - 1})
    assert liveness(store, meta, now=now, threshold=300)[0] == "running"  # rank 0 ends it next


LOST_AT_THE_END = r"""
import datetime, os, sys
import torch.distributed as dist
rank, init, root = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method="file://" + init, rank=rank, world_size=2,
                        timeout=datetime.timedelta(seconds=30))
import distlog
from distlog.monitor import RankMonitor
exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=20)
with exp.run("r"):
    for s in range(3):
        exp.metrics.collect(step=s, loss=float(s + rank))
        exp.metrics.flush()
    if rank == 1:  # gone after the status exchange, before the closing barrier (a kill there)
        RankMonitor.close = lambda self, status: os._exit(0)
"""


@pytest.mark.timeout(120)
def test_a_peer_lost_in_the_closing_barrier_fails_the_run(tmp_path):
    """Rank 0's close() raised (its peer vanished in the last barrier) while run.json said
    "completed", with no error and no failure record."""
    script, root = tmp_path / "lost.py", str(tmp_path / "root")
    script.write_text(LOST_AT_THE_END)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(tmp_path / "rdzv"), root], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for r in range(2)]
    errs = [p.communicate(timeout=100)[1] for p in procs]
    assert procs[0].returncode != 0 and "FlushError" in errs[0], errs[0][-2000:]
    info = distlog.open_run(f"{root}/default/r").info
    assert info.status == "failed" and info.error and info.error["type"] == "FlushError"
    assert distlog.open_run(f"{root}/default/r").metrics.read("loss").step.tolist() == [0, 1, 2]
