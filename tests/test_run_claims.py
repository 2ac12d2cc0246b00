"""One live attempt per run (``distlog.claims``): a second process starting a run that another
live process writes would interleave the two trainings' rows in one set of series.

* a run still open in this process, or in another live process, cannot be started again with
  the id the program gives (``RunInUseError`` naming the holder); once the holder ends (closed,
  or killed with SIGKILL: its pid is gone at once) the next attempt starts;
* processes racing to start one given id at the same moment: exactly one gets it, the run's
  series hold its values only;
* processes racing with a job's own id (concurrent srun steps: ``SLURM_JOB_ID``): one run
  each (``slurm-J``, ``slurm-J-2``, ...), each run's series holding only its process's values;
* ranks on another host are judged by their heartbeats; a claim whose process died before it
  recorded its attempt is passed over once old; a requeue (other restart counts) takes over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import distlog
from distlog.layout import RUN_FILE, attempt_claim_path, heartbeat_path

pytestmark = pytest.mark.timeout(180)

HOLDER = textwrap.dedent("""
    import sys, time, pathlib, distlog
    root, run_id, tag, ready, hold = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    gate = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
    while time.time() < gate:  # racing starts: every process passes the gate together
        time.sleep(0.001)
    exp = distlog.get_logger(root)
    try:
        exp.start_run(run_id) if run_id != "-" else exp.start_run()
    except distlog.RunInUseError as e:
        print("IN-USE", e, flush=True)
        sys.exit(0)
    print("STARTED", exp.run_id, exp.current_run.attempt, flush=True)
    for step in range(5):
        exp.metrics.log(v=tag, step=step)
    exp.metrics.flush()
    pathlib.Path(ready).write_text("ok")
    release, end = pathlib.Path(ready + ".release"), time.monotonic() + hold
    while not release.exists() and time.monotonic() < end:  # the run stays open meanwhile
        time.sleep(0.02)
    exp.close()
