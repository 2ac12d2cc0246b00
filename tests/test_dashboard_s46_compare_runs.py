"""Session 46 review of the compare page with a sweep: it had no view of the params that set
the runs apart (only a "group by" menu), and with many runs overlaid no way to pick one line
out or to put one aside. Now a table of the compared runs, each row in its line's colour,
holds the params that differ; the pointer on a row brings that run's line forward in every
chart, and a row's box hides or shows its line (kept in the URL)."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")

import distlog  # noqa: E402
from support.browser_pages import browser, served  # noqa: E402,F401 (browser: a fixture)

LRS = (0.1, 0.01, 0.001)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("s46cmp") / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("sweep"):
        for i, lr in enumerate(LRS):
            with exp.run(f"lr{i}", params={"lr": lr, "optim": {"name": "adam"}, "seed": i % 2, "width": 64}):
                for step in range(30):
                    exp.metrics.log(step=step, loss=lr * (30 - step), acc=step / 30)
    return root


@pytest.mark.timeout(120)
def test_the_compare_page_lists_the_runs_params_that_differ_and_picks_out_or_hides_a_line(browser, root, tmp_path):
    runs = [f"sweep/lr{i}" for i in range(len(LRS))]
    frag = "#/compare?" + "&".join(f"run={r}" for r in runs)
    with served(browser, root, frag) as pg:
        pg.wait_for_function("() => document.querySelectorAll('#compare-charts .chart[data-series]').length === 2")
        heads = pg.locator("#compare-runs thead th").all_inner_texts()
        assert heads == ["show", "run", "status", "lr", "seed"]  # (optim.name and width: alike)
        rows = [pg.locator(f"#compare-runs tbody tr:nth-child({i + 1}) td").all_inner_texts() for i in range(3)]
        assert [r[1:] for r in rows] == [[" sweep/lr0", "completed", "0.1", "0"], [" sweep/lr1", "completed", "0.01", "1"],
                                         [" sweep/lr2", "completed", "0.001", "0"]]
        # each row's swatch is its line's colour
        swatch = pg.eval_on_selector("#compare-runs tbody tr:nth-child(2) .swatch", "e => e.style.background")
        stroke = pg.evaluate("() => window.distlog.compare.plots[0].u.series[2].stroke()")
        assert swatch.replace(" ", "") and pg.evaluate(
            "([a, b]) => { const d = document.createElement('div'); d.style.color = a; const e = document.createElement('div');"
            " e.style.color = b; document.body.append(d, e); const same = getComputedStyle(d).color === getComputedStyle(e).color;"
            " d.remove(); e.remove(); return same; }", [swatch, stroke])
        # the pointer on a row: that run's line in front in every chart, the others dimmed
        pg.hover("#compare-runs tbody tr:nth-child(2)")
        alphas = pg.evaluate("() => window.distlog.compare.plots.map((p) => p.u.series.slice(1).map((s) => s.alpha))")
        assert all(a == [0.3, 1, 0.3] for a in alphas), alphas
        pg.screenshot(path=str(tmp_path / "s46-compare-runs-focus.png"))
        pg.hover("#compare-charts")  # off the table: every line alike again
        pg.mouse.move(5, 5)
        alphas = pg.evaluate("() => window.distlog.compare.plots.map((p) => p.u.series.slice(1).map((s) => s.alpha))")
        assert all(a == [1, 1, 1] for a in alphas), alphas
        # a row's box hides its line in every chart, and the URL keeps it
        pg.click("#compare-runs tbody tr:nth-child(1) input[type=checkbox]")
        shown = pg.evaluate("() => window.distlog.compare.plots.map((p) => p.u.series.slice(1).map((s) => s.show))")
        assert all(s == [False, True, True] for s in shown), shown
        assert "hide=sweep%2Flr0" in pg.evaluate("() => location.hash")  # (by name: a run gone since moves no index)
        pg.reload()
        pg.wait_for_function("() => document.querySelectorAll('#compare-charts .chart[data-series]').length === 2")
        pg.wait_for_function("() => window.distlog.compare.plots.length === 2 && "
                             "window.distlog.compare.plots.every((p) => p.u.series[1].show === false)")
        assert not pg.locator("#compare-runs tbody tr:nth-child(1) input[type=checkbox]").is_checked()
        pg.screenshot(path=str(tmp_path / "s46-compare-runs-hidden.png"), full_page=True)
        # a chart's legend entry clicked is the row's box clicked: every chart and the box follow
        pg.click("#compare-charts .chart[data-key='loss'] .u-legend .u-series:nth-child(3)")  # sweep/lr1
        shown = pg.evaluate("() => window.distlog.compare.plots.map((p) => p.u.series.slice(1).map((s) => s.show))")
        assert all(s == [False, False, True] for s in shown), shown
        assert not pg.locator("#compare-runs tbody tr:nth-child(2) input[type=checkbox]").is_checked()
        assert pg.evaluate("() => new URLSearchParams(location.hash.split('?')[1]).getAll('hide')") == ["sweep/lr0", "sweep/lr1"]
        # grouped: the bands are of every run; the boxes are put away and say so
        pg.select_option("#group-by", "seed")
        pg.wait_for_function("() => document.querySelectorAll('#group-legend .rank-chip').length === 2")
        assert pg.is_visible("#compare-runs-wrap .grouped-note")
        assert not pg.is_visible("#compare-runs tbody tr:nth-child(1) input[type=checkbox]")
    # a link naming a run that is gone: the hidden run is still the one named
    with served(browser, root, "#/compare?run=sweep/gone&" + "&".join(f"run={r}" for r in runs) + "&hide=sweep/lr2") as pg:
        pg.wait_for_function("() => window.distlog.compare && window.distlog.compare.plots.length === 2")
        shown = pg.evaluate("() => window.distlog.compare.plots.map((p) => p.u.series.slice(1).map((s) => s.show))")
        assert all(s == [True, True, False] for s in shown), shown


@pytest.mark.timeout(120)
def test_the_runs_table_selects_every_run_shown_at_once_and_counts_selected_runs_the_filter_hides(browser, root):
    """A review: picking the 18 runs a filter kept took 18 clicks, and runs ticked before a
    filter hid them were compared with no word (the button said "Compare selected")."""
    with served(browser, root, "#/") as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        pg.fill("#runs-filter", "seed=0")
        pg.wait_for_function("() => document.querySelectorAll('#runs-table tbody tr').length === 2")
        pg.check("#select-shown")
        assert pg.inner_text("#compare-selected") == "Compare selected (2)"
        assert "sel=sweep%2Flr0" in pg.evaluate("() => location.hash") or "sel=sweep/lr0" in pg.evaluate("() => location.hash")
        pg.fill("#runs-filter", "seed=1")
        pg.wait_for_function("() => document.querySelectorAll('#runs-table tbody tr').length === 1")
        assert pg.inner_text("#compare-selected") == "Compare selected (2, 2 not shown)"
        assert not pg.is_checked("#select-shown")
        pg.check("#runs-table tbody tr input[type=checkbox]")
        assert pg.inner_text("#compare-selected") == "Compare selected (3, 2 not shown)"
        assert pg.is_checked("#select-shown")
        pg.click("#clear-selection")
        assert pg.inner_text("#compare-selected") == "Compare selected" and pg.is_disabled("#compare-selected")
        assert not pg.is_visible("#clear-selection")
        pg.fill("#runs-filter", "")
        pg.wait_for_function("() => document.querySelectorAll('#runs-table tbody tr').length === 3")
        pg.check("#select-shown")
        pg.click("#compare-selected")
        pg.wait_for_selector("#compare-runs tbody tr")
        assert pg.locator("#compare-runs tbody tr").count() == 3


@pytest.mark.timeout(120)
def test_a_group_chip_says_when_its_mean_is_of_fewer_runs_where_some_ended(browser, tmp_path):
    """Seeds of 10, 20 and 30 steps: the chip said "mean ± std of 3 runs" everywhere, while
    past step 19 the mean is of one run."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("g"):
        for seed, steps in enumerate((10, 20, 30)):
            with exp.run(f"s{seed}", params={"lr": 0.1, "seed": seed}):
                for step in range(steps):
                    exp.metrics.log(step=step, loss=1.0 + seed)
    runs = "&".join(f"run=g/s{i}" for i in range(3))
    with served(browser, root, f"#/compare?{runs}&group=lr") as pg:
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series]")
        chip = pg.locator("#group-legend .rank-chip").inner_text()
        assert chip == "lr = 0.1 · mean ± std of 3 runs (as few as 1 where the others have no rows)", chip


