"""A chart zoom is part of the page's view, in its URL (``zoom=LO-HI``), in real headless
Chromium driven by Playwright: a mouse drag on a chart puts the range in the URL and every
chart of the page (they share the step axis) shows it at full resolution; a reload, a copied
link and Back/Forward give the same range; a double-click clears it; a value that is no range,
or a range outside the data, is dropped or kept as given with no error on the page; a live run's new
rows keep the user's range (compare charts snapped back to the whole series on every poll).
Screenshots go to ``$DISTLOG_SHOTS_DIR`` when set (else the test's tmp dir)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from urllib.parse import parse_qs, quote

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import (  # noqa: E402,F401 (browser, shots: fixtures)
    MARKS, browser, drag, parse_zoom, rows_read, served, shots, url_zoom)
from support.dashboard_runs import LIVE_WRITER, ZOOM_STEPS, make_zoom_root, zoom_loss  # noqa: E402

pytestmark = MARKS

RUN_PAGE = "#/run?path=z/a&tab=charts"
COMPARE_PAGE = "#/compare?run=z/a&run=z/b"
KEYS = ("train/acc", "train/loss")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_zoom_root(str(tmp_path_factory.mktemp("zoom") / "root"))


def wait_charts(pg, keys=KEYS) -> None:
    pg.wait_for_function("ks => ks.every(k => { const c = window.distlog.charts[k]; return c && c.u && c.parts.length; })",
                         arg=list(keys))


def scales(pg) -> dict[str, list[float]]:
    """Each drawn chart's visible x range (uPlot's x scale), by key."""
    return pg.evaluate("""() => Object.fromEntries(Object.entries(window.distlog.charts).filter(([, c]) => c.u)
        .map(([k, c]) => [k, [c.u.scales.x.min, c.u.scales.x.max]]))""")


def compare_scales(pg) -> dict[str, list[float]]:
    return pg.evaluate("""() => Object.fromEntries(window.distlog.compare.plots
        .map(p => [p.key, [p.u.scales.x.min, p.u.scales.x.max]]))""")


def wait_zoomed(pg, want: str, keys=KEYS) -> None:
    """Every chart of ``keys`` drew the zoomed rows of ``want`` (a zoom= text)."""
    pg.wait_for_function("([ks, z]) => ks.every(k => { const c = window.distlog.charts[k];"
                         " return c && c.u && c.zoom && c.zoom.parts && c.zoom.x0 === z[0] && c.zoom.x1 === z[1]; })",
                         arg=[list(keys), list(parse_zoom(want))])


def assert_zoomed_to(pg, want: str) -> None:
    x0, x1 = parse_zoom(want)
    for key, (lo, hi) in scales(pg).items():
        assert (lo, hi) == pytest.approx((x0, x1)), key
    steps = rows_read(x0, x1, ZOOM_STEPS)
    for key in KEYS:  # every row of the range: not the downsampled overview
        vals = pg.evaluate("k => window.distlog.charts[k].values()", key)
        assert vals["x"] == steps, key
    vals = pg.evaluate("() => window.distlog.charts['train/loss'].values()")
    assert vals["value"] == [zoom_loss("a", s) for s in steps]
    assert "zoomed" in pg.inner_text(".chart[data-key='train/loss'] h3")


def assert_whole(pg, url: str | None = None) -> None:
    for key, (lo, hi) in scales(pg).items():
        assert (lo, hi) == (0, ZOOM_STEPS - 1), key
    assert url_zoom(pg) == url
    assert "zoomed" not in pg.inner_text(".chart[data-key='train/loss'] h3")


@pytest.mark.timeout(150)
def test_a_drag_puts_the_range_in_the_url_and_reload_link_back_and_double_click_follow(browser, root, shots):
    with served(browser, root, "#/", console=True) as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        pg.goto(pg.base + RUN_PAGE)  # (a history entry after the runs table, as a click on a run)
        wait_charts(pg)
        whole = pg.evaluate("() => window.distlog.charts['train/loss'].values().x.length")
        assert whole < ZOOM_STEPS  # the overview is downsampled
        assert url_zoom(pg) is None

        drag(pg, ".chart[data-key='train/loss']", 0.25, 0.5)
        pg.wait_for_function("() => /[?&]zoom=/.test(location.hash)")
        z = url_zoom(pg)
        x0, x1 = parse_zoom(z)
        assert 0.2 * ZOOM_STEPS < x0 < 0.3 * ZOOM_STEPS and 0.45 * ZOOM_STEPS < x1 < 0.55 * ZOOM_STEPS, z
        wait_zoomed(pg, z)  # the chart dragged on, and the other chart of the page
        assert_zoomed_to(pg, z)
        assert f"zoom={z}" in pg.evaluate("() => location.hash")  # readable: not percent-encoded
        pg.screenshot(path=os.path.join(shots, "zoom-01-run-dragged.png"))

        pg.reload()  # the same range
        wait_charts(pg)
        wait_zoomed(pg, z)
        assert_zoomed_to(pg, z)
        assert url_zoom(pg) == z

        link = pg.url  # a copied link, in a fresh page of a fresh browser context
        ctx2 = browser.new_context(viewport={"width": 1280, "height": 860})
        try:
            pg2 = ctx2.new_page()
            pg2.set_default_timeout(20_000)
            errors: list[str] = []
            pg2.on("pageerror", lambda e: errors.append(str(e)))
            pg2.goto(link)
            wait_charts(pg2)
            wait_zoomed(pg2, z)
            assert_zoomed_to(pg2, z)
            assert not errors, errors
        finally:
            ctx2.close()

        # the URL is written as the rest of the view is (replaced, no history entry of its
        # own): Back leaves the run for the runs table, Forward comes back zoomed
        pg.go_back()
        pg.wait_for_selector("#runs-table tbody tr")
        pg.go_forward()
        wait_charts(pg)
        wait_zoomed(pg, z)
        assert_zoomed_to(pg, z)

        # a second drag, on the other chart, inside the first range: both follow
        drag(pg, ".chart[data-key='train/acc']", 0.4, 0.6)
        pg.wait_for_function("z => { const m = /[?&]zoom=([^&]*)/.exec(location.hash); return m && m[1] !== z; }", arg=z)
        z2 = url_zoom(pg)
        a, b = parse_zoom(z2)
        assert x0 < a < b < x1
        wait_zoomed(pg, z2)
        assert_zoomed_to(pg, z2)

        pg.dblclick(".chart[data-key='train/acc'] .u-over")  # clears it, on every chart
        pg.wait_for_function("() => !/[?&]zoom=/.test(location.hash)")
        pg.wait_for_function("ks => ks.every(k => !window.distlog.charts[k].zoom"
                             " && window.distlog.charts[k].values().x.length === window.distlog.charts[k].parts[0].cols.step.length)",
                             arg=list(KEYS))
        assert_whole(pg)
        assert pg.evaluate("() => window.distlog.charts['train/loss'].values().x.length") == whole
        pg.reload()  # and stays cleared
        wait_charts(pg)
        assert_whole(pg)


@pytest.mark.timeout(150)
def test_zoom_with_another_option_and_on_the_time_axis(browser, root, shots):
    """The zoom sits beside the other view options (log y, smoothing) in the URL; switching
    the x axis drops it (a range of steps is no range of times); a drag on the time axis is a
    range of times, restored by a reload."""
    with served(browser, root, RUN_PAGE + "&logy=1&zoom=1000-2000", console=True) as pg:
        wait_charts(pg)
        wait_zoomed(pg, "1000-2000")
        assert_zoomed_to(pg, "1000-2000")
        pg.uncheck("#log-y")
        pg.wait_for_function("() => !location.hash.includes('logy=1')")
        pg.wait_for_timeout(300)
        assert url_zoom(pg) == "1000-2000"
        assert scales(pg)["train/loss"] == pytest.approx([1000, 2000])  # a redraw kept the range
        pg.select_option("#x-axis", "time")
        pg.wait_for_function("() => location.hash.includes('x=time') && !/[?&]zoom=/.test(location.hash)")
        pg.wait_for_function("() => window.distlog.charts['train/loss'].u.data[0][0] > 1e9 && !window.distlog.charts['train/loss'].zoom")
        drag(pg, ".chart[data-key='train/loss']", 0.3, 0.7)
        pg.wait_for_function("() => /[?&]zoom=/.test(location.hash)")
        z = url_zoom(pg)
        t0, t1 = parse_zoom(z)
        assert t0 > 1e9 and t1 > t0 and len(z) < 40, z  # epoch seconds, readable
        pg.wait_for_function("t => { const c = window.distlog.charts['train/loss']; return c.zoom && c.zoom.parts"
                             " && Math.abs(c.u.scales.x.min - t[0]) < 1e-6 && Math.abs(c.u.scales.x.max - t[1]) < 1e-6; }",
                             arg=[t0, t1])
        pg.reload()
        wait_charts(pg)
        pg.wait_for_function("t => { const c = window.distlog.charts['train/loss']; return c.u && c.zoom && c.zoom.parts"
                             " && Math.abs(c.u.scales.x.min - t[0]) < 1e-6 && Math.abs(c.u.scales.x.max - t[1]) < 1e-6; }",
                             arg=[t0, t1])
        assert pg.input_value("#x-axis") == "time" and url_zoom(pg) == z


@pytest.mark.timeout(180)
@pytest.mark.parametrize("value", ["abc", "100-", "5-5", "NaN-3", "Infinity-5", "1e999-2", "--", "1-2-3",
                                   "<img src=x onerror=alert(1)>", "5000-9000", "-900--100"])
def test_a_zoom_in_the_url_that_is_no_range_or_outside_the_data_shows_the_whole_series(browser, root, value):
    # (a range beside the data stays in the URL: a live run may reach it; no range is dropped)
    kept = value if value in ("5000-9000", "-900--100") else None
    for page in (RUN_PAGE, COMPARE_PAGE):
        with served(browser, root, f"{page}&zoom={quote(value)}", console=True) as pg:
            pg.on("dialog", lambda d: (pg.errors.append(f"dialog: {d.message}"), d.dismiss()))
            if page == RUN_PAGE:
                wait_charts(pg)
                pg.wait_for_timeout(200)
                assert_whole(pg, kept)
            else:
                pg.wait_for_function("() => window.distlog.compare && window.distlog.compare.plots.length === 2")
                pg.wait_for_timeout(200)
                assert all(s == [0, ZOOM_STEPS - 1] for s in compare_scales(pg).values())
            assert url_zoom(pg) == kept
            query = parse_qs(pg.evaluate("() => location.hash").partition("?")[2])
            query.pop("zoom", None)
            assert query == parse_qs(page.partition("?")[2])  # the rest of the view is kept


@pytest.mark.timeout(120)
@pytest.mark.parametrize("value, shown", [("2500-9000", "2500-9000"), ("-50-10", "-50-10"), ("20-10", "10-20"),
                                          ("100.000-200", "100-200"), ("10:20", "10-20")])
def test_a_zoom_in_the_url_partly_outside_the_data_is_shown_as_given_and_the_url_normalised(browser, root, value, shown):
    """(the range stays as given: it was clamped to the first chart drawn, so a chart of one
    row, or of sparse rows, cut or dropped every chart's zoom of a shared link)"""
    with served(browser, root, f"{RUN_PAGE}&zoom={quote(value)}", console=True) as pg:
        wait_charts(pg)
        wait_zoomed(pg, shown)
        assert_zoomed_to(pg, shown)
        assert url_zoom(pg) == shown


@pytest.mark.timeout(120)
def test_a_chart_of_one_row_or_sparse_rows_does_not_cut_the_pages_zoom(browser, tmp_path):
    """The first chart drawn decided the page's zoom: one of a single row dropped zoom= for
    every chart, one of sparse rows (1000..3000) cut 100-2500 to 1000-2500 on a 0..2999 curve."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("z"), exp.run("a"):
        for step in range(ZOOM_STEPS):
            row = {"train/loss": zoom_loss("a", step), "train/acc": step / ZOOM_STEPS}
            if step == 1000:
                row["eval/once"] = 1.0
            if step % 1000 == 0 and step:
                row["eval/sparse"] = step / 1000
            exp.metrics.log(step=step, **row)
    exp.close()
    with served(browser, root, f"{RUN_PAGE}&zoom=100-2500", console=True) as pg:
        wait_charts(pg, KEYS + ("eval/once", "eval/sparse"))
        wait_zoomed(pg, "100-2500", KEYS + ("eval/sparse",))
        assert url_zoom(pg) == "100-2500"
        sc = scales(pg)
        for key in KEYS + ("eval/sparse",):
            assert sc[key] == pytest.approx([100, 2500]), key
        assert pg.evaluate("() => window.distlog.charts['eval/once'].zoom") is None  # one row: drawn whole


@pytest.mark.timeout(150)
def test_compare_zoom_is_in_the_url_and_every_chart_follows(browser, root, shots):
    with served(browser, root, COMPARE_PAGE, console=True) as pg:
        pg.wait_for_function("() => window.distlog.compare && window.distlog.compare.plots.length === 2")
        drag(pg, "#compare-charts .chart[data-key='train/loss']", 0.5, 0.75)
        pg.wait_for_function("() => /[?&]zoom=/.test(location.hash)")
        z = url_zoom(pg)
        x0, x1 = parse_zoom(z)
        assert 0.45 * ZOOM_STEPS < x0 < 0.55 * ZOOM_STEPS and 0.7 * ZOOM_STEPS < x1 < 0.8 * ZOOM_STEPS, z
        pg.wait_for_function("z => window.distlog.compare.plots.every(p => p.u.scales.x.min === z[0] && p.u.scales.x.max === z[1])",
                             arg=[x0, x1])
        pg.locator("#compare-charts").screenshot(path=os.path.join(shots, "zoom-02-compare-dragged.png"))
        pg.reload()
        pg.wait_for_function("z => window.distlog.compare && window.distlog.compare.plots.length === 2 &&"
                             " window.distlog.compare.plots.every(p => p.u.scales.x.min === z[0] && p.u.scales.x.max === z[1])",
                             arg=[x0, x1])
        assert url_zoom(pg) == z
        pg.check(".toolbar label:has-text('log y') input")  # every chart is made again
        pg.wait_for_function("() => location.hash.includes('logy=1')")
        pg.wait_for_function("z => window.distlog.compare.plots.length === 2 &&"
                             " window.distlog.compare.plots.every(p => p.u.scales.x.min === z[0] && p.u.scales.x.max === z[1])",
                             arg=[x0, x1])
        assert url_zoom(pg) == z
        pg.dblclick("#compare-charts .chart[data-key='train/acc'] .u-over")
        pg.wait_for_function("() => !/[?&]zoom=/.test(location.hash)")
        pg.wait_for_function(f"() => window.distlog.compare.plots.every(p => p.u.scales.x.min === 0 && p.u.scales.x.max === {ZOOM_STEPS - 1})")


@pytest.mark.timeout(180)
def test_a_live_run_keeps_the_users_zoom_while_rows_arrive(browser, tmp_path, shots):
    """New rows arrive every 0.1 s; a poll must not snap a zoomed chart back to the whole
    series (a compare chart did: its poll reset the scales)."""
    root = str(tmp_path / "root")
    make_zoom_root(root)  # (a finished run to compare the live one with)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
    proc = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, root], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "writer.log", "w"))
    try:
        deadline = time.monotonic() + 60
        while True:  # 40 committed rows
            try:
                if distlog.open_run(os.path.join(root, "live", "l1")).metrics.lengths().get("live", 0) >= 40:
                    break
            except FileNotFoundError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "writer.log").read_text()
            time.sleep(0.1)
        with served(browser, root, "#/run?path=live/l1&tab=charts", console=True) as pg:
            pg.wait_for_function("() => { const c = window.distlog.charts['live']; return c && c.u && c.parts.length; }")
            drag(pg, ".chart[data-key='live']", 0.2, 0.6)
            pg.wait_for_function("() => /[?&]zoom=/.test(location.hash) && window.distlog.charts['live'].zoom"
                                 " && window.distlog.charts['live'].zoom.parts")
            z = url_zoom(pg)
            x0, x1 = parse_zoom(z)
            rows = int(pg.get_attribute(".chart[data-key='live']", "data-rows"))
            pg.wait_for_function(f"() => +document.querySelector(\".chart[data-key='live']\").dataset.rows >= {rows + 15}",
                                 timeout=30_000)  # the title's count follows the run ...
            c = pg.evaluate("() => { const c = window.distlog.charts['live']; return [c.u.scales.x.min, c.u.scales.x.max, !!c.zoom]; }")
            assert c == [x0, x1, True]  # ... the range stays the user's
            assert url_zoom(pg) == z
            assert "zoomed" in pg.inner_text(".chart[data-key='live'] h3")
            pg.screenshot(path=os.path.join(shots, "zoom-03-live-run.png"))
            pg.dblclick(".chart[data-key='live'] .u-over")  # whole again: the range follows the new rows
            pg.wait_for_function("() => !/[?&]zoom=/.test(location.hash)")
            last = pg.evaluate("() => window.distlog.charts['live'].u.scales.x.max")
            assert last > x1
            pg.wait_for_function(f"() => window.distlog.charts['live'].u.scales.x.max >= {last + 5}", timeout=30_000)

            pg.goto(pg.base + f"#/compare?run=live/l1&run=z/a&zoom={z}")
            pg.wait_for_function("() => window.distlog.compare && window.distlog.compare.plots.some(p => p.key === 'live')")
            live = "window.distlog.compare.plots.find(p => p.key === 'live').u"
            pg.wait_for_function(f"z => {live}.scales.x.min === z[0] && {live}.scales.x.max === z[1]", arg=[x0, x1])
            over = "window.distlog.compare.plots.find(p => p.key === 'live').over"  # (u.data: the range's rows)
            n0 = pg.evaluate(f"() => {over}[0].length")
            pg.wait_for_function(f"() => {over}[0].length >= {n0 + 15}", timeout=30_000)  # polled, grown
            assert pg.evaluate(f"() => [{live}.scales.x.min, {live}.scales.x.max]") == [x0, x1]
            assert url_zoom(pg) == z
    finally:
        proc.terminate()
        proc.wait(timeout=30)
