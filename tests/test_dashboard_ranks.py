"""The dashboard's Ranks tab: every rank's heartbeat beside its telemetry, and one telemetry
field over the run's flushes (real gloo ranks, one of them slower; a rank killed mid-run; a run
without heartbeats or telemetry; the page driven in Chromium)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

import distlog
from distlog.dashboard.app import make_app
from distlog.dashboard.ranks_api import LINES_UP_TO, chart_of
from distlog.query.telemetry import Matrix
from support.browser_pages import CHROMIUM, browser, served  # noqa: F401 (fixture)
from support.ranks import run_ranks

LOCAL = "http://127.0.0.1"
SLOW = 1  # the rank that sleeps three times as long a step


def _train(rank, world, root):
    exp = distlog.get_logger(root, heartbeat_interval=30)
    with exp.run("two"):
        for step in range(60):
            time.sleep(0.006 if rank == SLOW else 0.002)
            exp.metrics.collect(step=step, loss=1.0 / (step + 1))
            if step % 3 == 2:
                exp.metrics.flush()
    return os.getpid()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ranks")
    root = str(tmp / "root")
    pids = run_ranks(_train, 2, tmp, root, timeout=120)
    return root, pids


def _api(root):
    return TestClient(make_app(distlog.open_root(root)), base_url=LOCAL)


@pytest.mark.dist
@pytest.mark.timeout(240)
def test_each_rank_shows_its_heartbeat_and_its_row_of_the_straggler_report(two_ranks):
    root, pids = two_ranks
    res = _api(root).get("/api/ranks", params={"run": "default/two"})
    assert res.status_code == 200, res.text
    got = res.json()
    run = distlog.open_run(f"{root}/default/two")
    rep = run.telemetry.report()
    assert got["world_size"] == 2 and [r["rank"] for r in got["ranks"]] == [0, 1]
    assert got["telemetry"]["straggler"] == SLOW == rep.slowest == rep.straggler
    assert got["telemetry"]["summary"] == rep.summary() and got["telemetry"]["summary"].startswith(f"slowest rank: {SLOW}")
    for row in got["ranks"]:
        r = row["rank"]
        assert row["pid"] == pids[r] and row["state"] == "completed" and row["health"] == "completed"
        assert row["step"] == 59 and row["flushes"] == run.heartbeats()[r]["flushes"] > 0
        want = rep.ranks.loc[rep.ranks["rank"] == r].iloc[0]
        for col, v in row["telemetry"].items():
            assert v == pytest.approx(float(want[col]), rel=1e-12) if np.isfinite(want[col]) else v is None, (col, v, want[col])
    # the charted field, every flush a point (fewer flushes than the width): the stored matrix
    chart = got["chart"]
    m = run.telemetry.matrix("step_time")
    assert chart["x"] == "step" and chart["xs"] == m.step.tolist() and chart["per_point"] == 1
    for s in chart["series"]:
        col = m.values[:, s["rank"]]
        assert [None if not np.isfinite(v) else v for v in col.tolist()] == s["values"], s["label"]
    # another field by name; one this run has not is named, with the ones it has
    rss = _api(root).get("/api/ranks", params={"run": "default/two", "field": "rss"}).json()["chart"]
    assert rss["series"][SLOW]["values"] == run.telemetry.matrix("rss").values[:, SLOW].tolist()
    gpu = _api(root).get("/api/ranks", params={"run": "default/two", "field": "gpu_util"}).json()
    assert gpu["field"] == "step_time" and gpu["field_error"] == "no telemetry field 'gpu_util' in this run: showing step_time"
    assert gpu["fields"][:2] == ["step_time", "wait"] and gpu["fields"][-2:] == ["interval", "wait_prev"]
    assert got["hang"] is None and got["lag"] is None and got["note"] is None


def test_chart_points_are_bucket_means_and_many_ranks_are_a_median_band_and_the_slowest():
    """Past the width each point is the mean of the finite values of its bucket of flushes; past
    LINES_UP_TO ranks: the median over ranks, the min-max band, the slowest rank's line."""
    rng = np.random.default_rng(7)
    n, w = 1000, LINES_UP_TO + 4
    vals = rng.random((n, w))
    vals[rng.random((n, w)) < 0.05] = np.nan
    vals[10:20, :] = np.nan  # a bucket where no rank has a value
    m = Matrix("step_time", np.arange(n, dtype=float), np.arange(n) + 1e9, np.arange(n, dtype=float), vals)
    got = chart_of(m, 100, slowest=3)
    assert len(got["xs"]) == 100 and got["per_point"] == 10 and got["x"] == "step"
    buckets = vals.reshape(100, 10, w)  # (steps evenly spaced: 100 buckets of 10 rows)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        means = np.nanmean(buckets, axis=1)
    want_med, want_lo, want_hi = (np.nanmedian(means[2:], axis=1), np.nanmin(means[2:], axis=1), np.nanmax(means[2:], axis=1))
    label, med = got["series"][0]["label"], np.array(got["series"][0]["values"], dtype=float)
    assert label == f"median of {w} ranks" and np.isnan(med[1])
    np.testing.assert_allclose(med[2:], want_med, rtol=1e-12)
    np.testing.assert_allclose(np.array(got["band"]["min"], dtype=float)[2:], want_lo, rtol=1e-12)
    np.testing.assert_allclose(np.array(got["band"]["max"], dtype=float)[2:], want_hi, rtol=1e-12)
    slow = got["series"][1]
    assert slow["rank"] == 3 and slow["label"] == "rank 3 (slowest)"
    np.testing.assert_allclose(np.array(slow["values"], dtype=float)[2:], means[2:, 3], rtol=1e-12)
    # steps that go back (a resumed run): x is the wall time
    back = Matrix("rss", np.r_[np.arange(5), np.arange(3, 8)].astype(float), np.arange(10) + 1e9, np.arange(10.0), vals[:10, :2])
    assert chart_of(back, 100, None)["x"] == "time" and chart_of(back, 100, None)["xs"][0] == 1e9


