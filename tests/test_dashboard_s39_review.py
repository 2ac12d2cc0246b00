"""What a user review of the dashboard found (stop 39), each test failing before its fix.

A NaN collected into a flush window is left out of that row's statistics (counted in its
``nonfinite`` column): the row's mean is a number, so its chart looked healthy and nothing in
the dashboard said a value had gone NaN. The series now carries, per row, how many values
its statistics left out (``skipped``, with a total), the run's chart marks those rows with red
points and says how many in its title, and the compare page names the runs that have any.
Also: the runs table's first read, a compare link naming a run that is gone, grouped compare's
legend, empty filters, smoothed labels, wall-time ticks, and metric columns in the runs table."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

import distlog  # noqa: E402
from distlog.dashboard.app import make_app  # noqa: E402
from support.browser_pages import MARKS, browser, served  # noqa: E402,F401 (browser: a fixture)

STEPS, EVERY = 400, 10
BAD = {(77, 0), (77, 1), (305, 0)}  # (step, which of the step's two values): NaN or inf


def _values(step):
    return [1.0 / (1 + step), 2.0 / (1 + step)]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("s39nf") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"):
        with exp.run("nan"):
            for step in range(STEPS):
                for j, v in enumerate(_values(step)):
                    bad = (step, j) in BAD
                    exp.metrics.collect(step=step, loss=(float("inf") if step == 305 else float("nan")) if bad else v)
                if step % EVERY == EVERY - 1:
                    exp.metrics.flush()
        with exp.run("clean"):
            for step in range(STEPS):
                exp.metrics.collect(step=step, loss=_values(step)[0])
                if step % EVERY == EVERY - 1:
                    exp.metrics.flush()
    return root


def test_the_series_says_which_rows_left_values_out_downsampled_too(root):
    client = TestClient(make_app(distlog.open_root(root)), base_url="http://127.0.0.1")
    s = client.get("/api/series", params={"run": "e/nan", "key": "loss"}).json()
    steps = s["columns"]["step"]
    want = {79: 2, 309: 1}  # the windows (steps 70-79, 300-309) holding the bad values
    assert s["skipped"] == 3
    assert {st: n for st, n in zip(steps, s["columns"]["skipped"]) if n} == want
    assert all(v is not None and np.isfinite(v) for v in s["columns"]["value"])  # the means look healthy
    narrow = client.get("/api/series", params={"run": "e/nan", "key": "loss", "width": 2}).json()
    assert narrow["downsampled"] and narrow["skipped"] == 3
    assert max(narrow["columns"]["skipped"]) == 2  # a bucket's count is not lost by the M4 picks
    clean = client.get("/api/series", params={"run": "e/clean", "key": "loss"}).json()
    assert clean["skipped"] == 0 and "skipped" not in clean["columns"]


@pytest.mark.timeout(120)
def test_the_run_chart_marks_them_and_compare_names_the_run(browser, root):
    with served(browser, root, "#/run?path=e/nan&tab=charts") as pg:
        pg.wait_for_function("() => document.querySelector('.chart[data-key=\"loss\"]')?.dataset.skipped === '3'")
        title = pg.locator('.chart[data-key="loss"] h3').inner_text()
        assert "3 NaN/inf values left out of the statistics (red points)" in title, title
        held = pg.evaluate("() => window.distlog.charts['loss'].values()")
        marked = {x: y for x, y in zip(held["x"], held["NaN/inf left out"]) if y is not None}
        assert sorted(marked) == [79, 309]
        # on the line, at the row's value: the mean of the window's finite values
        window = [v for st in range(70, 80) for j, v in enumerate(_values(st)) if (st, j) not in BAD]
        assert marked[79] == pytest.approx(np.mean(window), rel=1e-12)
        assert held["value"][held["x"].index(79)] == marked[79]
        pg.screenshot(path=f"{root}-run-chart.png")
        pg.goto(pg.base + "#/compare?run=e/nan&run=e/clean")
        pg.wait_for_function("() => document.querySelector('#compare-charts .chart[data-key=\"loss\"] h3')"
                             "?.innerText.includes('left out')")
        text = pg.locator('#compare-charts .chart[data-key="loss"] h3').inner_text()
        assert "NaN/inf left out of the statistics: e/nan (3)" in text and "e/clean" not in text, text


def test_a_pages_first_read_of_the_runs_table_lists_a_run_started_seconds_ago(tmp_path):
    """The listing kept for polls (renewed in the background once 3 s old) answered a page's
    first read too: a run made a second earlier was missing from a table that said "11 of
    11 runs", until a poll 5 s later."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("first"):
        exp.metrics.log(step=0, x=1.0)
    api = make_app(distlog.open_root(root))
    client = TestClient(api, base_url="http://127.0.0.1")
    assert [r["path"] for r in client.get("/api/runs").json()["runs"]] == ["default/first"]
    import time

    time.sleep(1.1)
    with exp.run("late"):
        exp.metrics.log(step=0, x=1.0)
    polled = [r["path"] for r in client.get("/api/runs").json()["runs"]]  # a poll: the kept listing
    assert polled == ["default/first"]
    first = [r["path"] for r in client.get("/api/runs", params={"fresh": 1}).json()["runs"]]
    assert first == ["default/first", "default/late"]


