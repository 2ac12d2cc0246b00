"""A live run's charts tab whose poll reads one chart's new rows and is refused (the server
answers 500 for that series, the status poll answers): the charts after it stopped updating
and the header said "updates failing" although the server answered. Now that chart says why
in its place and every other chart keeps following the run (failed before: `b` stayed at
10 rows)."""

from __future__ import annotations

import os

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

from support.browser_pages import MARKS, browser, drop_asked_failures, live_run_served, opened, shots  # noqa: E402,F401

pytestmark = MARKS


@pytest.mark.timeout(120)
def test_a_chart_whose_new_rows_are_refused_says_so_and_the_others_follow(browser, tmp_path, shots):
    with live_run_served(str(tmp_path / "root"), lambda m, s: m.log(step=s, a=float(s), b=-float(s))) as (exp, srv, url):
        with opened(browser, url, "#/run?path=live/w&tab=charts", console=True) as pg:
            for key in ("a", "b"):
                pg.wait_for_function(f"() => /10 rows/.test((document.querySelector('.chart[data-key={key}] h3') || {{}}).textContent)")
            # from now on the server refuses a's rows (as a store failing that series would)
            pg.route(lambda u: "/api/series" in u and "key=a&" in u + "&",
                     lambda route: route.fulfill(status=500, content_type="application/json",
                                                 body='{"error": "chunk a/c.0 unreadable", "status": 500}'))
            for s in range(10, 20):
                exp.metrics.log(step=s, a=float(s), b=-float(s))
            exp.metrics.commit()
            pg.wait_for_function("() => /20 rows/.test(document.querySelector('.chart[data-key=b] h3').textContent)",
                                 timeout=15_000)
            pg.wait_for_selector(".chart[data-key=a][data-error]")
            assert "chunk a/c.0 unreadable" in pg.get_attribute(".chart[data-key=a]", "data-error")
            assert pg.locator("#contact").is_hidden()  # the server answered: no "lost contact"
            pg.screenshot(path=os.path.join(shots, "s33c-chart-poll-error.png"))
            drop_asked_failures(pg, 500)