@pytest.mark.timeout(120)
def test_a_runs_filter_that_matches_nothing_says_what_was_likely_meant(browser, root):
    """A review: `optim.name=ADAM` matched 0 runs (text is matched as written) and
    `seed=0 OR seed=1` matched 0 with no word that OR is not a thing."""
    with served(browser, root, "#/") as pg:
        pg.wait_for_selector("#runs-table tbody tr")
        pg.fill("#runs-filter", "optim.name=ADAM")
        pg.wait_for_function("() => document.querySelectorAll('#runs-table tbody tr').length === 0")
        assert 'optim.name is matched as written: runs hold "adam"' in pg.inner_text(".toolbar .muted")
        pg.fill("#runs-filter", "seed=0 OR seed=1")
        pg.wait_for_function("() => document.querySelectorAll('#runs-table tbody tr').length === 0")
        assert "every term must hold (there is no OR)" in pg.inner_text(".toolbar .muted")


@pytest.mark.timeout(180)
def test_many_runs_overlaid_keep_a_colour_each_and_a_legend_that_scrolls(browser, tmp_path):
    """A review with 60 runs: 12 colours, so every 13th run drew in the first one's, and each
    chart's 60-row legend pushed the next chart a screen down."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    n = 30
    with exp.experiment("many"):
        for i in range(n):
            with exp.run(f"r{i:02d}", params={"lr": 0.001 * (i + 1)}):
                for step in range(5):
                    exp.metrics.log(step=step, loss=float(i + step))
    runs = "&".join(f"run=many/r{i:02d}" for i in range(n))
    with served(browser, root, f"#/compare?{runs}") as pg:
        pg.wait_for_selector("#compare-charts .chart[data-key='loss'][data-series]")
        strokes = pg.evaluate("() => window.distlog.compare.plots[0].u.series.slice(1).map((s) => s.stroke())")
        assert len(strokes) == n and len(set(strokes)) == n
        swatches = pg.eval_on_selector_all("#compare-runs tbody .swatch", "es => es.map((e) => e.style.background)")
        assert len(set(swatches)) == n
        legend = pg.eval_on_selector("#compare-charts .chart[data-key='loss'] .u-legend", "e => e.getBoundingClientRect().height")
        assert legend <= 90, legend
        pg.screenshot(path=str(tmp_path / "s46-compare-30-runs.png"), full_page=True)
