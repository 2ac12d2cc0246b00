"""Histogram cards on a run's charts tab, in real headless Chromium: the charts' key filter
left every histogram card on screen, and a live run's histograms were read once, so the ones
it logged after the page opened never appeared. Now the filter applies to the cards, and the
live poll reads a shown card again when the run holds more histograms of its key than the
card (the status answer counts them: no read while nothing is new). Failed before the fix."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, served, shots  # noqa: E402,F401 (browser, shots: fixtures)

pytestmark = MARKS


def shown_cards(pg) -> list[str]:
    return pg.eval_on_selector_all("#tab-body .card[data-hist]", "cs => cs.filter(c => c.offsetParent).map(c => c.dataset.hist)")


@pytest.mark.timeout(150)
def test_histogram_cards_follow_the_key_filter_and_a_live_runs_new_rows(browser, tmp_path, shots):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, commit_interval=0.05)
    with exp.experiment("h"), exp.run("live"):
        exp.metrics.log(step=1, loss=1.0)
        for key in ("weights", "grads"):
            exp.log_histogram(key, np.arange(50.0), bins=5, step=1)
        exp.metrics.commit()
        with served(browser, root, "#/run?path=h/live&tab=charts", console=True) as pg:
            weights, grads = pg.locator(".card[data-hist=weights]"), pg.locator(".card[data-hist=grads]")
            pg.wait_for_selector(".card[data-hist=weights][data-step='1']")
            pg.wait_for_selector(".card[data-hist=grads][data-step='1']")
            asked: list[str] = []
            pg.on("request", lambda r: asked.append(r.url) if "/api/histogram?" in r.url else None)
            pg.wait_for_timeout(3500)  # two polls or more: nothing new, nothing read
            assert asked == []

            # the key filter applies to the cards (the charts too)
            pg.fill("#key-filter", "weig")
            grads.wait_for(state="hidden")
            assert shown_cards(pg) == ["weights"] and weights.is_visible()
            assert pg.locator("#tab-body .chart[data-key]").count() == 0

            # a new histogram of a shown key: read again and drawn (its newest step below)
            exp.log_histogram("weights", np.arange(50.0) * 2, bins=5, step=2)
            exp.log_histogram("grads", np.arange(50.0) / 2, bins=5, step=2)
            exp.metrics.commit()
            pg.wait_for_selector(".card[data-hist=weights][data-step='2']", timeout=10_000)
            assert "2 histograms · steps 1–2" in weights.inner_text()
            pg.screenshot(path=os.path.join(shots, "s33b-hist-live-filtered.png"))
            pg.wait_for_timeout(2000)
            assert len(asked) == 1 and "key=weights" in asked[0], asked  # (grads: filtered out, not read)

            # the filter cleared: grads is shown again, and read then (it has a new row)
            pg.fill("#key-filter", "")
            pg.wait_for_selector(".card[data-hist=grads][data-step='2']", timeout=10_000)
            assert "2 histograms" in grads.inner_text() and shown_cards(pg) == ["grads", "weights"]

            # a key's first histogram while the page is open gets a card of its own
            exp.log_histogram("acts", np.arange(10.0), bins=5, step=3)
            exp.metrics.commit()
            pg.wait_for_selector(".card[data-hist=acts][data-step='3']", timeout=10_000)
            assert shown_cards(pg) == ["acts", "grads", "weights"]
            pg.screenshot(path=os.path.join(shots, "s33b-hist-live.png"))
