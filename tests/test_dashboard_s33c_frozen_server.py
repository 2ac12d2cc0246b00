"""An open page whose server stops answering without closing its port (``distlog serve``
suspended with Ctrl-Z in its terminal, SIGSTOP; a server stuck on a store read): the kernel
still accepts the connection, so a poll's fetch waited without end, and the page kept its
"live" badge and said nothing, for ever. Now a poll still waiting when the server has answered
nothing for a while (15 s; 3 s here) is said in the header as lost contact (and the badge goes)
while it still waits, and both come back right when the server answers again. Failed before the fix (no notice; the badge stayed)."""

from __future__ import annotations

import os
import re
import signal

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

from support.browser_pages import MARKS, browser, live_run_served, opened  # noqa: E402,F401 (browser: a fixture)

pytestmark = MARKS


@pytest.mark.timeout(120)
def test_a_run_page_says_when_its_server_is_suspended(browser, tmp_path):
    with live_run_served(str(tmp_path / "root"), lambda m, s: m.log(step=s, loss=1.0 / (1 + s))) as (exp, srv, url):
        try:
            with opened(browser, url, "#/run?path=live/w&tab=charts", console=True) as pg:
                pg.wait_for_selector(".chart[data-key=loss][data-series]")
                pg.wait_for_selector("#live-badge", state="visible")
                pg.evaluate("window.distlog.patienceMs = 3000")  # (15 s by default)
                os.kill(srv.proc.pid, signal.SIGSTOP)  # Ctrl-Z: the port stays open, nothing answers
                pg.wait_for_selector("#contact", state="visible", timeout=15_000)
                assert re.fullmatch(r"lost contact with the server since \d\d:\d\d:\d\d, retrying", pg.inner_text("#contact"))
                assert pg.locator("#live-badge").is_hidden()
                for s in range(10, 20):
                    exp.metrics.log(step=s, loss=1.0 / (1 + s))
                exp.metrics.commit()
                os.kill(srv.proc.pid, signal.SIGCONT)  # fg: the waiting poll answers
                pg.wait_for_selector("#contact", state="hidden", timeout=15_000)
                pg.wait_for_selector("#live-badge", state="visible")
                pg.wait_for_function("() => document.querySelector('.chart[data-key=loss] h3').textContent.includes('20 rows')")
        finally:
            os.kill(srv.proc.pid, signal.SIGCONT)
