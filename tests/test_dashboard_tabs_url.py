"""A run page's tabs each keep their own view while a person moves between them (real headless
Chromium driven by Playwright): the tab links carry every tab's parameters, so Charts -> Logs
-> Charts shows the charts as they were (x axis, log y, smoothing, per rank, key filter,
zoom) and Logs -> Charts -> Logs the same log filters, Files the file picked; no tab's
parameters change another's view; Back and a reload give the same views."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, drag, served  # noqa: E402,F401 (browser: a fixture)

pytestmark = MARKS

STEPS = 400
LEVELS = ("INFO", "WARNING", "ERROR")
KEY_FILTER = "#tab-body .toolbar input[type=search]"  # the charts' key filter


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tabs") / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("t"), exp.run("r", params={"lr": 0.1}):
        for step in range(STEPS):
            exp.metrics.log(step=step, **{"train/loss": 1.0 + (STEPS - step) / STEPS, "train/acc": step / STEPS})
            exp.log(LEVELS[step % 3], f"Step {step} done", step=step)
        exp.files.save("plain text\nline 2\n", "notes.txt")
        exp.files.save({"a": 1}, "config.json")
    exp.close()
    return root


def query(pg) -> dict[str, list[str]]:
    return parse_qs(pg.evaluate("() => location.hash").partition("?")[2])


def tab(pg, name: str) -> None:
    """Click a tab link, as a person does, and wait for that tab's page."""
    pg.click(f"nav.tabs a[data-tab={name}]")
    pg.wait_for_function("t => new URLSearchParams(location.hash.split('?')[1]).get('tab') === t"
                         " && document.querySelector(`nav.tabs a.active[data-tab=${t}]`)", arg=name)
    ready = {"charts": "#x-axis", "logs": "#log-list .logline", "files": "#files-table", "overview": "#run-info"}
    if name in ready:
        pg.wait_for_selector(ready[name])


def chart_state(pg) -> dict:
    """What the charts tab shows: its controls and each drawn chart's x range."""
    pg.wait_for_function("() => { const c = window.distlog.charts['train/loss']; return c && c.u && c.parts.length"
                         " && (!new URLSearchParams(location.hash.split('?')[1]).get('zoom') || (c.zoom && c.zoom.parts)); }")
    return pg.evaluate("""KEY_FILTER => ({
        x: document.querySelector('#x-axis').value,
        logy: document.querySelector('#log-y').checked,
        perRank: document.querySelector('#per-rank').checked,
        smooth: document.querySelector('#smoothing').value,
        filter: document.querySelector(KEY_FILTER).value,
        shown: [...document.querySelectorAll('.chart[data-key]')].filter(e => e.isConnected).map(e => e.dataset.key),
        range: (c => c.zoom ? [c.zoom.x0, c.zoom.x1, c.u.scales.x.min, c.u.scales.x.max] : null)(window.distlog.charts['train/loss']),
        distr: window.distlog.charts['train/loss'].u.scales.y.distr,
    })""", KEY_FILTER)


def log_state(pg) -> dict:
    return pg.evaluate("""() => ({
        level: document.querySelector('#log-level').value,
        grep: document.querySelector('#log-grep').value,
        icase: document.querySelector('#log-icase').checked,
        lines: [...document.querySelectorAll('#log-list .logline[data-level]')].map(e => [e.dataset.level, e.querySelector('.msg').textContent]),
    })""")


def want_lines() -> list[list[str]]:
    """Level >= WARNING, matching /step 1/ ignoring case (the last 500 at most: fewer here)."""
    return [[LEVELS[s % 3], f"Step {s} done"] for s in range(STEPS)
            if s % 3 and re.search("step 1", f"Step {s} done", re.I)]


