"""A compare chart's zoom reads the rows of the range at full resolution, as a run's charts
do, in real headless Chromium driven by Playwright: zoomed out, each run's series is the
server's M4 downsampling (a single-step spike survives it, its neighbours do not); a drag, a
``zoom=`` in the URL on load and a live run's new rows each read the range again, so the
chart holds every step of it with its stored value (overlaid runs, their smoothed lines, the
mean ± std of grouped runs, a bin per step); a double-click shows the overview again.
Screenshots go to ``$DISTLOG_SHOTS_DIR`` when set (else the test's tmp dir)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import distlog  # noqa: E402
from support.browser_pages import (  # noqa: E402,F401 (browser, shots: fixtures)
    MARKS, browser, drag, parse_zoom, rows_read, served, shots, url_zoom)
from support.dashboard_runs import ema  # noqa: E402

pytestmark = MARKS

N = 12000           # steps per run: ~20 a pixel in a compare chart, whose overview keeps at most 4
SPIKE = 6637        # one step of s/lr1-s0 far above the rest
SPIKE_VALUE = 50.0
RUNS = [(lr, seed) for lr in (1, 2) for seed in (0, 1)]
NAMES = [f"s/lr{lr}-s{seed}" for lr, seed in RUNS]


def value(lr: int, seed: int, step: int) -> float:
    """A jagged series (a new level every step, so M4 keeps a few of a bucket's steps only),
    with a spike of one step in one run."""
    if (lr, seed) == (1, 0) and step == SPIKE:
        return SPIKE_VALUE
    return lr + ((step * 7919 + seed * 104729) % 1000) / 500.0


def acc(lr: int, seed: int, step: int) -> float:
    return 0.01 + ((step * 31 + lr * 7 + seed) % 100) / 100.0


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("czoom") / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("s"):
        for lr, seed in RUNS:
            with exp.run(f"lr{lr}-s{seed}", params={"lr": lr, "seed": seed}):
                for step in range(N):
                    exp.metrics.log(step=step, loss=value(lr, seed, step), acc=acc(lr, seed, step))
    exp.close()
    return root


PLOT = "window.distlog.compare.plots.find(p => p.key === k)"


def wait_plots(pg, n: int = 2) -> None:
    pg.wait_for_function(f"() => window.distlog.compare && window.distlog.compare.plots.length === {n}")


def inside(z: tuple[float, float], n: int = N) -> list[int]:
    """The steps inside the zoom ``z``: what a grouped chart's bands bin (a run's row either
    side of the range is not in them)."""
    return [s for s in range(n) if z[0] <= s <= z[1]]


def wait_zoom_rows(pg, z: tuple[float, float], keys=("acc", "loss"), n: int = N, grouped: bool = False) -> None:
    """Every chart of ``keys`` shows exactly the range ``z`` and draws every step of it (and
    one either side, but for ``grouped`` bands): the rows of the range, not the overview's
    (which lacks most of them)."""
    from playwright.sync_api import TimeoutError as Timeout

    steps = inside(z, n) if grouped else rows_read(*z, n)
    try:
        pg.wait_for_function("([ks, z, st]) => ks.every(k => { const p = window.distlog.compare.plots.find(p => p.key === k);"
                             " if (!p || p.u.scales.x.min !== z[0] || p.u.scales.x.max !== z[1]) return false;"
                             " const x = p.u.data[0].filter(v => v >= st[0] && v <= st[st.length - 1]);"
                             " return x.length === st.length && p.u.data[0].length === st.length; })",
                             arg=[list(keys), list(z), steps], timeout=10_000)
    except Timeout:
        shown = pg.evaluate("() => window.distlog.compare.plots.map(p => [p.key, p.u.scales.x.min, p.u.scales.x.max,"
                            " p.u.data[0].length, p.u.data[0].filter(v => v >= %r && v <= %r).length])" % (steps[0], steps[-1]))
        raise AssertionError(f"not every step of {z} drawn ({len(steps)} steps from {steps[0]} to {steps[-1]});"
                             f" [key, x min, x max, points, points in the range]: {shown}") from None


def data(pg, key: str) -> list[list]:
    """The chart's uPlot data arrays (what it draws): x, then one array per series."""
    return pg.evaluate(f"k => {PLOT}.u.data.map(a => Array.from(a, v => v === undefined ? null : v))", key)


def overview(pg, key: str) -> list[list]:
    """The chart's overview (what it draws zoomed out)."""
    return pg.evaluate(f"k => ({PLOT}.over || {PLOT}.u.data).map(a => Array.from(a, v => v === undefined ? null : v))", key)


def wait_whole(pg, overviews: dict[str, list]) -> None:
    """Every chart shows its whole overview again (``overviews``: its x array, by key)."""
    xs = {k: [len(x), x[0], x[-1]] for k, x in overviews.items()}
    pg.wait_for_function("xs => window.distlog.compare.plots.every(p => p.u.data[0].length === xs[p.key][0]"
                         " && p.u.scales.x.min === xs[p.key][1] && p.u.scales.x.max === xs[p.key][2])", arg=xs)


