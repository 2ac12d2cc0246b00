"""Dashboard races, in real headless Chromium: an answer that comes after the person moved on
(another run opened, Back or Forward, a filter changed, the page left) must not be painted
over what is shown now, nor write its URL or the live badge. Each test delays the older
request by wrapping window.fetch in the page (as the logs test of review 30 does) and failed
before its fix."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, served, shots  # noqa: E402,F401 (browser, shots: fixtures)

pytestmark = MARKS


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two finished runs (a loss, log lines), a run with many log lines (a page of them is
    500: 'Load earlier' has more), and a run still open (running) for the module."""
    root = str(tmp_path_factory.mktemp("races") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("sweep"):
        for name, lr in (("a", 0.1), ("b", 0.01)):
            with exp.run(name, params={"lr": lr}):
                for s in range(30):
                    exp.metrics("train").log(step=s, loss=10.0 / (1 + s) * (1 + lr))
                    exp.info(f"{name} step {s}", step=s)
    with exp.experiment("many"), exp.run("logs"):
        for s in range(1200):  # every even step a warning, every odd one info
            exp.log("WARNING" if s % 2 == 0 else "INFO", f"line {s}", step=s)
    with exp.experiment("live"), exp.run("on"):
        exp.metrics("train").log(step=0, loss=1.0)
        yield root
    exp.close()


# requests whose URL matches a rule's predicate (JS, of the decoded URL u) answer its `ms`
# late; the page counts those delayed (window.__slow) so a test can wait until one is asked
SLOW = """rules => { const tests = rules.map(([pred, ms]) => [new Function("u", "return " + pred), ms]);
    window.__slow = 0;
    const f = window.__fetch || (window.__fetch = window.fetch);
    window.fetch = async (url, ...a) => { const u = decodeURIComponent(String(url));
        const rule = tests.find(([test]) => test(u));
        if (rule) { window.__slow++; await new Promise(r => setTimeout(r, rule[1])); }
        return f(url, ...a); }; }"""


def slow(pg, *rules: tuple[str, int]) -> None:
    pg.evaluate(SLOW, [list(r) for r in rules])


def shown_runs(pg) -> list[str]:
    """the runs whose title is on screen (the title's text before its status badge)"""
    return pg.eval_on_selector_all("#view h2", "hs => hs.map(h => h.firstChild.textContent)")


@pytest.mark.timeout(120)
def test_back_and_forward_between_two_runs_shows_only_the_run_in_the_url(browser, root, shots):
    """route() awaited each page's first read with no check that it was still the page asked
    for: Back to run a (its read slow) then Forward to b painted b, then a below it in the
    same view (two titles, two tab bars, a's charts as window.distlog.charts), the crumbs
    named a while the URL said b, and a's poll stayed running (never disposed). A read that
    failed late showed its error over the page now shown."""
    with served(browser, root, "#/run?path=sweep/a&tab=charts", console=True) as pg:
        pg.wait_for_selector(".chart[data-key='train/loss'][data-series]")
        pg.evaluate("() => { location.hash = '#/run?path=sweep/b&tab=charts'; }")
        pg.wait_for_function("() => /sweep\\/b/.test(document.querySelector('#view h2')?.textContent || '')")
        slow(pg, ("u.includes('api/run?') && u.includes('sweep/a')", 1500))
        pg.evaluate("() => history.back()")  # a: read slowly
        pg.wait_for_function("() => window.__slow === 1")
        pg.evaluate("() => history.forward()")  # b, at once
        pg.wait_for_function("() => /sweep\\/b/.test(location.hash)")
        pg.wait_for_selector(".chart[data-key='train/loss'][data-series]")
        pg.wait_for_timeout(2000)  # a's answer has come by now
        pg.screenshot(path=os.path.join(shots, "race-back-forward.png"))
        assert shown_runs(pg) == ["sweep/b"], shown_runs(pg)
        assert pg.locator("nav.tabs").count() == 1
        assert pg.inner_text("#crumbs").split("/")[-1].strip() == "b"
        assert pg.evaluate("() => window.distlog.charts['train/loss'].run") == "sweep/b"
        # a run that is not there, read slowly, then b: no error banner over b
        slow(pg, ("u.includes('api/run?') && u.includes('nosuch')", 1000))
        pg.evaluate("() => { location.hash = '#/run?path=sweep/nosuch'; }")
        pg.wait_for_function("() => window.__slow === 1")
        pg.evaluate("() => { location.hash = '#/run?path=sweep/b&tab=overview'; }")
        pg.wait_for_selector("#run-info")
        pg.wait_for_timeout(1500)
        assert pg.is_hidden("#banner"), pg.inner_text("#banner")
        assert shown_runs(pg) == ["sweep/b"], shown_runs(pg)
        # (Chromium logs the 404 of the run not there as an error: the one asked for here)
        pg.errors[:] = [e for e in pg.errors if "status of 404" not in e]


@pytest.mark.timeout(120)
def test_a_running_runs_page_left_while_its_status_is_read_leaves_the_live_badge_off(browser, root):
    """The run page's poll (every 1.5 s) read the status, then set the live badge: a poll in
    flight when the person went to the compare page of two finished runs lit the badge there
    for good (the compare page never sets it)."""
    with served(browser, root, "#/run?path=live/on&tab=overview", console=True) as pg:
        pg.wait_for_selector("#run-info")
        assert pg.is_visible("#live-badge")
        slow(pg, ("u.includes('api/status?')", 1500))
        pg.wait_for_function("() => window.__slow >= 1", timeout=10_000)  # a poll in flight
        pg.evaluate("() => { location.hash = '#/compare?run=sweep/a&run=sweep/b'; }")
        pg.wait_for_selector("#compare-charts .chart[data-series]")
        pg.wait_for_timeout(2500)  # its answer has come by now
        assert pg.is_hidden("#live-badge")


@pytest.mark.timeout(120)
def test_the_runs_table_left_while_polled_leaves_the_live_badge_off(browser, root):
    """The runs table's poll (every 5 s) read the runs, then re-rendered and set the live badge
    when they changed: a poll in flight when the person went to the compare page of two
    finished runs lit the badge there (a run is running) for good."""
    with served(browser, root, "#/", console=True) as pg:
        pg.wait_for_selector("#runs-table tr[data-path='live/on']")
        slow(pg, ("u.includes('api/runs')", 1500))
        pg.wait_for_function("() => window.__slow >= 1", timeout=15_000)  # a poll in flight
        exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
        with exp.experiment("late"), exp.run("new"):  # the runs changed: the poll renders
            pass
        exp.close()
        pg.evaluate("() => { location.hash = '#/compare?run=sweep/a&run=sweep/b'; }")
        pg.wait_for_selector("#compare-charts .chart[data-series]")
        pg.wait_for_timeout(2500)
        assert pg.is_hidden("#live-badge")
        assert "sort" not in pg.evaluate("() => location.hash") and "compare" in pg.evaluate("() => location.hash")


@pytest.mark.timeout(120)
def test_load_earlier_clicked_while_another_filter_is_read_leaves_no_gap(browser, root, shots):
    """'Load earlier' asked for the records before the oldest one shown, with the filter just
    chosen; when it answered after that filter's own read, its records were added to the new
    view's: warnings only (500 from step 200) -> all levels: steps 0–200 and 700–1199, a hole
    between, and 'more earlier' gone (no way to fill it)."""
    with served(browser, root, "#/run?path=many/logs&tab=logs&level=WARNING", console=True) as pg:
        pg.wait_for_function("() => document.querySelectorAll('#log-list .logline[data-level]').length === 500")
        assert pg.get_attribute("#log-list .logline[data-level]", "data-step") == "200"
        # the new filter's read answers 0.5 s late, the earlier records' 1.5 s late
        slow(pg, ("u.includes('logs?') && !u.includes('until=')", 500), ("u.includes('logs?') && u.includes('until=')", 1500))
        pg.select_option("#log-level", "")
        pg.click("text=Load earlier")
        pg.wait_for_timeout(3000)  # both answers have come
        steps = [int(s) for s in pg.eval_on_selector_all("#log-list .logline[data-level]", "ls => ls.map(l => l.dataset.step)") if s]
        # (all levels: the run's "started" and "ended" lines have no step)
        pg.screenshot(path=os.path.join(shots, "race-load-earlier.png"))
        assert steps == list(range(steps[0], 1200)), (steps[0], len(steps))  # no hole
        assert pg.inner_text("#log-count").endswith("(more earlier)") == (steps[0] > 0)


@pytest.mark.timeout(120)
def test_charts_of_a_run_left_while_their_series_are_read_are_not_drawn(browser, root):
    """A chart whose series answered after its page was left drew a new plot in the page
    that is gone (dispose destroyed the old one; the late answer made another), and a
    smoothing change left the page within its 150 ms wait read every series again."""
    with served(browser, root, "#/run?path=sweep/a&tab=charts", console=True) as pg:
        pg.wait_for_selector(".chart[data-key='train/loss'][data-series]")
        drawn = pg.evaluate("() => window.distlog.drawn")
        slow(pg, ("u.includes('api/series?')", 1500))
        pg.fill("#smoothing", "0.5")  # read again (after 150 ms), slowly
        pg.wait_for_function("() => window.__slow >= 1")
        pg.evaluate("() => { location.hash = '#/compare?run=sweep/a&run=sweep/b'; }")
        pg.wait_for_selector("#compare-charts .chart[data-series]")
        pg.wait_for_timeout(2000)
        assert pg.evaluate("() => window.distlog.drawn") == drawn
        # the slider moved, then the page left at once: no series is read for it
        pg.evaluate("() => { location.hash = '#/run?path=sweep/a&tab=charts'; }")
        pg.wait_for_selector(".chart[data-key='train/loss'][data-series]")
        slow(pg, ("u.includes('api/series?')", 0))
        pg.fill("#smoothing", "0.3")
        pg.evaluate("() => { location.hash = '#/compare?run=sweep/a&run=sweep/b'; }")
        pg.wait_for_timeout(600)
        assert pg.evaluate("() => window.__slow") == 0
