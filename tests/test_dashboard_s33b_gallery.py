"""The files tab's gallery, in real headless Chromium: a thumbnail of an image whose bytes are
gone from the store was a broken-image icon with no word why (the preview below said why; the
gallery did not). Now the thumbnail says why, as the preview does. Failed before the fix."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from distlog.cas import blob_path  # noqa: E402
from support.browser_pages import MARKS, browser, drop_asked_failures, served, shots  # noqa: E402,F401

pytestmark = MARKS


@pytest.mark.timeout(120)
def test_a_thumbnail_whose_bytes_are_gone_says_why(browser, tmp_path, shots):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[2:6, 2:6, 1] = 255
    with exp.experiment("g"), exp.run("r"):
        exp.log_image("here.png", img)
        img[2:6, 2:6, 0] = 255  # (other bytes: a blob of its own)
        lost = exp.log_image("lost.png", img)
    exp.close()
    os.remove(os.path.join(root, blob_path(lost.sha256)))
    with served(browser, root, "#/run?path=g/r&tab=files&file=here.png", console=True) as pg:
        fig = pg.locator("#gallery figure[title^='lost.png']")
        problem = fig.locator(".thumb-error")
        problem.wait_for(timeout=10_000)
        pg.screenshot(path=os.path.join(shots, "s33b-gallery-lost.png"))
        text = problem.inner_text()
        assert text.startswith("Cannot show it: ") and "(HTTP 404)" in text, text
        assert fig.locator("img").count() == 0  # no broken-image icon
        assert "(HTTP 404)" in fig.get_attribute("title")
        # the image that is there is drawn, with no message
        shown = pg.locator("#gallery figure[title='here.png'] img")
        assert shown.evaluate("i => i.complete && i.naturalWidth") == 8
        assert pg.locator("#gallery figure[title='here.png'] .thumb-error").count() == 0
        fig.click()  # the preview says the same, in its words
        pg.wait_for_selector("#preview-error:has-text('Could not show lost.png: ')", timeout=10_000)
        drop_asked_failures(pg, 404)
