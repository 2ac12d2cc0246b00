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


# ---- NaN/inf and log y on the charts (a browser, as a person reads them) ---------------------
from support.browser_pages import MARKS, browser, served, shots  # noqa: E402,F401 (fixtures)

NAN_FROM = 10  # nan-b logs NaN from this step on


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("s42nan") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("g"):
        with exp.run("short", params={"lr": 0.3}):  # ends at step 5, NaN there
            for step in range(6):
                exp.metrics.log(step=step, loss=float("nan") if step == 5 else 1.0)
        for name, lr in (("ok-a", 0.1), ("nan-b", 0.1), ("c", 0.2)):
            with exp.run(name, params={"lr": lr}):
                for step in range(20):
                    v = 1 + step / 10
                    if name == "nan-b" and step >= NAN_FROM:
                        v = float("nan")
                    if name == "c":
                        v = step / 10 - 1  # <= 0 up to step 10: 11 points a log axis cannot draw
                    exp.metrics.log(step=step, loss=v)
    return root


def _legend_at(pg, step):
    """The compare chart's legend (label -> value) with the cursor at ``step``."""
    return pg.evaluate("""(step) => {
        const u = window.distlog.compare.plots[0].u;
        u.setCursor({ left: u.valToPos(step, "x"), top: 10 });
        const out = {};
        u.root.querySelectorAll(".u-legend .u-series").forEach((row) => {
          if (row.style.display !== "none") out[row.querySelector(".u-label").textContent] = row.querySelector(".u-value").textContent;
        });
        return out; }""", step)


@MARKS[0]
@MARKS[1]
@pytest.mark.timeout(120)
def test_compare_names_a_runs_nan_rows_in_the_legend_and_the_title(browser, diverged, shots):
    """A run whose loss went NaN read "--" in the overlay's legend (a step with no row: it
    looked like a run that ended early), and the title named only NaN left out of a row's
    statistics, not rows that were NaN."""
    with served(browser, diverged, "#/compare?run=g/ok-a&run=g/nan-b") as pg:
        pg.wait_for_function("() => window.distlog && window.distlog.compare && window.distlog.compare.plots.length === 1")
        legend = _legend_at(pg, 12)
        assert legend["g/nan-b"] == "NaN" and legend["g/ok-a"] == "2.2", legend
        note = pg.locator('#compare-charts .chart[data-key="loss"] h3 .sub').inner_text()
        assert note == f"NaN/inf values: g/nan-b ({20 - NAN_FROM} rows)", note
        pg.screenshot(path=f"{shots}/s42-compare-nan.png")
        # a run whose nearest row to the cursor is NaN says that row's step (it read "NaN", as
        # if it had a NaN row under the cursor)
        pg.goto(pg.base + "#/compare?run=g/ok-a&run=g/short")
        pg.wait_for_function("() => window.distlog.compare && window.distlog.compare.plots.length === 1"
                             " && window.distlog.compare.plots[0].u.series.some((s) => s.label === 'g/short')")
        assert _legend_at(pg, 12)["g/short"] == "NaN (at 5)"


@MARKS[0]
@MARKS[1]
@pytest.mark.timeout(120)
def test_grouped_compare_says_its_mean_left_nan_runs_out(browser, diverged, shots):
    """Grouped by lr, the group whose run went NaN showed the mean of the other run under
    "(2 runs)" and "mean ± std of 2 runs", with no word that one was left out."""
    with served(browser, diverged, "#/compare?run=g/ok-a&run=g/nan-b&run=g/c&group=lr") as pg:
        pg.wait_for_function("() => window.distlog && window.distlog.compare && window.distlog.compare.plots.length === 1")
        legend = _legend_at(pg, 12)
        assert legend["lr=0.1 (2 runs)"] == "2.2 ± 0 (of 1 run; 1 NaN/inf left out)", legend
        assert _legend_at(pg, 5)["lr=0.1 (2 runs)"] == "1.5 ± 0 (of 2 runs)"
        chips = pg.locator("#group-legend .rank-chip").all_inner_texts()
        assert chips[0] == "lr = 0.1 · mean ± std of 2 runs · NaN/inf left out (up to 1 run at a step)", chips
        assert chips[1] == "lr = 0.2 · mean ± std of 1 run", chips
        pg.screenshot(path=f"{shots}/s42-grouped-nan.png")


@MARKS[0]
@MARKS[1]
@pytest.mark.timeout(120)
def test_log_y_says_how_many_points_it_does_not_draw(browser, diverged):
    """With log y, values <= 0 vanished from a chart with no word unless none was above 0."""
    with served(browser, diverged, "#/compare?run=g/c&run=g/ok-a&logy=1") as pg:
        pg.wait_for_function("() => window.distlog && window.distlog.compare && window.distlog.compare.plots.length === 1")
        note = pg.locator('#compare-charts .chart[data-key="loss"] h3 .sub').inner_text()
        assert note == "log y: 11 points ≤ 0 not drawn", note
        pg.goto(pg.base + "#/run?path=g/c&tab=charts&logy=1")
        chart = pg.locator('.chart[data-key="loss"]')
        chart.locator(".u-over").wait_for()
        pg.wait_for_function("() => document.querySelector('.chart[data-key=\"loss\"] h3').textContent.includes('log y')")
        assert "20 rows · log y: 11 points ≤ 0 not drawn" in chart.locator("h3").inner_text()
        pg.goto(pg.base + "#/run?path=g/nan-b&tab=charts")
        pg.wait_for_selector('.chart[data-key="loss"][data-nonfinite="10"]')
        assert "20 rows · 10 rows NaN/inf (gaps)" in pg.locator('.chart[data-key="loss"] h3').inner_text()
