"""What a person read wrong on the dashboard (a review that used it, stop 37):

* a chart of values from a million up labelled its y ticks "500,000" for 1,500,000 and
  "000,000" for 2,000,000 (the labels were cut at the axis' fixed 60 px);
* the compare legend, at a step one run has no row for, showed that run's value at its
  nearest row under the other step ("step 14 | a 1.97768", a value of step 9);
* at 420 px every run page scrolled sideways (the files preview was 30 px wide);
* a tag (or a text param) "nan" sorted as a NaN, last both ways;
* a deep link to a run that does not exist kept the previous page's breadcrumbs;
* log y on a series with no value above 0 drew an empty plot without a word."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, drop_asked_failures, served, shots  # noqa: E402,F401

pytestmark = MARKS


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("s37") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"):
        with exp.run("big", tags=["nan"]):
            for s in range(50):
                exp.metrics.log(step=s, tokens=s * 40_000.0, counter=1e9 + 10 * s, neg=-1.0 - s)
            exp.files("notes").save("hello\nline 2\n", "notes.txt")
            exp.info("a line long enough to wrap at a narrow width " * 3)
        with exp.run("sparse", tags=["alpha"]):  # rows at steps 0, 5, 10, ...
            for s in range(0, 50, 5):
                exp.metrics.log(step=s, tokens=1.0 + s)
        with exp.run("dense", tags=["zeta"]):
            for s in range(50):
                exp.metrics.log(step=s, tokens=100.0 + s)
    exp.close()
    return root


# (the card may not be on the page yet: the predicate waits for it, never throws)
NOTED = """() => { const h = document.querySelector(".card.chart[data-key='neg'] h3");
    return !!h && h.textContent.includes('log y: no value above 0'); }"""


def _y_labels(pg, key: str) -> list[tuple[str, float]]:
    """The y axis' tick labels of chart ``key`` (uPlot draws them on its canvas) and the room
    each leaves at the axis' left edge, in px (< 0: cut), measured in the axis' font."""
    return pg.evaluate("""key => { const a = window.distlog.charts[key].u.axes[1];
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = a.font[0];
        return a._values.map(t => [t, a._size - a.ticks.size - a.gap - ctx.measureText(t).width]); }""", key)


@pytest.mark.timeout(120)
def test_large_values_label_their_ticks_whole(browser, root, shots):
    with served(browser, root, "#/run?path=e/big&tab=charts") as pg:
        for key in ("tokens", "counter"):
            pg.wait_for_selector(f".card.chart[data-key='{key}'][data-points]")
        tokens = _y_labels(pg, "tokens")
        assert tokens and all(room >= 0 for _, room in tokens), tokens  # none cut at the edge
        texts = [t for t, _ in tokens if t]
        assert "1e6" in texts and "2e6" in texts, texts  # not "000,000"
        counter = [t for t, _ in _y_labels(pg, "counter") if t]
        assert len(set(counter)) == len(counter) >= 3, counter  # 1e9 + tens: told apart
        assert all(t.endswith("e9") and 1e9 <= float(t) <= 1e9 + 500 for t in counter), counter  # each its value
        assert all(room >= 0 for _, room in _y_labels(pg, "counter"))
        pg.screenshot(path=os.path.join(shots, "s37-large-ticks.png"))
        pg.check("#log-y")
        pg.wait_for_function(NOTED)
        assert "log y: no value above 0" not in pg.inner_text(".card.chart[data-key='tokens'] h3")


@pytest.mark.timeout(120)
def test_the_compare_legend_names_the_step_of_a_value_from_another_step(browser, root, shots):
    with served(browser, root, "#/compare?run=e/sparse&run=e/dense&keys=tokens") as pg:
        pg.wait_for_function("() => window.distlog.compare && window.distlog.compare.plots.some(p => p.key === 'tokens' && p.u)")
        got = pg.evaluate("""() => { const u = window.distlog.compare.plots.find(p => p.key === 'tokens').u;
            const at = (step) => { u.setCursor({ left: u.valToPos(step, 'x'), top: 40 });
                return [...u.root.querySelectorAll('.u-legend .u-value')].map(e => e.textContent); };
            return { off: at(7), on: at(10) }; }""")
        assert got["off"][0] == "7", got  # the header: the step under the cursor
        assert got["off"][1] in ("6 (at 5)", "11 (at 10)"), got  # sparse: its nearest row, and its step
        assert got["off"][2] == "107", got  # dense has a row at 7
        assert got["on"] == ["10", "11", "110"], got  # a row of each at 10: no note
        pg.screenshot(path=os.path.join(shots, "s37-compare-legend.png"))
    with served(browser, root, "#/compare?run=e/big&run=e/big&keys=neg|tokens&logy=1") as pg:  # log y
        pg.wait_for_function(NOTED)
        pg.wait_for_selector(".card.chart[data-key='tokens'][data-series]")
        # (tokens is 0 at step 0: that point is not drawn, and said; the others are)
        assert pg.inner_text(".card.chart[data-key='tokens'] h3") == "tokenslog y: 1 point ≤ 0 not drawn"


@pytest.mark.timeout(180)
def test_a_narrow_window_scrolls_no_page_sideways(browser, root, shots):
    pages = {"runs": "#/", "charts": "#/run?path=e/big&tab=charts", "overview": "#/run?path=e/big&tab=overview",
             "files": "#/run?path=e/big&tab=files&file=notes/notes.txt", "logs": "#/run?path=e/big&tab=logs",
             "compare": "#/compare?run=e/sparse&run=e/dense"}
    with served(browser, root, "#/") as pg:
        for wide in (420, 360):  # (360: a phone; the run's tabs went past it at 390, stop 42)
            pg.set_viewport_size({"width": wide, "height": 860})
            for name, fragment in pages.items():
                pg.goto(pg.base + fragment)
                pg.wait_for_selector("#view > *")
                pg.wait_for_timeout(800)  # (charts and previews drawn)
                width = pg.evaluate("() => document.documentElement.scrollWidth")
                assert width <= wide, (name, wide, width)
                pg.screenshot(path=os.path.join(shots, f"s37-narrow-{wide}-{name}.png"))
        pg.goto(pg.base + pages["files"])  # the text preview reads as lines, not a column of letters
        assert pg.locator("text=line 2").bounding_box()["width"] > 40


@pytest.mark.timeout(120)
def test_text_nan_sorts_as_text_and_a_missing_run_keeps_no_old_crumbs(browser, root):
    with served(browser, root, "#/?sort=tags&asc=1") as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        order = lambda: pg.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)")  # noqa: E731
        pg.wait_for_selector("th[data-col=tags].sorted-asc")
        assert order() == ["e/sparse", "e/big", "e/dense"]  # alpha, nan, zeta: as text
        pg.click("th[data-col=tags]")
        pg.wait_for_selector("th[data-col=tags].sorted-desc")
        assert order() == ["e/dense", "e/big", "e/sparse"]
        pg.goto(pg.base + "#/run?path=e/big&tab=overview")
        pg.wait_for_selector("#crumbs >> text=big")
        pg.goto(pg.base + "#/run?path=e/nope")
        pg.wait_for_selector("#banner:not([hidden])")
        assert pg.inner_text("#crumbs").strip() == "runs", pg.inner_text("#crumbs")
        drop_asked_failures(pg, 404)