@pytest.mark.timeout(120)
def test_a_compare_link_naming_a_run_that_is_gone_draws_the_others(browser, root):
    """A shared link with one run deleted or renamed since showed a red banner and no chart."""
    client = TestClient(make_app(distlog.open_root(root)), base_url="http://127.0.0.1")
    meta = client.get("/api/keys", params={"run": ["e/gone", "e/clean"]}).json()
    assert meta["unknown"] == ["e/gone"] and list(meta["params"]) == ["e/clean"]
    none = client.get("/api/keys", params={"run": ["e/gone"]})
    assert none.status_code == 404 and "e/gone" in none.json()["error"]
    with served(browser, root, "#/compare?run=e/gone&run=e/clean") as pg:
        pg.wait_for_function("() => document.querySelectorAll('#compare-charts .chart[data-series]').length === 1")
        assert pg.locator("#compare-unknown").inner_text() == "not under this root (deleted or renamed?): e/gone"
        assert pg.locator("#compare-legend a.rank-chip").all_inner_texts() == ["e/clean"]
        assert pg.locator('#compare-charts .chart[data-key="loss"]').get_attribute("data-series") == "1"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("s39sweep") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("s"):
        for lr in (0.1, 0.01):
            for seed in (0, 1):
                with exp.run(f"lr{lr}-s{seed}", params={"lr": lr, "seed": seed}):
                    for step in range(20):
                        exp.metrics.log(step=step, loss=lr * 10 + seed + step / 10)
    return root


@pytest.mark.timeout(120)
def test_grouped_compare_legend_gives_each_groups_mean_and_std_at_the_cursor(browser, sweep):
    """Grouped by a param, the legend was off: hovering showed no number at all."""
    runs = "&".join(f"run=s/lr{lr}-s{s}" for lr in (0.1, 0.01) for s in (0, 1))
    with served(browser, sweep, f"#/compare?{runs}&group=lr") as pg:
        chart = pg.locator('#compare-charts .chart[data-key="loss"]')
        chart.locator(".u-over").wait_for()
        pg.wait_for_function("() => window.distlog.compare.plots.length === 1")
        box = chart.locator(".u-over").bounding_box()
        pg.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        rows = chart.locator(".u-legend .u-series")
        shown = [r for r in rows.all() if r.is_visible()]
        texts = {r.locator(".u-label").inner_text(): r.locator(".u-value").inner_text() for r in shown}
        step = int(float(texts.pop("step")))
        assert sorted(texts) == ["lr=0.01 (2 runs)", "lr=0.1 (2 runs)"], texts
        for lr, text in ((0.1, texts["lr=0.1 (2 runs)"]), (0.01, texts["lr=0.01 (2 runs)"])):
            vals = [lr * 10 + s + step / 10 for s in (0, 1)]
            mean, std = text.split(" (of ")[0].split(" ± ")
            assert text.endswith(" (of 2 runs)"), text  # (the runs the mean is of, at the step)
            assert float(mean) == pytest.approx(np.mean(vals), rel=1e-5), (text, step)
            assert float(std) == pytest.approx(np.std(vals), rel=1e-4), (text, step)


