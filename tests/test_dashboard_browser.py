"""The dashboard in real headless Chromium (Debian's ``chromium``, driven by Playwright):
runs table, a run's charts (values read back from the page), per-rank view, logs filters,
an image, compare, a live run whose chart advances without a reload, and a hostile log line
shown as text. Screenshots are kept in the test's tmp dir (and copied to
``$DISTLOG_SHOTS_DIR`` when set)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.dashboard_runs import HOSTILE, LIVE_WRITER, STEPS, ema, loss, make_root, rank_worker  # noqa: E402
from support.browser_pages import MARKS, browser, drag, served  # noqa: E402,F401 (browser: a fixture)

pytestmark = MARKS
from support.ranks import run_ranks  # noqa: E402


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = tmp_path_factory.mktemp("shots")
    yield d
    dest = os.environ.get("DISTLOG_SHOTS_DIR")
    if dest:
        os.makedirs(dest, exist_ok=True)
        for f in os.listdir(d):
            shutil.copy(d / f, os.path.join(dest, f))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    root = make_root(str(tmp / "root"))
    run_ranks(rank_worker, 2, tmp, root, timeout=150)
    return root


@pytest.fixture(scope="module")
def server(root):
    url = distlog.serve(root)
    yield url
    url.stop()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    pg.base = server  # type: ignore[attr-defined]
    yield pg
    ctx.close()
    assert not errors, errors


def go(page, fragment: str) -> None:
    page.goto(page.base + fragment)


def wait_chart(page, key: str) -> dict:
    page.wait_for_function("k => { const c = window.distlog && window.distlog.charts[k]; return c && c.u; }", arg=key)
    return page.evaluate("k => window.distlog.charts[k].values()", key)


@pytest.mark.timeout(120)
def test_runs_table_filter_sort_and_open_a_run(page, shots):
    go(page, "#/")
    page.wait_for_selector("#runs-table tbody tr")
    assert page.locator("#runs-table tbody tr").count() == 7
    page.screenshot(path=shots / "01-runs.png")
    assert page.inner_text("th[data-col=max_grad_norm]") == "max_grad_norm"  # a param key as spelled
    page.fill("#runs-filter", "optim.lr=0.1 seed>0")
    assert page.locator("#runs-table tbody tr").count() == 1
    page.fill("#runs-filter", "status:completed tag:small")
    assert page.locator("#runs-table tbody tr").count() == 2
    page.fill("#runs-filter", "")
    page.click("th[data-col=seed]")
    rows = page.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)")
    assert rows[:2] == ["sweep/lr0.1-s0", "sweep/lr0.01-s0"] or rows[:2] == ["sweep/lr0.01-s0", "sweep/lr0.1-s0"]
    page.click("tr[data-path='sweep/lr0.1-s1'] a.run-link")
    vals = wait_chart(page, "train/loss")
    assert vals["x"] == list(range(STEPS))
    assert vals["value"] == pytest.approx([loss(0.1, 1, i) for i in range(STEPS)])
    page.wait_for_selector(".chart[data-key='val/acc'][data-points]")
    page.screenshot(path=shots / "02-run-charts.png")


@pytest.mark.timeout(120)
def test_view_state_lives_in_the_url_for_back_reload_and_links(page, shots):
    """Filter, sort and selection of the runs table, the charts' axes and the compare
    grouping are in the URL: Back, a reload and a copied link give the same view."""
    go(page, "#/")
    page.wait_for_selector("#runs-table tbody tr")
    page.fill("#runs-filter", "optim.lr=0.1")
    page.click("th[data-col=seed]")
    page.check("tr[data-path='sweep/lr0.1-s1'] input[type=checkbox]")
    rows = page.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)")
    page.click("tr[data-path='sweep/lr0.1-s1'] a.run-link")
    page.wait_for_selector(".chart[data-key='train/loss'][data-points]")
    page.go_back()
    page.wait_for_selector("#runs-table tbody tr")
    assert page.input_value("#runs-filter") == "optim.lr=0.1"
    assert page.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)") == rows
    assert page.is_checked("tr[data-path='sweep/lr0.1-s1'] input[type=checkbox]")
    go(page, "#/run?path=sweep/lr0.1-s1&tab=charts")
    page.wait_for_selector(".chart[data-key='train/loss'][data-points]")
    page.check("#log-y")
    page.select_option("#x-axis", "time")
    page.wait_for_function("() => location.hash.includes('logy=1') && location.hash.includes('x=time')")
    page.reload()
    page.wait_for_selector(".chart[data-key='train/loss'][data-points]")
    assert page.is_checked("#log-y") and page.input_value("#x-axis") == "time"
    runs = "&".join(f"run=sweep/lr{lr}-s{s}" for lr in (0.1, 0.01) for s in (0, 1))
    go(page, f"#/compare?{runs}")
    page.wait_for_selector("#group-by")
    page.select_option("#group-by", "optim.lr")
    page.wait_for_function("() => location.hash.includes('group=optim.lr')")
    page.reload()
    page.wait_for_selector("#group-by")
    assert page.input_value("#group-by") == "optim.lr"


@pytest.mark.timeout(120)
def test_per_rank_view_log_scale_and_smoothing(page, shots):
    go(page, "#/run?path=ddp/two&tab=charts")
    vals = wait_chart(page, "own")
    assert vals["value"] == [float(i) for i in range(12)]  # rank 0's own table
    page.check("#per-rank")
    page.wait_for_function("() => window.distlog.charts['own'].u.series.some(s => s.label === 'rank 1')")
    vals = page.evaluate("() => window.distlog.charts['own'].values()")
    assert vals["rank 0"] == [float(i) for i in range(12)]
    assert vals["rank 1"] == [100.0 + i for i in range(12)]
    loss_vals = wait_chart(page, "loss")
    assert loss_vals["min"] == [0.0, 4.0, 8.0] and loss_vals["max"] == [4.0, 8.0, 12.0]
    page.check("#log-y")
    page.fill("#smoothing", "0.6")
    page.dispatch_event("#smoothing", "input")
    page.wait_for_function("() => window.distlog.charts['loss'].u.series.length === 5")
    page.screenshot(path=shots / "03-per-rank.png")


def _stroke_pixels_at(page, key: str, x: float, rgb: tuple, compare: bool = False) -> int:
    """How many pixels of chart ``key``'s plot area (on the compare page: ``compare``), in
    the column at ``x`` (an x value, ±2 px), are within 40 of colour ``rgb``: a line drawn
    across that x leaves some there."""
    return page.evaluate("""([k, x, rgb, compare]) => { const u = compare
        ? window.distlog.compare.plots.find(p => p.key === k).u : window.distlog.charts[k].u;
        const px = Math.round(u.valToPos(x, 'x', true)), top = Math.round(u.bbox.top), h = Math.round(u.bbox.height);
        const d = u.ctx.getImageData(px - 2, top, 5, h).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1]) + Math.abs(d[i + 2] - rgb[2]) < 40) n++;
        return n; }""", [key, x, list(rgb), compare])


@pytest.mark.timeout(120)
def test_per_rank_line_shows_a_gap_where_the_rank_has_no_value(page, shots):
    """Rank 1 logged NaN at steps 5 and 6: its line must stop there, as the run's own line
    does at a NaN (it was drawn straight across, 4 to 7, as if it had values there)."""
    go(page, "#/run?path=ddp/two&tab=charts&ranks=1")
    page.wait_for_function("() => { const c = window.distlog.charts['gappy']; return c && c.u && c.u.series.some(s => s.label === 'rank 1'); }")
    vals = page.evaluate("() => window.distlog.charts['gappy'].values()")
    assert vals["x"] == list(range(12))
    assert vals["rank 0"] == [1.0] * 12
    assert vals["rank 1"] == [None if s in (5, 6) else 11.0 for s in range(12)]
    # under the cursor, rank 1's value at step 5 reads NaN (it read "--", as a step with no row)
    shown = page.evaluate("""() => { const u = window.distlog.charts['gappy'].u;
        u.setCursor({ left: u.valToPos(5, 'x'), top: 10 });
        return [...u.root.querySelectorAll('.u-legend .u-series')].map(e => e.textContent); }""")
    assert any(t.startswith("rank 1") and t.endswith("NaN") for t in shown), shown
    assert any(t.startswith("rank 0") and t.endswith("1") for t in shown), shown
    page.locator(".chart[data-key='gappy']").screenshot(path=shots / "03b-per-rank-gap.png")
    red = (0xE5, 0x53, 0x3D)  # color(1): rank 1's stroke
    assert _stroke_pixels_at(page, "gappy", 2.5, red) > 0  # (the check sees a drawn line)
    assert _stroke_pixels_at(page, "gappy", 5.5, red) == 0  # no line across the gap


@pytest.mark.timeout(120)
def test_logs_filter_by_rank_and_level(page, shots):
    go(page, "#/run?path=ddp/two&tab=logs")
    page.wait_for_selector("#log-list .logline[data-rank='1']")
    page.uncheck("input[data-rank='1']")
    page.wait_for_function("() => !document.querySelector(\"#log-list .logline[data-rank='1']\")")
    ranks = page.locator("#log-list .logline").evaluate_all("ls => [...new Set(ls.map(l => l.dataset.rank))]")
    assert ranks == ["0"]
    page.select_option("#log-level", "ERROR")
    page.wait_for_function("() => [...document.querySelectorAll('#log-list .logline')].every(l => l.dataset.level === 'ERROR')")
    msgs = page.locator("#log-list .logline .msg").all_text_contents()
    assert msgs == [f"rank 0 step {s}" for s in (0, 4, 8)]
    page.screenshot(path=shots / "04-logs.png")


@pytest.mark.timeout(120)
def test_a_bad_regular_expression_in_the_logs_filter_says_so_and_shows_no_stale_lines(page, shots):
    go(page, "#/run?path=ddp/two&tab=logs")
    page.wait_for_selector("#log-list .logline[data-rank='1']")
    page.fill("#log-grep", "warn [")
    page.wait_for_selector("#log-error")
    assert "regular expression" in page.locator("#log-error").inner_text()
    assert page.locator("#log-list .logline").count() == 1  # the message only: no stale lines
    assert page.locator("#log-count").inner_text() == "filter not applied"
    page.screenshot(path=shots / "04b-logs-bad-regex.png")
    page.fill("#log-grep", "step 4$")  # fixed: the matching lines come back
    page.wait_for_function("() => !document.querySelector('#log-error') && "
                           "document.querySelectorAll('#log-list .logline').length > 0")
    assert all(m.endswith("step 4") for m in page.locator("#log-list .logline .msg").all_text_contents())


@pytest.mark.timeout(120)
def test_hostile_log_line_is_text_and_creates_no_element(page, shots):
    go(page, "#/run?path=media/m1&tab=logs")
    page.wait_for_selector("#log-list .logline")
    texts = page.locator("#log-list .msg").all_text_contents()
    assert HOSTILE in texts
    assert page.locator("#log-list img").count() == 0
    assert page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
    go(page, "#/run?path=media/m1&tab=overview")
    page.wait_for_selector(".tree")
    assert page.locator(".tree b").count() == 0 and "<b>relu</b>" in page.locator(".tree").inner_text()
    page.screenshot(path=shots / "05-hostile.png")


@pytest.mark.timeout(120)
def test_files_show_an_image_and_text(page, shots):
    go(page, "#/run?path=media/m1&tab=files")
    page.click("#files-table tr[data-path='samples/gradient.png']")
    page.wait_for_function("() => { const i = document.querySelector('#preview-image'); return i && i.complete && i.naturalWidth > 0; }")
    assert page.evaluate("() => document.querySelector('#preview-image').naturalWidth") == 48
    page.screenshot(path=shots / "06-files-image.png")
    page.click("#files-table tr[data-path='config.json']")
    page.wait_for_function("() => (document.querySelector('#preview-text') || {}).textContent?.includes('onerror')")
    assert page.locator("#file-preview img").count() == 0


@pytest.mark.timeout(120)
def test_file_saved_by_two_ranks_under_one_name_shows_each_ranks_bytes(page, root, shots):
    # saved at once, each rank's own bytes: two versions (which rank claimed 1 is a race)
    version = {r.rank: r.version for r in distlog.open_run(f"{root}/ddp/two").files.versions("out.txt")}
    assert sorted(version.values()) == [1, 2], version
    newest, older = sorted(version, key=version.get, reverse=True)
    go(page, "#/run?path=ddp/two&tab=files")
    page.click("#files-table tr[data-path='out.txt']")
    text = "() => (document.querySelector('#preview-text') || {}).textContent === 'rank %d text\\n'"
    page.wait_for_function(text % newest)  # the newest version first
    assert f"rank {newest}" in page.inner_text("#file-preview .toolbar")
    assert page.locator("#file-preview select option").all_text_contents() == [
        f"version 1 · rank {older}", f"version 2 · rank {newest}"]
    page.select_option("#file-preview select", label=f"version 1 · rank {older}")
    page.wait_for_function(text % older)
    assert f"rank {older}" in page.inner_text("#file-preview .toolbar")
    assert f"rank={older}" in page.get_attribute("#file-preview a[download]", "href")
    page.screenshot(path=shots / "06b-files-rank.png")


@pytest.mark.timeout(120)
def test_compare_two_runs_and_group_by_a_param(page, shots):
    go(page, "#/")
    page.wait_for_selector("#runs-table tbody tr")
    for p in ("sweep/lr0.1-s0", "sweep/lr0.01-s0"):
        page.check(f"tr[data-path='{p}'] input[type=checkbox]")
    page.click("text=Compare selected")
    page.wait_for_selector("#compare-charts .chart[data-key='train/loss'][data-series='2']")
    vals = page.evaluate("""() => { const p = window.distlog.compare.plots.find(p => p.key === 'train/loss');
        return Object.fromEntries(p.u.series.map((s, i) => [s.label || 'x', Array.from(p.u.data[i])])); }""")
    assert vals["sweep/lr0.1-s0"] == pytest.approx([loss(0.1, 0, i) for i in range(STEPS)])
    assert vals["sweep/lr0.01-s0"] == pytest.approx([loss(0.01, 0, i) for i in range(STEPS)])
    page.screenshot(path=shots / "07-compare.png")
    runs = "&".join(f"run=sweep/lr{lr}-s{s}" for lr in (0.1, 0.01) for s in (0, 1))
    go(page, f"#/compare?{runs}&group=optim.lr")
    page.wait_for_selector("#compare-charts .chart[data-key='train/loss'][data-series='6']")
    page.screenshot(path=shots / "08-compare-grouped.png")


@pytest.mark.timeout(180)
def test_live_chart_advances_without_reload(page, root, shots, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
    proc = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, root], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "writer.log", "w"))
    try:
        deadline = time.monotonic() + 60
        while True:  # the run and its first committed row exist
            try:
                if distlog.open_run(os.path.join(root, "live", "l1")).metrics.lengths().get("live"):
                    break
            except FileNotFoundError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "writer.log").read_text()
            time.sleep(0.1)
        go(page, "#/run?path=live/l1&tab=charts")
        wait_chart(page, "live")
        first = int(page.get_attribute(".chart[data-key='live']", "data-last-step"))
        page.evaluate("() => { window.__marker = 1; }")  # gone if the page reloads
        page.wait_for_function(f"() => +document.querySelector(\".chart[data-key='live']\").dataset.lastStep >= {first + 5}",
                               timeout=30_000)
        assert page.evaluate("() => window.__marker") == 1
        shown_max = page.evaluate("() => window.distlog.charts['live'].u.scales.x.max")
        assert shown_max >= first + 5  # the visible x range follows the new rows
        vals = page.evaluate("() => window.distlog.charts['live'].values()")
        assert vals["value"] == [float(x) for x in vals["x"]]  # the rows are the logged values
        assert page.is_visible("#live-badge")
        page.screenshot(path=shots / "09-live.png")
        page.click("nav.tabs a[data-tab=logs]")  # the log view follows too, still no reload
        page.wait_for_selector("#log-list .logline[data-step]")
        assert page.is_checked("#log-follow")
        last = page.locator("#log-list .logline").last.get_attribute("data-step")
        page.wait_for_function(f"() => {{ const l = [...document.querySelectorAll('#log-list .logline')];"
                               f" return l.length && +l[l.length - 1].dataset.step >= {int(last) + 5}; }}",
                               timeout=30_000)
        assert page.evaluate("() => window.__marker") == 1
        steps = page.locator("#log-list .logline[data-step]").evaluate_all(
            "ls => ls.filter(l => l.dataset.step !== '').map(l => +l.dataset.step)")
        assert steps == sorted(steps) and len(set(steps)) == len(steps)  # in order, no duplicates
        go(page, "#/compare?run=live/l1&run=sweep/lr0.1-s0")  # compare charts follow too
        page.wait_for_selector("#compare-charts .chart[data-key='live'][data-series]")
        n0 = page.evaluate("() => window.distlog.compare.plots.find(p => p.key === 'live').u.data[0].length")
        page.wait_for_function(f"() => window.distlog.compare.plots.find(p => p.key === 'live').u.data[0].length >= {n0 + 5}",
                               timeout=30_000)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.timeout(120)
def test_attempts_timeline_and_unknown_run(page, shots):
    go(page, "#/run?path=media/resumed&tab=attempts")
    page.wait_for_selector("#timeline .tl-bar[data-attempt='1']")
    bars = page.locator("#timeline .tl-bar").all_text_contents()
    assert bars[0].startswith("attempt 0 · failed") and bars[1].startswith("attempt 1 · completed")
    assert "resumed at step 1" in bars[1]
    assert page.inner_text("#timeline .tl-span").startswith("axis: ")  # (not read as an attempt's)
    assert "node lost" in page.inner_text("table.grid")
    page.screenshot(path=shots / "10-attempts.png")
    go(page, "#/run?path=sweep/nope&tab=charts")
    page.wait_for_selector("#banner:not([hidden])")
    assert "no run 'sweep/nope'" in page.inner_text("#banner")


@pytest.mark.timeout(120)
def test_drag_zooms_at_full_resolution_and_double_click_resets(page, shots):
    go(page, "#/run?path=media/m1&tab=charts")
    vals = wait_chart(page, "spiky")
    assert vals["x"] == list(range(STEPS)) and max(vals["value"]) == 100.0
    drag(page, ".chart[data-key='spiky']", 0.45, 0.65)
    page.wait_for_function("() => window.distlog.charts['spiky'].zoom !== null")
    page.wait_for_function("() => window.distlog.charts['spiky'].values().x.length < 12")
    zoomed = page.evaluate("() => window.distlog.charts['spiky'].values()")
    lo, hi = zoomed["x"][0], zoomed["x"][-1]
    assert 10 <= lo < hi <= 21 and zoomed["x"] == list(range(lo, hi + 1))  # every row of the range
    assert zoomed["value"] == [100.0 if s == 17 else 1.0 for s in zoomed["x"]]
    page.screenshot(path=shots / "11-zoomed.png")
    scale = page.evaluate("() => { const u = window.distlog.charts['spiky'].u; return [u.scales.x.min, u.scales.x.max]; }")
    page.evaluate("() => window.distlog.charts['spiky'].load()")  # what a live poll does to re-downsample
    assert page.evaluate("() => window.distlog.charts['spiky'].zoom !== null")
    assert page.evaluate("() => window.distlog.charts['spiky'].values()")["x"] == zoomed["x"]
    assert page.evaluate("() => { const u = window.distlog.charts['spiky'].u; return [u.scales.x.min, u.scales.x.max]; }") == scale
    page.dblclick(".chart[data-key='spiky'] .u-over")
    page.wait_for_function("() => window.distlog.charts['spiky'].values().x.length === 30")


def _log_loss(root, steps, value, **run_kw) -> None:
    exp = distlog.get_logger(root)
    with exp.experiment("rw"), exp.run("r", **run_kw):
        for s in steps:
            exp.metrics.log(step=s, loss=value)
    exp.close()


@pytest.mark.timeout(120)
def test_open_chart_drops_its_rows_when_a_resume_rewinds_the_series(browser, tmp_path):
    """The page holds steps 0..29 (loss 1); a resumed attempt rewinds to step 9 and writes
    10..59 (loss 2): the live poll must show the store's rows, not append 30..59 to its own."""
    root = str(tmp_path / "root")
    _log_loss(root, range(30), 1.0)
    with served(browser, root, "#/run?path=rw/r&tab=charts") as pg:
        assert wait_chart(pg, "loss")["value"] == [1.0] * 30
        _log_loss(root, range(10, 60), 2.0, resume_step=9)
        want = [1.0] * 10 + [2.0] * 50
        pg.wait_for_function("w => { const v = window.distlog.charts['loss'].values().value;"
                             " return v.length === w.length && v.every((x, i) => x === w[i]); }", arg=want)
        assert pg.evaluate("() => window.distlog.charts['loss'].values()")["x"] == list(range(60))


