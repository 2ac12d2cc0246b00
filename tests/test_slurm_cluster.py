"""Smoke test of a working SLURM (the one-node cluster of scripts/slurm_local.sh).

Submits a 2-task job array; each task runs `srun -n 2` with per-task output (`srun -o ..%t..`).
Skipped, with the reason, when sbatch/sinfo are missing or the cluster does not answer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.slurm import cluster  # noqa: F401 (the fixture)
from support.slurm import run as _run

pytestmark = pytest.mark.slurm
POLL_TIMEOUT_S = 120


JOB = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --ntasks=2
#SBATCH --time=00:05:00
#SBATCH --output={out}/batch-%A_%a.out
echo "batch task=$SLURM_ARRAY_TASK_ID ntasks=$SLURM_NTASKS"
srun -n 2 -o "{out}/step-${{SLURM_ARRAY_TASK_ID}}-%t.out" \\
    bash -c 'echo "task=$SLURM_ARRAY_TASK_ID procid=$SLURM_PROCID ntasks=$SLURM_NTASKS host=$(hostname -s)"'
"""


def _job_states(job_id: str) -> dict[str, str]:
    """``{jobid_task: state}`` from scontrol (finished jobs stay visible for MinJobAge)."""
    proc = _run("scontrol", "-o", "show", "job", job_id)
    states = {}
    for line in proc.stdout.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        states[f"{fields.get('ArrayJobId')}_{fields.get('ArrayTaskId')}"] = fields.get("JobState", "?")
    return states


def _diagnosis(job_id: str, out: Path) -> str:
    files = "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(out.glob("*.out")))
    queue = _run("squeue", "-j", job_id).stdout
    return f"scontrol show job {job_id}:\n{_run('scontrol', 'show', 'job', job_id).stdout}\nsqueue:\n{queue}\n{files}"


def test_array_job_with_srun_steps(cluster, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "job.sbatch"
    script.write_text(JOB.format(name=f"distlog-smoke-{tmp_path.name}", out=out))
    t0 = time.monotonic()
    proc = _run("sbatch", "--parsable", "--array=0-1", f"--chdir={tmp_path}", str(script))
    assert proc.returncode == 0, f"sbatch failed: {proc.stderr}"
    job_id = proc.stdout.strip().split(";")[0]
    try:
        while True:
            squeue = _run("squeue", "-h", "-j", job_id, "-o", "%i %T")
            if squeue.returncode == 0 and not squeue.stdout.strip():
                break
            if time.monotonic() - t0 > POLL_TIMEOUT_S:
                pytest.fail(f"job {job_id} not finished after {POLL_TIMEOUT_S} s\n{_diagnosis(job_id, out)}")
            time.sleep(0.25)
    finally:
        _run("scancel", job_id)
    elapsed = time.monotonic() - t0
    states = _job_states(job_id)
    assert states == {f"{job_id}_0": "COMPLETED", f"{job_id}_1": "COMPLETED"} or not states, _diagnosis(job_id, out)
    for task in (0, 1):
        batch = out / f"batch-{job_id}_{task}.out"
        assert batch.is_file(), f"missing {batch.name}\n{_diagnosis(job_id, out)}"
        assert f"batch task={task} ntasks=2" in batch.read_text()
        for procid in (0, 1):
            step = out / f"step-{task}-{procid}.out"
            assert step.is_file(), f"srun -o ..%t.. did not write {step.name}\n{_diagnosis(job_id, out)}"
            assert f"task={task} procid={procid} ntasks=2 host=" in step.read_text()
    print(f"array job {job_id}: 2 tasks x 2 srun tasks done in {elapsed:.2f} s")
