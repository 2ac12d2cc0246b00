"""The dashboard over a real 2-rank gloo run and over an S3 root (moto), and ``distlog serve``
as a command: the URL it prints answers, Ctrl-C ends it, a bad root exits 2 first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

import distlog  # noqa: E402
from distlog.cli import main  # noqa: E402
from distlog.dashboard.app import make_app  # noqa: E402
from support.ranks import run_ranks  # noqa: E402

LOCAL = "http://127.0.0.1"
N = 12
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _worker(rank, world, root):
    exp = distlog.get_logger(root)
    with exp.experiment("ddp"), exp.run("two", params={"world": world}):
        for step in range(N):
            exp.metrics.log(step=step, own=float(100 * rank + step))
            exp.metrics.collect(step=step, loss=float(rank + step))
            exp.info(f"rank {rank} step {step}", step=step)
            if step % 4 == 3:
                exp.metrics.flush()
        return exp.run_url


@pytest.mark.timeout(240)
def test_two_rank_gloo_run_per_rank_series_band_and_logs(tmp_path):
    root = str(tmp_path / "root")
    run_ranks(_worker, 2, tmp_path, root, timeout=150)
    c = TestClient(make_app(distlog.open_root(root)), base_url=LOCAL)
    d = c.get("/api/run", params={"run": "ddp/two"}).json()
    assert d["rank_keys"] == {"1": ["own"]} and d["log_ranks"] == [0, 1]
    for rank in (0, 1):
        s = c.get("/api/series", params={"run": "ddp/two", "key": "own", "rank": rank}).json()
        assert s["columns"]["value"] == [100 * rank + i for i in range(N)]
    loss = c.get("/api/series", params={"run": "ddp/two", "key": "loss"}).json()["columns"]
    # one row per flush: the mean of both ranks' collected values since the last flush
    per_flush = [np.arange(k, k + 4) for k in range(0, N, 4)]
    np.testing.assert_allclose(loss["value"], [np.mean([*v, *(v + 1)]) for v in per_flush])
    np.testing.assert_allclose(loss["min"], [v.min() for v in per_flush])
    np.testing.assert_allclose(loss["max"], [v.max() + 1 for v in per_flush])
    recs = c.get("/api/logs", params={"run": "ddp/two", "rank": 1, "grep": "^rank"}).json()["records"]
    assert [r["message"] for r in recs] == [f"rank 1 step {i}" for i in range(N)]
    both = c.get("/api/logs", params={"run": "ddp/two", "grep": "^rank"}).json()["records"]
    assert len(both) == 2 * N and [r["t"] for r in both] == sorted(r["t"] for r in both)


@pytest.mark.s3
@pytest.mark.timeout(240)
def test_s3_root_on_moto(s3_bucket):
    url = f"s3://{s3_bucket['bucket']}/root"
    opts = s3_bucket["storage_options"]
    exp = distlog.get_logger(url, segment_max_bytes=200, **opts)
    with exp.experiment("cloud"), exp.run("r1", params={"lr": 0.5}):
        for step in range(10):
            exp.metrics.log(step=step, x=step * 0.5)
            exp.warning(f"w{step}", step=step)
        exp.files.save(b"0123456789", "digits.bin")
    c = TestClient(make_app(distlog.open_root(url, **opts)), base_url=LOCAL)
    runs = c.get("/api/runs").json()["runs"]
    assert [(r["path"], r["params"]) for r in runs] == [("cloud/r1", {"lr": 0.5})]
    s = c.get("/api/series", params={"run": "cloud/r1", "key": "x"}).json()
    assert s["columns"]["value"] == [i * 0.5 for i in range(10)]
    logs = c.get("/api/logs", params={"run": "cloud/r1", "level": "WARNING"}).json()
    assert [r["message"] for r in logs["records"]] == [f"w{i}" for i in range(10)]
    assert logs["lag"] > 1  # segments arrive late on object stores: the tail re-reads more
    r = c.get("/api/file", params={"run": "cloud/r1", "path": "digits.bin"}, headers={"Range": "bytes=3-5"})
    assert r.status_code == 206 and r.content == b"345"
    assert c.get("/api/run", params={"run": "cloud/../x"}).status_code == 400


def test_serve_from_python_returns_the_url_and_stops(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "r"))
    with exp.experiment("e"), exp.run("a"):
        exp.metrics.log(step=0, v=1.0)
    url = distlog.serve(str(tmp_path / "r"))
    try:
        assert isinstance(url, str) and url.startswith("http://127.0.0.1:")
        with _direct.open(url + "api/runs", timeout=10) as r:
            assert [x["path"] for x in json.loads(r.read())["runs"]] == ["e/a"]
    finally:
        url.stop()
    with pytest.raises(OSError):
        _direct.open(url + "api/runs", timeout=2)


@pytest.mark.parametrize("command", ["serve", "dashboard"])  # (`distlog dashboard` was "invalid choice")
def test_serve_with_a_bad_root_exits_2_with_the_reason(tmp_path, capsys, command):
    assert main([command, str(tmp_path / "missing"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "nothing at" in err and f"create the folder ({tmp_path / 'missing'})" in err
    assert main([command, "--help"]) == 0  # its usage names the command typed (the alias's: "serve")
    assert capsys.readouterr().out.startswith(f"usage: distlog {command} ")


@pytest.mark.timeout(120)
def test_cli_serve_prints_the_url_answers_and_stops_on_ctrl_c(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "r"))
    with exp.experiment("e"), exp.run("a"):
        exp.metrics.log(step=0, v=1.0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "distlog.cli", "serve", str(tmp_path / "r"), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.split(" at ", 1)[1].strip()
        deadline = time.monotonic() + 30
        while True:
            try:
                with _direct.open(url + "api/meta", timeout=5) as r:
                    assert json.loads(r.read())["root"].endswith("/r")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


KILLED_WRITER = """
import sys, time, distlog
exp = distlog.get_logger(sys.argv[1], commit_interval=0.1)
with exp.experiment("crash"), exp.run("c1", params={"lr": 0.1}):
    for step in range(600):
        exp.metrics.log(step=step, x=float(step))
        exp.info(f"at {step}", step=step)
        exp.metrics.commit()
        time.sleep(0.05)