@pytest.mark.timeout(120)
def test_live_band_that_appears_later_sits_at_its_steps(browser, tmp_path):
    """Steps 0..9 have no spread (no band sent); 10..19 have one: the polled band must be
    drawn at 10..19 with the stored min/max, not appended at the first rows' steps."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, commit_interval=0.2)
    with exp.experiment("live"), exp.run("band"):
        def write(steps):
            for s in steps:
                for micro in range(4):
                    exp.metrics.collect(step=s, acc=0.0 if s < 10 else float(s + micro))
                exp.metrics.flush()
            exp.metrics.commit()
        write(range(10))
        with served(browser, root, "#/run?path=live/band&tab=charts") as pg:
            assert "min" not in wait_chart(pg, "acc")
            write(range(10, 20))
            pg.wait_for_function("() => +document.querySelector(\".chart[data-key='acc']\").dataset.lastStep >= 19",
                                 timeout=30_000)
            v = pg.evaluate("() => window.distlog.charts['acc'].values()")
            s = distlog.open_run(os.path.join(root, "live", "band")).metrics.read("acc")
            store = {int(st): (mn, mx) for st, mn, mx in zip(s["step"], s["min"], s["max"])}
            assert v["x"] == list(range(20))
            assert [(mn, mx) for mn, mx in zip(v["min"], v["max"])] == [store[x] for x in v["x"]]
            lens = pg.evaluate("() => Object.values(window.distlog.charts['acc'].parts[0].cols).map(a => a.length)")
            assert len(set(lens)) == 1


@pytest.mark.timeout(120)
def test_live_log_tail_keeps_every_line_when_many_arrive_between_polls(browser, tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, commit_interval=0.2)
    with exp.experiment("live"), exp.run("chatty"):
        exp.info("line 0", step=0)
        exp.metrics.log(step=0, x=0.0)
        exp.metrics.commit()
        with served(browser, root, "#/run?path=live/chatty&tab=logs") as pg:
            pg.wait_for_selector("#log-list .logline[data-step]")
            assert pg.is_checked("#log-follow")
            for i in range(1, 1300):  # far more than a poll's page between two polls
                exp.info(f"line {i}", step=i // 60)
            exp.metrics.log(step=1, x=1.0)
            exp.metrics.commit()
            pg.wait_for_function("() => [...document.querySelectorAll('#log-list .msg')].some(m => m.textContent === 'line 1299')",
                                 timeout=30_000)
            msgs = pg.locator("#log-list .msg").all_text_contents()
            nums = [int(m[5:]) for m in msgs if m.startswith("line ")]
            assert nums == list(range(1300))


@pytest.mark.timeout(120)
def test_compare_grouped_gives_each_group_one_colour_in_every_chart(browser, tmp_path):
    """lr=0.01 never logs 'val/score': that chart has one group fewer, and must not shift the
    other groups' colours away from the chips."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("g"):
        for lr in (0.1, 0.01, 0.001):
            for seed in (0, 1):
                with exp.run(f"lr{lr}-s{seed}", params={"lr": lr, "seed": seed}):
                    for s in range(5):
                        exp.metrics.log(step=s, **{"train/loss": lr * 100 + seed})
                        if lr != 0.01:
                            exp.metrics.log(step=s, **{"val/score": lr * 100 + seed})
    exp.close()
    runs = "&".join(f"run=g/lr{lr}-s{s}" for lr in (0.1, 0.01, 0.001) for s in (0, 1))
    with served(browser, root, f"#/compare?{runs}&group=lr") as pg:
        for k in ("train/loss", "val/score"):
            pg.wait_for_selector(f"#compare-charts .chart[data-key='{k}'][data-series]")
        chips = dict(pg.locator("#group-legend .rank-chip").evaluate_all(
            "cs => cs.map(c => [c.textContent.split(' · ')[0], getComputedStyle(c.querySelector('.swatch')).backgroundColor])"))
        assert set(chips) == {"lr = 0.1", "lr = 0.01", "lr = 0.001"}
        assert len(set(chips.values())) == 3
        for k in ("train/loss", "val/score"):
            lines = pg.evaluate("""k => window.distlog.compare.plots.find(p => p.key === k).u.series.slice(1)
                .filter(s => !/std$/.test(s.label)).map(s => [s.label.split(" (")[0].replace("=", " = "), s._stroke || s.stroke])""", k)
            assert len(lines) == (3 if k == "train/loss" else 2)
            for grp, stroke in lines:
                hx = stroke.lstrip("#")
                assert chips[grp] == "rgb(%d, %d, %d)" % tuple(int(hx[i:i + 2], 16) for i in (0, 2, 4)), (k, grp)


