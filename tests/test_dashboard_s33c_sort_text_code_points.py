"""The runs table sorts a param's text as distlog/query/order.py does (the one order of
``/api/runs?sort=``, ``distlog compare --sort``): by code point, as Python compares str. It
compared JavaScript strings, by UTF-16 code unit, which puts a character above U+FFFF (an
emoji, a math letter: two code units, the first a surrogate, 0xD800-0xDBFF) before one of
U+E000-U+FFFF (fullwidth letters, CJK compatibility forms), the reverse of Python's order, so
the table and ``distlog compare --sort`` listed such runs differently. Failed before the fix."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import MARKS, browser, served  # noqa: E402,F401 (browser: a fixture)

pytestmark = MARKS

NAMES = {"emoji": "\U0001F600 smile", "fullwidth": "\uff5a wide", "plain": "z", "math": "\U0001D538 A",
         "cjk": "\u4e00 one", "number": 3, "flag": True}


@pytest.mark.timeout(120)
def test_runs_table_sorts_text_by_code_point_as_the_api(browser, tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    for run, name in NAMES.items():
        with exp.experiment("e"), exp.run(run, params={"name": name}):
            exp.metrics.log(step=0, loss=1.0)
    with exp.experiment("e"), exp.run("unset", params={"other": 1}):
        exp.metrics.log(step=0, loss=1.0)
    with served(browser, root, "#/?sort=name&asc=1", console=True) as pg:
        for asc in ("1", "0"):
            pg.goto(pg.base + f"#/?sort=name&asc={asc}")
            pg.wait_for_selector("tr[data-path='e/unset']")
            table = pg.eval_on_selector_all("tbody tr[data-path]", "rs => rs.map(r => r.dataset.path)")
            api = pg.evaluate("async (d) => (await (await fetch('api/runs?sort=name&desc=' + d)).json()).runs.map(r => r.path)",
                              "0" if asc == "1" else "1")
            assert table == api, (asc, table, api)
        assert api[:4] == ["e/emoji", "e/math", "e/fullwidth", "e/cjk"], api  # (desc: largest code point first)
