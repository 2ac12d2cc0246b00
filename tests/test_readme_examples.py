"""The README's ```python blocks run verbatim (one process, no torch.distributed)."""

import json
import os
import re
import subprocess
import sys

import pytest

from distlog.layout import RUN_FILE

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def python_blocks() -> list[str]:
    with open(README, encoding="utf-8") as f:
        return re.findall(r"^```python\n(.*?)^```", f.read(), re.S | re.M)


def test_readme_has_runnable_blocks():
    assert python_blocks(), "the README lost its quick start"


@pytest.mark.timeout(180)
def test_readme_quickstart_runs_verbatim(tmp_path):
    script = tmp_path / "readme_blocks.py"
    script.write_text("\n\n".join(python_blocks()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "WORLD_SIZE", "SLURM_", "TORCHELASTIC"))}
    p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                       timeout=150, env=env)
    assert p.returncode == 0, p.stderr
    meta = json.loads((tmp_path / "runs" / "mnist" / "quickstart" / RUN_FILE).read_text())
    assert meta["status"] == "completed" and meta["world_size"] == 1
    assert "completed 0.0003" in p.stdout and "training done" in p.stdout


def test_readme_commands_are_the_ci_commands():
    text = open(README, encoding="utf-8").read()
    ci = open(os.path.join(os.path.dirname(__file__), "..", ".ci", "run"), encoding="utf-8").read()
    assert "make install" in text and "make test" in text
    assert "make install" in ci and "make test" in ci