@pytest.mark.timeout(120)
def test_smoothing_a_downsampled_series_draws_the_ema_of_every_row(browser, tmp_path, shots):
    """6,000 skewed rows on a ~600 px chart are downsampled; the smoothed line must be the EMA
    of the stored rows at the shown steps, not the EMA of the kept (M4) points."""
    import numpy as np

    rng = np.random.default_rng(0)
    vals = 1.0 + rng.exponential(1.0, 6000) ** 3
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("e"), exp.run("r"):
        for step, v in enumerate(vals):
            exp.metrics.log(step=step, loss=float(v))
    exp.close()
    stored = np.asarray(distlog.open_run(os.path.join(root, "e", "r")).metrics.read("loss")["value"])
    want, last = np.empty(len(stored)), 0.0
    for i, v in enumerate(stored):
        last = last * 0.9 + 0.1 * v
        want[i] = last / (1 - 0.9 ** (i + 1))
    with served(browser, root, "#/run?path=e/r&tab=charts") as pg:
        assert len(wait_chart(pg, "loss")["x"]) < 6000  # downsampled
        pg.fill("#smoothing", "0.9")
        pg.dispatch_event("#smoothing", "input")
        pg.wait_for_function("() => 'value (smoothed)' in window.distlog.charts['loss'].values()")
        deadline = time.monotonic() + 10  # (the line may be redrawn once the slider rests)
        while True:
            v = pg.evaluate("() => window.distlog.charts['loss'].values()")
            if np.allclose(v["value (smoothed)"], want[v["x"]], rtol=1e-9) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(v["x"]) < 6000
        np.testing.assert_allclose(v["value (smoothed)"], want[v["x"]], rtol=1e-9)
        pg.screenshot(path=shots / "12-smoothed-downsampled.png")


