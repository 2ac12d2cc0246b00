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