"""


@pytest.mark.timeout(180)
def test_a_killed_run_shows_what_was_committed_and_its_resume_on_the_timeline(tmp_path):
    root = str(tmp_path / "root")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, root], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if distlog.open_run(os.path.join(root, "crash", "c1")).metrics.lengths().get("x", 0) >= 5:
                    break
            except FileNotFoundError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL mid-write: no close, no final flush
        proc.wait()
    c = TestClient(make_app(distlog.open_root(root)), base_url=LOCAL)
    st = c.get("/api/status", params={"run": "crash/c1"}).json()
    n = st["lengths"]["0"]["x"]
    assert st["status"] == "running" and n >= 5
    s = c.get("/api/series", params={"run": "crash/c1", "key": "x"}).json()
    assert s["columns"]["step"] == list(range(n)) and s["columns"]["value"] == [float(i) for i in range(n)]
    logs = c.get("/api/logs", params={"run": "crash/c1", "grep": "^at "}).json()["records"]
    assert [r["message"] for r in logs][: n] == [f"at {i}" for i in range(n)]
    exp = distlog.get_logger(root)  # the requeued job resumes the same run
    with exp.experiment("crash"), exp.run("c1", resume_step=n):
        exp.metrics.log(step=n, x=float(n))
    d = c.get("/api/run", params={"run": "crash/c1"}).json()
    assert [(a["attempt"], a["status"], a["resume_step"]) for a in d["attempts"]] == \
        [(0, "interrupted", None), (1, "completed", n)]
    assert d["attempts"][0]["started"] < d["attempts"][1]["started"]
    assert d["log_attempts"] == [0, 1]


@pytest.mark.gcs
@pytest.mark.timeout(240)
def test_gcs_root_on_fake_gcs_server(gcs_bucket):
    url = f"gs://{gcs_bucket['bucket']}/root"
    opts = gcs_bucket["storage_options"]
    exp = distlog.get_logger(url, **opts)
    with exp.experiment("g"), exp.run("r1", params={"lr": 0.25}):
        for step in range(5):
            exp.metrics.log(step=step, y=step * 2.0)
        exp.error("boom", step=4)
    c = TestClient(make_app(distlog.open_root(url, **opts)), base_url=LOCAL)
    assert [r["path"] for r in c.get("/api/runs").json()["runs"]] == ["g/r1"]
    s = c.get("/api/series", params={"run": "g/r1", "key": "y"}).json()
    assert s["columns"]["value"] == [0.0, 2.0, 4.0, 6.0, 8.0]
    logs = c.get("/api/logs", params={"run": "g/r1", "level": "ERROR"}).json()["records"]
    assert [(r["message"], r["step"]) for r in logs] == [("boom", 4)]


def test_memory_root_served_in_process():
    import uuid

    from distlog.storage.memory import discard_store

    name = f"dash-{uuid.uuid4().hex[:12]}"
    url = f"memory://{name}/root"
    try:
        exp = distlog.get_logger(url)
        with exp.experiment("m"), exp.run("r"):
            exp.metrics.log(step=0, z=3.5)
        served = distlog.serve(url)
        try:
            with _direct.open(served + "api/series?run=m/r&key=z", timeout=10) as r:
                assert json.loads(r.read())["columns"]["value"] == [3.5]
        finally:
            served.stop()
    finally:
        discard_store(name)


@pytest.mark.timeout(120)
def test_a_dashboard_started_before_the_first_run_shows_it_when_it_starts(tmp_path):
    """Start the dashboard, then the job: an empty root folder exited 2 ("nothing at ...");
    it serves no runs now, and a run started later is listed."""
    root = tmp_path / "r"
    root.mkdir()
    url = distlog.serve(str(root))
    try:
        with _direct.open(url + "api/runs?fresh=1", timeout=10) as r:
            assert json.loads(r.read())["runs"] == []
        exp = distlog.get_logger(str(root))
        with exp.experiment("e"), exp.run("a"):
            exp.metrics.log(step=0, v=1.0)
        deadline = time.monotonic() + 30  # (a fresh listing at most once a second)
        while True:
            with _direct.open(url + "api/runs?fresh=1", timeout=10) as r:
                listed = [x["path"] for x in json.loads(r.read())["runs"]]
            if listed or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert listed == ["e/a"]
    finally:
        url.stop()