def _runs_with_lr(root, values) -> None:
    """One run per ``name: lr`` (``...``: a run without the param)."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"):
        for name, lr in values.items():
            with exp.run(name, params={"seed": 0} if lr is ... else {"lr": lr, "seed": 0}):
                pass
    exp.close()


def _shown(pg) -> set:
    return {p.split("/")[1] for p in pg.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)")}


@pytest.mark.timeout(120)
def test_runs_filter_orders_numbers_only_with_numbers(browser, tmp_path):
    """`lr>0.1` selects numbers above 0.1 (inf too), never NaN, None or text; text typed is
    compared with text only."""
    root = str(tmp_path / "root")
    _runs_with_lr(root, {"small": 0.001, "big": 0.5, "nan": float("nan"), "none": None, "text": "auto",
                         "inf": float("inf"), "ninf": float("-inf"), "missing": ...})
    with served(browser, root, "#/") as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        for q, want in [("lr>0.1", {"big", "inf"}), ("lr<0.1", {"small", "ninf"}),
                        ("lr>=0.001", {"small", "big", "inf"}), ("lr<=-1e300", {"ninf"}),
                        ("lr>a", {"text"}), ("lr=nan", {"nan"}), ("lr=0.5", {"big"})]:
            pg.fill("#runs-filter", q)
            pg.wait_for_function("q => new URLSearchParams(location.hash.split('?')[1]).get('q') === q", arg=q)
            assert _shown(pg) == want, q


@pytest.mark.timeout(120)
def test_runs_sort_puts_nan_and_missing_last_both_ways(browser, tmp_path):
    root = str(tmp_path / "root")
    _runs_with_lr(root, {"a": 0.1, "b": 0.01, "c": float("-inf"), "d": float("inf"), "e": float("nan"),
                         "f": 1.0, "g": None, "h": ...})
    with served(browser, root, "#/") as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        order = lambda: [p.split("/")[1] for p in pg.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)")]
        pg.click("th[data-col=lr]")
        pg.wait_for_selector("th[data-col=lr].sorted-asc")
        asc = order()
        pg.click("th[data-col=lr]")
        pg.wait_for_selector("th[data-col=lr].sorted-desc")
        desc = order()
        assert asc[:5] == ["c", "b", "a", "f", "d"] and set(asc[5:]) == {"e", "g", "h"}  # -inf .. inf, then none
        assert desc[:5] == ["d", "f", "a", "b", "c"] and set(desc[5:]) == {"e", "g", "h"}


@pytest.mark.timeout(120)
def test_runs_sort_is_the_order_compare_sort_uses(browser, tmp_path):
    """Numbers, booleans, text, NaN, then no value, as ``distlog/query/order.py`` (the CLI's
    ``compare --sort`` and ``table(sort=)``) orders them; descending reverses the first three."""
    from distlog.query.order import sorted_order

    root = str(tmp_path / "root")
    lrs = {"a": 0.1, "b": True, "c": "beta", "d": float("nan"), "e": -2, "f": False, "g": "alpha",
           "h": ..., "i": 3.5, "j": [1, 2], "k": "nan", "l": "inf", "m": float("inf")}  # k, l: text
    _runs_with_lr(root, lrs)
    with served(browser, root, "#/") as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        order = lambda: [p.split("/")[1] for p in pg.locator("#runs-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.path)")]
        for desc, cls in ((False, "sorted-asc"), (True, "sorted-desc")):
            pg.click("th[data-col=lr]")
            pg.wait_for_selector(f"th[data-col=lr].{cls}")
            got = order()
            present = [k for k in lrs if lrs[k] is not ...]
            want = [present[i] for i in sorted_order([lrs[k] for k in present], desc=desc)]
            assert got[:len(want)] == want and got[len(want):] == ["h"], (desc, got, want)
            assert got == list(distlog.open_root(root).table(sort="lr", desc=desc)["run_id"])  # the API's


@pytest.mark.timeout(120)
def test_switching_the_x_axis_after_a_zoom_shows_the_whole_series(page, shots):
    """A zoom is a range of steps: after x becomes wall time it must not be read as times
    (the chart was left empty); the chart shows every row on the new axis."""
    go(page, "#/run?path=media/m1&tab=charts")
    wait_chart(page, "spiky")
    drag(page, ".chart[data-key='spiky']", 0.3, 0.6)
    page.wait_for_function("() => window.distlog.charts['spiky'].zoom !== null")
    page.select_option("#x-axis", "time")
    in_view = """() => { const u = window.distlog.charts['spiky'].u; const xs = Array.from(u.data[0]);
        return xs.filter(x => x >= u.scales.x.min && x <= u.scales.x.max).length; }"""
    page.wait_for_function(f"() => ({in_view})() === {STEPS} && window.distlog.charts['spiky'].u.data[0][0] > 1e9")
    assert page.evaluate("() => window.distlog.charts['spiky'].zoom") is None
    assert "zoomed" not in page.inner_text(".chart[data-key='spiky'] h3")
    page.screenshot(path=shots / "13-zoom-then-time-axis.png")
    page.select_option("#x-axis", "step")
    page.wait_for_function(f"() => ({in_view})() === {STEPS} && window.distlog.charts['spiky'].u.data[0][0] === 0")


@pytest.mark.timeout(150)
def test_runs_table_column_headers_stay_visible_while_scrolling(browser, tmp_path, shots):
    """Scrolled down a long runs table (the wheel over it, or the page), the column headers
    stay on screen under the page header, so the numeric columns can be told apart."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"):
        for i in range(80):
            with exp.run(f"r{i:02d}", params={"lr": 0.001 * (i + 1), "seed": i % 5, "bs": 32 * (1 + i % 3)}):
                pass
    exp.close()
    header_shown = """() => { const th = document.querySelector('th[data-col=lr]').getBoundingClientRect();
        const top = document.querySelector('header#top').getBoundingClientRect().bottom;
        const at = document.elementFromPoint(th.left + th.width / 2, th.top + th.height / 2);
        return th.top >= top - 0.5 && at && at.closest('th') && at.closest('th').dataset.col === 'lr'; }"""
    with served(browser, root, "#/") as pg:
        pg.wait_for_selector("#runs-table tbody tr[data-path='e/r00']")
        first = pg.locator("#runs-table tbody tr").first.bounding_box()
        pg.mouse.move(first["x"] + 300, first["y"] + 100)
        pg.mouse.wheel(0, 1500)
        pg.wait_for_function("() => document.querySelector('#runs-table tbody tr').getBoundingClientRect().top < -500")
        assert pg.evaluate(header_shown)
        pg.screenshot(path=shots / "14-runs-scrolled.png")
        pg.evaluate("() => window.scrollTo(0, 3000)")
        assert pg.evaluate(header_shown)


