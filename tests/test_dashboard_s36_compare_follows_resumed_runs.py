"""The compare page polled only the runs that were running when it opened: a run that had
ended (a requeued job's next attempt resumes it, an evaluation appends to it) never showed its
new rows until the page was reloaded. Now every run is read again every 8th poll (16 s;
``window.distlog.recheckPolls`` makes it every poll here), and only runs whose lengths changed
are read further."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, served  # noqa: E402,F401 (browser: a fixture)

pytestmark = MARKS


def _log(root, run_id, steps, resume="allow"):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("sweep"), exp.run(run_id, params={"lr": float(run_id[2:])}, resume=resume):
        for s in steps:
            exp.metrics.log(step=s, loss=100.0 - s, acc=s / 100)


@pytest.mark.timeout(120)
def test_a_run_resumed_after_the_page_opened_shows_its_new_rows(browser, tmp_path):
    root = str(tmp_path / "root")
    _log(root, "lr0.1", range(20))
    _log(root, "lr0.01", range(20))
    with served(browser, root, "#/compare?run=sweep/lr0.1&run=sweep/lr0.01") as pg:
        pg.wait_for_function("() => document.querySelectorAll('#compare-charts .chart[data-series]').length === 2")
        count = """k => { const p = window.distlog.compare.plots.find(p => p.key === k);
            return p.parts.map(q => [q.run, q.cols.step.length]); }"""
        assert pg.evaluate(count, "loss") == [["sweep/lr0.1", 20], ["sweep/lr0.01", 20]]
        reads = []
        pg.on("request", lambda r: reads.append(r.url) if "/api/series" in r.url else None)
        pg.evaluate("() => { window.__marker = 1; window.distlog.recheckPolls = 1; }")
        _log(root, "lr0.1", range(20, 35), resume="must")  # the next attempt, after the page opened
        pg.wait_for_function("""() => window.distlog.compare.plots.every(p =>
            p.parts.find(q => q.run === 'sweep/lr0.1').cols.step.length === 35)""", timeout=30_000)
        assert pg.evaluate("() => window.__marker") == 1  # no reload
        part = pg.evaluate("""() => window.distlog.compare.plots.find(p => p.key === 'loss')
            .parts.find(q => q.run === 'sweep/lr0.1').cols""")
        assert part["step"] == list(range(35)) and part["value"] == [100.0 - s for s in range(35)]
        assert pg.evaluate(count, "acc") == [["sweep/lr0.1", 35], ["sweep/lr0.01", 20]]
        pg.wait_for_timeout(3000)  # more polls: the run that did not change is not read again
        assert reads and not [u for u in reads if "lr0.01" in u], reads
        drawn = pg.evaluate("() => window.distlog.compare.plots.find(p => p.key === 'loss').u.data[0].length")
        assert drawn == 35  # the chart itself, not only its data
        assert not pg.errors, pg.errors
