"""SIGTERM while a run is open: torchrun stops the healthy ranks this way when one rank fails
(and SLURM at the time limit). It killed the process with its rows flushed but not committed:
rank 0, which writes the run's series, lost every row since the last commit (a user review:
0 of 24 rows) and the run stayed "running". Now the run closes — rows committed, the
attempt ``interrupted`` (the failing peer's record names the run's cause) — and the process
exits with status 143."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import distlog

pytestmark = pytest.mark.timeout(120)

SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    import distlog
    root, mode = sys.argv[1], sys.argv[2]
    if mode == "own":
        signal.signal(signal.SIGTERM, lambda s, f: (print("OWN HANDLER", flush=True), sys.exit(7)))
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, commit_interval=3600)
    def train():
        for step in range(24):
            exp.metrics.collect(step=step, loss=float(step))
            if step % 4 == 3:
                exp.metrics.flush()
        print("HANDLER", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)
        if mode == "fork":
            pid = os.fork()
            if pid == 0:  # a forked worker told to stop dies of SIGTERM, as before
                time.sleep(30)
                os._exit(0)
            time.sleep(0.5)  # (Python drops a signal that comes before the child runs)
            os.kill(pid, signal.SIGTERM)
            print("CHILD", os.waitpid(pid, 0)[1] & 0x7F, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # (torchrun's SIGTERM comes while the rank waits, sleeps or trains)
        print("NOT STOPPED", flush=True)
    if mode == "scoped":
        with exp.run("r"):
            train()
    else:
        exp.start_run("r")  # closed by the exit hook
        train()
""")


def _run(tmp_path, mode):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return subprocess.run([sys.executable, str(script), str(tmp_path / "root"), mode], capture_output=True,
                          text=True, timeout=90)


@pytest.mark.parametrize("mode", ["scoped", "unscoped", "fork"])
def test_sigterm_commits_the_rows_and_ends_the_attempt_interrupted(tmp_path, mode):
    out = _run(tmp_path, mode)
    assert out.returncode == 143, (out.returncode, out.stdout, out.stderr[-2000:])
    assert "HANDLER False" in out.stdout and "NOT STOPPED" not in out.stdout
    if mode == "fork":
        assert f"CHILD {signal.SIGTERM.value}" in out.stdout  # killed by the signal itself
    run = distlog.open_run(tmp_path / "root" / "default" / "r")
    loss = run.metrics.read("loss")
    assert loss.step.tolist() == [3, 7, 11, 15, 19, 23]  # every flushed row, none lost
    assert loss["count"].tolist() == [4] * 6
    assert (run.info.status, run.info.error) == ("interrupted", None)  # no failure of its own
    said = [r.message for r in run.logs.query(level="WARNING")]
    assert any(m.startswith("SIGTERM: the process was told to stop") and m.endswith("closes interrupted "
                                                                                      "(rows flushed so far are kept)")
               for m in said), said


def test_a_sigterm_handler_the_script_set_is_left_alone(tmp_path):
    out = _run(tmp_path, "own")
    assert "HANDLER False" in out.stdout and "OWN HANDLER" in out.stdout, out.stdout
    assert out.returncode == 7, (out.stdout, out.stderr[-2000:])


def test_the_default_action_is_back_once_the_run_closed(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    before = signal.getsignal(signal.SIGTERM)
    with exp.run("r"):
        during = signal.getsignal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before
    assert before is not signal.SIG_DFL or during is not signal.SIG_DFL
    assert os.getpid() > 0


# rank 0 sits in a long step after the flushes while rank 1 ends: torchrun then stops rank 0
PEER_ENDS = textwrap.dedent("""
    import os, signal, sys, time
    import torch.distributed as dist
    import distlog
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    exp = distlog.get_logger(sys.argv[1], heartbeat_interval={beat}, telemetry=False, commit_interval=3600)
    with exp.run("r"):
        for step in range({steps}):
            exp.metrics.collect(step=step, loss=float(rank * 100 + step))
            if step % 5 == 4:
                exp.metrics.flush()
        if rank == 1:
            {end}
        time.sleep(60)
""")
PEER_FAILS = PEER_ENDS.format(beat=0, steps=120, end='raise RuntimeError("rank 1 broke")')
PEER_KILLED = PEER_ENDS.format(beat=1, steps=40, end="os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer does")


def _torchrun_two(tmp_path, script_text):
    """``script_text`` under ``torchrun --standalone`` with 2 ranks (no inherited launcher
    or distlog variables), its root ``tmp_path/root``."""
    from support.train_ddp_oracle import TORCHRUN

    script = tmp_path / "peer.py"
    script.write_text(script_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_", "DISTLOG_"))
           and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path / "root")],
                          env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=200)


@pytest.mark.dist
@pytest.mark.timeout(240)
def test_a_rank_torchrun_stops_when_another_failed_keeps_the_runs_rows(tmp_path):
    """A user review: rank 1 raises while rank 0 is in a long step; torchrun SIGTERMs rank 0,
    which held the run's 24 flushed rows uncommitted: 0 of them were kept, and the run stayed
    "running". Now rank 0 commits them, and the run is failed with rank 1's cause."""
    import numpy as np

    out = _torchrun_two(tmp_path, PEER_FAILS)
    assert out.returncode != 0
    run = distlog.open_run(tmp_path / "root" / "default" / "r")
    loss = run.metrics.read("loss")
    steps = np.arange(4, 120, 5)
    assert loss.step.tolist() == steps.tolist(), (loss.step.tolist(), out.stderr[-3000:])
    want = [np.mean([r * 100 + s for r in (0, 1) for s in range(e - 4, e + 1)]) for e in steps]
    np.testing.assert_allclose(loss["mean"], want)
    assert run.info.status == "failed" and run.info.error["rank"] == 1, run.info.error
    assert run.info.error["message"] == "rank 1 broke"


