"""The key filters of a run's charts and of the compare page, typed as a person types (real
headless Chromium): the charts tab read every histogram again at each key (a request storm),
and the compare page drew (read) every chart again at each key and kept its filter out of
the URL, so a reload, Back or a copied link lost it. Each test failed before its fix."""

from __future__ import annotations

import os
from urllib.parse import parse_qs

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, served, shots  # noqa: E402,F401 (browser, shots: fixtures)

pytestmark = MARKS

KEYS = ["train/acc", "train/loss", "val/acc"]
COMPARE_FILTER = "#view .toolbar input[type=search]"  # the compare page's key filter


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two runs, each with KEYS over 20 steps; run a also has two histograms."""
    root = str(tmp_path_factory.mktemp("s33keys") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("k"):
        for name in ("a", "b"):
            with exp.run(name):
                for s in range(20):
                    exp.metrics.log(step=s, **{k: float(s + i) for i, k in enumerate(KEYS)})
                if name == "a":
                    for s in (1, 2):
                        exp.log_histogram("weights", np.arange(50.0) * s, bins=5, step=s)
                        exp.log_histogram("grads", np.arange(50.0) / s, bins=5, step=s)
    exp.close()
    return root


def requests_to(pg, endpoint: str) -> list[str]:
    """The URLs of the page's requests to api/<endpoint> from now on (a live list)."""
    seen: list[str] = []
    pg.on("request", lambda r: seen.append(r.url) if f"/api/{endpoint}?" in r.url else None)
    return seen


def url_query(pg) -> dict[str, list[str]]:
    return parse_qs(pg.evaluate("() => location.hash").partition("?")[2])


def shown_keys(pg, grid: str) -> list[str]:
    return pg.eval_on_selector_all(f"{grid} .chart[data-key]", "cs => cs.map(c => c.dataset.key)")


@pytest.mark.timeout(120)
def test_typing_in_the_charts_key_filter_reads_no_histogram_again(browser, root, shots):
    with served(browser, root, "#/run?path=k/a&tab=charts", console=True) as pg:
        pg.wait_for_selector(".card[data-hist=weights][data-step='2']")
        pg.wait_for_selector(".card[data-hist=grads][data-step='2']")
        hist = requests_to(pg, "histogram")
        pg.type("#key-filter", "train/loss", delay=40)  # ten keys
        pg.wait_for_function("() => document.querySelectorAll('#tab-body .chart[data-key]').length === 1")
        pg.wait_for_timeout(600)  # (any read a key started has been asked by now)
        pg.screenshot(path=os.path.join(shots, "s33-charts-filter.png"))
        assert hist == [], f"{len(hist)} histogram reads while typing"
        assert shown_keys(pg, "#tab-body") == ["train/loss"]
        assert url_query(pg)["keys"] == ["train/loss"]
        # the histograms the filter leaves out are hidden, kept as drawn (the step picked below
        # each): clearing the filter shows them again with no read
        for key in ("weights", "grads"):
            card = pg.locator(f".card[data-hist={key}]")
            assert not card.is_visible() and card.get_attribute("data-step") == "2"
        pg.fill("#key-filter", "")
        pg.wait_for_function("n => document.querySelectorAll('#tab-body .chart[data-key]').length === n", arg=len(KEYS))
        for key in ("weights", "grads"):
            card = pg.locator(f".card[data-hist={key}]")
            card.wait_for(state="visible")
            assert card.get_attribute("data-step") == "2" and "2 histograms" in card.inner_text()
        assert hist == []


@pytest.mark.timeout(120)
def test_the_compare_pages_charts_are_read_once_typing_in_its_key_filter_rests(browser, root):
    with served(browser, root, "#/compare?run=k/a&run=k/b", console=True) as pg:
        pg.wait_for_function("n => document.querySelectorAll('#compare-charts .chart[data-series]').length === n",
                             arg=len(KEYS))
        compare = requests_to(pg, "compare")
        pg.type(COMPARE_FILTER, "val/", delay=40)
        pg.wait_for_function("() => document.querySelectorAll('#compare-charts .chart[data-series]').length === 1")
        pg.wait_for_timeout(600)
        assert shown_keys(pg, "#compare-charts") == ["val/acc"]
        assert len(compare) == 1, compare  # the one chart shown, read once (not once a key)


@pytest.mark.timeout(120)
def test_the_compare_pages_key_filter_is_in_its_url(browser, root, shots):
    with served(browser, root, "#/compare?run=k/a&run=k/b", console=True) as pg:
        pg.wait_for_function("n => document.querySelectorAll('#compare-charts .chart[data-series]').length === n",
                             arg=len(KEYS))
        pg.fill(COMPARE_FILTER, "val/")
        pg.wait_for_function("() => document.querySelectorAll('#compare-charts .chart[data-series]').length === 1")
        assert shown_keys(pg, "#compare-charts") == ["val/acc"]
        assert url_query(pg).get("keys") == ["val/"]
        link = pg.evaluate("() => location.href")

        pg.reload()  # the same view
        pg.wait_for_selector("#compare-charts .chart[data-series]")
        assert pg.input_value(COMPARE_FILTER) == "val/" and shown_keys(pg, "#compare-charts") == ["val/acc"]

        pg.click("#compare-runs a >> nth=0")  # a run's page, then Back
        pg.wait_for_selector("#run-status")
        pg.go_back()
        pg.wait_for_selector("#compare-charts .chart[data-series]")
        assert pg.input_value(COMPARE_FILTER) == "val/" and shown_keys(pg, "#compare-charts") == ["val/acc"]

        other = pg.context.new_page()  # a copied link
        other.goto(link)
        other.wait_for_selector("#compare-charts .chart[data-series]")
        other.screenshot(path=os.path.join(shots, "s33-compare-link.png"))
        assert other.input_value(COMPARE_FILTER) == "val/" and shown_keys(other, "#compare-charts") == ["val/acc"]
        other.close()

        # the other options are kept beside it, and clearing the filter drops it from the URL
        pg.check(".toolbar label:has-text('log y') input")
        pg.fill(COMPARE_FILTER, "")
        pg.wait_for_function("n => document.querySelectorAll('#compare-charts .chart[data-series]').length === n",
                             arg=len(KEYS))
        q = url_query(pg)
        assert "keys" not in q and q["logy"] == ["1"] and q["run"] == ["k/a", "k/b"]