def assert_overlay_exact(pg, key: str, z: tuple[float, float], fn, runs=RUNS, smooth: float = 0.0) -> None:
    d = data(pg, key)
    steps = rows_read(*z, N)
    assert d[0] == steps, key  # every step of the range: no downsampling
    for j, (lr, seed) in enumerate(runs):
        if smooth:
            want = ema([fn(lr, seed, s) for s in range(N)], smooth)[steps[0]:steps[-1] + 1]
            np.testing.assert_allclose(d[j + 1], want, rtol=1e-9, err_msg=f"{key} {lr} {seed}")
        else:
            assert d[j + 1] == [fn(lr, seed, s) for s in steps], (key, lr, seed)


@pytest.mark.timeout(180)
def test_a_compare_zoom_reads_every_row_of_the_range_drag_reload_smoothing_log_y_and_reset(browser, root, shots):
    page = "#/compare?" + "&".join(f"run={n}" for n in NAMES[:2])  # lr=1, seeds 0 and 1
    runs = RUNS[:2]
    with served(browser, root, page, console=True) as pg:
        wait_plots(pg)
        over, over_acc = overview(pg, "loss"), overview(pg, "acc")
        # zoomed out: each run downsampled (M4), and the spike kept at its step with its value
        assert len(over[0]) < N
        assert over[1][over[0].index(SPIKE)] == SPIKE_VALUE
        assert max(v for v in over[1] if v is not None) == SPIKE_VALUE
        assert data(pg, "loss") == over

        box = pg.locator("#compare-charts .chart[data-key='loss'] .u-over").bounding_box()
        at = (SPIKE - 60) / (N - 1), (SPIKE + 140) / (N - 1)  # a range of ~200 steps around the spike
        drag(pg, "#compare-charts .chart[data-key='loss']", at[0], at[1])
        pg.wait_for_function("() => /[?&]zoom=/.test(location.hash)")
        z = parse_zoom(url_zoom(pg))
        assert z[0] < SPIKE < z[1] and 150 < z[1] - z[0] < 260, (z, box)
        # the overview lacked steps of the range, and held some values at other steps only
        steps = rows_read(*z, N)
        held = [s for s in over[0] if steps[0] <= s <= steps[-1]]
        assert len(held) < len(steps) / 2, held
        wait_zoom_rows(pg, z)  # the chart dragged on and the other chart of the page
        assert_overlay_exact(pg, "loss", z, value, runs)
        assert_overlay_exact(pg, "acc", z, acc, runs)
        d = data(pg, "loss")
        assert d[1][steps.index(SPIKE)] == SPIKE_VALUE and d[1][steps.index(SPIKE) + 1] == value(1, 0, SPIKE + 1)
        pg.locator("#compare-charts").screenshot(path=os.path.join(shots, "compare-zoom-01-overlay.png"))

        pg.reload()  # the URL's range, on load: read at full resolution too
        wait_plots(pg)
        wait_zoom_rows(pg, z)
        assert_overlay_exact(pg, "loss", z, value, runs)

        pg.locator("#smoothing").fill("0.9")  # the server's EMA of each whole series, in the range
        pg.wait_for_function("() => location.hash.includes('smooth=0.9')")
        wait_plots(pg)
        wait_zoom_rows(pg, z)
        assert_overlay_exact(pg, "loss", z, value, runs, smooth=0.9)
        pg.locator("#compare-charts").screenshot(path=os.path.join(shots, "compare-zoom-02-smoothed.png"))
        pg.locator("#smoothing").fill("0")
        pg.wait_for_function("() => !location.hash.includes('smooth=')")

        pg.check(".toolbar label:has-text('log y') input")  # every chart made again, at the range
        pg.wait_for_function("() => location.hash.includes('logy=1')")
        wait_plots(pg)
        wait_zoom_rows(pg, z)
        assert_overlay_exact(pg, "loss", z, value, runs)
        assert pg.evaluate("() => window.distlog.compare.plots[0].u.scales.y.distr") == 3

        pg.dblclick("#compare-charts .chart[data-key='acc'] .u-over")  # the overview again, whole
        pg.wait_for_function("() => !/[?&]zoom=/.test(location.hash)")
        wait_whole(pg, {"loss": over[0], "acc": over_acc[0]})
        assert data(pg, "loss") == over