@pytest.mark.timeout(120)
def test_grouped_compare_smooths_each_run_as_the_run_alone_is_smoothed(browser, tmp_path, shots):
    """Grouped by lr, each group is one run of 2,000 rows on a ~600 px chart (binned). At
    smoothing 0.9 the group's line must be that run's smoothed series (the server's EMA over
    every row, as the run's own chart draws it) averaged per bin, not the EMA of the bin
    means (a window of bins, not of rows: a much smoother, lagging line)."""
    import numpy as np

    rng = np.random.default_rng(2)
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("e"):
        for lr in (0.1, 0.2):
            with exp.run(f"lr{lr}", params={"lr": lr}):
                for step, v in enumerate(1.0 + rng.exponential(1.0, 2000) ** 2):
                    exp.metrics.log(step=step, loss=float(v))
    exp.close()
    stored = np.asarray(distlog.open_run(os.path.join(root, "e", "lr0.1")).metrics.read("loss")["value"])
    want = ema(stored, 0.9)
    line = """() => { const p = window.distlog.compare.plots.find(p => p.key === 'loss');
        const i = p.u.series.findIndex(s => s.label && s.label.startsWith('lr=0.1 ') && !/std$/.test(s.label));
        return [Array.from(p.u.data[0]), Array.from(p.u.data[i])]; }"""
    with served(browser, root, "#/compare?run=e/lr0.1&run=e/lr0.2&group=lr") as pg:
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series='6']")
        pg.fill("#smoothing", "0.9")
        pg.dispatch_event("#smoothing", "change")
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series='6']")
        deadline = time.monotonic() + 10
        while True:  # (the chart is rebuilt once the smoothed bands answer)
            xs, ys = pg.evaluate(line)
            size = xs[1] - xs[0]
            oracle = [np.nanmean(want[x:x + size]) for x in xs]
            if np.allclose(ys, oracle, rtol=1e-9) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        pg.locator("#compare-charts .chart[data-key='loss']").screenshot(path=shots / "15-grouped-smoothed.png")
        assert size > 1 and len(xs) < 2000  # binned
        np.testing.assert_allclose(ys, oracle, rtol=1e-9)


class _Holder:
    """Holds the page's API requests whose URL contains ``needle`` (a slow response on
    demand: the request stays in flight until ``release``); every other request passes."""

    def __init__(self, pg, needle: str) -> None:
        self.pg, self.needle, self.held = pg, needle, []
        pg.route("**/api/**", self._route)

    def _route(self, route) -> None:
        if self.needle and self.needle in route.request.url:
            self.held.append(route)
        else:
            route.continue_()

    def wait(self, n: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.held) < n:
            assert time.monotonic() < deadline, f"no request with {self.needle!r} was made"
            self.pg.wait_for_timeout(50)

    def release(self) -> None:
        """Let every held request through; returns once their answers reached the page."""
        self.needle = ""
        held, self.held = self.held, []
        for route in held:
            with self.pg.expect_response(lambda r, u=route.request.url: r.url == u):
                route.continue_()
        self.pg.wait_for_timeout(300)  # (the page's handlers of those answers run)


def _slide(pg, value: str, event: str = "input") -> None:
    pg.fill("#smoothing", value)
    pg.dispatch_event("#smoothing", event)


