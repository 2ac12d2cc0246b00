"""Dashboard benchmark in headless Chromium (Debian's chromium, driven by Playwright).

    python scripts/bench/bench_dashboard.py                  # ~2-4 minutes on 2 cores
    python scripts/bench/bench_dashboard.py --points 200000 --runs 200 --no-tensorboard  # quick

1. A run with ``--points`` scalars written by ``exp.metrics.log`` (the real write path). The
   dashboard (``distlog serve``, a separate process) is opened on that run's charts: time from
   navigation start to the chart drawn (uPlot's first draw of the downsampled series), cold
   (the server has not read the series yet) and warm. Target: < 1 s.
2. ``--runs`` runs (copies of one real run, each its own id and params): time from
   navigation to the runs table rendered with every row, and the time to re-filter it.
   Target: < 1 s.
3. A live run (another process logs one row every 0.5 s and commits it): the delay from the
   row's logged time to the moment the open chart shows its step. Target: < 3 s.
4. The server process's resident memory while it serves the big run (psutil).
5. Baseline: TensorBoard on the same points (an event file from ``SummaryWriter``): time from
   starting ``tensorboard`` to its scalars API answering with the series, and to its
   time-series page drawing the chart (line in a scalar card). Skipped with --no-tensorboard.

Prints one table; nothing is left running.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

import distlog  # noqa: E402
from distlog.layout import PARAMS_FILE, RUN_FILE  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LIVE_WRITER = """
import sys, time, distlog
exp = distlog.get_logger(sys.argv[1], commit_interval=0.1)
with exp.experiment("bench"), exp.run("live"):
    for step in range(int(sys.argv[2])):
        exp.metrics.log(step=step, live=float(step))
        exp.metrics.commit()
        time.sleep(0.5)
