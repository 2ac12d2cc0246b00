"""Run a framework script (tests/integration_scripts/) in its own process group, with a timeout.

Lightning's ``ddp`` strategy re-executes the script for its other ranks, and ``torchrun``
starts its own workers: killing the whole group on a timeout leaves no rank behind.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent.parent / "integration_scripts"
REPO = Path(__file__).parent.parent.parent


def framework_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update({
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"), "WANDB_DISABLED": "true", "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
    })
    for var in ("SLURM_JOB_ID", "SLURM_PROCID", "SLURM_NTASKS", "TORCHELASTIC_RUN_ID", "RANK", "WORLD_SIZE",
                "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "DISTLOG_RUN_ID", "DISTLOG_RUN_NAME"):
        env.pop(var, None)
    return env


def run_script(args: list[str], tmp_path: Path, timeout: float = 240, torchrun: int | None = None) -> str:
    """Run ``python SCRIPT args`` (or under ``torchrun --nproc_per_node N``); return its output.

    A non-zero exit or a timeout fails with the output's tail."""
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}",
               "--max_restarts=0"] + args
    else:
        cmd = [sys.executable] + args
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=framework_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"{' '.join(cmd)} did not finish within {timeout} s:\n{out[-6000:]}") from None
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{out[-6000:]}")
    return out


@pytest.fixture(autouse=True)
def quiet_lightning():
    """Lightning's info lines and warnings silenced (a module that imports this fixture uses
    it in every test)."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