""")


@pytest.fixture(autouse=True)
def _no_launcher(monkeypatch):
    for var in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_RESTART_COUNT",
                "SLURM_STEP_ID", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT",
                "DISTLOG_RUN_ID", "DISTLOG_RUN_NAME"):
        monkeypatch.delenv(var, raising=False)


def _holder(root: Path, run_id: str, tag: float, ready: Path, hold: float, gate: float = 0.0,
            env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(root), run_id, str(tag), str(ready),
                             str(hold), str(gate)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the holder ended before it was ready (rc {proc.returncode}):\n{out}\n{err}")
        assert time.monotonic() < end, "the holder did not get ready in time"
        time.sleep(0.05)


def _meta(root: Path, run_id: str, experiment: str = "default") -> dict:
    return json.loads((root / experiment / run_id / RUN_FILE).read_text())


def _values(root: Path, run_id: str) -> np.ndarray:
    return distlog.open_run(str(root / "default" / run_id)).metrics.read("v")["value"]


def test_a_run_open_in_this_process_cannot_be_started_again(tmp_path):
    first = distlog.get_logger(str(tmp_path))
    first.start_run("r")
    first.metrics.log(loss=1.0, step=1)
    second = distlog.get_logger(str(tmp_path))
    with pytest.raises(distlog.RunInUseError, match=r"default/r .*is this process.*close the run"):
        second.start_run("r")
    first.metrics.log(loss=2.0, step=2)  # the open run goes on untouched
    first.close()
    meta = _meta(tmp_path, "r")
    assert [(a["attempt"], a["status"]) for a in meta["attempts"]] == [(0, "completed")]
    loss = distlog.open_run(str(tmp_path / "default" / "r")).metrics.read("loss")
    assert loss["step"].tolist() == [1.0, 2.0] and loss["value"].tolist() == [1.0, 2.0]
    second.start_run("r")  # closed: the next attempt starts
    second.close()
    assert [a["attempt"] for a in _meta(tmp_path, "r")["attempts"]] == [0, 1]


def test_another_live_process_holds_the_run_until_it_is_killed(tmp_path):
    ready = tmp_path / "ready"
    proc = _holder(tmp_path / "root", "r", 7.0, ready, hold=120)
    try:
        _wait_for(ready, proc)
        exp = distlog.get_logger(str(tmp_path / "root"))
        with pytest.raises(distlog.RunInUseError, match=rf"pid {proc.pid}, this host"):
            exp.start_run("r")
        assert [a["attempt"] for a in _meta(tmp_path / "root", "r")["attempts"]] == [0]
    finally:
        proc.kill()  # SIGKILL: no close, run.json still says running
        proc.communicate()
    assert _meta(tmp_path / "root", "r")["status"] == "running"
    exp.start_run("r")  # the pid is gone: the attempt is dead, at once
    exp.metrics.log(v=8.0, step=9)
    exp.close()
    meta = _meta(tmp_path / "root", "r")
    assert [(a["attempt"], a["status"]) for a in meta["attempts"]] == [(0, "interrupted"), (1, "completed")]


def _race(tmp_path: Path, run_id: str, n: int, env: dict[str, str] | None = None) -> list[str]:
    """``n`` processes start ``run_id`` at one moment; each that got a run holds it open until
    every process has either got one or been refused (no timing decides who overlaps)."""
    gate = time.time() + 4.0  # after every process imported distlog (2 cores, n processes)
    ready = [tmp_path / f"ready-{i}" for i in range(n)]
    procs = [_holder(tmp_path / "root", run_id, float(i), ready[i], hold=120, gate=gate, env=env)
             for i in range(n)]
    end = time.monotonic() + 120
    while not all(r.exists() or p.poll() is not None for r, p in zip(ready, procs)):
        assert time.monotonic() < end, "the racing processes did not all start or give up"
        time.sleep(0.05)
    for r in ready:
        Path(f"{r}.release").write_text("go")
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=150)
        assert p.returncode == 0, err
        outs.append(out.strip() + "\n" + err)  # (its warnings after its result line)
    return outs


def test_processes_racing_to_start_one_given_id_get_it_once(tmp_path):
    outs = _race(tmp_path, "same", 4)
    started = [i for i, o in enumerate(outs) if o.startswith("STARTED")]
    assert len(started) == 1, outs
    assert all("is being written by a live process" in o for i, o in enumerate(outs) if i not in started), outs
    meta = _meta(tmp_path / "root", "same")
    assert [(a["attempt"], a["status"]) for a in meta["attempts"]] == [(0, "completed")]
    assert _values(tmp_path / "root", "same").tolist() == [float(started[0])] * 5  # one process's rows only


def test_concurrent_steps_of_one_job_get_a_run_each(tmp_path):
    outs = _race(tmp_path, "-", 4, env={"SLURM_JOB_ID": "4242"})
    assert all(o.startswith("STARTED") for o in outs), outs
    runs = {o.splitlines()[0].split()[1]: i for i, o in enumerate(outs)}
    moved = [o for o in outs if "run default/slurm-4242 is being written by another process" in o]
    assert len(moved) == 3 and all("this process logs to run default/slurm-4242-" in o for o in moved), outs
    assert sorted(runs) == sorted(["slurm-4242", "slurm-4242-2", "slurm-4242-3", "slurm-4242-4"]), outs
    for run_id, i in runs.items():
        assert _values(tmp_path / "root", run_id).tolist() == [float(i)] * 5, run_id  # no mixing
        assert [a["attempt"] for a in _meta(tmp_path / "root", run_id)["attempts"]] == [0]


def _killed_elsewhere(root: Path, beat_age: float | None) -> None:
    """Make run ``r`` look killed without closing while its one rank ran on another host,
    whose last heartbeat of attempt 0 is ``beat_age`` seconds old (None: no heartbeat)."""
    exp = distlog.get_logger(str(root))
    with exp.run("r"):
        exp.metrics.log(v=1.0, step=0)
    folder = root / "default" / "r"
    meta = _meta(root, "r")
    meta["status"] = meta["attempts"][-1]["status"] = "running"
    meta["attempts"][-1]["ranks"] = [{"rank": 0, "host": "elsewhere", "local_rank": 0, "node": 0, "pid": 1}]
    (folder / RUN_FILE).write_text(json.dumps(meta))
    beat = folder / heartbeat_path(0)
    beat.unlink()
    if beat_age is not None:
        beat.write_text(json.dumps({"format": 1, "rank": 0, "attempt": 0, "host": "elsewhere", "pid": 1,
                                    "time": time.time() - beat_age, "interval": 30.0, "state": "running"}))
    claim = folder / attempt_claim_path(0)  # (its claim is old: the attempt began long ago)
    claim.write_text(json.dumps({**json.loads(claim.read_text()), "time": time.time() - 600}))


def test_ranks_on_another_host_are_live_while_their_heartbeat_is_fresh(tmp_path):
    _killed_elsewhere(tmp_path, beat_age=20)
    with pytest.raises(distlog.RunInUseError, match=r"rank 0 of attempt 0 beat 20 s ago \(host elsewhere"):
        distlog.get_logger(str(tmp_path)).start_run("r")
    hb = tmp_path / "default" / "r" / heartbeat_path(0)  # two intervals + 30 s later: dead
    hb.write_text(json.dumps({**json.loads(hb.read_text()), "time": time.time() - 95}))
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        assert exp.current_run.attempt == 1
    assert [a["status"] for a in _meta(tmp_path, "r")["attempts"]] == ["interrupted", "completed"]


def test_a_requeue_takes_over_a_run_its_launcher_ended(tmp_path, monkeypatch):
    _killed_elsewhere(tmp_path, beat_age=5)  # fresh, but the requeue counts up: SLURM ended it
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        assert exp.current_run.attempt == 1


def test_a_claim_whose_process_died_before_run_json_is_passed_over(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        pass
    claim = tmp_path / "default" / "r" / attempt_claim_path(1)
    claim.write_text(json.dumps({"attempt": 1, "host": "elsewhere", "pid": 1, "time": time.time() - 5}))
    with pytest.raises(distlog.RunInUseError, match=r"attempt 1 was claimed 5 s ago \(host elsewhere pid 1\)"):
        exp.start_run("r")  # moments ago: a process starting the same run right now
    claim.write_text(json.dumps({"attempt": 1, "host": "elsewhere", "pid": 1, "time": time.time() - 300}))
    with exp.run("r"):  # long ago and never recorded: its process died; the next number
        assert exp.current_run.attempt == 2
    assert [a["attempt"] for a in _meta(tmp_path, "r")["attempts"]] == [0, 2]
    with exp.run("r"):
        assert exp.current_run.attempt == 3
    # a folder holding only claims (a start that died before run.json) is no experiment folder
    (tmp_path / "default" / "s" / "attempts").mkdir(parents=True)
    (tmp_path / "default" / "s" / attempt_claim_path(0)).write_text(json.dumps({"time": time.time() - 300}))
    with exp.run("s"):
        assert exp.current_run.attempt == 1


def test_a_run_named_like_the_claims_folder_still_keeps_runs_from_nesting(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e/x"), exp.run("attempts"):  # a run "attempts" in experiment e/x
        exp.metrics.log(v=1.0, step=0)
    with exp.experiment("e"), pytest.raises(ValueError, match="already exists as an experiment folder"):
        exp.start_run("x")  # would put that run inside run x


def _start_held_run(rank: int, world: int, root: str) -> str:
    try:
        distlog.get_logger(root).start_run("r")
    except distlog.RunInUseError as e:
        return str(e)
    return "started"


@pytest.mark.dist
def test_every_rank_of_a_refused_start_raises_no_rank_hangs(tmp_path):
    from support.ranks import run_ranks

    ready = tmp_path / "ready"
    proc = _holder(tmp_path / "root", "r", 7.0, ready, hold=120)
    try:
        _wait_for(ready, proc)
        got = run_ranks(_start_held_run, 2, tmp_path, str(tmp_path / "root"), timeout=90)
    finally:
        Path(f"{ready}.release").write_text("go")
        proc.communicate(timeout=60)
    assert all(f"pid {proc.pid}, this host" in g for g in got), got
    assert got[1].startswith("starting the run failed on rank 0"), got
    meta = _meta(tmp_path / "root", "r")  # the holder's run as it wrote it, closed by it
    assert [(a["attempt"], a["status"], a["world_size"]) for a in meta["attempts"]] == [(0, "completed", 1)]
    assert _values(tmp_path / "root", "r").tolist() == [7.0] * 5


RESTARTED = textwrap.dedent("""
    import os, sys, distlog
    exp = distlog.get_logger(sys.argv[1])
    try:
        exp.start_run("r")
    except distlog.RunInUseError as e:
        print("IN-USE", e, flush=True)
        sys.exit(0)
    print("STARTED", os.getpid(), exp.current_run.attempt, flush=True)
    exp.metrics.log(v=float(exp.current_run.attempt), step=exp.current_run.attempt)
    exp.metrics.flush()
    if sys.argv[2] == "die":
        os._exit(137)  # killed without closing (OOM): run.json still says running
    exp.close()
