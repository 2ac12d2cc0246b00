"""A histogram card whose read failed (a server restarted under the page, a commit record torn
for a moment) said the error in its title line and was never read again: the card of a run
that had ended stayed empty until a reload, and a live run's card kept failing silently until
the run logged another histogram. Now the card says the failure below its title (keeping what
it drew before) and is read again at each poll until a read answers."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, served, shots  # noqa: E402,F401 (browser, shots: fixtures)

pytestmark = MARKS


@pytest.mark.timeout(120)
def test_a_histogram_card_whose_read_failed_is_read_again(browser, tmp_path, shots):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("h"), exp.run("done"):
        exp.metrics.log(step=1, loss=1.0)
        exp.log_histogram("weights", np.arange(50.0), bins=5, step=1)
        exp.log_histogram("weights", np.arange(50.0) * 2, bins=5, step=2)
    failing = {"left": 3}  # the first reads of the card are refused, as a server mid-restart would
    reads = []

    def refuse(route):
        reads.append(route.request.url)
        if failing["left"]:
            failing["left"] -= 1
            route.fulfill(status=503, content_type="application/json",
                          body=json.dumps({"error": "the store did not answer (try again)"}))
        else:
            route.continue_()

    with served(browser, root, "#/", console=False) as pg:
        pg.route(lambda u: "/api/histogram?" in u, refuse)
        pg.goto(pg.base + "#/run?path=h/done&tab=charts")
        card = pg.locator(".card[data-hist=weights]")
        problem = card.locator(".chart-error")
        problem.wait_for(state="visible")
        assert "Could not read the histograms: the store did not answer (try again)" in problem.inner_text()
        assert "Read again at the next update." in problem.inner_text()
        pg.screenshot(path=os.path.join(shots, "s36-hist-failed.png"))
        # the run has ended: only the card's own retry reads it again (every poll, 1.5 s)
        pg.wait_for_selector(".card[data-hist=weights][data-step='2']", timeout=15_000)
        assert problem.is_hidden() and card.get_attribute("data-error") is None
        assert "2 histograms · steps 1–2" in card.inner_text()
        assert len(reads) == 4, reads  # three refused, one answered
        pg.wait_for_timeout(3500)  # polls go on: an answered card is not read again
        assert len(reads) == 4, reads
        pg.screenshot(path=os.path.join(shots, "s36-hist-retried.png"))

        # a refresh that fails keeps what was drawn, says so, and is retried too
        failing["left"] = 1
        pg.evaluate("() => document.querySelector('.card[data-hist=weights]').__card.refresh()")
        problem.wait_for(state="visible")
        assert "The card shows what was read before; it is read again at the next update." in problem.inner_text()
        assert card.get_attribute("data-step") == "2"
        problem.wait_for(state="hidden", timeout=15_000)
        assert len(reads) == 6, reads
        assert not pg.errors, pg.errors
