"""A run whose params.json is torn among the runs compared grouped by a param: the bands were
of the other runs only, and only the server's warning (or, under a strict warnings filter, a
500 for the whole chart) said one was left out. Now /api/bands names each run it left out
with the reason (``left_out``, also of a smoothed or zoomed read), ``read_metrics`` keeps them
in ``attrs["left_out"]``, and the compare page names them under the groups. Failed before."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request

import pytest

import distlog
from distlog.query.sweeps import read_metrics

from support.browser_pages import MARKS, browser, served, shots  # noqa: F401 (fixtures)


@pytest.fixture()
def root(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    for name, lr in (("a", 0.1), ("b", 0.2), ("c", 0.2)):
        with exp.experiment("e"), exp.run(name, params={"lr": lr}):
            for s in range(6):
                exp.metrics.log(step=s, loss=lr * (name == "b" and 100 or 1) / (s + 1))
    path = os.path.join(root, "e", "b", "params.json")
    text = open(path).read()
    with open(path, "w") as f:
        f.write(text[: len(text) // 2])
    return root


def _get(url: str, **query) -> dict:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(url + "api/bands?" + urllib.parse.urlencode(query, doseq=True), timeout=30) as r:
        return json.load(r)


def test_bands_name_the_runs_they_left_out(root):
    runs = ["e/a", "e/b", "e/c"]
    url = distlog.serve(root)
    try:
        plain = _get(url, run=runs, key="loss", group_by="lr")
        smooth = _get(url, run=runs, key="loss", group_by="lr", smooth=0.5)
        zoomed = _get(url, run=runs, key="loss", group_by="lr", x0=1, x1=3)
    finally:
        url.stop()
    for res in (plain, smooth, zoomed):
        assert [x["run"] for x in res["left_out"]] == ["e/b"], res
        assert "params.json is damaged" in res["left_out"][0]["why"]
        assert {g["group"]["lr"]: max(g["runs"]) for g in res["groups"]} == {0.1: 1, 0.2: 1}
    # the 0.2 group is run c's alone: its mean is c's values (b's are 100x)
    g = next(g for g in plain["groups"] if g["group"]["lr"] == 0.2)
    assert g["mean"] == pytest.approx([0.2 / (s + 1) for s in range(6)])
    readers = [distlog.open_run(os.path.join(root, *r.split("/"))) for r in runs]
    with pytest.warns(RuntimeWarning, match="left out"):
        df = read_metrics(readers, "loss@mean", group_by=["lr"])
    assert [i for i, _ in df.attrs["left_out"]] == [1]
    assert read_metrics(readers, "loss@mean", group_by=["lr"], quiet=True).attrs["left_out"] == df.attrs["left_out"]


@MARKS[0]
@MARKS[1]
@pytest.mark.timeout(120)
def test_the_compare_page_names_a_run_left_out_of_the_bands(browser, root, shots):
    with served(browser, root, "#/compare?run=e/a&run=e/b&run=e/c&group=lr", console=True) as pg:
        chip = pg.wait_for_selector("#group-legend [data-left-out='e/b']")
        assert "left out of the bands" in chip.inner_text() and "params.json is damaged" in chip.inner_text()
        pg.wait_for_function("() => document.querySelectorAll('#group-legend [data-group]').length === 2")
        assert "mean ± std of 1 run" in pg.inner_text("#group-legend")
        pg.screenshot(path=os.path.join(shots, "s35-bands-left-out.png"))