@pytest.mark.timeout(120)
def test_an_answer_for_an_old_smoothing_arriving_late_is_not_drawn(browser, tmp_path, shots):
    """The slider goes to 0.5 (the read for 0.5 is slow), then to 0.9 (answered at once):
    the late 0.5 answer must not replace the 0.9 one (it did: the chart then showed the EMA
    of the downsampled points, another line, under the slider's 0.9)."""
    import numpy as np

    rng = np.random.default_rng(4)
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("e"), exp.run("r"):
        for step, v in enumerate(1.0 + rng.exponential(1.0, 6000) ** 3):
            exp.metrics.log(step=step, loss=float(v))
    exp.close()
    want = ema(np.asarray(distlog.open_run(os.path.join(root, "e", "r")).metrics.read("loss")["value"]), 0.9)
    with served(browser, root, "#/run?path=e/r&tab=charts") as pg:
        assert len(wait_chart(pg, "loss")["x"]) < 6000  # downsampled
        slow = _Holder(pg, "smooth=0.5")
        _slide(pg, "0.5")
        slow.wait()
        _slide(pg, "0.9")
        pg.wait_for_function("""() => { const v = window.distlog.charts['loss'].values()['value (smoothed)'];
            return v && window.distlog.charts['loss'].parts[0].smooth === 0.9; }""")
        v = pg.evaluate("() => window.distlog.charts['loss'].values()")
        np.testing.assert_allclose(v["value (smoothed)"], want[v["x"]], rtol=1e-9)
        slow.release()
        v = pg.evaluate("() => window.distlog.charts['loss'].values()")
        pg.screenshot(path=shots / "16-late-old-smoothing.png")
        assert pg.input_value("#smoothing") == "0.9"
        np.testing.assert_allclose(v["value (smoothed)"], want[v["x"]], rtol=1e-9)


@pytest.mark.timeout(120)
def test_compare_poll_and_smoothing_slider_do_not_mix_their_answers(browser, tmp_path, shots):
    """A live run on the compare page: the poll's read of new rows (for smoothing 0) is in
    flight when the slider moves to 0.9, and the chart is read again for 0.9. The late poll
    answer must be dropped (it failed the whole poll, and went into a chart no longer on the
    page), the charts held are the ones on the page, and the next rows arrive smoothed."""
    import numpy as np

    rng = np.random.default_rng(5)
    vals = 1.0 + rng.exponential(1.0, 400) ** 2
    root = str(tmp_path / "root")
    warnings: list[str] = []
    exp = distlog.get_logger(root, commit_interval=0.2)
    with exp.experiment("e"), exp.run("live"):
        def write(steps):
            for s in steps:
                exp.metrics.log(step=s, loss=float(vals[s]))
            exp.metrics.commit()
        write(range(200))
        with served(browser, root, "#/compare?run=e/live") as pg:
            pg.on("console", lambda m: warnings.append(m.text) if m.type in ("warning", "error") else None)
            pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series='1']")
            poll = _Holder(pg, "start=200")
            write(range(200, 300))
            poll.wait()
            _slide(pg, "0.9", "change")
            pg.wait_for_function("() => window.distlog.compare.plots.some(p => p.u.root.isConnected)")
            poll.release()
            write(range(300, 400))
            shown = """() => window.distlog.compare.plots.filter(p => p.u.root.isConnected)
                .map(p => [Array.from(p.u.data[0]), Array.from(p.u.data[1])])"""
            pg.wait_for_function(f"() => ({shown})()[0][0].length === 400", timeout=30_000)
            held = pg.evaluate("() => window.distlog.compare.plots.map(p => [p.key, p.u.root.isConnected])")
            (xs, ys), = pg.evaluate(shown)
            pg.screenshot(path=shots / "17-compare-poll-vs-slider.png")
    assert held == [["loss", True]]  # only the chart on the page (stale ones were kept and polled)
    assert not [w for w in warnings if "poll failed" in w], warnings
    stored = np.asarray(distlog.open_run(os.path.join(root, "e", "live")).metrics.read("loss")["value"])
    assert xs == list(range(400))
    np.testing.assert_allclose(ys, ema(stored, 0.9), rtol=1e-9)


@pytest.mark.timeout(120)
def test_compare_group_chips_show_only_the_grouping_chosen_last(page, shots):
    """Grouped by lr, then by seed while the lr bands are still being read: the late lr
    answer must not add chips (it added one for a seed it did not have) nor a chart."""
    runs = "&".join(f"run=sweep/lr{lr}-s{s}" for lr in (0.1, 0.01) for s in (0, 1))
    go(page, f"#/compare?{runs}")
    page.wait_for_selector("#compare-charts .chart[data-key='train/loss'][data-series='4']")
    slow = _Holder(page, "group_by=optim.lr")
    page.select_option("#group-by", "optim.lr")
    slow.wait(2)  # (both charts' bands)
    page.select_option("#group-by", "seed")
    page.wait_for_function("() => document.querySelectorAll('#group-legend .rank-chip').length === 2 && "
                           "window.distlog.compare.plots.length === 2")
    slow.release()
    chips = page.locator("#group-legend .rank-chip").all_text_contents()
    page.screenshot(path=shots / "18-compare-regroup.png")
    assert sorted(c.split(" · ")[0] for c in chips) == ["seed = 0", "seed = 1"]
    assert page.evaluate("() => window.distlog.compare.plots.map(p => p.u.root.isConnected)") == [True, True]


@pytest.mark.timeout(120)
def test_runs_table_is_not_rebuilt_by_a_poll_that_brings_nothing_new(browser, tmp_path, shots):
    """The table is polled every 5 s; a poll with the same runs must leave it as it is (it
    was rebuilt each time: a person's text selection and the rows' nodes were lost), and a
    poll with a new run must show it."""
    root = str(tmp_path / "root")
    _runs_with_lr(root, {f"r{i:02d}": 0.001 * (i + 1) for i in range(40)})
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("running"), served(browser, root, "#/") as pg:  # (its duration grows)
        pg.wait_for_selector("#runs-table tbody tr[data-path='e/r07']")
        dur = """() => { const i = [...document.querySelectorAll('#runs-table th')].findIndex(t => t.dataset.col === 'duration');
            return document.querySelector("tr[data-path='e/running']").cells[i].textContent; }"""
        first = pg.evaluate(dur)
        pg.evaluate("""() => { window.__row = document.querySelector("#runs-table tr[data-path='e/r07']");
            const r = document.createRange(); r.selectNodeContents(window.__row.querySelector('a.run-link'));
            getSelection().removeAllRanges(); getSelection().addRange(r); }""")
        assert pg.evaluate("() => getSelection().toString()") == "r07"
        for _ in range(2):  # two polls with nothing new
            with pg.expect_response(lambda r: "/api/runs" in r.url, timeout=15_000):
                pass
            pg.wait_for_timeout(300)
        assert pg.evaluate("() => window.__row.isConnected")
        assert pg.evaluate("() => getSelection().toString()") == "r07"
        assert pg.evaluate(dur) != first  # the running run's duration still advances
        # the running run's last step moves: its cell follows, the rows stay (stop 42: every
        # row was built again at each poll while a run was live)
        exp.metrics.log(step=7, loss=0.5)
        exp.metrics.commit()
        last = dur.replace("'duration'", "'last_step'")
        pg.wait_for_function(f"() => ({last})() === '7'", timeout=30_000)
        assert pg.evaluate("() => window.__row.isConnected")
        assert pg.evaluate("() => getSelection().toString()") == "r07"
        _runs_with_lr(root, {"zz-new": 0.5})
        pg.wait_for_selector("#runs-table tbody tr[data-path='e/zz-new']", timeout=30_000)
        pg.screenshot(path=shots / "19-runs-after-polls.png")


