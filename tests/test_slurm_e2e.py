"""slurm/array_sweep.sbatch on a real SLURM (the one-node cluster of scripts/slurm_local.sh).

Every job runs scripts/train_ddp.py under ``torchrun --standalone`` with 2 gloo ranks on the
CPU, writing into one root per test; the checks read the root back through the query API and
compare the stored series with an independent oracle (the raw values each rank dumped,
reduced with NumPy: ``support.train_ddp_oracle``).

* the sweep: 3 array tasks -> 3 completed runs named after their grid lines, 2 per-rank logs
  each, series equal to the oracle, and the file every rank of every task saved is one blob;
* ``scontrol requeue`` of a running task (a hard kill): the next attempt resumes from the
  checkpoint, the series continue with no duplicate or missing step, and the logs and
  ``run.json`` show two attempts;
* USR1 preemption (``scancel --batch --signal=USR1``): the template forwards the signal, the
  ranks agree at the next flush, checkpoint and exit 3, the template requeues, and the same
  run continues.

Skipped, with the reason, when sbatch/sinfo are missing or the cluster does not answer.
Jobs ask for one CPU (the partition oversubscribes its 2 CPUs 4 times), so parallel tests
(``pytest -n auto``) and other users' jobs do not leave these pending for long.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import distlog
from distlog import slurm
from distlog.cas import BLOB_DIR, blob_path
from support.slurm import cluster  # noqa: F401 (the fixture)
from support.slurm import run as _run
from support.train_ddp_oracle import REPO, TORCHRUN, TRAIN_DDP, check_run, flush_steps, read_dumps

pytestmark = [pytest.mark.dist, pytest.mark.slurm]
TEMPLATE = REPO / "slurm" / "array_sweep.sbatch"
JOB_TIMEOUT_S = 300  # a job, queueing and requeues included (typical: 30-60 s)
SHARED = b"the same bytes on every rank\n"



class Sweep:
    """One submission of the array template, its folders and its diagnosis."""

    def __init__(self, tmp_path: Path, configs: list[dict], array: str) -> None:
        self.tmp = tmp_path
        self.root, self.dump, self.out = tmp_path / "root", tmp_path / "oracle", tmp_path / "out"
        (tmp_path / "tmp").mkdir()
        self.out.mkdir()
        self.grid = slurm.write_grid_file(tmp_path / "grid.txt", configs)
        self.configs = configs
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "DISTLOG_", "TORCHELASTIC_"))}
        env.update(GRID_FILE=str(self.grid), SCRIPT=str(TRAIN_DDP), ROOT=str(self.root), NPROC="2",
                   TORCHRUN=str(TORCHRUN), MAX_RESTARTS="3", TMPDIR=str(tmp_path / "tmp"),
                   DISTLOG_ORACLE_DUMP=str(self.dump), OMP_NUM_THREADS="1")
        proc = subprocess.run(
            ["sbatch", "--parsable", f"--array={array}", "--cpus-per-task=1", "--time=00:15:00",
             f"--job-name=distlog-e2e-{tmp_path.name}", f"--output={self.out}/slurm-%A_%a.out",
             f"--chdir={tmp_path}", str(TEMPLATE)], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, f"sbatch failed: {proc.stderr}"
        self.job = proc.stdout.strip().split(";")[0]
        self.t0 = time.monotonic()

    def task(self, i: int) -> str:
        return f"{self.job}_{i}"

    def run_id(self, i: int) -> str:
        return slurm.run_name(self.configs[i])

    def checkpoint(self, i: int) -> Path:
        return self.root / "demo" / ".checkpoints" / f"{self.run_id(i)}.pt"

    def fields(self) -> dict[str, dict[str, str]]:
        """``{jobid_task: scontrol fields}`` (finished jobs stay visible for MinJobAge)."""
        proc = _run("scontrol", "-o", "show", "job", self.job)
        out = {}
        for line in proc.stdout.splitlines():
            f = dict(x.split("=", 1) for x in line.split() if "=" in x)
            out[f"{f.get('ArrayJobId')}_{f.get('ArrayTaskId')}"] = f
        return out

    def diagnosis(self) -> str:
        files = "\n".join(f"--- {p.name}\n{p.read_text()[-5000:]}" for p in sorted(self.out.glob("*")))
        return (f"after {time.monotonic() - self.t0:.0f} s\nscontrol show job {self.job}:\n"
                f"{_run('scontrol', 'show', 'job', self.job).stdout}\nsqueue:\n"
                f"{_run('squeue', '-j', self.job).stdout}\n{files}")

    def wait_until(self, what: str, cond, timeout: float = JOB_TIMEOUT_S, poll: float = 0.5):
        """Poll ``cond()`` until it returns something true; fail with the diagnosis on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            got = cond()
            if got:
                return got
            if time.monotonic() > deadline:
                pytest.fail(f"job {self.job}: {what} not reached within {timeout:.0f} s\n{self.diagnosis()}")
            time.sleep(poll)

    def wait_done(self, timeout: float = JOB_TIMEOUT_S) -> dict[str, dict[str, str]]:
        def gone() -> bool:
            q = _run("squeue", "-h", "-j", self.job, "-o", "%i %T")
            return q.returncode == 0 and not q.stdout.strip()

        self.wait_until("every task finished", gone, timeout)
        return self.fields()

    def checkpoint_step(self, i: int) -> int | None:
        import torch

        try:
            return int(torch.load(self.checkpoint(i), weights_only=True)["step"])
        except (FileNotFoundError, EOFError, RuntimeError):
            return None

    def cancel(self) -> None:
        _run("scancel", self.job)


