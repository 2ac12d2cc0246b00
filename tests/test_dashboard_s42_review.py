"""What a user review of the dashboard at sweep scale found (stop 42), each test failing
before its fix.

The runs page asks for its metric columns at every 5 s poll, and the server read every
run's last rows again each time: 2.5 s a column for 1,200 local runs, 10 s on S3 — longer than
the poll. A finished run's last values are kept now (read again when its ``run.json``
changes); a running run's are read at each poll. ``sort=`` takes a metric column too."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

import distlog  # noqa: E402
import distlog.dashboard.api as api_module  # noqa: E402
from distlog.dashboard.app import make_app  # noqa: E402

LAST = {"a": 0.5, "b": float("nan"), "c": 0.25}  # each finished run's last loss


def _sweep(root):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"):
        for name, last in LAST.items():
            with exp.run(name):
                exp.metrics.log(step=0, loss=1.0)
                exp.metrics.log(step=1, loss=last)
                if name != "b":
                    exp.metrics.log(step=1, acc=0.9)
    return exp


def test_a_finished_runs_metric_columns_are_read_once_and_a_running_runs_at_each_poll(tmp_path, monkeypatch):
    root = str(tmp_path / "root")
    _sweep(root)
    live = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, commit_interval=0.05)
    with live.experiment("e"), live.run("live"):
        live.metrics.log(step=0, loss=3.0)
        live.metrics.commit()
        read = []
        real = api_module.read_run_data

        def counted(runs, **kw):
            if "last_keys" in kw:
                read.append(sorted(r.info.run_id for r in runs))
            return real(runs, **kw)

        monkeypatch.setattr(api_module, "read_run_data", counted)
        client = TestClient(make_app(distlog.open_root(root), ttl=0.0), base_url="http://127.0.0.1")

        def last(**params):
            data = client.get("/api/runs", params={"metric": ["loss"], **params}).json()
            return [(r["path"], r["metrics"]["loss"]) for r in data["runs"]]

        assert dict(last()) == {"e/a": 0.5, "e/b": "nan", "e/c": 0.25, "e/live": 3.0}
        assert read == [["a", "b", "c", "live"]]
        assert dict(last()) == {"e/a": 0.5, "e/b": "nan", "e/c": 0.25, "e/live": 3.0}
        assert read[1:] == [["live"]]  # the finished runs' values were kept
        live.metrics.log(step=1, loss=2.0)
        live.metrics.commit()
        assert dict(last())["e/live"] == 2.0 and read[2:] == [["live"]]
        # a second column: the finished runs are read for it once, the first column kept
        data = client.get("/api/runs", params={"metric": ["loss", "acc"]}).json()
        assert {r["path"]: r["metrics"] for r in data["runs"]} == {
            "e/a": {"loss": 0.5, "acc": 0.9}, "e/b": {"loss": "nan", "acc": None},
            "e/c": {"loss": 0.25, "acc": 0.9}, "e/live": {"loss": 2.0, "acc": None}}
        assert sorted(read[3:5]) == [["a", "b", "c"], ["live"]]  # (acc alone; live: both)
        client.get("/api/runs", params={"metric": ["acc", "loss"]})
        assert read[5:] == [["live"]]
        # sort= takes a metric column asked for: NaN and missing last, both ways (as compare)
        assert [p for p, _ in last(sort="loss")] == ["e/c", "e/a", "e/live", "e/b"]
        assert [p for p, _ in last(sort="loss", desc=1)] == ["e/live", "e/a", "e/c", "e/b"]
        bad = client.get("/api/runs", params={"metric": ["loss"], "sort": "los"})
        assert bad.status_code == 400 and "did you mean" in bad.text and "'loss'" in bad.text