KILLED = textwrap.dedent("""
    import os, signal, sys, distlog
    exp = distlog.get_logger(sys.argv[1], heartbeat_interval=30)
    exp.start_run("killed")
    for step in range(5):
        exp.metrics.collect(step=step, loss=1.0)
        exp.metrics.flush()
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.timeout(120)
def test_a_killed_rank_reads_process_gone_and_a_run_without_heartbeats_or_telemetry_says_so(tmp_path):
    root = str(tmp_path / "root")
    proc = subprocess.run([sys.executable, "-c", KILLED, root], capture_output=True, text=True, timeout=90)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    row = _api(root).get("/api/ranks", params={"run": "default/killed"}).json()["ranks"][0]
    assert row["health"] == "process gone" and row["state"] == "running", row
    assert "its process is gone" in row["line"] and row["step"] is None  # (one beat, at start)

    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("bare"):
        exp.metrics.log(step=0, loss=1.0)
    got = _api(root).get("/api/ranks", params={"run": "default/bare"}).json()
    assert got["chart"] is None and got["fields"] == [] and "telemetry=False" in got["why_none"]
    assert got["ranks"] == [{"rank": 0, "health": "no heartbeat", "telemetry": None,
                             "line": "no heartbeat (heartbeat_interval=0, or the rank never started)"}]


@pytest.mark.dist
@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
@pytest.mark.timeout(240)
def test_the_ranks_tab_marks_the_slowest_rank_and_keeps_the_charted_field_in_the_url(two_ranks, browser):  # noqa: F811
    root, pids = two_ranks
    with served(browser, root, "#/run?path=default/two&tab=ranks") as pg:
        pg.wait_for_selector("#ranks-table tbody tr")
        rows = pg.locator("#ranks-table tbody tr")
        assert rows.count() == 2
        assert pg.locator(f"#ranks-table tr[data-rank='{SLOW}']").get_attribute("class") == "slowest"
        assert pg.locator("#ranks-table tr[data-rank='0']").get_attribute("class") == ""
        assert str(pids[SLOW]) in rows.nth(SLOW).inner_text()
        assert pg.inner_text("#ranks-summary").startswith(f"slowest rank: {SLOW}")
        pg.wait_for_selector("#ranks-chart .u-legend")
        legend = pg.inner_text("#ranks-chart .u-legend")
        assert "rank 0" in legend and "rank 1" in legend
        pg.select_option("#ranks-field", "rss")
        pg.wait_for_function("location.hash.includes('tfield=rss')")
        pg.reload()
        pg.wait_for_selector("#ranks-field")
        assert pg.eval_on_selector("#ranks-field", "s => s.value") == "rss"
        # the other tabs' links keep the field (a tab link keeps every tab's view)
        assert "tfield=rss" in pg.get_attribute("nav.tabs a[data-tab='charts']", "href")
        # a badge's record stays on it while the page polls (the live note's refresh removed every
        # status badge's title), and the chart's y axis reads in the table's unit
        first = pg.get_attribute(f"#ranks-table tr[data-rank='{SLOW}'] .rank-health", "title")
        pg.wait_for_timeout(4000)
        assert pg.get_attribute(f"#ranks-table tr[data-rank='{SLOW}'] .rank-health", "title") == first
        assert first.startswith("last heartbeat") and f"pid {pids[SLOW]}" in first
        pg.hover("#ranks-chart .u-over", position={"x": 200, "y": 100})  # (the legend: values there)
        pg.wait_for_function("document.querySelector('#ranks-chart .u-legend').innerText.includes('MiB')")


def _stuck(rank, world, root):
    exp = distlog.get_logger(root, heartbeat_interval=0.5)
    with exp.run("stuck"):
        for step in range(12):
            if rank == 1 and step == 6:
                time.sleep(6)  # rank 0 waits in flush #3 meanwhile
            exp.metrics.collect(step=step, loss=1.0)
            if step % 3 == 2:
                exp.metrics.flush()
    return True


@pytest.mark.dist
@pytest.mark.timeout(240)
def test_a_hang_says_who_waits_in_which_flush_and_where_the_others_are(tmp_path, monkeypatch):
    """The page said "no straggler" (or nothing) while rank 0 waited for rank 1 in a flush."""
    import threading

    from distlog.dashboard import ranks_api

    monkeypatch.setattr(ranks_api, "WAITING_AFTER", 2.0)
    root = str(tmp_path / "root")
    done = threading.Thread(target=run_ranks, args=(_stuck, 2, tmp_path, root), kwargs={"timeout": 120})
    done.start()
    seen = None
    deadline = time.time() + 60
    while time.time() < deadline and done.is_alive() and seen is None:
        time.sleep(0.5)
        try:
            got = _api(root).get("/api/ranks", params={"run": "default/stuck"}).json()
        except Exception:  # noqa: BLE001 - (the run is not there yet)
            continue
        seen = got.get("hang") if isinstance(got, dict) else None
    done.join(120)
    assert seen is not None, "no hang said while rank 0 waited in flush #3"
    assert seen.startswith("rank 0 has waited") and "s in flush #3; not arrived: rank 1 (alive, not in the flush" in seen, seen
    after = _api(root).get("/api/ranks", params={"run": "default/stuck"}).json()
    assert after["hang"] is None and after["status"] == "completed"


def test_a_run_resumed_at_another_world_size_says_whose_telemetry_it_shows(two_ranks, tmp_path):
    import shutil

    root = str(tmp_path / "copy")
    shutil.copytree(two_ranks[0], root)
    exp = distlog.get_logger(root, heartbeat_interval=30)
    with exp.run("two"):  # attempt 1, one rank
        exp.metrics.collect(step=100, loss=1.0)
    got = _api(root).get("/api/ranks", params={"run": "default/two"}).json()
    assert got["world_size"] == 1 and len(got["ranks"]) == 2
    assert got["note"].startswith("The telemetry columns and chart are an earlier attempt's, of 2 ranks")
    assert got["ranks"][1]["line"] == "not in the run's last attempt (it ran 1 rank)"
    assert got["ranks"][1]["health"] == "not in last attempt"  # (it read "no heartbeat", like a fault)
    assert got["ranks"][0]["state"] == "completed" and got["ranks"][0]["step"] == 100


def test_alike_ranks_name_no_straggler_and_mark_no_row():
    import pandas as pd

    from distlog.query.telemetry import Report

    ranks = pd.DataFrame({"rank": [0, 1], "slowest_share": [0.5, 0.5]})
    assert Report(ranks, 40, 0, 0.501, 0.5).straggler is None  # (0.2 % apart: noise)
    assert Report(ranks, 40, 1, 0.6, 0.5).straggler == 1
    assert Report(ranks.iloc[:1], 40, None, float("nan"), float("nan")).straggler is None


def test_the_hang_line_names_live_waiters_only_and_the_ranks_they_wait_for():
    import socket

    from distlog.dashboard.ranks_api import _hang, _rank_row

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    now, host = time.time(), socket.gethostname()
    base = {"host": host, "state": "running", "time": now - 1, "interval": 30, "attempt": 0}
    waiter = {**base, "pid": os.getpid(), "in_flush": 3, "flush_entered": now - 30, "step": 104.0}
    killed = {**base, "pid": int(dead), "in_flush": None, "step": 2.0**53 + 2}
    rows = [_rank_row(0, waiter, now, 3), _rank_row(1, killed, now, 3), _rank_row(2, None, now, 3)]
    assert [r["health"] for r in rows] == ["waiting in flush", "process gone", "no heartbeat"]
    assert _hang(rows) == ("rank 0 has waited 30 s in flush #4; not arrived: rank 1 (process gone, "
                           "last step 9007199254740994)")
    # a rank killed inside the flush keeps "running" and its flush in its last record: no hang
    assert _hang([_rank_row(0, {**killed, "in_flush": 3, "flush_entered": now - 500}, now, 1)]) is None