""")


def _in_container(root: Path, how: str) -> str:
    """``RESTARTED`` as a container's first process: pid 1 of a new pid namespace, every time."""
    cmd = ["unshare", "-Urpf", "--mount-proc", sys.executable, "-c", RESTARTED, str(root), how]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        pytest.skip("no unshare(1) here")
    if "unshare" in done.stderr and done.returncode not in (0, 137):
        pytest.skip(f"no user/pid namespaces here: {done.stderr.strip()}")
    return done.stdout.strip()


def test_a_container_restarted_with_the_killed_process_pid_takes_the_run_over(tmp_path):
    # a pod's container killed (OOM) and restarted on the same host: same hostname, and its
    # process has the dead one's pid again (1); it is not the dead process and not "this process"
    first = _in_container(tmp_path, "die")
    assert first.startswith("STARTED 1 0"), first
    assert _meta(tmp_path, "r")["status"] == "running"
    second = _in_container(tmp_path, "close")
    assert second.startswith("STARTED 1 1"), second
    meta = _meta(tmp_path, "r")
    assert [(a["attempt"], a["status"]) for a in meta["attempts"]] == [(0, "interrupted"), (1, "completed")]


def test_a_requeued_job_still_running_is_not_taken_over_by_another_job(tmp_path, monkeypatch):
    # job 100, requeued once (its restart count is 1), writes run r; job 101 (restart count 0)
    # is started with the same run id: other restart counts, but not a restart of job 100,
    # whose processes no launcher ended
    ready = tmp_path / "ready"
    proc = _holder(tmp_path / "root", "r", 7.0, ready, hold=120,
                   env={"SLURM_JOB_ID": "100", "SLURM_RESTART_COUNT": "1"})
    try:
        _wait_for(ready, proc)
        monkeypatch.setenv("SLURM_JOB_ID", "101")
        exp = distlog.get_logger(str(tmp_path / "root"))
        with pytest.raises(distlog.RunInUseError, match=rf"pid {proc.pid}, this host"):
            exp.start_run("r")
    finally:
        Path(f"{ready}.release").write_text("go")
        proc.communicate(timeout=60)
    meta = _meta(tmp_path / "root", "r")
    assert [(a["attempt"], a["status"]) for a in meta["attempts"]] == [(0, "completed")]
    assert _values(tmp_path / "root", "r").tolist() == [7.0] * 5


