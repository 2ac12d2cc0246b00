"""A run whose params.json is torn (a write cut short) among the runs compared: /api/keys
refused the whole request (400, the one run's DamagedRecord), so the compare page showed only
an error and no chart. Now /api/keys answers with that run's params empty, its status
``damaged`` and its reason in ``damaged``; the page draws every run and names the reason
beside the torn one. Failed before the fix."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, served  # noqa: E402,F401 (browser: a fixture)

pytestmark = MARKS


def torn_root(root: str) -> str:
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    for name, lr in (("a", 0.1), ("b", 0.2)):
        with exp.experiment("e"), exp.run(name, params={"lr": lr, "opt": {"m": 0.9}}):
            for s in range(5):
                exp.metrics.log(step=s, loss=lr / (s + 1))
    path = os.path.join(root, "e", "b", "params.json")
    text = open(path).read()
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])
    return root


def test_api_keys_answers_with_a_torn_runs_reason(tmp_path):
    root = torn_root(str(tmp_path / "root"))
    url = distlog.serve(root)
    try:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(url + "api/keys?run=e/a&run=e/b", timeout=30) as r:
            res = json.load(r)
    finally:
        url.stop()
    assert res["keys"] == ["loss"]
    assert res["params"]["e/a"] == {"lr": 0.1, "opt.m": 0.9} and res["params"]["e/b"] == {}
    assert res["status"] == {"e/a": "completed", "e/b": "damaged"}
    assert list(res["damaged"]) == ["e/b"] and "params.json is damaged" in res["damaged"]["e/b"][0]


@pytest.mark.timeout(120)
def test_compare_page_draws_every_run_and_names_the_torn_one(browser, tmp_path):
    root = torn_root(str(tmp_path / "root"))
    with served(browser, root, "#/compare?run=e/a&run=e/b", console=True) as pg:
        pg.wait_for_selector("#compare-legend .run-damaged")
        assert "params.json is damaged" in pg.inner_text("#compare-legend")
        pg.wait_for_selector("#view .uplot")
        assert pg.locator("#banner").is_hidden()
        assert pg.locator("#view .uplot").count() >= 1
