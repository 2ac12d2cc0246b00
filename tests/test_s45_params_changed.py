"""A run id run again with another config (resume="allow", the default) mixes both in its rows:
the log said so, nothing else did. run.json's attempt record keeps what changed; `show`, `compare`
and the dashboard say it."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

import distlog
from distlog.dashboard.app import make_app
from support.cli_tree import cli


def _rerun(root):
    exp = distlog.get_logger(str(root), heartbeat_interval=0, telemetry=False)
    for lr, crash in ((0.1, None), (0.001, 30)):
        try:
            with exp.experiment("e"), exp.run("r1"):
                exp.params.set(lr=lr, model={"depth": 4})
                for s in range(60):
                    if s == crash:
                        raise RuntimeError("OOM")
                    exp.metrics.log(step=s, loss=lr + s)
        except RuntimeError:
            pass


def test_a_param_a_later_attempt_changed_is_kept_and_said(tmp_path, capsys):
    _rerun(tmp_path)
    run = distlog.open_run(f"{tmp_path}/e/r1")
    attempts = run.info.attempts
    assert "params_changed" not in attempts[0]
    assert attempts[1]["params_changed"] == {"lr": ["0.1", "0.001"]}  # (depth unchanged: not named)
    code, out, err = cli(capsys, "show", tmp_path / "e" / "r1")
    assert ("params      changed by a later attempt: attempt 1: lr 0.1 -> 0.001; rows of earlier "
            "attempts were written with the earlier values") in out, out
    code, out, err = cli(capsys, "compare", tmp_path, "-m", "loss")
    assert code == 0 and "1 run(s) had params changed by a later attempt" in err and "e/r1 attempt 1: lr 0.1 -> 0.001" in err
    got = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url="http://127.0.0.1").get(
        "/api/run", params={"run": "e/r1"}).json()
    assert [a["params_changed"] for a in got["attempts"]] == [None, {"lr": ["0.1", "0.001"]}]


def test_the_same_config_again_records_no_change(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    for _ in range(2):
        with exp.experiment("e"), exp.run("r1"):
            exp.params.set(lr=0.1)
            exp.metrics.log(step=0, loss=1.0)
    assert all("params_changed" not in a for a in distlog.open_run(f"{tmp_path}/e/r1").info.attempts)
    code, out, err = cli(capsys, "compare", tmp_path, "-m", "loss")
    assert code == 0 and "params changed" not in err
