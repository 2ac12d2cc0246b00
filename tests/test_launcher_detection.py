import os

import pytest

from distlog.launcher import detect, launcher_run_id, restart_counts
from support.slurm import cluster  # noqa: F401 (the fixture)


def test_single_process():
    info = detect({})
    assert (info.rank, info.world_size, info.local_rank, info.launcher) == (0, 1, 0, "none")
    assert launcher_run_id({}) is None


def test_torchrun_table():
    env = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "GROUP_RANK": "1",
           "TORCHELASTIC_RUN_ID": "abc", "TORCHELASTIC_RESTART_COUNT": "2"}
    info = detect(env)
    assert (info.rank, info.world_size, info.local_rank, info.node_rank, info.launcher) == (5, 8, 1, 1, "torchrun")
    assert launcher_run_id(env) == "torchrun-abc"
    assert restart_counts(env) == {"slurm": 0, "torchrun": 2}
    assert launcher_run_id({**env, "TORCHELASTIC_RUN_ID": "none"}) is None


def test_slurm_table_and_local_rank_is_not_global():
    env = {"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1",
           "SLURM_NODEID": "1", "SLURM_RESTART_COUNT": "1"}
    info = detect(env)
    assert (info.rank, info.world_size, info.local_rank, info.node_rank, info.launcher) == (3, 4, 1, 1, "slurm")
    assert launcher_run_id(env) == "slurm-7"
    assert detect({"LOCAL_RANK": "3"}).rank == 0


def test_torchrun_inside_slurm_prefers_torchrun_ranks_and_dist_wins():
    env = {"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_NTASKS": "1",
           "TORCHELASTIC_RUN_ID": "x", "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3"}
    assert detect(env).rank == 3
    assert detect(env, dist_state=(2, 4)).rank == 2
    assert launcher_run_id(env) == "slurm-7"
    assert launcher_run_id({**env, "DISTLOG_RUN_NAME": "lr0.1-seed2"}) == "lr0.1-seed2"