def _config(**kw) -> dict:
    return {"flush-every": 4, "steps": 12, **kw}


def _check_resumed_run(sw: Sweep, n_attempts: int, steps: int, every: int, first_status: str) -> None:
    """One task, requeued ``n_attempts - 1`` times: one run whose series continue."""
    fields = sw.wait_done()
    f = fields.get(sw.task(0), {})
    assert (f.get("JobState"), f.get("Restarts")) == ("COMPLETED", str(n_attempts - 1)), sw.diagnosis()
    runs = distlog.open_root(str(sw.root)).runs()
    assert [r.info.run_id for r in runs] == [sw.run_id(0)], sw.diagnosis()
    run = runs[0]
    info = run.info
    assert info.status == "completed", (info.raw, sw.diagnosis())
    atts = info.attempts
    assert [a["attempt"] for a in atts] == list(range(n_attempts)), atts
    assert [a["restart_counts"]["slurm"] for a in atts] == list(range(n_attempts)), atts
    assert atts[-1]["status"] == "completed"
    assert atts[0]["status"] == first_status, atts[0]  # hard kill: interrupted; USR1: preempted
    dumps = read_dumps(sw.dump, sw.run_id(0))
    assert sorted(dumps) == [(r, a) for r in (0, 1) for a in range(n_attempts)], sorted(dumps)
    for a in range(1, n_attempts):
        ckpt = dumps[(0, a)].resume_step
        assert ckpt is not None and atts[a]["resume_step"] == ckpt, (a, ckpt, atts[a])
        assert dumps[(0, a)].env["SLURM_RESTART_COUNT"] == str(a)
        resumed = run.logs.query(attempt=a, grep=f"training from step {ckpt + 1} on rank")
        assert sorted(r.rank for r in resumed) == [0, 1], f"attempt {a}: {list(resumed)}"
    assert run.logs.attempts() == list(range(n_attempts))
    assert sorted((r, a) for _, r, a in run.logs.sources()) == [
        (r, a) for r in (0, 1) for a in range(n_attempts)]
    for rec in run.logs.query():
        assert rec.host and rec.node == 0 and rec.local_rank == rec.rank, rec
    # continuous: every flush step exactly once, each row from the attempt that owns it
    check_run(run, dumps, steps=flush_steps(steps, every))
    out = (sw.out / f"slurm-{sw.job}_0.out").read_text()
    assert [f"=== attempt {a} of {sw.task(0)}" in out for a in range(n_attempts)] == [True] * n_attempts, out


@pytest.mark.timeout(JOB_TIMEOUT_S + 120)
def test_array_sweep_three_tasks(cluster, tmp_path):
    configs = [_config(lr=lr, seed=seed, **{"save-artifact": True})
               for lr, seed in ((0.1, 0), (0.05, 1), (0.01, 2))]
    sw = Sweep(tmp_path, configs, "0-2")
    try:
        fields = sw.wait_done()
    finally:
        sw.cancel()
    elapsed = time.monotonic() - sw.t0
    assert {t: f.get("JobState") for t, f in fields.items()} == {
        sw.task(i): "COMPLETED" for i in range(3)}, sw.diagnosis()

    root = distlog.open_root(str(sw.root))
    runs = {r.info.run_id: r for r in root.runs()}
    assert sorted(runs) == sorted(sw.run_id(i) for i in range(3)), sw.diagnosis()
    blobs = set()
    for i, config in enumerate(configs):
        run = runs[sw.run_id(i)]
        info = run.info
        assert (info.status, info.world_size, info.launcher) == ("completed", 2, "torchrun"), info.raw
        assert [a["attempt"] for a in info.attempts] == [0]
        assert info.raw["launcher_ids"]["slurm.array_task_id"] == str(i)
        assert info.raw["launcher_ids"]["slurm.array_job_id"] == sw.job
        assert (run.params["lr"], run.params["seed"], run.params["world_size"]) == (config["lr"], config["seed"], 2)
        # two per-rank logs, each with its own rank's lines
        assert sorted((r, a) for _, r, a in run.logs.sources()) == [(0, 0), (1, 0)]
        for rank in (0, 1):
            recs = list(run.logs.query(rank=rank))
            assert recs and {(r.rank, r.attempt) for r in recs} == {(rank, 0)}
            assert any(r.message == f"training from step 0 on rank {rank} of 2" for r in recs)
        dumps = read_dumps(sw.dump, sw.run_id(i))
        assert sorted(dumps) == [(0, 0), (1, 0)]
        assert [dumps[(r, 0)].env["SLURM_ARRAY_TASK_ID"] for r in (0, 1)] == [str(i)] * 2
        check_run(run, dumps, steps=flush_steps(config["steps"], config["flush-every"]))
        # the artifact: one record per rank, the same bytes
        recs = [r for r in run.files.records() if r.name == "shared.txt"]
        assert sorted(r.rank for r in recs) == [0, 1] and {r.version for r in recs} == {1}
        assert run.files.read_bytes("shared.txt") == SHARED
        blobs |= {r.sha256 for r in recs}
    # 6 ranks in 3 tasks saved it; the root stores it once
    assert len(blobs) == 1
    stored = sorted(p.name for p in (sw.root / BLOB_DIR).rglob("*") if p.is_file())
    assert stored == sorted(blobs), stored
    assert (sw.root / blob_path(blobs.pop())).read_bytes() == SHARED
    print(f"array job {sw.job}: 3 tasks x 2 ranks done in {elapsed:.1f} s")