@pytest.mark.dist
@pytest.mark.timeout(240)
def test_a_rank_stopped_after_a_peer_was_killed_names_the_killed_rank(tmp_path):
    """A dashboard review: rank 1 SIGKILLed (the OOM killer), then torchrun (or mp.spawn)
    SIGTERMs rank 0: the run read "interrupted" with no error, nothing about rank 1. Rank 0
    sees from rank 1's heartbeat that its process is gone: the run is failed, its cause
    names rank 1 (RankLost), and the rows flushed before are kept."""
    out = _torchrun_two(tmp_path, PEER_KILLED)
    assert out.returncode != 0
    run = distlog.open_run(tmp_path / "root" / "default" / "r")
    assert run.metrics.read("loss").step.tolist() == list(range(4, 40, 5)), out.stderr[-3000:]
    assert run.info.status == "failed", (run.info.status, run.info.error, out.stderr[-3000:])
    err = run.info.error
    assert err["type"] == "RankLost" and err["rank"] == 0, err
    assert "rank 1 ended without closing the run" in err["message"] and "process is gone" in err["message"]
    assert "SIGTERM" in err["message"]


STOPPED_BY_ALL = textwrap.dedent("""
    import os, sys, time
    import torch.distributed as dist
    import distlog
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    root, marks = sys.argv[1], sys.argv[2]
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, commit_interval=3600)
    with exp.run("r"):
        for step in range(120):
            exp.metrics.collect(step=step, loss=float(rank * 100 + step))
            if step % 5 == 4:
                exp.metrics.flush()
        open(os.path.join(marks, f"rank{rank}.pid"), "w").write(str(os.getpid()))
        for _ in range(600):  # a long step: the job is stopped meanwhile
            time.sleep(0.1)
""")


@pytest.mark.dist
@pytest.mark.timeout(240)
def test_a_job_stopped_by_slurm_and_torchrun_together_keeps_the_runs_rows(tmp_path):
    """SLURM stops a job step (scancel, a requeue, the time limit) by signalling every process
    in it, and torchrun passes its own SIGTERM on to its ranks: each rank got two within
    milliseconds, and the second, which ended the program at once, killed rank 0 in its close
    (a user review on a real SLURM: 19 of the flushed rows lost, or none stored, and the run
    left "running"). The repeat is absorbed now: every flushed row is kept, the run ends
    ``interrupted``."""
    import time

    import numpy as np

    from support.train_ddp_oracle import TORCHRUN

    script, marks = tmp_path / "job.py", tmp_path / "marks"
    script.write_text(STOPPED_BY_ALL)
    marks.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_", "DISTLOG_"))
           and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    proc = subprocess.Popen([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(script),
                             str(tmp_path / "root"), str(marks)], env={**env, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 150
        while len(list(marks.glob("*.pid"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [int(p.read_text()) for p in marks.glob("*.pid")]
        assert len(pids) == 2, proc.communicate(timeout=10)[0][-3000:]
        for pid in [proc.pid, *pids]:  # as slurmstepd does: every process of the step at once
            os.kill(pid, signal.SIGTERM)
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    run = distlog.open_run(tmp_path / "root" / "default" / "r")
    loss = run.metrics.read("loss")
    steps = np.arange(4, 120, 5)
    assert loss.step.tolist() == steps.tolist(), (loss.step.tolist(), out[-3000:])
    want = [np.mean([r * 100 + s for r in (0, 1) for s in range(e - 4, e + 1)]) for e in steps]
    np.testing.assert_allclose(loss["mean"], want)
    assert run.info.status == "interrupted", (run.info.status, out[-3000:])


FINISHING = textwrap.dedent("""
    import os, signal, sys, time
    import distlog, distlog.run as run_module
    root = sys.argv[1]
    real = run_module.write_logs_table

    def merge_while_told_to_stop(storage):  # SLURM's SIGTERM lands while the close finishes
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.3)
        return real(storage)

    run_module.write_logs_table = merge_while_told_to_stop
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        for step in range(10):
            exp.metrics.log(step=step, loss=float(step))
    print("AFTER THE RUN", flush=True)
""")


def test_sigterm_while_a_close_finishes_keeps_its_status_and_stops_after_it(tmp_path):
    """A SIGTERM while the close wrote the logs table and run.json (past its last collective)
    raised there: the run, done training and with every row committed, was recorded
    ``interrupted`` while its log said "run ended: completed", and the warning about it was
    "dropped" (the log was closed). The close now finishes with its own status, then the
    program stops (143) as it would have."""
    script = tmp_path / "train.py"
    script.write_text(FINISHING)
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "root")], capture_output=True,
                         text=True, timeout=90)
    assert out.returncode == 143, (out.returncode, out.stderr)
    assert "AFTER THE RUN" not in out.stdout  # stopped right after the close
    assert "dropped" not in out.stderr, out.stderr
    run = distlog.open_run(tmp_path / "root" / "default" / "r")
    assert run.info.status == "completed"
    assert run.metrics.read("loss").step.tolist() == list(range(10))