@pytest.mark.parametrize("env,name", [
    ({"TORCHELASTIC_RUN_ID": "x", "RANK": "one", "WORLD_SIZE": "2"}, "RANK"),
    ({"TORCHELASTIC_RUN_ID": "x", "RANK": "0", "WORLD_SIZE": ""}, "WORLD_SIZE"),
    ({"TORCHELASTIC_RUN_ID": "x", "RANK": "0", "WORLD_SIZE": "0"}, "WORLD_SIZE"),
    ({"TORCHELASTIC_RUN_ID": "x", "RANK": "-1", "WORLD_SIZE": "2"}, "RANK"),
    ({"TORCHELASTIC_RUN_ID": "x", "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "a"}, "LOCAL_RANK"),
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURM_PROCID": "3.0", "SLURM_NTASKS": "4"}, "SLURM_PROCID"),
    ({"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_NODEID": "n1"}, "SLURM_NODEID"),
])
def test_malformed_launcher_variable_is_an_error_naming_it(env, name):
    with pytest.raises(ValueError, match=rf"environment variable {name}=.*expected an integer"):
        detect(env)


def test_rank_beyond_world_size_is_an_error():
    with pytest.raises(ValueError, match="RANK=4 and WORLD_SIZE=4: the rank must be below"):
        detect({"TORCHELASTIC_RUN_ID": "x", "RANK": "4", "WORLD_SIZE": "4"})
    # an initialised process group wins: its numbers are used, the environment's are not read
    assert detect({"TORCHELASTIC_RUN_ID": "x", "RANK": "bad", "WORLD_SIZE": "4"},
                  dist_state=(1, 2)).rank == 1


def test_malformed_restart_count_is_an_error():
    with pytest.raises(ValueError, match="SLURM_RESTART_COUNT='x'"):
        restart_counts({"SLURM_RESTART_COUNT": "x"})


@pytest.mark.timeout(60)
def test_a_job_continues_its_run_only_when_restarted(tmp_path, monkeypatch):
    """Under SLURM every run a job opened without an id was ``slurm-<job id>``: a second run in
    the same process (a loop over configs), or a second script in one allocation, became an
    "attempt" of the first and rewound its series. Only a restart of the job (other restart
    counts) continues a run; other starts get ``<id>-2``, ``<id>-3``, ..., found again in
    the same order when the job is requeued."""
    import distlog

    for var in ("DISTLOG_RUN_ID", "DISTLOG_RUN_NAME", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    root = str(tmp_path / "root")

    def job(restart: int, configs: list[float]) -> list[tuple[str, int]]:
        monkeypatch.setenv("SLURM_RESTART_COUNT", str(restart))
        exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
        ids = []
        for lr in configs:
            with exp.run():
                run = exp.current_run
                exp.params.set({"lr": lr})
                exp.metrics.log({"loss": lr}, step=restart)
                ids.append((run.run_id, run.attempt))
        return ids

    assert job(0, [0.1, 0.01]) == [("slurm-4242", 0), ("slurm-4242-2", 0)]
    assert job(0, [0.5]) == [("slurm-4242-3", 0)]  # another script in the same allocation
    assert job(1, [0.1, 0.01]) == [("slurm-4242", 1), ("slurm-4242-2", 1)]  # the job requeued
    rows = {rid: distlog.open_run(f"{root}/default/{rid}") for rid in ("slurm-4242", "slurm-4242-2", "slurm-4242-3")}
    assert {rid: r.params["lr"] for rid, r in rows.items()} == {
        "slurm-4242": 0.1, "slurm-4242-2": 0.01, "slurm-4242-3": 0.5}
    assert rows["slurm-4242"].metrics.frame("loss")["step"].tolist() == [0, 1]


def test_other_launchers_env_variables_give_local_and_node_ranks():
    """DeepSpeed and scripts that spawn their ranks set torch's env:// variables without
    torchrun's run id: every rank was recorded with local rank 0 on node 0."""
    env = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "NODE_RANK": "1"}
    info = detect(env)
    assert (info.rank, info.world_size, info.local_rank, info.node_rank, info.launcher) == (5, 8, 1, 1, "env")
    assert detect({"RANK": "0", "LOCAL_RANK": "3"}).local_rank == 0  # no world size: one process


@pytest.mark.timeout(60)
def test_a_retry_in_the_same_job_continues_a_run_that_did_not_complete(tmp_path, monkeypatch):
    """`srun train.py || srun train.py` in one allocation: the retry (same restart counts)
    continues the run that failed, as its resume_step expects, instead of starting <id>-2."""
    import distlog

    for var in ("DISTLOG_RUN_ID", "DISTLOG_RUN_NAME", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID",
                "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with pytest.raises(RuntimeError), exp.run():
        exp.metrics.log({"loss": 1.0}, step=0)
        raise RuntimeError("node failure")
    with exp.run(resume_step=0):
        run = exp.current_run
        assert (run.run_id, run.attempt) == ("slurm-77", 1)


# what an sbatch batch script sees (captured on a real SLURM, --ntasks=2): the batch step is
# task 0 of its own, so SLURM_PROCID/SLURM_LOCALID/SLURM_NODEID are set, SLURM_STEP_ID is not
BATCH_STEP = {"SLURM_JOB_ID": "8", "SLURM_NTASKS": "2", "SLURM_PROCID": "0",
              "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}


def test_ranks_a_launcher_spawns_inside_a_batch_script_keep_their_own_identity():
    """A launcher run from the batch script itself (DeepSpeed's, a script that spawns its
    ranks with RANK/WORLD_SIZE, no torchrun run id) gives each process its RANK; the batch
    step's SLURM_PROCID=0 was taken instead, so every process was rank 0."""
    infos = [detect({**BATCH_STEP, "RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r)})
             for r in (0, 1)]
    assert [(i.rank, i.world_size, i.local_rank, i.launcher) for i in infos] == [
        (0, 2, 0, "env"), (1, 2, 1, "env")]
    assert all(i.ids.get("slurm.job_id") == "8" for i in infos)
    # one python started by the batch script, no launcher: one process, not rank 0 of the
    # allocation's 2 tasks (it would wait for a rank 1 that never comes)
    alone = detect(BATCH_STEP)
    assert (alone.rank, alone.world_size) == (0, 1)
    # a task of an srun step has SLURM_STEP_ID: SLURM's table applies
    task = detect({**BATCH_STEP, "SLURM_PROCID": "1", "SLURM_STEP_ID": "0"})
    assert (task.rank, task.world_size, task.launcher) == (1, 2, "slurm")


SPAWN_JOB = """#!/bin/bash
#SBATCH --ntasks=2
#SBATCH --cpus-per-task=1
#SBATCH --time=00:02:00
#SBATCH --output={out}/batch.out
# a launcher of its own inside the batch script (as DeepSpeed's): RANK/WORLD_SIZE per process
for r in 0 1; do
  RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r PYTHONPATH={repo} {python} -c '
from distlog.launcher import detect
i = detect()
print("rank", i.rank, i.world_size, i.local_rank, i.launcher)' > {out}/rank$r.out 2>&1 &
done
wait
# and one python without a launcher: a single process
PYTHONPATH={repo} {python} -c '
from distlog.launcher import detect
i = detect()
print("alone", i.rank, i.world_size)' > {out}/alone.out 2>&1
srun -n 2 -o "{out}/task%t.out" env PYTHONPATH={repo} {python} -c '
from distlog.launcher import detect
i = detect()
print("task", i.rank, i.world_size, i.launcher)'
"""


@pytest.mark.timeout(150)
def test_ranks_spawned_in_a_real_batch_script_are_distinct(cluster, tmp_path):
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from support.slurm import run as _run

    repo = Path(__file__).resolve().parent.parent
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "job.sbatch"
    script.write_text(SPAWN_JOB.format(out=out, repo=repo, python=sys.executable))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "DISTLOG_", "TORCHELASTIC_"))
           and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NODE_RANK")}
    proc = subprocess.run(["sbatch", "--parsable", f"--chdir={tmp_path}", str(script)],
                          capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode == 0, f"sbatch failed: {proc.stderr}"
    job = proc.stdout.strip().split(";")[0]
    try:
        t0 = time.monotonic()
        while _run("squeue", "-h", "-j", job).stdout.strip():
            assert time.monotonic() - t0 < 120, f"job {job} not done after 120 s"
            time.sleep(0.25)
    finally:
        _run("scancel", job)
    read = {p.name: p.read_text().strip() for p in out.glob("*.out")}
    assert read.get("rank0.out") == "rank 0 2 0 env", read
    assert read.get("rank1.out") == "rank 1 2 1 env", read
    assert read.get("alone.out") == "alone 0 1", read
    assert read.get("task0.out") == "task 0 2 slurm", read
    assert read.get("task1.out") == "task 1 2 slurm", read


def _open_in_a_process(root, env):
    import subprocess
    import sys

    code = ("import distlog\nexp = distlog.get_logger(%r, heartbeat_interval=0, telemetry=False)\n"
            "try:\n    exp.params.set(lr=1e-3)\nexcept distlog.RunStateError as e:\n    print('REFUSED', e)\n"
            "else:\n    exp.metrics.collect(step=0, loss=1.0); exp.close(); print('OPENED')\n") % str(root)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SLURM_", "TORCHELASTIC", "RANK", "WORLD_SIZE", "LOCAL_RANK", "DISTLOG_"))}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_ranks_of_a_torchrun_job_with_no_process_group_are_refused_not_split_into_runs(tmp_path):
    """Opening the run before init_process_group under torchrun made each rank rank 0 of a run
    of its own (the second named <id>-2), each with only its own values, and said nothing."""
    for rank in (0, 1):
        out = _open_in_a_process(tmp_path, {"TORCHELASTIC_RUN_ID": "job7", "RANK": str(rank), "WORLD_SIZE": "2",
                                            "LOCAL_RANK": str(rank)})
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"REFUSED torchrun started this process as rank {rank} of 2, but "
                                     "torch.distributed is not initialised"), out.stdout
        assert "Call torch.distributed.init_process_group(...) before the run opens" in out.stdout
    env_launcher = _open_in_a_process(tmp_path, {"RANK": "1", "WORLD_SIZE": "2"})
    assert env_launcher.stdout.startswith("REFUSED the launcher (RANK, WORLD_SIZE) started this process as rank 1 of 2")
    assert not (tmp_path / "default").exists()  # no run was written
    # srun tasks may be independent: said, and each is its own run
    task = _open_in_a_process(tmp_path, {"SLURM_JOB_ID": "55", "SLURM_STEP_ID": "0", "SLURM_PROCID": "1",
                                         "SLURM_NTASKS": "2"})
    assert task.stdout.strip() == "OPENED", (task.stdout, task.stderr)
    assert "srun (SLURM_PROCID, SLURM_NTASKS) started this process as rank 1 of 2" in task.stderr
    # one rank (WORLD_SIZE=1) is no job of several
    assert _open_in_a_process(tmp_path, {"TORCHELASTIC_RUN_ID": "one", "RANK": "0", "WORLD_SIZE": "1"}).stdout.strip() == "OPENED"


def test_place_by_host_numbers_ranks_per_host_in_rank_order():
    from distlog.launcher import place_by_host

    assert place_by_host(["a", "a", "b", "a", "b"]) == [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1)]
    assert place_by_host(["x"]) == [(0, 0)]


def _spawned_rank(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("spawned"):
        exp.info("hello")
    return None


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_ranks_started_without_a_launcher_get_their_local_rank_from_their_host(tmp_path):
    """``torch.multiprocessing.spawn`` (or a script's own processes) sets no ``LOCAL_RANK``:
    every rank was recorded as local rank 0 of node 0. The run now places them by host."""
    import json

    import distlog
    from support.ranks import run_ranks

    root = str(tmp_path / "root")
    hosts = {0: "h1", 1: "h1", 2: "h2"}
    run_ranks(_spawned_rank, 3, tmp_path, root, timeout=90,
              env={r: {"DISTLOG_HOSTNAME": h} for r, h in hosts.items()})
    meta = json.loads((tmp_path / "root" / "e" / "spawned" / "run.json").read_text())
    assert [(p["rank"], p["host"], p["local_rank"], p["node"]) for p in meta["attempts"][-1]["ranks"]] == [
        (0, "h1", 0, 0), (1, "h1", 1, 0), (2, "h2", 0, 1)]
    recs = {r.rank: r for r in distlog.open_run(f"{root}/e/spawned").logs.query(grep="^hello$")}
    assert {r: (recs[r].local_rank, recs[r].node) for r in recs} == {0: (0, 0), 1: (1, 0), 2: (0, 1)}