@pytest.mark.timeout(120)
def test_compare_overlay_shows_a_gap_where_a_run_has_no_value(browser, tmp_path, shots):
    """Run b logged NaN at steps 5 and 6: its line in the overlay must stop there (it was
    drawn across, as per-rank lines were)."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("e"):
        for name, v in (("a", 1.0), ("b", 11.0)):
            with exp.run(name):
                for s in range(12):
                    exp.metrics.log(step=s, loss=float("nan") if name == "b" and s in (5, 6) else v)
    exp.close()
    with served(browser, root, "#/compare?run=e/a&run=e/b") as pg:
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series='2']")
        pg.locator("#compare-charts .chart[data-key='loss']").screenshot(path=shots / "20-compare-gap.png")
        red = (0xE5, 0x53, 0x3D)  # color(1): run b
        assert _stroke_pixels_at(pg, "loss", 2.5, red, compare=True) > 0
        assert _stroke_pixels_at(pg, "loss", 5.5, red, compare=True) == 0


@pytest.mark.timeout(120)
def test_compare_grouped_by_a_param_some_runs_lack_shows_a_not_set_group(browser, tmp_path, shots):
    """warmup=5 in a and b, warmup=None in c, no warmup in d and e (added to the sweep later):
    grouped by warmup, a person sees three groups - 5, None and (not set) - each chip in
    the colour of its line, with its own run count (None was shown as '–', the page's mark
    for no value, next to '(not set)')."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    params = {"a": {"warmup": 5}, "b": {"warmup": 5}, "c": {"warmup": None}, "d": {}, "e": {}}
    with exp.experiment("w"):
        for i, (rid, p) in enumerate(params.items()):
            with exp.run(rid, params={**p, "seed": i}):
                for s in range(5):
                    exp.metrics.log(step=s, loss=float(i))
    exp.close()
    runs = "&".join(f"run=w/{rid}" for rid in params)
    with served(browser, root, f"#/compare?{runs}") as pg:
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series='5']")
        assert "warmup" in pg.locator("#group-by option").evaluate_all("os => os.map(o => o.value)")
        pg.select_option("#group-by", "warmup")
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series='9']")
        pg.screenshot(path=shots / "21-compare-not-set.png")
        chips = pg.locator("#group-legend .rank-chip").evaluate_all(
            "cs => cs.map(c => [c.textContent, getComputedStyle(c.querySelector('.swatch')).backgroundColor])")
        texts = sorted(t for t, _ in chips)
        assert texts == ["warmup = (not set) · mean ± std of 2 runs", "warmup = 5 · mean ± std of 2 runs",
                         "warmup = None · mean ± std of 1 run"], texts
        assert len({c for _, c in chips}) == 3
        lines = pg.evaluate("""() => window.distlog.compare.plots.find(p => p.key === 'loss').u.series.slice(1)
            .filter(s => !/std$/.test(s.label)).map(s => [s.label, s._stroke || s.stroke,
              Array.from(window.distlog.compare.plots.find(p => p.key === 'loss').u.data[
                window.distlog.compare.plots.find(p => p.key === 'loss').u.series.indexOf(s)])])""")
        by_label = {lab: (stroke, vals) for lab, stroke, vals in lines}
        assert by_label["warmup=(not set) (2 runs)"][1] == [3.5] * 5  # d and e: 3 and 4
        assert by_label["warmup=5 (2 runs)"][1] == [0.5] * 5
        assert by_label["warmup=None (1 run)"][1] == [2.0] * 5
        swatch = {t.split(" · ")[0].split(" = ")[1]: c for t, c in chips}
        for lab, (stroke, _) in by_label.items():
            hx = stroke.lstrip("#")
            grp = lab.split("=", 1)[1].rsplit(" (", 1)[0]
            assert swatch[grp] == "rgb(%d, %d, %d)" % tuple(int(hx[i:i + 2], 16) for i in (0, 2, 4)), lab
        # c set warmup=None, d has none: warmup varies between them (it was taken for equal)
        pg.goto(pg.url.split("#")[0] + "#/compare?run=w/c&run=w/d")
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series='2']")
        assert "warmup" in pg.locator("#group-by option").evaluate_all("os => os.map(o => o.value)")


@pytest.mark.timeout(120)
def test_compare_legend_names_the_x_axis_step(page, shots):
    """The overlay's legend names its x entry (it said 'Value', uPlot's default label, for
    the steps)."""
    go(page, "#/compare?run=sweep/lr0.1-s0&run=sweep/lr0.01-s0")
    page.wait_for_selector("#compare-charts .chart[data-key='train/loss'][data-series='2']")
    labels = page.locator("#compare-charts .chart[data-key='train/loss'] .u-legend .u-series .u-label").all_text_contents()
    page.locator("#compare-charts .chart[data-key='train/loss']").screenshot(path=shots / "22-compare-legend.png")
    assert labels == ["step", "sweep/lr0.1-s0", "sweep/lr0.01-s0"], labels


def _damaged_runs(root: str) -> None:
    """Runs 'ok', 'torn_commit' (its scalars commit record torn), 'torn_params' and
    'torn_meta' (run.json torn), each with a loss series, a log line, a histogram and a file."""
    from distlog.layout import PARAMS_FILE, RUN_FILE, SCALARS_TABLE, table_commit

    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    for rid in ("ok", "torn_commit", "torn_params", "torn_meta"):
        with exp.experiment("d"), exp.run(rid, params={"lr": 0.1}):
            for s in range(4):
                exp.metrics.log(step=s, loss=float(s))
            exp.info(f"hello from {rid}", step=0)
            exp.log_histogram("weights", np.arange(10.0), bins=5, step=0)
            exp.files.save("some text\n", "notes.txt")
    exp.close()
    base = os.path.join(root, "d")
    with open(os.path.join(base, "torn_commit", table_commit(SCALARS_TABLE)), "w") as f:
        f.write('{"lengths": {"lo')
    with open(os.path.join(base, "torn_params", PARAMS_FILE), "w") as f:
        f.write('{"lr": 0.')
    with open(os.path.join(base, "torn_meta", RUN_FILE), "w") as f:
        f.write('{"run_id": "torn_me')