KILLED_STARTING = textwrap.dedent("""
    import os, signal, sys, distlog
    from distlog.run import Run
    Run._write_start_meta = lambda self, *args: os.kill(os.getpid(), signal.SIGKILL)
    distlog.get_logger(sys.argv[1]).start_run("r")  # killed after its claim, before run.json
""")


def test_a_process_killed_between_its_claim_and_run_json_does_not_block_a_rerun(tmp_path):
    done = subprocess.run([sys.executable, "-c", KILLED_STARTING, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    assert (tmp_path / "default" / "r" / attempt_claim_path(0)).exists()
    assert not (tmp_path / "default" / "r" / RUN_FILE).exists()
    exp = distlog.get_logger(str(tmp_path))  # its pid is gone: rerun at once, as after kill -9
    with exp.run("r"):
        exp.metrics.log(v=1.0, step=0)
    assert [(a["attempt"], a["status"]) for a in _meta(tmp_path, "r")["attempts"]] == [(1, "completed")]


def test_a_start_that_failed_after_its_claim_can_be_retried_at_once(tmp_path, monkeypatch):
    # run.json could not be written (a store error that outlasted the retries): the start
    # failed, and retrying it in the same process is no "other process starting it now"
    from distlog.run import Run

    real = Run._write_start_meta

    def failing(self, *args):
        monkeypatch.setattr(Run, "_write_start_meta", real)
        raise OSError("the store is unavailable")

    monkeypatch.setattr(Run, "_write_start_meta", failing)
    exp = distlog.get_logger(str(tmp_path))
    with pytest.raises(OSError, match="the store is unavailable"):
        exp.start_run("r")
    with exp.run("r"):
        exp.metrics.log(v=1.0, step=0)
    assert [(a["attempt"], a["status"]) for a in _meta(tmp_path, "r")["attempts"]] == [(0, "completed")]