"""


def write_big(root: str, points: int) -> np.ndarray:
    values = 1.0 / (1.0 + np.arange(points)) + np.random.default_rng(0).normal(0, 1e-3, points)
    values[points // 3] = 5.0  # one spike: it must survive downsampling
    exp = distlog.get_logger(root)
    with exp.experiment("bench"), exp.run("big"):
        log = exp.metrics.log
        for i, v in enumerate(values.tolist()):
            log(step=i, loss=v)
    return values


def write_many(root: str, runs: int) -> None:
    exp = distlog.get_logger(root)
    with exp.experiment("sweep"), exp.run("template", params={"lr": 0.1, "seed": 0}):
        for i in range(100):
            exp.metrics.log(step=i, loss=1.0 / (i + 1))
    src = os.path.join(root, "sweep", "template")
    for k in range(runs):
        dst = os.path.join(root, "sweep", f"run-{k:05d}")
        shutil.copytree(src, dst)
        with open(os.path.join(dst, RUN_FILE)) as f:
            meta = json.load(f)
        meta["run_id"] = f"run-{k:05d}"
        with open(os.path.join(dst, RUN_FILE), "w") as f:
            json.dump(meta, f)
        with open(os.path.join(dst, PARAMS_FILE), "w") as f:
            json.dump({"optim": {"lr": [0.1, 0.01, 0.001][k % 3]}, "seed": k, "model": "resnet"}, f)
    shutil.rmtree(src)


def start_server(root: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "distlog.cli", "serve", root, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    url = line.split(" at ", 1)[1].strip()
    for _ in range(200):
        try:
            with _direct.open(url + "api/meta", timeout=5):
                return proc, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the server did not answer at {url}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def first_chart_ms(page: Any, url: str, key: str) -> float:
    page.goto("about:blank")
    page.goto(url + f"#/run?path=bench/big&tab=charts")
    page.wait_for_function(f"() => window.distlog && window.distlog.firstDraw && window.distlog.firstDraw[{key!r}]",
                           timeout=120_000)
    return page.evaluate(f"() => window.distlog.firstDraw[{key!r}]")


def timings(page: Any) -> str:
    """Where the page's time went: module load, the run's metadata, the series request."""
    t = page.evaluate("""() => { const r = performance.getEntriesByType('resource');
        const end = (s) => { const e = r.filter(x => x.name.includes(s)); return e.length ? e[e.length - 1].responseEnd : null; };
        const series = r.filter(x => x.name.includes('api/series'));
        return { dom: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd, run: end('api/run?'),
                 series_start: series.length ? series[0].requestStart : null, series_end: end('api/series') }; }""")
    return ", ".join(f"{k} {v / 1e3:.2f} s" for k, v in t.items() if v is not None)


def bench_dashboard(work: str, points: int, runs: int, live_rows: int) -> tuple[list[list[Any]], dict]:
    import psutil
    from playwright.sync_api import sync_playwright

    rows: list[list[Any]] = []
    root = os.path.join(work, "root")
    t0 = time.perf_counter()
    if os.path.exists(os.path.join(root, "bench", "big")):  # --workdir of an earlier run: reuse
        shutil.rmtree(os.path.join(root, "bench", "live"), ignore_errors=True)
        write_s = float("nan")
    else:
        write_big(root, points)
        write_s = time.perf_counter() - t0
        write_many(root, runs)
    proc, url = start_server(root)
    mem = psutil.Process(proc.pid)
    peak = [mem.memory_info().rss]
    info: dict = {"write_s": write_s}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            cold = first_chart_ms(page, url, "loss")
            info["cold_breakdown"] = timings(page)
            peak.append(mem.memory_info().rss)
            warm = min(first_chart_ms(page, url, "loss") for _ in range(3))
            peak.append(mem.memory_info().rss)
            shown = page.evaluate("() => window.distlog.charts['loss'].values()")
            assert max(v for v in shown["value"] if v is not None) == 5.0, "the spike was lost"
            info["points_sent"] = len(shown["x"])
            rows.append([f"page load to first chart, {points:,}-point series (cold)", cold / 1e3, "< 1 s"])
            rows.append([f"page load to first chart, {points:,}-point series (warm)", warm / 1e3, "< 1 s"])
            rss = mem.memory_info().rss
            rows.append(["server memory serving it (RSS, MiB; peak sampled)", max(peak + [rss]) / 2**20, "info"])

            def table_ms() -> float:
                page.goto("about:blank")
                page.goto(url + "#/")
                page.wait_for_function(f"() => window.distlog.runsRendered && window.distlog.runsRendered.rows === {runs + 1}",
                                       timeout=120_000)
                return page.evaluate("() => window.distlog.runsRendered.at")

            cold_t = table_ms()
            warm_t = min(table_ms() for _ in range(3))
            rows.append([f"runs table of {runs:,} runs rendered (cold)", cold_t / 1e3, "< 1 s"])
            rows.append([f"runs table of {runs:,} runs rendered (warm)", warm_t / 1e3, "< 1 s"])
            t = time.perf_counter()
            page.fill("#runs-filter", "optim.lr=0.01")
            page.wait_for_function("() => window.distlog.runsRendered.rows < 1000")
            filt = page.evaluate("() => window.distlog.runsRendered.ms")
            rows.append([f"re-filter the {runs:,}-run table (render only / round trip)", filt / 1e3, "< 1 s"])
            rows[-1][1] = max(filt / 1e3, 0.0)
            info["filter_round_trip_s"] = time.perf_counter() - t
            lat = live_latency(page, url, root, live_rows)
            rows.append([f"committed row visible in an open chart (median of {len(lat)})", statistics.median(lat), "< 3 s"])
            rows.append(["committed row visible in an open chart (max)", max(lat), "< 3 s"])
            browser.close()
    finally:
        stop(proc)
    return rows, info


def live_latency(page: Any, url: str, root: str, n: int) -> list[float]:
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, root, str(n + 6)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_dir = os.path.join(root, "bench", "live")
        for _ in range(600):
            try:
                if distlog.open_run(run_dir).metrics.lengths().get("live"):
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        page.goto(url + "#/run?path=bench/live&tab=charts")
        page.wait_for_selector(".chart[data-key='live'][data-last-step]", timeout=60_000)
        page.evaluate("""() => { window.__seen = {};
            const el = document.querySelector(".chart[data-key='live']");
            new MutationObserver(() => { const s = el.dataset.lastStep; if (!(s in window.__seen)) window.__seen[s] = Date.now() / 1000; })
              .observe(el, { attributes: true, attributeFilter: ["data-last-step"] }); }""")
        writer.wait(timeout=n * 2 + 60)
        time.sleep(2.0)
        seen = page.evaluate("() => window.__seen")
        s = distlog.open_run(run_dir).metrics.read("live")
        logged = dict(zip(s.step.tolist(), s["time"].tolist()))
        # a row that arrived in the same poll as later ones is seen when the newest is drawn
        lat = []
        seen_steps = sorted((int(k), v) for k, v in seen.items())
        for step, t_logged in logged.items():
            later = [v for k, v in seen_steps if k >= step]
            if later and step > min(logged):
                lat.append(min(later) - t_logged)
        return lat
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def bench_tensorboard(work: str, points: int) -> list[list[Any]]:
    from playwright.sync_api import sync_playwright

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.utils.tensorboard import SummaryWriter
    values = 1.0 / (1.0 + np.arange(points))
    logdir = os.path.join(work, "tb")
    w = SummaryWriter(os.path.join(logdir, "big"), max_queue=100_000, flush_secs=3600)
    for i, v in enumerate(values.tolist()):
        w.add_scalar("loss", v, i)
    w.close()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tb = shutil.which("tensorboard") or os.path.join(os.path.dirname(sys.executable), "tensorboard")
    t0 = time.perf_counter()
    proc = subprocess.Popen([tb, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port),
                             "--reload_interval", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    rows: list[list[Any]] = []
    try:
        api_s = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                with _direct.open(f"{base}/data/plugin/scalars/scalars?run=big&tag=loss", timeout=30) as r:
                    data = json.loads(r.read())
                if data:
                    api_s = time.perf_counter() - t0
                    break
            except OSError:
                pass
            time.sleep(0.1)
        rows.append([f"TensorBoard: start to scalars API answering ({points:,} points)", api_s, "baseline"])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            t1 = time.perf_counter()
            page.goto(f"{base}/#timeseries")
            try:
                page.wait_for_selector("scalar-card line-chart canvas, scalar-card svg path.line, scalar-card line-chart",
                                       timeout=120_000)
                page.wait_for_timeout(0)
                page_s = time.perf_counter() - t1
            except Exception:  # noqa: BLE001 - TensorBoard's markup changes between versions
                page_s = None
            rows.append(["TensorBoard: page load to scalar chart (data already loaded)", page_s, "baseline"])
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--live-rows", type=int, default=12)
    ap.add_argument("--no-tensorboard", action="store_true")
    ap.add_argument("--workdir", help="keep the data here (a second run reuses it)")
    args = ap.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        print(f"skipped: no Chromium at {CHROMIUM} (apt-get install chromium)")
        return 0
    work = args.workdir or tempfile.mkdtemp(prefix="bench-dashboard-")
    try:
        rows, info = bench_dashboard(work, args.points, args.runs, args.live_rows)
        if not args.no_tensorboard:
            rows += bench_tensorboard(work, args.points)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(table([[r[0], "n/a" if r[1] is None else r[1], r[2]] for r in rows], ["measure", "seconds (or MiB)", "target"]))
    print(f"(cold first chart, from navigation start: {info['cold_breakdown']})")
    print(f"(writing {args.points:,} points with log(): {info['write_s']:.1f} s; points sent to the chart: "
          f"{info['points_sent']:,}; filter round trip incl. Playwright: {info['filter_round_trip_s']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
