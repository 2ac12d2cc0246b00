"""Shared by the ``slurm`` tests: running SLURM commands, and the ``cluster`` fixture.

Test modules import both: ``from support.slurm import cluster`` (the fixture) and
``from support.slurm import run``.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

START_HINT = "start one with: sudo bash scripts/slurm_local.sh start"


def run(*cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``, capturing its output as text."""
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster() -> None:
    """Skip unless sbatch exists and sinfo shows a usable node."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        pytest.skip(f"no SLURM here (sbatch/sinfo not on PATH); {START_HINT}")
    try:
        proc = run("sinfo", "-h", "-o", "%T", timeout=15)
    except subprocess.TimeoutExpired:
        pytest.skip(f"sinfo did not answer within 15 s; {START_HINT}")
    states = proc.stdout.split()
    if proc.returncode != 0 or not any(s in ("idle", "mixed", "allocated") for s in states):
        pytest.skip(f"SLURM not usable (sinfo rc={proc.returncode}, states={states}, "
                    f"{proc.stderr.strip()!r}); {START_HINT}")
