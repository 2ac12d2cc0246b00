"""Every rank lands in the same run without coordination; each rank's log holds its own lines."""

import os

import pytest

from distlog.layout import LOGS_DIR, RUN_FILE, rank_log_path
from support.ranks import run_ranks

pytestmark = pytest.mark.dist


def _worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.experiment("multi"), exp.run():
        for i in range(5):
            exp.info(f"line {i} from rank {rank}", step=i)
        run_url, run_id = exp.run_url, exp.run_id
        rec = exp.get_logs(limit=None, rank=rank)
    return run_url, run_id, [r.message for r in rec]


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.timeout(180)
def test_ranks_agree_on_run_dir_and_logs_are_per_rank(tmp_path, world):
    root = str(tmp_path / "root")
    results = run_ranks(_worker, world, tmp_path, root, timeout=120)
    urls = {r[0] for r in results}
    assert len(urls) == 1, urls
    run_id = results[0][1]
    run_dir = os.path.join(root, "multi", run_id)
    assert os.listdir(os.path.join(root, "multi")) == [run_id]
    logs = sorted(os.listdir(os.path.join(run_dir, LOGS_DIR)))
    assert logs == [os.path.basename(rank_log_path(r, 0)) for r in range(world)]
    from distlog.logline import parse_line

    for r in range(world):
        with open(os.path.join(run_dir, rank_log_path(r, 0))) as f:
            recs = [parse_line(line) for line in f]
        assert {x.rank for x in recs} == {r}
        mine = [x.message for x in recs if x.message.startswith("line")]
        assert mine == [f"line {i} from rank {r}" for i in range(5)]
        assert [x.step for x in recs if x.message.startswith("line")] == list(range(5))
        assert [m for m in results[r][2] if m.startswith("line")] == mine
    import json

    meta = json.load(open(os.path.join(run_dir, RUN_FILE)))
    assert meta["world_size"] == world and meta["status"] == "completed"
    assert [p["rank"] for p in meta["attempts"][0]["ranks"]] == list(range(world))


def _env_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run():
        return exp.run_id


@pytest.mark.timeout(120)
def test_run_id_from_launcher_environment(tmp_path):
    root = str(tmp_path / "root")
    env = {"SLURM_JOB_ID": "4242", "SLURM_ARRAY_JOB_ID": "4240", "SLURM_ARRAY_TASK_ID": "2"}
    ids = run_ranks(_env_worker, 2, tmp_path, root, env=env, timeout=90)
    assert ids == ["slurm-4240_2", "slurm-4240_2"]


def _two_runs_worker(rank, world, root):
    import torch
    import torch.distributed as dist

    import distlog

    exp = distlog.get_logger(root)
    groups = []
    for name in ("first", "second"):  # each run makes its own gloo group and destroys it at close
        with exp.run(name):
            exp.metrics.collect(step=1, x=float(rank))
            exp.metrics.flush()
            run = exp.current_run
            groups.append(run.comm.group is not None)
        groups.append(run.comm.group is None)
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)  # the script's own default group is untouched
    return groups, float(t)


@pytest.mark.timeout(180)
def test_a_run_destroys_its_own_gloo_group_at_close(tmp_path):
    root = str(tmp_path / "root")
    results = run_ranks(_two_runs_worker, 2, tmp_path, root, timeout=120)
    for groups, total in results:
        assert groups == [True, True, True, True]
        assert total == 3.0


def _named_per_rank_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.experiment(f"sweep-{rank}"), exp.run("r"):  # e.g. a timestamp taken per rank
        exp.metrics.collect(step=0, loss=float(rank))
        exp.metrics.log(step=0, own=float(rank))
        exp.metrics.log_histogram("w", [float(rank)], bins=2, step=0)
        exp.info(f"rank {rank} here")
        exp.metrics.flush()
        return exp.current_run.storage.url


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_ranks_that_name_the_experiment_differently_write_into_rank_0s_run(tmp_path):
    """The experiment name, like the run id, is rank 0's: a rank that built another name (a
    timestamp, a host name) writes its logs and series into rank 0's run, with a warning,
    instead of into a folder of its own."""
    import distlog

    root = str(tmp_path / "root")
    urls = run_ranks(_named_per_rank_worker, 2, tmp_path, root, timeout=90)
    assert urls[0] == urls[1] and urls[0].endswith("sweep-0/r")
    assert "sweep-1" not in os.listdir(root)
    run = distlog.open_run(f"{root}/sweep-0/r")
    assert run.metrics.read("loss")["count"].tolist() == [2]
    assert run.metrics.read("own", rank=1)["value"].tolist() == [1.0]
    assert "rank 1 here" in [r.message for r in run.logs.query(rank=1)]
    # a rank's histogram read as a metric: the hint names the call that reads it (it left
    # out rank=, and that call said rank 0's table has no such histogram)
    with pytest.raises(KeyError, match=r"read it with run\.metrics\.histogram\('w', rank=1\) \(CLI: distlog histogram RUN KEY --rank 1\)"):
        run.metrics.read("w", rank=1)
    assert run.metrics.histogram("w", rank=1).counts.tolist() == [[0.0, 1.0]]
