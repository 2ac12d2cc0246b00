"""scripts/read_without_distlog.py (a reader written from docs/FORMAT.md alone, json + numpy +
zarr) reads a one-process run exactly as distlog's own reader does: run metadata, params,
every series (NaN and inf values, fractional and negative steps, namespaced keys, log() and
flush() rows), histograms, telemetry, the files (versions, bytes from the store) and the text
logs (multi-line messages, fields); and it imports no distlog."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "read_without_distlog.py"

BODY = """
import datetime, pathlib, numpy as np, distlog
exp = distlog.get_logger("root", telemetry=True)
with exp.experiment("grp/sub"), exp.run("r"):
    exp.params.set(lr=1e-3, arr=np.arange(6).reshape(2, 3), f32=np.float32(0.5), nan=float("nan"),
                   t=(1, 2), s={1, 2}, p=pathlib.Path("/x"), b=b"\\x00\\xff", d=datetime.date(2026, 1, 2),
                   nested={"a": {"b": [1, float("inf"), None]}, "$t": "x"}, arrnan=np.array([1.0, np.nan]))
    for step in range(12):
        exp.metrics("train").collect(step=step, loss=1.0 / (step + 1), acc=float("nan") if step % 5 == 3 else step)
        if step % 4 == 3:
            exp.metrics.flush()
    exp.metrics("val/deep").log(step=12.5, x=1.5)
    exp.metrics("val/deep").log(step=13.25, x=float("inf"))
    exp.metrics("val/deep").log(step=14, x=float("nan"))
    exp.metrics("neg").log(step=-5, y=-1.0)
    exp.metrics.log_histogram("w", np.arange(100.0), bins=8, step=3)
    exp.metrics.log_histogram("w", np.linspace(-1, 1, 9), bins=8, step=7.5)
    exp.info("multi\\nline\\twith \\\\ backslash", k=1, nested={"x": [1, 2]})
    exp.warning("plain")
    for data in (b"A", b"B", b"B", b"A"):
        exp.files("ckpt").save(data, "m.bin", step=2.5)
"""


def _load_reader():
    spec = importlib.util.spec_from_file_location("read_without_distlog", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def test_reader_from_the_format_doc_alone_agrees_with_distlog(tmp_path):
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    subprocess.run([sys.executable, "-c", textwrap.dedent(BODY)], cwd=tmp_path, check=True, timeout=120,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tmp_path / "root" / "grp" / "sub" / "r"

    # the script runs without distlog: its CLI in a fresh process never imports it
    check = (f"import runpy, sys; sys.argv = ['x', {str(folder)!r}]; "
             f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__'); assert 'distlog' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", check], check=True, timeout=60, capture_output=True, text=True)
    assert "grp/sub/r: completed" in out.stdout

    import distlog

    mine = _load_reader().read_run(folder)
    run = distlog.open_run(str(folder))
    assert mine["info"]["status"] == run.info.status == "completed"
    assert mine["raw"] == run.info.raw and mine["info"]["last_step"] == run.info.last_step == 14

    p, q = mine["params"], run.params
    assert p.keys() == q.keys()
    for k in p:
        if isinstance(q[k], np.ndarray):
            assert p[k].dtype == q[k].dtype and np.array_equal(p[k], q[k], equal_nan=q[k].dtype.kind == "f"), k
        elif isinstance(q[k], float) and math.isnan(q[k]):
            assert math.isnan(p[k])
        else:
            assert type(p[k]) is type(q[k]) and p[k] == q[k], (k, p[k], q[k])

    assert sorted(mine["scalars"]) == sorted(run.metrics.keys()) == ["neg/y", "train/acc", "train/loss", "val/deep/x"]
    for key, series in mine["scalars"].items():
        frame = run.metrics.frame(key)
        assert list(series) == list(frame.columns), key
        for col in frame.columns:
            assert _same(series[col], frame[col].to_numpy()), (key, col)
    x = mine["scalars"]["val/deep/x"]  # a logged inf / NaN is a row: value kept, count 0, nonfinite 1
    assert list(x["step"]) == [12.5, 13.25, 14.0] and np.isinf(x["value"][1]) and np.isnan(x["value"][2])
    assert list(x["count"]) == [1, 0, 0] and list(x["nonfinite"]) == [0, 1, 1]

    assert sorted(mine["histograms"]) == run.metrics.histogram_keys() == ["w"]
    hist = run.metrics.histogram("w")
    for i in range(len(hist.step)):
        edges, counts = _load_reader().histogram(mine["histograms"]["w"], i)
        assert _same(edges, hist.edges[i]) and _same(counts, hist.counts[i])
    assert _same(mine["histograms"]["w"]["step"], hist.step)

    for field, series in mine["telemetry"].items():
        matrix = run.telemetry.matrix(field)
        assert _same(series["step"], matrix.step) and _same(series["r0"], matrix.values[:, 0]), field

    records = [r.__dict__ if not hasattr(r, "_asdict") else r._asdict() for r in run.files.records()]
    assert mine["files"] == records
    assert [r["version"] for r in mine["files"]] == [1, 2, 2, 3]  # identical bytes again: the same version
    for r in run.files.records():
        assert _load_reader().file_bytes(mine["root"], r.sha256) == run.files.read_bytes(r.path, version=r.version)
    table = mine["files_table"]
    assert list(table["path"]) == ["ckpt/m.bin"] * 4 and list(table["rank"]) == [0] * 4
    assert _same(table["step"], [2.5] * 4)

    # a record whose fields a partial write cut, the next record appended to it (FORMAT.md:
    # read with its text as the one field "unparsed_fields")
    log = folder / "logs" / "rank-00000.attempt-0.log"
    with open(log, "a", encoding="utf-8") as f:
        f.write('2030-01-01T00:00:00.000000+00:00 INFO h n0 r0 l0 a0 s- cut\t{"k": 1'
                '2030-01-01T00:00:01.000000+00:00 INFO h n0 r0 l0 a0 s- next\n')
        # and one cut inside its header (FORMAT.md: numbers -1, the header text kept)
        f.write('2030-01-01T00:00:02.000000+00:00 INFO h n0 r2030-01-01T00:00:03.000000+00:00 INFO h n0 '
                'r0 l0 a0 s7 after\n')
        # and one cut short inside its header, before its message (read alike)
        f.write('2030-01-01T00:00:04.000000+00:00 WARNING h n0 r0\n')
    mine = _load_reader().read_run(folder)
    logs = list(run.logs.query(source="text"))
    assert [r["fields"] for r in mine["logs"] if r["message"] == "cut"] == [
        {"unparsed_fields": '{"k": 12030-01-01T00:00:01.000000+00:00 INFO h n0 r0 l0 a0 s- next'}]
    assert [(r["rank"], r["step"], r["fields"]) for r in mine["logs"] if "after" in r["message"]] == [
        (-1, None, {"unparsed_header": "h n0 r2030-01-01T00:00:03.000000+00:00 INFO h n0"})]
    assert [(r["rank"], r["level_name"], r["fields"]) for r in mine["logs"] if r["time"] == 1893456004.0] == [
        (-1, "WARNING", {"unparsed_header": "h n0 r0"})]
    assert len(mine["logs"]) == len(logs)
    for a, b in zip(mine["logs"], logs):
        assert (a["time"], a["level_name"], a["message"], a["host"], a["rank"], a["attempt"], a["step"],
                a["fields"]) == (b.time, b.level, b.message, b.host, b.rank, b.attempt, b.step, b.fields)
    assert any(r["message"] == "multi\nline\twith \\ backslash" for r in mine["logs"])
