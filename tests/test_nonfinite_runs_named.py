"""A run whose metric went NaN or ±inf (a diverged run) is named as such where runs are listed.

Before: such a run read ``completed`` with the green badge in the dashboard's runs table, in
``distlog ls`` and in ``run.json``, like a healthy one; only a metric column (or opening each
run's charts) showed it. The writer keeps, per series, the step of its first row whose value
is NaN or ±inf; the commit record (``nonfinite_from``) and, at the end, ``run.json`` carry it;
``ls``, ``run_rows`` and the dashboard show it (a resumed attempt that rewinds past that row
forgets it)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import distlog
from distlog.layout import RUN_FILE
from distlog.query.root import run_rows


def _sweep(root: str) -> None:
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("s"):
        with exp.run("ok"):
            for step in range(20):
                exp.metrics.collect(step=step, loss=1.0 / (step + 1))
                exp.metrics.flush()
        with exp.run("diverged"):
            for step in range(20):  # collected NaN from step 12: the row's value is NaN
                exp.metrics.collect(step=step, loss=float("nan") if step >= 12 else 1.0, acc=0.5)
                exp.metrics.flush()
            exp.metrics.log(step=20, grad_norm=float("inf"))  # logged, rank 0's own
            exp.metrics.log(step=21, grad_norm=1.0)


def test_a_diverged_run_is_named_in_run_json_ls_and_the_runs_rows(tmp_path):
    root = str(tmp_path / "root")
    _sweep(root)
    meta = json.loads((tmp_path / "root" / "s" / "diverged" / RUN_FILE).read_text())
    assert meta["status"] == "completed" and meta["nonfinite_from"] == {"loss": 12, "grad_norm": 20}
    assert json.loads((tmp_path / "root" / "s" / "ok" / RUN_FILE).read_text())["nonfinite_from"] == {}
    commit = json.loads((tmp_path / "root" / "s" / "diverged" / "scalars.commit.json").read_text())
    assert commit["nonfinite_from"] == {"grad_norm": 20, "loss": 12}
    rows = {r["run_id"]: r for r in run_rows(distlog.open_root(root).runs())}
    assert rows["diverged"]["nonfinite_from"] == {"loss": 12, "grad_norm": 20}
    assert rows["ok"]["nonfinite_from"] == {}
    out = subprocess.run([sys.executable, "-m", "distlog", "ls", root], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if " diverged " in ln)
    assert "NaN/inf from" in out.stdout and line.rstrip().endswith("loss@12, grad_norm@20"), out.stdout
    show = subprocess.run([sys.executable, "-m", "distlog", "show", f"{root}/s/diverged"], capture_output=True,
                          text=True, timeout=120)
    assert "NaN/inf     loss@12, grad_norm@20 (metric@step of its first NaN/inf value)" in show.stdout, show.stdout
    js = subprocess.run([sys.executable, "-m", "distlog", "ls", root, "--format", "json"], capture_output=True,
                        text=True, timeout=120)
    assert {r["run_id"]: r["nonfinite_from"] for r in json.loads(js.stdout)} == {
        "ok": {}, "diverged": {"loss": 12, "grad_norm": 20}}


def test_a_running_runs_nonfinite_comes_from_its_commit_record(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("live"):
        for step in range(5):
            exp.metrics.log(step=step, loss=float("-inf") if step == 3 else 1.0)
        exp.metrics.commit()
        (row,) = run_rows(distlog.open_root(root).runs())
        assert row["status"] == "running" and row["nonfinite_from"] == {"loss": 3}


@pytest.mark.parametrize("resume_step, kept", [(5, {}), (15, {"loss": 12})])
def test_a_resume_that_rewinds_past_the_first_nan_row_forgets_it(tmp_path, resume_step, kept):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        for step in range(20):
            exp.metrics.log(step=step, loss=float("nan") if step >= 12 else 1.0)
    with exp.run("r", resume_step=resume_step):  # from a checkpoint: the rows after it go
        for step in range(resume_step + 1, resume_step + 4):
            exp.metrics.log(step=step, loss=0.5)
    meta = json.loads((tmp_path / "root" / "default" / "r" / RUN_FILE).read_text())
    assert meta["nonfinite_from"] == kept
    run = distlog.open_run(tmp_path / "root" / "default" / "r")
    steps = run.metrics.read("loss")["step"].tolist()
    assert steps == list(range(resume_step + 4))  # (what the record says matches the rows)


# ---- the dashboard (a browser, as a person reads the runs table) ------------------------------
from support.browser_pages import MARKS, browser, served, shots  # noqa: E402,F401 (fixtures)


@MARKS[0]
@MARKS[1]
@pytest.mark.timeout(120)
def test_the_runs_table_badges_a_diverged_run_and_filters_on_it(browser, tmp_path, shots):
    root = str(tmp_path / "root")
    _sweep(root)
    with served(browser, root, "#/") as pg:
        pg.wait_for_selector("#view table tbody tr")
        badge = pg.locator('tr[data-path="s/diverged"] .nonfinite-badge')
        assert badge.inner_text() == "NaN/inf"
        assert badge.get_attribute("title") == "NaN/inf values: loss from step 12, grad_norm from step 20"
        assert pg.locator('tr[data-path="s/ok"] .nonfinite-badge').count() == 0
        pg.screenshot(path=f"{shots}/nonfinite-runs.png")
        pg.fill("#view input[placeholder^='filter']", "is:nan")
        pg.wait_for_function("() => document.querySelectorAll('#view table tbody tr').length === 1")
        assert pg.locator("#view table tbody tr").get_attribute("data-path") == "s/diverged"
        pg.goto(pg.base + "#/run?path=s/diverged&tab=overview")
        pg.wait_for_selector("#run-nonfinite")
        assert pg.locator("#run-nonfinite").inner_text() == "NaN/inf values: loss from step 12, grad_norm from step 20"
        pg.screenshot(path=f"{shots}/nonfinite-run.png")


def test_csv_lists_every_metric_and_show_names_a_running_runs(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        for step in range(6):
            exp.metrics.log(step=step, **{k: float("nan") if step >= i + 1 else 1.0 for i, k in enumerate("abcde")})
        exp.metrics.commit()  # (running: run.json says nothing yet; the commit record does)
        show = subprocess.run([sys.executable, "-m", "distlog", "show", f"{root}/default/r"], capture_output=True,
                              text=True, timeout=120)
        assert "NaN/inf     a@1, b@2, c@3, d@4, e@5" in show.stdout, show.stdout
        cmp = subprocess.run([sys.executable, "-m", "distlog", "compare", root, "-m", "b", "--format", "json"],
                             capture_output=True, text=True, timeout=120)
        assert json.loads(cmp.stdout)[0]["nonfinite_from"] == {"b": 2}, cmp.stdout  # (the metrics shown)
    table = subprocess.run([sys.executable, "-m", "distlog", "ls", root], capture_output=True, text=True, timeout=120)
    assert "a@1, b@2, c@3 (+2 more)" in table.stdout, table.stdout
    csv = subprocess.run([sys.executable, "-m", "distlog", "ls", root, "--format", "csv"], capture_output=True,
                         text=True, timeout=120)
    assert csv.stdout.splitlines()[1].endswith('"a@1, b@2, c@3, d@4, e@5",'), csv.stdout  # (then no error)
    cmp = subprocess.run([sys.executable, "-m", "distlog", "compare", root, "-m", "a", "-m", "e"], capture_output=True,
                         text=True, timeout=120)
    assert "NaN/inf from" in cmp.stdout and " 5  a@1, e@5 " in cmp.stdout.splitlines()[2], cmp.stdout


@MARKS[0]
@MARKS[1]
@pytest.mark.timeout(120)
def test_a_live_runs_page_shows_its_metrics_going_nan(browser, tmp_path, shots):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("live"):
        for step in range(5):
            exp.metrics.log(step=step, loss=1.0)
        exp.metrics.commit()
        with served(browser, root, "#/run?path=default/live&tab=overview") as pg:
            pg.wait_for_selector("#run-status")
            assert pg.locator("#run-nonfinite").is_hidden()
            for step in range(5, 8):
                exp.metrics.log(step=step, loss=float("nan"), **{f"m{i}": float("inf") for i in range(6)})
            exp.metrics.commit()
            pg.wait_for_selector("#run-nonfinite", state="visible", timeout=30_000)
            note = pg.locator("#run-nonfinite")
            assert note.inner_text() == ("NaN/inf values: loss from step 5, m0 from step 5, m1 from step 5, "
                                         "m2 from step 5 (+3 more)")
            assert note.get_attribute("title").endswith("m5 from step 5")
            pg.screenshot(path=f"{shots}/nonfinite-live.png")
            pg.goto(pg.base + "#/?filter=is%3Ainf")
            pg.fill("#view input[placeholder^='filter']", "is:inf")
            pg.wait_for_function("() => document.querySelectorAll('#view table tbody tr').length === 1")
            pg.fill("#view input[placeholder^='filter']", "is:foo")
            pg.wait_for_function("() => document.querySelectorAll('#view table tbody tr').length === 0")
            assert '"is:foo" matches no run: the filter knows is:nan' in pg.locator("#view").inner_text()
