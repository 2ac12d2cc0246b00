"""A read the server refuses or fails is shown to the person, in real headless Chromium: the
files tab's text preview (a file whose bytes are gone from the store) and the logs tab's
"Jump to step" and "Load earlier" (a step that is no integer, a regex not yet applied). Each
test failed before its fix: the preview showed the server's JSON error as the file's text,
and the logs buttons left an unhandled promise rejection and nothing on screen."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from distlog.cas import blob_path  # noqa: E402
from support.browser_pages import MARKS, browser, drop_asked_failures, served, shots  # noqa: E402,F401 (browser, shots: fixtures)

pytestmark = MARKS

LINES = 700  # more than a page of the logs tab (500): "Load earlier" has more


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """One run: three text files, one empty, one whose blob is then deleted from the store
    (its record is intact: the bytes are what is missing); and LINES log lines, one a step."""
    root = str(tmp_path_factory.mktemp("s33fetch") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("f"), exp.run("r"):
        exp.files.save("plain text\nline 2\n", "notes.txt")
        exp.files.save({"a": 1}, "config.json")
        exp.files.save("", "empty.txt")
        gone = exp.files.save("these bytes will be lost\n", "gone.txt")
        img = np.zeros((8, 8, 3), dtype=np.uint8)
        img[2:6, 2:6, 0] = 255
        lost = [gone, exp.log_image("lost.png", img),
                exp.files.save_audio("lost.wav", np.sin(np.arange(4000) / 3.0).astype(np.float32), 8000)]
        for s in range(LINES):
            exp.info(f"line {s}", step=s)
    exp.close()
    for rec in lost:
        os.remove(os.path.join(root, blob_path(rec.sha256)))
    return root


@pytest.mark.timeout(120)
def test_a_text_file_whose_bytes_are_gone_shows_an_error_not_the_servers_reply(browser, root, shots):
    with served(browser, root, "#/run?path=f/r&tab=files&file=gone.txt", console=True) as pg:
        pg.wait_for_selector("#preview-error")
        pg.screenshot(path=os.path.join(shots, "s33-preview-gone.png"))
        text = pg.inner_text("#preview-error")
        assert text.startswith("Could not show gone.txt: ") and "(HTTP 404)" in text, text
        assert "download" in text  # what to do about it
        assert pg.locator("#preview-text").count() == 0  # no "file text" made of the error body
        assert '"error"' not in pg.inner_text("#file-preview")

        # the files that are there still show, and an empty one is empty (no error: the
        # server answers a range of an empty file 416)
        for name, want in (("notes.txt", "plain text\nline 2\n"), ("config.json", json.dumps({"a": 1}, indent=2)),
                           ("empty.txt", "")):
            pg.click(f"#files-table tr[data-path='{name}']")
            pg.wait_for_function("w => (document.querySelector('#preview-text') || {}).textContent === w", arg=want)
            assert pg.locator("#preview-error").count() == 0
        pg.click("#files-table tr[data-path='gone.txt']")
        pg.wait_for_selector("#preview-error")
        # an image and a player whose bytes are gone: a broken image, a dead player, no word why
        for name in ("lost.png", "lost.wav"):
            pg.click(f"#files-table tr[data-path='{name}']")
            pg.wait_for_selector(f"#preview-error:has-text('Could not show {name}: ')", timeout=10_000)
            assert "(HTTP 404)" in pg.inner_text("#preview-error")
            assert pg.locator("#file-preview img, #file-preview audio").count() == 0
        pg.screenshot(path=os.path.join(shots, "s33-preview-lost-audio.png"))
        drop_asked_failures(pg, 404)


@pytest.mark.timeout(120)
def test_jump_to_step_shows_the_servers_refusal(browser, root, shots):
    with served(browser, root, "#/run?path=f/r&tab=logs", console=True) as pg:
        pg.wait_for_function("n => document.querySelectorAll('#log-list .logline[data-level]').length === n", arg=500)
        # a step that is no integer: the server refuses it; the list said nothing
        pg.fill("#log-step", "2.5")
        pg.click("text=Jump to step")
        pg.wait_for_selector("#log-error", timeout=5_000)
        pg.screenshot(path=os.path.join(shots, "s33-jump-refused.png"))
        msg = pg.inner_text("#log-error")
        assert msg.startswith("Jump to step 2.5: ") and "is not an integer" in msg, msg
        # a step that is one: its lines, and the refusal is gone
        pg.fill("#log-step", "10")
        pg.click("text=Jump to step")
        pg.wait_for_function("() => !document.querySelector('#log-error')")
        assert pg.get_attribute("#log-list .logline.hit", "data-step") == "10"
        assert pg.inner_text("#log-count").startswith("500 records")
        # a regex the server refuses, shown by the filter; Jump to step says why it did nothing
        pg.fill("#log-grep", "(")
        pg.wait_for_selector("#log-error")
        pg.click("text=Jump to step")
        pg.wait_for_selector("#log-error:has-text('Jump to step 10: ')", timeout=5_000)
        assert "regular expression" in pg.inner_text("#log-error")
        assert not [e for e in pg.errors if "promise" in e.lower()], pg.errors
        drop_asked_failures(pg, 400)


@pytest.mark.timeout(120)
def test_load_earlier_with_a_regex_the_server_refuses_shows_why(browser, root, shots):
    """'Load earlier' reads with the filters as typed: a regex typed and not yet applied (the
    list waits 300 ms for typing to rest) was refused with an unhandled promise rejection."""
    with served(browser, root, "#/run?path=f/r&tab=logs", console=True) as pg:
        pg.wait_for_function("n => document.querySelectorAll('#log-list .logline[data-level]').length === n", arg=500)
        pg.fill("#log-grep", "[")
        pg.click("text=Load earlier")  # before the filter is applied
        pg.wait_for_selector("#log-error")
        pg.wait_for_timeout(800)  # the filter's own read has answered too
        pg.screenshot(path=os.path.join(shots, "s33-earlier-refused.png"))
        assert "regular expression" in pg.inner_text("#log-error")
        assert pg.locator("#log-list .logline[data-level]").count() == 0
        assert not [e for e in pg.errors if "promise" in e.lower() or "regular expression" in e], pg.errors
        drop_asked_failures(pg, 400)


@pytest.mark.timeout(120)
def test_a_chart_whose_series_can_no_longer_be_read_says_so(browser, tmp_path, shots):
    """The run's folder removed while its charts are open (deleted, or its store gone): the
    smoothing slider and a drag to zoom read the series again, and each failed read was an
    unhandled promise rejection with the old chart left as if nothing happened."""
    import shutil

    from support.browser_pages import drag

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("c"), exp.run("gone"):
        for s in range(50):
            exp.metrics.log(step=s, loss=1.0 / (1 + s))
    exp.close()
    with served(browser, root, "#/run?path=c/gone&tab=charts", console=True) as pg:
        pg.wait_for_selector(".chart[data-key=loss][data-series]")
        shutil.rmtree(os.path.join(root, "c", "gone"))
        pg.fill("#smoothing", "0.5")  # read again (after 150 ms)
        chart = pg.locator(".chart[data-key=loss][data-error]")
        chart.wait_for(timeout=10_000)
        pg.screenshot(path=os.path.join(shots, "s33-chart-gone.png"))
        problem = chart.locator(".chart-error")
        text = problem.inner_text()
        assert problem.is_visible() and text.startswith("Could not read the series: no run at "), text
        assert "reload the page" in text and chart.get_attribute("data-error") in text
        drag(pg, ".chart[data-key=loss]", 0.3, 0.6)  # a zoom reads the range: it fails too
        pg.wait_for_function("() => /[?&]zoom=/.test(location.hash)")
        pg.wait_for_timeout(1000)
        assert problem.is_visible() and problem.inner_text().startswith("Could not read the series: ")
        assert not [e for e in pg.errors if "promise" in e.lower() or "Error" in e.split(":")[0]], pg.errors
        drop_asked_failures(pg, 404, 502)
