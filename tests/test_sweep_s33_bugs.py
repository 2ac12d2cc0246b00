"""Bugs the sweep campaign of stop 33 found (tests/test_sweep_s33_campaign.py): each test failed
before its fix.

* The dashboard's compare endpoints (``/api/keys``, ``/api/compare``) keyed their answers by
  ``run.json``'s experiment and run id, not by the path the request named (the runs table's
  ``path``): served at an experiment folder every answer named runs the page never asked for,
  and two copies of one run folder collapsed into one entry.
* ``open_root().table(status=...)`` and ``distlog compare --status`` filtered on the status
  ``run.json`` records while the table shows ``damaged`` for a run whose params or commit
  record is torn: ``--status completed`` listed rows saying ``damaged``, ``--status damaged``
  found none of them.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pytest

import distlog


def _write(root, experiment, runs):
    exp = distlog.get_logger(root)
    for rid, lr in runs:
        with exp.experiment(experiment), exp.run(rid):
            exp.params.set(lr=lr)
            exp.metrics.log(step=1, loss=lr)


def _client(root):
    from starlette.testclient import TestClient

    from distlog.dashboard.app import make_app

    return TestClient(make_app(distlog.open_root(root)), base_url="http://127.0.0.1")


def _cli(*args):
    from distlog.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.timeout(120)
def test_compare_endpoints_answer_by_the_paths_the_runs_table_gives(tmp_path):
    root = str(tmp_path / "root")
    _write(root, "beta/sub", [("a", 0.1), ("b", 0.2)])
    shutil.copytree(f"{root}/beta/sub/a", f"{root}/beta/sub/a-copy")  # same run.json as a
    for served, want in ((root, ["beta/sub/a", "beta/sub/a-copy", "beta/sub/b"]),
                         (f"{root}/beta", ["sub/a", "sub/a-copy", "sub/b"])):
        client = _client(served)
        paths = sorted(r["path"] for r in client.get("/api/runs").json()["runs"])
        assert paths == want, (served, paths)
        q = [("run", p) for p in paths]
        keys = client.get("/api/keys", params=q).json()
        assert sorted(keys["params"]) == paths and sorted(keys["status"]) == paths, (served, keys)
        assert [keys["params"][p]["lr"] for p in paths] == [0.1, 0.1, 0.2]
        r = client.get("/api/compare", params=q + [("key", "loss")])
        assert r.status_code == 200, r.text
        series = r.json()["series"]
        assert [s["run"] for s in series] == paths, (served, [s["run"] for s in series])
        assert [s["columns"]["value"] for s in series] == [[0.1], [0.1], [0.2]]
        # a run without the key is named by its path too
        r = client.get("/api/compare", params=q + [("key", "loss"), ("rank", 1)])
        assert r.status_code == 404  # (no run has rank 1's own series)


@pytest.mark.timeout(120)
def test_the_status_filter_selects_the_status_the_table_shows(tmp_path):
    root = str(tmp_path / "root")
    _write(root, "e", [("a", 0.1), ("b", 0.2), ("c", 0.3)])
    with open(f"{root}/e/b/params.json", "w") as f:
        f.write('{"lr": 0.')  # torn: the table shows b as damaged
    rr = distlog.open_root(root)
    df = rr.table(metrics=["loss"])
    assert dict(zip(df["run_id"], df["status"])) == {"a": "completed", "b": "damaged", "c": "completed"}
    assert list(rr.table(status="completed")["run_id"]) == ["a", "c"]
    assert list(rr.table(status="damaged", metrics=["loss"])["run_id"]) == ["b"]
    assert list(rr.table(status=["damaged", "completed"])["run_id"]) == ["a", "b", "c"]
    assert list(rr.table(runs=rr.runs(), status="damaged")["run_id"]) == ["b"]
    with pytest.raises(ValueError, match="status='damagd'.*damaged"):
        rr.table(status="damagd")
    for status, want in (("completed", ["a", "c"]), ("damaged", ["b"])):
        for target in ([root], [f"{root}/e/a", f"{root}/e/b", f"{root}/e/c"]):
            code, out, err = _cli("compare", *target, "-m", "loss", "--status", status, "--format", "json")
            assert code == 0, err
            rows = json.loads(out)
            assert [r["run_id"] for r in rows] == want, (status, target, rows)
            assert {r["status"] for r in rows} == {status}
    code, out, err = _cli("compare", root, "--status", "failed", "--format", "csv")
    assert code == 1 and "matching the filters" in err
