"""Dashboard campaign 31: a sweep, a 2-rank run and live runs looked at in real headless
Chromium as an ML engineer would; what was wrong, misleading or lost (each test failed before
its fix)."""

from __future__ import annotations

import contextlib

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, served  # noqa: E402,F401 (browser: a fixture)
from support.ranks import run_ranks  # noqa: E402

pytestmark = MARKS


def two_ranks_logging(rank: int, world: int, root: str) -> None:
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("ddp"), exp.run("two"):
        for step in range(10):
            exp.log("WARNING" if step % 5 == 0 else "INFO", f"rank {rank} at step {step}", step=step)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A failed run whose warning carries non-finite fields and that saved a file in three
    versions, and a 2-rank run's logs."""
    tmp = tmp_path_factory.mktemp("campaign31")
    root = str(tmp / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with contextlib.suppress(RuntimeError), exp.experiment("sweep"), exp.run("crashed"):
        exp.metrics.log(step=0, loss=1.0)
        for v in range(3):
            exp.files.save({"v": v}, "config.json", step=10 * v)
        exp.warning("loss is nan", step=35, grad_norm=float("inf"), loss=float("nan"), low=float("-inf"), lr=0.1)
        raise RuntimeError("loss diverged")
    exp.close()
    run_ranks(two_ranks_logging, 2, tmp, root, timeout=120)
    return root


@pytest.mark.timeout(120)
def test_a_log_field_logged_as_inf_or_nan_reads_so_not_null(browser, root):
    """exp.warning(..., grad_norm=inf): the logs tab showed {"grad_norm":null}, as if no value
    had been given (JSON has no inf; the API's encoder made it null)."""
    with served(browser, root, "#/run?path=sweep/crashed&tab=logs") as pg:
        line = pg.locator("#log-list .logline[data-level='WARNING'] .msg")
        line.wait_for()
        text = line.text_content()
        assert '"grad_norm":"inf"' in text and '"loss":"nan"' in text and '"low":"-inf"' in text, text
        assert '"lr":0.1' in text and "null" not in text, text


@pytest.mark.timeout(120)
def test_the_ranks_shown_in_the_logs_survive_a_reload_and_a_copied_link(browser, root):
    """Unticking rank 0 in the logs tab was not in the URL: a reload, Back or a copied link
    showed every rank again while level and regex were kept."""
    with served(browser, root, "#/run?path=ddp/two&tab=logs") as pg:
        pg.wait_for_selector("#log-list .logline[data-rank='0']")
        pg.uncheck("input[data-rank='0']")
        pg.select_option("#log-level", "WARNING")
        pg.wait_for_function("() => location.hash.includes('rank=1') && location.hash.includes('level=WARNING')")
        link = pg.url
        for reopen in (pg.reload, lambda: pg.goto(link)):
            reopen()
            pg.wait_for_selector("#log-list .logline")
            assert not pg.is_checked("input[data-rank='0']") and pg.is_checked("input[data-rank='1']")
            msgs = pg.locator("#log-list .logline .msg").all_text_contents()
            assert msgs == ["rank 1 at step 0", "rank 1 at step 5"], msgs
        pg.uncheck("input[data-rank='1']")  # no rank ticked: none shown, after a reload too
        pg.wait_for_function("() => location.hash.includes('rank=none')")
        pg.reload()
        pg.wait_for_selector("#log-list .logline")
        assert not pg.is_checked("input[data-rank='0']") and not pg.is_checked("input[data-rank='1']")
        assert pg.inner_text("#log-count") == "0 records"


def _info(pg) -> dict:
    return pg.evaluate("""() => { const dl = document.querySelector('#tab-body dl.kv'); const o = {};
        dl.querySelectorAll('dt').forEach(dt => { o[dt.textContent] = dt.nextElementSibling.textContent; });
        return o; }""")


@pytest.mark.timeout(120)
def test_a_live_runs_overview_follows_its_last_step_and_its_end(browser, tmp_path):
    """The overview of a running run kept the last step, duration and 'ended –' it was opened
    with (only the status badge followed the run), and after the run ended still said so."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, commit_interval=0.2, heartbeat_interval=0, telemetry=False)
    with contextlib.ExitStack() as running:
        running.enter_context(exp.experiment("live"))
        running.enter_context(exp.run("l1"))
        exp.metrics.log(step=0, loss=1.0)
        exp.metrics.commit()
        with served(browser, root, "#/run?path=live/l1&tab=overview") as pg:
            pg.wait_for_selector("#tab-body dl.kv")
            assert _info(pg)["last step"] == "0"
            for step in range(1, 8):
                exp.metrics.log(step=step, loss=1.0 / (1 + step))
            exp.metrics.commit()
            pg.wait_for_function("() => [...document.querySelectorAll('#tab-body dl.kv dt')].some("
                                 "dt => dt.textContent === 'last step' && dt.nextElementSibling.textContent === '7')")
            assert _info(pg)["ended"] == "–"
            running.close()  # the run ends while the page is open
            pg.wait_for_function("() => document.querySelector('#run-status').textContent === 'completed'")
            pg.wait_for_function("() => [...document.querySelectorAll('#tab-body dl.kv dt')].some("
                                 "dt => dt.textContent === 'ended' && dt.nextElementSibling.textContent !== '–')")
            info = _info(pg)
            assert info["status"] == "completed" and info["last step"] == "7"
    exp.close()


@pytest.mark.timeout(120)
def test_the_file_version_picked_survives_a_reload_and_a_copied_link(browser, root):
    """Picking version 1 of a file was not in the URL (only the file was): a reload or a
    copied link showed the newest version instead of the one being read."""
    with served(browser, root, "#/run?path=sweep/crashed&tab=files") as pg:
        pg.click("#files-table tr[data-path='config.json']")
        pg.locator("#file-preview select").select_option(label="version 1")
        pg.wait_for_function("() => /\"v\": 0/.test(document.querySelector('#preview-text').textContent)")
        pg.wait_for_function("() => location.hash.includes('version=1')")
        link = pg.url
        for reopen in (pg.reload, lambda: pg.goto(link)):
            reopen()
            pg.wait_for_function("() => /\"v\": 0/.test((document.querySelector('#preview-text') || {}).textContent)")
            assert pg.locator("#file-preview select option:checked").text_content() == "version 1"
            assert "step 0" in pg.inner_text("#file-preview .toolbar")
        pg.click("#files-table tr[data-path='config.json']")  # the file again: its newest version
        pg.wait_for_function("() => /\"v\": 2/.test(document.querySelector('#preview-text').textContent)")
        assert "version=" not in pg.evaluate("location.hash")


@pytest.mark.timeout(120)
def test_compare_shows_the_smoothing_weight_beside_its_slider(browser, root):
    """A run's charts print the smoothing weight beside the slider; compare printed none, so
    a compare link with smooth=0.9 drew smoothed lines with no number saying how much."""
    with served(browser, root, "#/compare?run=ddp/two&run=sweep/crashed&smooth=0.9") as pg:
        pg.wait_for_selector("#smoothing")
        assert pg.inner_text("#smoothing-value") == "0.90"
        pg.locator("#smoothing").fill("0.25")
        assert pg.inner_text("#smoothing-value") == "0.25"


@pytest.mark.timeout(120)
def test_a_file_link_whose_rank_saved_no_such_version_shows_that_version(browser, root):
    """A link naming a version and a rank that saved none of it (a hand-edited or mistyped
    file_rank) showed the newest version while the URL still said version=1."""
    with served(browser, root, "#/run?path=sweep/crashed&tab=files&file=config.json&version=1&file_rank=5") as pg:
        pg.wait_for_function("() => /\"v\": \\d/.test((document.querySelector('#preview-text') || {}).textContent)")
        assert '"v": 0' in pg.inner_text("#preview-text")
        assert pg.locator("#file-preview select option:checked").text_content() == "version 1"