@pytest.mark.timeout(180)
def test_a_damaged_run_opened_from_the_runs_table_says_what_is_damaged_and_shows_the_rest(browser, tmp_path, shots):
    """Each damaged run's page (it answered 400 and showed only the error) names the damaged
    file and why, and still shows what is readable: logs and files tabs, the params or the
    series whose records are intact, the histograms."""
    root = str(tmp_path / "root")
    _damaged_runs(root)
    with served(browser, root, "#/") as pg:
        pg.wait_for_selector("#runs-table tbody tr[data-path='d/torn_commit']")
        pg.click("tr[data-path='d/torn_commit'] a.run-link")
        note = pg.wait_for_selector("#run-damaged")
        text = note.inner_text()
        assert "d/torn_commit/scalars.commit.json is damaged" in text and "not valid JSON" in text, text
        assert pg.inner_text("#run-status") == "damaged"
        assert pg.is_hidden("#banner")
        pg.wait_for_selector(".card[data-hist=weights] .sub:has-text('1 histogram · step 0')")  # its own record is intact
        assert "cannot be read" in pg.inner_text("#tab-body .empty")  # not "no committed metrics yet"
        pg.screenshot(path=shots / "23-damaged-commit.png")
        pg.click("nav.tabs a[data-tab=logs]")
        pg.wait_for_selector("#log-list .msg")
        assert "hello from torn_commit" in pg.locator("#log-list .msg").all_text_contents()
        assert pg.inner_text("#run-damaged") == text  # on every tab
        pg.click("nav.tabs a[data-tab=files]")
        pg.wait_for_selector("#files-table tr[data-path='notes.txt']")
        pg.click("nav.tabs a[data-tab=overview]")
        pg.wait_for_selector(".tree .leaf")
        assert "lr = 0.1" in pg.inner_text(".tree")
        pg.wait_for_timeout(2000)  # a status poll does not take the damaged badge away
        assert pg.inner_text("#run-status") == "damaged"

        pg.goto(pg.url.split("#")[0] + "#/run?path=d/torn_params&tab=charts")
        assert "d/torn_params/params.json is damaged" in pg.wait_for_selector("#run-damaged").inner_text()
        assert wait_chart(pg, "loss")["value"] == [0.0, 1.0, 2.0, 3.0]  # its series are intact
        pg.screenshot(path=shots / "24-damaged-params.png")

        pg.goto(pg.url.split("#")[0] + "#/run?path=d/torn_meta&tab=logs")
        assert "run.json" in pg.wait_for_selector("#run-damaged").inner_text()
        pg.wait_for_selector("#log-list .msg")
        assert "hello from torn_meta" in pg.locator("#log-list .msg").all_text_contents()
        pg.screenshot(path=shots / "25-damaged-meta.png")
        pg.goto(pg.url.split("#")[0] + "#/run?path=d/ok&tab=charts")
        assert wait_chart(pg, "loss")["value"] == [0.0, 1.0, 2.0, 3.0]
        assert pg.locator("#run-damaged").count() == 0


@pytest.mark.timeout(120)
def test_chart_legend_shows_small_and_large_values_as_logged(browser, tmp_path, shots):
    """The legend's value under the cursor and the y axis' ticks: a learning rate of 1e-4 read '0' (uPlot's
    default number format keeps three decimals), 0.00012345 read '0' and 0.0015 read '0.002'."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        for s in range(10):
            exp.metrics.log(step=s, lr=2.5e-5 * (s + 1), tiny=0.00012345, mid=0.0015, big=123456789.5)
    exp.close()
    with served(browser, root, "#/run?path=e/r&tab=charts") as pg:
        shown = {}
        for key in ("lr", "tiny", "mid", "big"):
            wait_chart(pg, key)
            shown[key] = pg.evaluate("""k => { const u = window.distlog.charts[k].u;
                u.setCursor({ left: u.valToPos(3, 'x'), top: 10 });
                return [...u.root.querySelectorAll('.u-legend .u-series .u-value')].map(e => e.textContent); }""", key)
        pg.locator(".chart[data-key='lr']").screenshot(path=shots / "26-legend-small.png")
        ticks = pg.evaluate("() => window.distlog.charts['lr'].u.axes[1]._values")
        assert len(ticks) >= 2 and len(set(ticks)) == len(ticks), ticks  # (each read "0")
        assert shown["lr"] == ["3", "1e-4"], shown
        assert shown["tiny"] == ["3", "1.2345e-4"], shown
        assert shown["mid"] == ["3", "0.0015"], shown  # (it read 0.002)
        assert shown["big"] == ["3", "123,456,789.5"], shown  # as before: every digit


@pytest.mark.timeout(120)
def test_a_run_page_opened_before_its_run_starts_shows_the_run_once_it_does(browser, tmp_path, shots):
    """A browser review: a link to a run opened before its job started said "no run ..." for
    good (one 404, no retry) while the runs table picks runs up as they start. The page now
    says it looks again, and shows the run once it is there."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("later"), exp.run("first"):
        exp.metrics.log({"loss": 1.0}, step=0)
    with served(browser, root, "#/run?path=later/second") as pg:
        pg.wait_for_selector("#banner:not([hidden])")
        assert "no run 'later/second'" in pg.inner_text("#banner") and "looking again" in pg.inner_text("#banner")
        pg.screenshot(path=shots / "30-run-not-there-yet.png")
        with exp.experiment("later"), exp.run("second"):
            exp.metrics.log({"loss": 2.0}, step=0)
        pg.wait_for_selector("#run-status", timeout=15_000)
        assert pg.locator("#banner").is_hidden()
        pg.screenshot(path=shots / "31-run-appeared.png")


@pytest.mark.timeout(120)
def test_per_rank_without_rank_series_says_so_and_a_multi_line_cause_keeps_its_lines(browser, tmp_path, shots):
    """A browser review: ticking "per rank" on a run whose metrics were all collected (no rank
    logged its own series) changed nothing, unsaid; and a multi-line cause (gloo's, a list of
    ranks) ran together in the overview."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with pytest.raises(RuntimeError):
        with exp.experiment("e"), exp.run("r"):
            for step in range(5):
                exp.metrics.collect(step=step, loss=1.0 / (step + 1))
                exp.metrics.flush()
            raise RuntimeError("first line\nsecond line")
    with served(browser, root, "#/run?path=e/r&tab=charts") as pg:
        pg.wait_for_selector("#per-rank")
        assert pg.locator("#per-rank-note").is_hidden()
        pg.check("#per-rank")
        pg.wait_for_selector("#per-rank-note:not([hidden])")
        assert "no rank logged its own series" in pg.inner_text("#per-rank-note")
        pg.screenshot(path=shots / "32-per-rank-note.png")
        pg.goto(pg.base + "#/run?path=e/r&tab=overview")
        pg.wait_for_selector(".error-text")
        assert pg.inner_text(".error-text") == "RuntimeError: first line\nsecond line"
        pg.screenshot(path=shots / "33-multi-line-cause.png")


@pytest.mark.timeout(120)
def test_a_resumed_runs_line_stops_between_its_attempts_on_the_wall_time_axis(browser, tmp_path, shots):
    """A browser review: with x = wall time, a resumed run's line and band were drawn straight
    across the minutes between the killed attempt and its resume, as if there were data. The
    line stops at the resume now (a row of no value there); by step nothing changes."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("e"), exp.run("r"):
        for step in range(5):
            exp.metrics.log({"loss": 1.0 + step}, step=step)
            time.sleep(0.02)  # (rows at distinct times, as training makes them)
    time.sleep(1.5)
    with exp.experiment("e"), exp.run("r", resume_step=5):  # a second attempt, later
        for step in range(5, 10):
            exp.metrics.log({"loss": 1.0 + step}, step=step)
            time.sleep(0.02)
    data = "k => window.distlog.charts[k].u.data.map((a) => Array.from(a))"
    with served(browser, root, "#/run?path=e/r&tab=charts&x=time") as pg:
        pg.wait_for_function("k => { const c = window.distlog && window.distlog.charts[k]; return c && c.u; }",
                             arg="loss")
        xs, values = pg.evaluate(data, "loss")[:2]
        assert len(xs) == 11 and values.count(None) == 1, (xs, values)
        gap = values.index(None)
        assert values[:gap] == [1.0, 2.0, 3.0, 4.0, 5.0] and xs[gap - 1] < xs[gap] < xs[gap + 1]
        pg.wait_for_timeout(300)  # (drawn)
        pg.screenshot(path=shots / "34-wall-time-gap.png")
        pg.goto(pg.base + "#/run?path=e/r&tab=charts")  # by step: one line, no row added
        pg.wait_for_function("k => { const c = window.distlog.charts[k]; return c && c.u && c.u.data[0].length === 10; }",
                             arg="loss")
        assert None not in pg.evaluate(data, "loss")[1]
