"""A NaN collected into a flush window is left out of that row's statistics (counted in its
``nonfinite`` column): the row's mean is a number, so its chart looked healthy and nothing in
the dashboard said a value had gone NaN. The series now carries, per row, how many values
its statistics left out (``skipped``, with a total), the run's chart marks those rows with red
points and says how many in its title, and the compare page names the runs that have any."""

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
