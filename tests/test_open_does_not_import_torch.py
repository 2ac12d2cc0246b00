"""Opening, using and closing a run in a script that never imported torch does not import it
(about a second of start-up); the run still records the installed torch version."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from distlog.layout import RUN_FILE


@pytest.mark.timeout(120)
def test_a_run_without_torch_never_imports_it(tmp_path):
    root = tmp_path / "root"
    script = textwrap.dedent(f"""
        import json, sys
        import distlog
        exp = distlog.get_logger({str(root)!r})
        with exp.run("plain"):
            for s in range(30):
                exp.metrics.log(step=s, loss=1.0 / (s + 1))
                exp.metrics.collect(step=s, acc=s / 30)
                exp.metrics.flush()
            exp.info("done")
        print(json.dumps({{"torch_imported": "torch" in sys.modules}}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=100)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == {"torch_imported": False}
    meta = json.loads((root / "default" / "plain" / RUN_FILE).read_text())
    import torch  # the test process may import it: the version must match the installed one

    assert meta["torch"] == torch.__version__ and meta["status"] == "completed"


@pytest.mark.timeout(120)
def test_a_run_in_a_torch_script_records_its_version(tmp_path):
    root = tmp_path / "root"
    script = textwrap.dedent(f"""
        import torch, distlog
        exp = distlog.get_logger({str(root)!r})
        with exp.run("t"):
            exp.metrics.log(step=0, x=torch.tensor(2.0))
        print(torch.__version__)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=100)
    assert p.returncode == 0, p.stderr
    meta = json.loads((root / "default" / "t" / RUN_FILE).read_text())
    assert meta["torch"] == p.stdout.strip().splitlines()[-1]