@pytest.mark.timeout(180)
def test_each_tab_keeps_its_view_while_a_person_moves_between_tabs(browser, root):
    with served(browser, root, "#/", console=True) as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        pg.goto(pg.base + "#/run?path=t/r&tab=charts")
        pg.wait_for_function("() => window.distlog.charts['train/loss'] && window.distlog.charts['train/loss'].u")

        # the charts' view: wall time, log y, per rank, smoothing, a key filter, a zoom
        pg.select_option("#x-axis", "time")
        pg.wait_for_function("() => window.distlog.charts['train/loss'].u.data[0][0] > 1e9")
        pg.check("#log-y")
        pg.check("#per-rank")
        pg.locator("#smoothing").fill("0.5")
        pg.fill(KEY_FILTER, "loss")
        pg.wait_for_function("() => !document.querySelector(\".chart[data-key='train/acc']\")")
        # (per rank and smoothing read the series again: a chart drawn anew while the mouse
        # drags loses that selection, as a person's would; they drag again)
        from playwright.sync_api import TimeoutError as Timeout

        for attempt in range(4):
            pg.wait_for_function("() => { const c = window.distlog.charts['train/loss']; return c && c.u"
                                 " && c.parts.length; }")
            drag(pg, ".chart[data-key='train/loss']", 0.3, 0.6)
            try:
                pg.wait_for_function("() => /[?&]zoom=/.test(location.hash) && window.distlog.charts['train/loss'].zoom"
                                     " && window.distlog.charts['train/loss'].zoom.parts", timeout=8_000)
                break
            except Timeout:
                assert attempt < 3, "four drags made no zoom"
        charts = chart_state(pg)
        assert charts["x"] == "time" and charts["logy"] and charts["perRank"] and charts["smooth"] == "0.5"
        assert charts["filter"] == "loss" and charts["shown"] == ["train/loss"] and charts["distr"] == 3
        t0, t1 = charts["range"][:2]
        assert t0 > 1e9 and charts["range"][2:] == [t0, t1]
        charts_query = {k: v for k, v in query(pg).items() if k != "tab"}

        # Logs: none of the charts' parameters changes it; its own filters
        tab(pg, "logs")
        first = log_state(pg)
        assert first["level"] == "" and sum(m.startswith("Step ") for _, m in first["lines"]) == STEPS
        pg.select_option("#log-level", "WARNING")
        pg.check("#log-icase")
        pg.fill("#log-grep", "step 1")
        pg.wait_for_function("() => /[?&]grep=step/.test(location.hash) && /[?&]level=WARNING/.test(location.hash)")
        pg.wait_for_function("n => document.querySelectorAll('#log-list .logline[data-level]').length === n",
                             arg=len(want_lines()))
        logs = log_state(pg)
        assert logs == {"level": "WARNING", "grep": "step 1", "icase": True, "lines": want_lines()}

        tab(pg, "charts")  # as it was, and the logs' filters in the URL change nothing here
        assert chart_state(pg) == charts
        q = query(pg)
        assert {"x", "logy", "ranks", "smooth", "keys", "zoom"} <= set(charts_query)  # (the key filter too)
        assert {k: v for k, v in q.items() if k in charts_query} == charts_query
        assert q["level"] == ["WARNING"] and q["grep"] == ["step 1"] and q["i"] == ["1"]

        tab(pg, "logs")  # as it was
        pg.wait_for_function("n => document.querySelectorAll('#log-list .logline[data-level]').length === n",
                             arg=len(want_lines()))
        assert log_state(pg) == logs

        tab(pg, "files")  # a file picked is kept too
        pg.click("#files-table tr[data-path='notes.txt']")
        pg.wait_for_function("() => (document.querySelector('#preview-text') || {}).textContent === 'plain text\\nline 2\\n'")
        assert query(pg)["file"] == ["notes.txt"]
        tab(pg, "overview")
        tab(pg, "files")
        pg.wait_for_function("() => (document.querySelector('#preview-text') || {}).textContent === 'plain text\\nline 2\\n'")
        tab(pg, "attempts")
        tab(pg, "charts")
        assert chart_state(pg) == charts

        pg.reload()  # a reload: the same
        assert chart_state(pg) == charts
        pg.go_back()  # Back: the tab before, as it was (attempts, then files with its file)
        pg.wait_for_function("() => new URLSearchParams(location.hash.split('?')[1]).get('tab') === 'attempts'")
        pg.go_back()
        pg.wait_for_function("() => (document.querySelector('#preview-text') || {}).textContent === 'plain text\\nline 2\\n'")
        tab(pg, "logs")
        pg.wait_for_function("n => document.querySelectorAll('#log-list .logline[data-level]').length === n",
                             arg=len(want_lines()))
        assert log_state(pg) == logs

        # a run page opened afresh (as from the runs table): its tab links carry nothing else
        pg.goto(pg.base + "#/run?path=t/r&tab=logs")
        pg.wait_for_selector("#log-list .logline")
        hrefs = pg.eval_on_selector_all("nav.tabs a", "as => as.map(a => a.getAttribute('href'))")
        assert hrefs == [f"#/run?path=t%2Fr&tab={t}" for t in ("overview", "charts", "logs", "files", "ranks", "attempts")]


@pytest.mark.timeout(120)
def test_log_y_while_the_charts_read_another_x_axis_draws_no_stale_rows(browser, root):
    """x switched to wall time, then log y ticked before every chart had read its series
    again: the redraw drew the rows read for steps with x = time and threw "Cannot read
    properties of undefined (reading 'length')" (CI, under load, on the second chart). The
    series reads for the new axis are held here until log y is ticked."""
    with served(browser, root, "#/run?path=t/r&tab=charts", console=True) as pg:
        pg.wait_for_function("() => ['train/loss', 'train/acc'].every(k => window.distlog.charts[k]"
                             " && window.distlog.charts[k].u)")
        held, holding = [], [True]
        pg.route("**/api/series*", lambda route: held.append(route)
                 if holding[0] and "x=time" in route.request.url else route.continue_())
        pg.select_option("#x-axis", "time")
        deadline = time.monotonic() + 20
        while len(held) < 2:  # both charts' reads for the new axis are in flight
            assert time.monotonic() < deadline, len(held)
            pg.wait_for_timeout(50)
        pg.check("#log-y")  # redraws what the charts hold
        pg.wait_for_timeout(200)
        holding[0] = False
        for route in held:
            route.continue_()
        pg.wait_for_function("() => ['train/loss', 'train/acc'].every(k => window.distlog.charts[k].u"
                             " && window.distlog.charts[k].u.data[0][0] > 1e9"
                             " && window.distlog.charts[k].u.scales.y.distr === 3)")
