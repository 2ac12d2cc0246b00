"""Dashboard review 30, in real headless Chromium: what a person saw after a sweep that was
wrong (each test failed before its fix)."""

from __future__ import annotations

import contextlib
import os

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two runs of a small sweep: a loss over three decades (a log axis has minor ticks),
    log lines at several levels, and files."""
    root = str(tmp_path_factory.mktemp("review30") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("sweep"):
        for lr in (0.1, 0.01):
            with exp.run(f"lr{lr}", params={"lr": lr}):
                for s in range(50):
                    exp.metrics("train").log(step=s, loss=10.0 / (1 + s) * (1 + lr))
                    exp.log(("INFO", "WARNING", "ERROR")[s % 3], f"step {s} done", step=s)
                exp.files.save({"lr": lr}, "config.json")
                exp.files.save("a\nb\n", "notes.txt")
    exp.close()
    return root


@contextlib.contextmanager
def served(browser, root, fragment):
    url = distlog.serve(root)
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        pg = ctx.new_page()
        pg.set_default_timeout(20_000)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url + fragment)
        yield pg
        assert not errors, errors
    finally:
        ctx.close()
        url.stop()


def wait_chart(pg, key):
    pg.wait_for_function("k => { const c = window.distlog && window.distlog.charts[k]; return c && c.u; }", arg=key)


@pytest.mark.timeout(120)
def test_log_axis_leaves_its_minor_ticks_unlabelled(browser, root):
    """log y: uPlot labels only some ticks of a log axis and passes null for the others; the
    axes' formatter wrote each as '--' (the legend's mark for no value), a column of dashes
    down the axis of every run chart and compare chart."""
    with served(browser, root, "#/run?path=sweep/lr0.1&tab=charts&logy=1") as pg:
        wait_chart(pg, "train/loss")
        ticks = pg.evaluate("() => window.distlog.charts['train/loss'].u.axes[1]._values")
        assert "--" not in ticks, ticks
        labelled = [t for t in ticks if t]  # the decades uPlot picks to label
        assert len(labelled) >= 2 and set(labelled) <= {"0.1", "1", "10", "100"}, ticks
        pg.goto(pg.url.split("#")[0] + "#/compare?run=sweep/lr0.1&run=sweep/lr0.01")
        pg.wait_for_selector("#compare-charts .chart[data-series]")
        pg.locator(".toolbar label", has_text="log y").locator("input").check()
        pg.wait_for_function("() => window.distlog.compare.plots.length && window.distlog.compare.plots[0].u.scales.y.distr === 3")
        ticks = pg.evaluate("() => window.distlog.compare.plots[0].u.axes[1]._values")
        assert "--" not in ticks, ticks
        labelled = [t for t in ticks if t]
        assert len(labelled) >= 2 and set(labelled) <= {"0.1", "1", "10", "100"}, ticks
