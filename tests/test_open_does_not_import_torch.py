"""Opening, using and closing a run in a script that never imported torch does not import it
(about a second of start-up); the run still records the installed torch version. On local disk
a run writes its tables (metrics, logs, files) without zarr either (a third of a second to import, which a short run's
close waited for); what it wrote reads back through zarr."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from distlog.layout import RUN_FILE


def _last_line(script: str) -> str:
    """The last line ``script`` prints, run in a fresh interpreter (which has imported nothing)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=100)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1]


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
    assert json.loads(_last_line(script)) == {"torch_imported": False}
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
    version = _last_line(script)
    meta = json.loads((root / "default" / "t" / RUN_FILE).read_text())
    assert meta["torch"] == version


@pytest.mark.timeout(120)
def test_a_local_run_writes_its_tables_without_importing_zarr(tmp_path):
    import numpy as np

    import distlog

    root = tmp_path / "root"
    steps = 20_000  # three 8,192-row chunks per series: whole chunks and a padded tail
    script = textwrap.dedent(f"""
        import json, sys
        import distlog
        exp = distlog.get_logger({str(root)!r})
        with exp.run("plain"):
            exp.params.set(lr=0.1)
            exp.files("ckpt").save(b"weights", "model.bin")
            for s in range({steps}):
                exp.metrics("train").log({{"loss": 1.0 / (s + 1), "lr": 0.1 - s * 1e-6}}, step=s)
                exp.metrics.collect(step=s, acc=(s % 7) / 7)
                if s % 10 == 9:
                    exp.metrics.flush()
            exp.info("done")
        print(json.dumps({{"zarr_imported": "zarr" in sys.modules}}))
    """)
    assert json.loads(_last_line(script)) == {"zarr_imported": False}
    run = distlog.open_run(str(root / "default" / "plain"))
    s = np.arange(steps, dtype=float)
    for key, want in (("train/loss", 1.0 / (s + 1)), ("train/lr", 0.1 - s * 1e-6)):
        got = run.metrics.numpy(key)
        np.testing.assert_array_equal(got["step"], s)
        np.testing.assert_array_equal(got["value"], want)
    acc = run.metrics.numpy("acc")  # flush every 10 steps: the mean of each window of 10
    windows = ((s % 7) / 7).reshape(-1, 10)
    np.testing.assert_array_equal(acc["step"], s[9::10])
    np.testing.assert_allclose(acc["mean"], windows.mean(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(acc["max"], windows.max(axis=1))
    assert "done" in [r.message for r in run.logs.query()]
    assert run.params["lr"] == 0.1
    assert [(r.path, r.size) for r in run.files.records()] == [("ckpt/model.bin", 7)]
    import zarr

    from distlog.layout import FILES_TABLE, table_zarr

    table = zarr.open_consolidated(str(root / "default" / "plain" / table_zarr(FILES_TABLE)), mode="r")
    assert list(table["path"][:]) == ["ckpt/model.bin"] and table["size"][:].tolist() == [7]

    # a second attempt resumes from a checkpoint at step 9,999: the stored series are read and
    # cut back (chunks past the new end deleted) and continued, still without zarr
    again = textwrap.dedent(f"""
        import json, sys
        import distlog
        exp = distlog.get_logger({str(root)!r})
        with exp.run("plain", resume="must", resume_step=9999):
            for s in range(10_000, 10_500):
                exp.metrics("train").log({{"loss": -s, "lr": 0.5}}, step=s)
                exp.metrics.collect(step=s, acc=1.0)
                if s % 10 == 9:
                    exp.metrics.flush()
        print(json.dumps({{"zarr_imported": "zarr" in sys.modules}}))
    """)
    assert json.loads(_last_line(again)) == {"zarr_imported": False}
    run = distlog.open_run(str(root / "default" / "plain"))
    s2 = np.arange(10_500, dtype=float)
    got = run.metrics.numpy("train/loss")
    np.testing.assert_array_equal(got["step"], s2)
    np.testing.assert_array_equal(got["value"], np.where(s2 < 10_000, 1.0 / (s2 + 1), -s2))
    acc = run.metrics.numpy("acc")
    np.testing.assert_array_equal(acc["step"], s2[9::10])
    np.testing.assert_allclose(acc["mean"], np.concatenate([windows.mean(axis=1)[:1000], np.ones(50)]), rtol=1e-12)
    series = root / "default" / "plain" / "scalars.zarr" / "train" / "loss"
    assert sorted(p.name for p in series.glob("c.*")) == ["c.0.0", "c.1.0"]  # c.2.0 (rows 16,384+) deleted
    assert zarr.open_consolidated(str(root / "default" / "plain" / "scalars.zarr"), mode="r")["train/loss"].shape[0] == 10_500


@pytest.mark.timeout(120)
def test_import_distlog_leaves_readers_dashboard_and_event_loop_for_later():
    script = textwrap.dedent("""
        import json, sys
        import distlog
        before = sorted(m for m in ("torch", "zarr", "asyncio", "distlog.query", "distlog.dashboard") if m in sys.modules)
        from distlog import open_run  # the readers come on first use
        print(json.dumps({"before": before, "open_run": open_run.__module__, "query": "distlog.query" in sys.modules}))
    """)
    assert json.loads(_last_line(script)) == {"before": [], "open_run": "distlog.query.run_reader", "query": True}


@pytest.mark.timeout(120)
def test_a_resume_in_another_chunk_size_imports_zarr_once_before_close(tmp_path):
    """A resumed attempt with another ``chunk_rows`` than the stored series needs zarr for
    them (the writer encodes only its own chunk size). zarr is then imported on the writer
    thread up front: at close the tables' threads would each import it at once (Python's
    import deadlock detector failed one of them, and that table's rows were lost)."""
    import numpy as np

    import distlog
    from distlog.storage import open_storage
    from distlog.writers.rowstore import read_series

    root = tmp_path / "root"
    for chunk_rows, steps in ((8192, 5), (4096, 7)):
        script = textwrap.dedent(f"""
            import json, sys
            import numpy as np
            import distlog
            exp = distlog.get_logger({str(root)!r}, chunk_rows={chunk_rows}, telemetry=False)
            with exp.run("r", resume="allow"):
                for s in range({steps}):
                    exp.metrics.log(step=s, loss=1.0 / (s + 1))
                for s in range(5):
                    exp.metrics.log_histogram("w", np.arange(10.0) + s, step=s)
            print(json.dumps({{"zarr_imported": "zarr" in sys.modules}}))
        """)
        assert json.loads(_last_line(script)) == {"zarr_imported": chunk_rows == 4096}
    run = distlog.open_run(str(root / "default" / "r"))
    np.testing.assert_array_equal(run.metrics.numpy("loss")["value"], 1.0 / np.arange(1, 8))
    hist = read_series(open_storage(str(root / "default" / "r")), "histograms", "w")
    np.testing.assert_array_equal(hist[:, 0], np.arange(5))
