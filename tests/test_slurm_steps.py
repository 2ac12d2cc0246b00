"""Concurrent ``srun`` steps of one allocation, on a real SLURM (scripts/slurm_local.sh).

A batch script that packs two trainings into one allocation (``srun ... &`` twice, then
``wait``: a common way to run small sweeps) gives both steps the job's id. Each step must get a
run of its own (``slurm-J`` and ``slurm-J-2``), whose series hold only that step's values: the
two steps overlap (each holds its run open until both have started), so a second step that took
the first one's run would interleave the two trainings' rows in one set of series.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

import distlog
from support.slurm import cluster  # noqa: F401 (the fixture)
from support.slurm import run as _run

pytestmark = [pytest.mark.slurm]
JOB_TIMEOUT_S = 240

STEP = textwrap.dedent("""
    import os, pathlib, sys, time, distlog
    root, tag, here = sys.argv[1], float(sys.argv[2]), pathlib.Path(sys.argv[3])
    exp = distlog.get_logger(root)
    exp.start_run()  # no id: the job's (SLURM_JOB_ID), as a training script under sbatch does
    for step in range(6):
        exp.metrics.log(v=tag, step=step)
    exp.metrics.flush()
    (here / f"started-{tag:g}").write_text(exp.run_id + " " + os.environ["SLURM_STEP_ID"])
    end = time.monotonic() + 120  # both steps' runs are open at once
    while len(list(here.glob("started-*"))) < 2 and time.monotonic() < end:
        time.sleep(0.05)
    exp.close()
""")


@pytest.mark.timeout(JOB_TIMEOUT_S + 60)
def test_concurrent_srun_steps_get_a_run_each(cluster, tmp_path):
    (tmp_path / "step.py").write_text(STEP)
    root, out = tmp_path / "root", tmp_path / "job.out"
    script = tmp_path / "job.sbatch"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/bash
        #SBATCH --ntasks=2
        #SBATCH --cpus-per-task=1
        srun --ntasks=1 --exact {sys.executable} {tmp_path}/step.py {root} 1 {tmp_path} &
        srun --ntasks=1 --exact {sys.executable} {tmp_path}/step.py {root} 2 {tmp_path} &
        wait
        """))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "DISTLOG_", "TORCHELASTIC_"))}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(["sbatch", "--parsable", "--time=00:10:00", f"--output={out}", f"--chdir={tmp_path}",
                           f"--job-name=distlog-steps-{tmp_path.name}", str(script)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, f"sbatch failed: {proc.stderr}"
    job = proc.stdout.strip().split(";")[0]
    try:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while _run("squeue", "-h", "-j", job).stdout.strip():
            assert time.monotonic() < deadline, f"job {job} did not finish:\n{out.read_text() if out.exists() else ''}"
            time.sleep(0.5)
    finally:
        _run("scancel", job)
    log = out.read_text() if out.exists() else ""
    started = {p.name: p.read_text().split() for p in tmp_path.glob("started-*")}
    assert sorted(started) == ["started-1", "started-2"], log
    assert {s[1] for s in started.values()} == {"0", "1"}, (started, log)  # two steps of one job
    runs = {distlog.open_run(str(root / "default" / rid)).info.run_id: tag
            for tag, (rid, _) in ((n.split("-")[1], v) for n, v in started.items())}
    assert sorted(runs) == [f"slurm-{job}", f"slurm-{job}-2"], (started, log)
    for rid, tag in runs.items():
        run = distlog.open_run(str(root / "default" / rid))
        assert run.info.status == "completed" and [a["attempt"] for a in run.info.attempts] == [0], run.info.raw
        v = run.metrics.read("v")
        assert v["step"].tolist() == list(range(6)) and set(v["value"].tolist()) == {float(tag)}, (rid, log)
