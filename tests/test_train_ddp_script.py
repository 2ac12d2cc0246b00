"""The template's training script (scripts/train_ddp.py) on its own: where it puts checkpoints.
With an object-store root it wrote them under a local folder named after the URL
("./s3:/bucket/sweep/demo/.checkpoints/..." in the submit directory; a user review)."""

import importlib.util

from support.train_ddp_oracle import TRAIN_DDP


def _script():
    spec = importlib.util.spec_from_file_location("train_ddp_script", TRAIN_DDP)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_checkpoints_of_an_object_store_root_go_to_a_local_folder_of_the_job(tmp_path, monkeypatch):
    where = _script().default_checkpoint_dir
    monkeypatch.setenv("SLURM_SUBMIT_DIR", str(tmp_path))
    assert where("s3://bucket/sweep", "demo") == str(tmp_path / ".checkpoints" / "demo")
    assert where("gs://bucket/sweep", "demo") == str(tmp_path / ".checkpoints" / "demo")
    monkeypatch.delenv("SLURM_SUBMIT_DIR")
    monkeypatch.chdir(tmp_path)
    assert where("s3://bucket/sweep", "demo") == str(tmp_path / ".checkpoints" / "demo")
    assert where("./runs", "demo") == "./runs/demo/.checkpoints"  # a local root: as before
    assert where("file:///data/runs", "demo") == "/data/runs/demo/.checkpoints"


def test_the_same_grid_line_again_leaves_a_finished_run_as_it_is(tmp_path):
    """Resubmitting a finished sweep's grid line found the final checkpoint, trained nothing
    and added an empty attempt to the run (its duration then spanning both), with no word."""
    import subprocess
    import sys

    import distlog

    cmd = [sys.executable, str(TRAIN_DDP), "--root", str(tmp_path / "runs"), "--run-id", "r1", "--steps", "12",
           "--flush-every", "4"]
    first = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "run r1 already trained 12 steps (checkpoint at step 11" in again.stderr and "nothing to do" in again.stderr
    run = distlog.open_run(tmp_path / "runs" / "demo" / "r1")
    assert (len(run.info.attempts), run.info.status) == (1, "completed")
    assert run.metrics.read("train/loss").step.tolist() == [3, 7, 11]


def test_a_run_stopped_at_its_last_step_is_closed_by_the_next_attempt(tmp_path):
    """The final checkpoint of a run that did not complete (preempted, killed after saving it)
    is no reason to skip: the next attempt opens the run and closes it completed."""
    import json
    import subprocess
    import sys

    import distlog

    cmd = [sys.executable, str(TRAIN_DDP), "--root", str(tmp_path / "runs"), "--run-id", "r1", "--steps", "12",
           "--flush-every", "4"]
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120).returncode == 0
    meta = tmp_path / "runs" / "demo" / "r1" / "run.json"
    rec = json.loads(meta.read_text())
    rec["status"] = rec["attempts"][-1]["status"] = "preempted"  # as a preempted attempt leaves it
    meta.write_text(json.dumps(rec))
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "nothing to do" not in again.stderr, again.stderr[-2000:]
    run = distlog.open_run(tmp_path / "runs" / "demo" / "r1")
    assert [a["status"] for a in run.info.attempts] == ["preempted", "completed"]
    assert run.metrics.read("train/loss").step.tolist() == [3, 7, 11]