@pytest.mark.timeout(180)
def test_a_grouped_compare_zoom_has_the_mean_and_std_of_every_step(browser, root, shots):
    """group=lr: the mean ± std across each group's seeds; zoomed, one bin per step (zoomed
    out a bin holds several steps, so the spike's mean is diluted there)."""
    page = "#/compare?" + "&".join(f"run={n}" for n in NAMES) + "&group=lr"
    with served(browser, root, page, console=True) as pg:
        wait_plots(pg)
        over, over_acc = overview(pg, "loss"), overview(pg, "acc")
        assert len(over[0]) < N / 2  # bins of several steps
        drag(pg, "#compare-charts .chart[data-key='loss']", (SPIKE - 100) / (N - 1), (SPIKE + 100) / (N - 1))
        pg.wait_for_function("() => /[?&]zoom=/.test(location.hash)")
        z = parse_zoom(url_zoom(pg))
        assert z[0] < SPIKE < z[1]
        wait_zoom_rows(pg, z, grouped=True)
        pg.locator("#compare-charts").screenshot(path=os.path.join(shots, "compare-zoom-03-grouped.png"))
        for key, fn in (("loss", value), ("acc", acc)):
            d = data(pg, key)
            steps = inside(z)
            assert d[0] == steps, key
            # per group, in the chips' order (lr=1, lr=2): -std, +std, mean
            for g, lr in enumerate((1, 2)):
                vals = np.array([[fn(lr, seed, s) for s in steps] for seed in (0, 1)])
                mean, std = vals.mean(axis=0), vals.std(axis=0)
                np.testing.assert_allclose(d[3 * g + 3], mean, rtol=1e-12, err_msg=f"{key} lr={lr}")
                np.testing.assert_allclose(d[3 * g + 1], mean - std, rtol=1e-9, atol=1e-12)
                np.testing.assert_allclose(d[3 * g + 2], mean + std, rtol=1e-9, atol=1e-12)
        i = inside(z).index(SPIKE)
        spike_mean = (SPIKE_VALUE + value(1, 1, SPIKE)) / 2
        assert data(pg, "loss")[3][i] == pytest.approx(spike_mean, rel=1e-12)
        assert max(v for v in over[3] if v is not None) < spike_mean  # (a bin of steps dilutes it)

        pg.reload()  # on load from the URL, grouped
        wait_plots(pg)
        wait_zoom_rows(pg, z, grouped=True)
        assert data(pg, "loss")[3][i] == pytest.approx(spike_mean, rel=1e-12)

        pg.dblclick("#compare-charts .chart[data-key='loss'] .u-over")
        pg.wait_for_function("() => !/[?&]zoom=/.test(location.hash)")
        wait_whole(pg, {"loss": over[0], "acc": over_acc[0]})
        assert data(pg, "loss") == over


LIVE = """
import sys, time, distlog
exp = distlog.get_logger(sys.argv[1], commit_interval=0.2)
v = lambda step: ((step * 104729) % 997) / 50.0
with exp.experiment("live"), exp.run("grow"):
    for step in range(3000):  # more rows than the chart keeps zoomed out
        exp.metrics.log(step=step, live=v(step))
    exp.metrics.commit()
    for step in range(3000, 4500):  # then 20 a second: at most ~75 s, even if the test dies
        exp.metrics.log(step=step, live=v(step))
        if step % 5 == 4:
            exp.metrics.commit()
            time.sleep(0.25)
"""


def live_value(step: int) -> float:
    return ((step * 104729) % 997) / 50.0


def done_value(step: int) -> float:
    return ((step * 7919) % 1000) / 100.0


@pytest.mark.timeout(180)
def test_a_zoomed_compare_chart_reads_a_live_runs_new_rows_in_the_range(browser, tmp_path, shots):
    """A finished run of 6000 steps beside a live one at ~3000: zoomed on 3000-3400, the rows
    the live run commits into the range are read (every one, its exact value), while the
    range stays the user's."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("live"), exp.run("done"):
        for step in range(6000):
            exp.metrics.log(step=step, live=done_value(step))
    exp.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
    proc = subprocess.Popen([sys.executable, "-c", LIVE, root], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "writer.log", "w"))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if distlog.open_run(os.path.join(root, "live", "grow")).metrics.lengths().get("live", 0) >= 3000:
                    break
            except FileNotFoundError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "writer.log").read_text()
            time.sleep(0.1)
        z = (3000, 3400)
        with served(browser, root, "#/compare?run=live/grow&run=live/done&zoom=3000-3400", console=True) as pg:
            wait_plots(pg, 1)
            wait_zoom_rows(pg, z, keys=("live",), n=6000)
            first = data(pg, "live")
            have = [s for s, v in zip(first[0], first[1]) if v is not None]
            assert have and have[-1] < 3300, have[-1:]  # the live run is still short of the range's end
            pg.wait_for_function(f"() => {{ const d = window.distlog.compare.plots[0].u.data;"
                                 f" return d[1].filter(v => v !== null && v !== undefined).length >= {len(have) + 40}; }}",
                                 timeout=40_000)
            d = data(pg, "live")
            assert pg.evaluate("() => [window.distlog.compare.plots[0].u.scales.x.min,"
                               " window.distlog.compare.plots[0].u.scales.x.max]") == list(z)
            assert url_zoom(pg) == "3000-3400"
            steps = rows_read(*z, 6000)
            assert d[0] == steps  # the finished run's every step of the range
            assert d[2] == [done_value(s) for s in steps]
            live = [(s, v) for s, v in zip(d[0], d[1]) if v is not None]
            last = live[-1][0]
            assert [s for s, _ in live] == list(range(2999, last + 1))  # the live run's every row there
            assert [v for _, v in live] == [live_value(s) for s in range(2999, last + 1)]
            pg.locator("#compare-charts").screenshot(path=os.path.join(shots, "compare-zoom-04-live.png"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