@pytest.mark.timeout(120)
def test_empty_filters_say_why_and_smoothed_lines_say_so(browser, sweep):
    with served(browser, sweep, "#/") as pg:
        pg.fill("#runs-filter", "train/loss<0.2")
        info = pg.locator(".toolbar .muted").first.inner_text()
        assert info.startswith("0 of 4 runs") and 'no param, metric or column "train/loss"' in info, info
        pg.goto(pg.base + "#/run?path=s/lr0.1-s0&tab=charts")
        pg.wait_for_selector('.chart[data-key="loss"]')
        pg.fill("input[placeholder^='filter keys']", "xyz")
        pg.wait_for_selector("#no-key-matches")
        assert pg.locator("#no-key-matches").inner_text().startswith("No metric or histogram key matches")
        pg.goto(pg.base + "#/compare?run=s/lr0.1-s0&run=s/lr0.1-s1&smooth=0.5")
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series='2']")
        labels = pg.locator("#compare-charts .chart[data-key='loss'] .u-legend .u-series .u-label").all_text_contents()
        assert labels == ["step", "s/lr0.1-s0 (smoothed)", "s/lr0.1-s1 (smoothed)"], labels


@pytest.mark.timeout(120)
def test_wall_time_ticks_read_24_hours_and_all_params_survives_a_reload(browser, sweep):
    import re

    with served(browser, sweep, "#/run?path=s/lr0.1-s0&tab=charts") as pg:
        pg.wait_for_selector('.chart[data-key="loss"][data-points]')
        pg.select_option("#x-axis", "time")
        pg.wait_for_function("() => window.distlog.charts['loss'].u && window.distlog.charts['loss'].u.scales.x.time")
        ticks = [t for t in pg.evaluate("() => window.distlog.charts['loss'].u.axes[0]._values || []") if t]
        assert ticks and all(re.fullmatch(r"\d\d:\d\d(:\d\d)?|\d\d-\d\d \d\d:\d\d", t) for t in ticks), ticks
        pg.goto(pg.base + "#/")
        pg.locator(".toolbar label", has_text="all params").locator("input").check()
        assert "all=1" in pg.evaluate("() => location.hash")
        pg.reload()
        pg.wait_for_selector("#runs-filter")
        assert pg.locator(".toolbar label", has_text="all params").locator("input").is_checked()


@pytest.mark.timeout(120)
def test_the_runs_table_takes_metric_columns_to_sort_and_filter_a_sweep_by(browser, sweep):
    """The README promised a sweep sorted by a metric in the dashboard's runs table, which had
    param columns only (a filter 'train/loss<0.2' matched nothing, silently)."""
    last = {f"s/lr{lr}-s{s}": lr * 10 + s + 19 / 10 for lr in (0.1, 0.01) for s in (0, 1)}
    client = TestClient(make_app(distlog.open_root(sweep)), base_url="http://127.0.0.1")
    data = client.get("/api/runs", params={"metric": ["loss", "absent"]}).json()
    assert data["metric_keys"] == ["loss"]
    assert {r["path"]: r["metrics"] for r in data["runs"]} == {p: {"loss": pytest.approx(v), "absent": None}
                                                             for p, v in last.items()}
    assert client.get("/api/runs", params={"metric": [f"k{i}" for i in range(9)]}).status_code == 400
    with served(browser, sweep, "#/") as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        pg.select_option("#add-metric", "loss")
        pg.wait_for_selector('#runs-table th[data-col="metric:loss"]')
        assert "metric=loss" in pg.evaluate("() => location.hash")
        pg.click('#runs-table th[data-col="metric:loss"]')  # ascending
        order = pg.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)")
        assert order == sorted(last, key=last.get), order
        cells = pg.locator("#runs-table tbody td.metric").all_inner_texts()
        assert [float(c) for c in cells] == pytest.approx(sorted(last.values()))
        pg.fill("#runs-filter", "loss<2.5")
        shown = pg.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)")
        assert shown == ["s/lr0.01-s0"], shown
        pg.reload()  # the column is in the URL
        pg.wait_for_selector('#runs-table th[data-col="metric:loss"]')
        pg.click('#runs-table th[data-col="metric:loss"] .remove-metric')
        pg.wait_for_function("() => !document.querySelector('#runs-table th[data-col=\"metric:loss\"]')")
        assert "metric=" not in pg.evaluate("() => location.hash")
        pg.fill("#runs-filter", "loss<2.5")
        info = pg.locator(".toolbar .muted").first.inner_text()
        assert '"loss" is a metric: add it as a column' in info, info
