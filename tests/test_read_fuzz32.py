"""Campaign 32 on the reading side: a seeded fuzz (``support/read_fuzz32.py``: runs written
with known inputs, an oracle computed from those inputs, every reader compared with it) at a
few fixed seeds, and the bugs it found, each pinned by a small deterministic test."""

from __future__ import annotations

import warnings

import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

import distlog  # noqa: E402
from distlog.dashboard.app import make_app  # noqa: E402
from support.read_fuzz32 import check, write  # noqa: E402

LOCAL = "http://127.0.0.1:8765"


def _log_run(root, steps_values, rid="r", exp_name="e"):
    exp = distlog.get_logger(str(root), telemetry=False, heartbeat_interval=0)
    with exp.experiment(exp_name), exp.run(rid):
        for s, v in steps_values:
            exp.metrics.log(step=s, loss=v)
    return distlog.open_run(f"{root}/{exp_name}/{rid}")


@pytest.mark.timeout(60)
def test_bands_of_fractional_steps_off_the_gap_grid_keep_their_steps(tmp_path):
    """One bin per distinct step (``read_metrics`` without ``bins``, or more bins than steps:
    the dashboard's bands) labels each bin with its step. Steps 0, 0.3 and 0.5 have the
    smallest gap 0.2, so the grid is 0, 0.2, 0.4: the value logged at 0.3 read as step 0.2 and
    the one at 0.5 as 0.4 (a band drawn where no run has a row)."""
    run = _log_run(tmp_path, [(0, 1.0), (0.3, 2.0), (0.5, 3.0)])
    for kw in ({}, {"bins": 300}):
        df = distlog.query.read_metrics([run], "loss", group_by=[], **kw)
        assert df["step"].tolist() == [0, 0.3, 0.5], kw
        assert df["mean"].tolist() == [1.0, 2.0, 3.0], kw
    # the smallest gap whole (1.5 - 0.5), the steps not: the grid 3, 4, 5 labelled 4.5 and 5.5 as 4 and 5
    other = _log_run(tmp_path, [(3, 1.0), (4.5, 2.0), (5.5, 3.0)], rid="r2")
    df = distlog.query.read_metrics([other], "loss", group_by=[])
    assert df["step"].tolist() == [3, 4.5, 5.5] and df["mean"].tolist() == [1.0, 2.0, 3.0]
    # fewer bins than steps: bins of several steps keep the bin's first step (documented)
    df = distlog.query.read_metrics([run], "loss", group_by=[], bins=2)
    assert df["step"].tolist() == [0, 0.35] and df["mean"].tolist() == [1.5, 3.0]
    client = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url=LOCAL)
    for extra in ({}, {"smooth": 0.0, "x0": "0", "x1": "0.5"}, {"x0": "0.3", "x1": "0.5"}):
        got = client.get("/api/bands", params={"run": "e/r", "key": "loss", **extra}).json()
        want = [0, 0.3, 0.5][3 - len(got["groups"][0]["step"]):]  # (a zoom: the rows inside it)
        assert got["groups"][0]["step"] == want and len(want) == (2 if "0.3" in extra.values() else 3), (extra, got)
        assert got["groups"][0]["mean"] == [1.0, 2.0, 3.0][3 - len(want):], (extra, got)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("seed", [0, 7, 13, 42])
def test_read_fuzz32(seed, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = write(seed, str(tmp_path))
        check(seed, str(tmp_path), runs)