@pytest.mark.timeout(JOB_TIMEOUT_S + 120)
def test_scontrol_requeue_resumes_the_same_run(cluster, tmp_path):
    steps, every = 40, 4
    # attempt 0 holds after its checkpoint at step 7 until it is killed: the requeue below
    # always hits a running job (with a timed window, a slow poll under load could let the
    # job finish first, and the "requeue" would then rerun a completed job)
    sw = Sweep(tmp_path, [_config(steps=steps, seed=5, **{"step-sleep": 0.05, "hold-at": 7})], "0")
    try:
        # a hard requeue (the batch script and the ranks are killed) once the checkpoint exists
        sw.wait_until("a checkpoint at step 7", lambda: sw.checkpoint_step(0) == 7)
        proc = _run("scontrol", "requeue", sw.task(0))
        assert proc.returncode == 0, f"scontrol requeue: {proc.stderr}\n{sw.diagnosis()}"
        t_requeue = time.monotonic()
        _check_resumed_run(sw, 2, steps, every, "interrupted")
        assert distlog.open_run(str(sw.root / "demo" / sw.run_id(0))).info.attempts[1]["resume_step"] == 7
    finally:
        sw.cancel()
    print(f"job {sw.job}: requeued after {t_requeue - sw.t0:.1f} s, done after {time.monotonic() - sw.t0:.1f} s")


@pytest.mark.timeout(JOB_TIMEOUT_S + 120)
def test_usr1_preemption_requeues_and_continues(cluster, tmp_path):
    steps, every = 40, 4
    # attempt 0 holds after its checkpoint at step 7 until USR1 comes (see above)
    sw = Sweep(tmp_path, [_config(steps=steps, seed=6, **{"step-sleep": 0.05, "hold-at": 7})], "0")
    try:
        sw.wait_until("a checkpoint at step 7", lambda: sw.checkpoint_step(0) == 7)
        proc = _run("scancel", "--batch", "--signal=USR1", sw.task(0))
        assert proc.returncode == 0, f"scancel --signal=USR1: {proc.stderr}\n{sw.diagnosis()}"
        _check_resumed_run(sw, 2, steps, every, "preempted")
    finally:
        sw.cancel()
    out = (sw.out / f"slurm-{sw.job}_0.out").read_text()
    assert "attempt 0 preempted" in out and f"scontrol requeue {sw.task(0)}" in out, out
    run = distlog.open_run(str(sw.root / "demo" / sw.run_id(0)))
    # the ranks stopped at a flush boundary they agreed on: attempt 0 closed its run cleanly
    first = run.info.attempts[0]
    assert first["ended"] is not None, first
    warned = run.logs.query(attempt=0, level="WARNING", grep="preempted: checkpointed at step")
    assert sorted(r.rank for r in warned) == [0, 1], list(warned)
    stop = int(warned[0].message.split("step ")[1].split(",")[0])
    assert run.info.attempts[1]["resume_step"] == stop
    assert np.all(np.diff(run.metrics.read("train/loss").step) > 0)


@pytest.mark.timeout(JOB_TIMEOUT_S + 120)
def test_usr1_while_the_ranks_start_waits_for_their_handler(cluster, tmp_path):
    """A SLURM review: USR1 that came while the ranks were still importing torch reached them
    before their handler (USR1's default action: the rank died, exit -10, and distlog had no
    record of that attempt). The template now signals each rank once it handles USR1."""
    steps, every = 24, 4
    sw = Sweep(tmp_path, [_config(steps=steps, seed=7, **{"step-sleep": 0.05})], "0")
    try:
        out = sw.out / f"slurm-{sw.job}_0.out"
        sw.wait_until("attempt 0 started", lambda: out.exists() and "=== attempt 0" in out.read_text(), poll=0.05)
        proc = _run("scancel", "--batch", "--signal=USR1", sw.task(0))  # (torchrun is only starting)
        assert proc.returncode == 0, f"scancel --signal=USR1: {proc.stderr}\n{sw.diagnosis()}"
        _check_resumed_run(sw, 2, steps, every, "preempted")
    finally:
        sw.cancel()
    assert "exitcode: -10" not in (sw.out / f"slurm-{sw.job}_0.out").read_text()
