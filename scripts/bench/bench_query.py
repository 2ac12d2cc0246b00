"""Query benchmark: series reads against TensorBoard, merged logs, and `distlog ls`.

    python scripts/bench/bench_query.py                 # ~3 minutes on 2 cores
    python scripts/bench/bench_query.py --points 200000 --lines 50000 --runs 200   # quick

In one process, on local disk (a temporary folder unless --workdir is given):

1. Series: one run logs ``--points`` scalars with ``exp.metrics.log`` (the real write path).
   Reading all committed rows back (``run.metrics.read`` as NumPy, ``run.metrics[key]`` as a
   DataFrame) is timed against TensorBoard's ``EventAccumulator`` reading the same points from
   an event file written by ``torch.utils.tensorboard.SummaryWriter`` (``size_guidance`` 0:
   every point, no reservoir sampling). Target: >= 100x faster.
2. Logs: ``--ranks`` x ``--lines`` text-log lines in the stored format, interleaved in time,
   mixed levels. Timed: merging every rank's file in time order, merging plus filters
   (level + regex; rank + step range), the last 100 lines, building records; then the same
   through the Zarr logs table rank 0 writes at close (and the time to write it).
   Target: merge and filter under 3 s.
3. ``distlog ls`` of ``--runs`` runs (copies of one real run, each its own run id), in
   process, output discarded. Target: under 2 s.

Times are the best of ``--repeat`` runs (the first read of a file also pays the page cache).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from typing import Any, Callable

import numpy as np

import distlog
from distlog.cli import main as cli_main
from distlog.layout import LOGS_DIR, LOGS_TABLE, PARAMS_FILE, RUN_FILE, rank_log_path, table_commit
from distlog.writers.logtable import write_logs_table


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_series(work: str, points: int, repeat: int, tensorboard: bool) -> list[list[Any]]:
    rows: list[list[Any]] = []
    root = os.path.join(work, "series")
    exp = distlog.get_logger(root)
    values = 1.0 / (1.0 + np.arange(points)) + np.random.default_rng(0).normal(0, 1e-3, points)
    t0 = time.perf_counter()
    with exp.experiment("bench"), exp.run("series"):
        log = exp.metrics.log
        for i, v in enumerate(values.tolist()):
            log(step=i, loss=v)
    write_s = time.perf_counter() - t0
    url = os.path.join(root, "bench", "series")
    t_np, s = best(lambda: distlog.open_run(url).metrics.read("loss"), repeat)
    assert len(s) == points and np.array_equal(s["value"], values)
    t_df, df = best(lambda: distlog.open_run(url).metrics["loss"], repeat)
    assert len(df) == points
    tb_read = tb_write = None
    if tensorboard:
        tb_write, tb_read = _tensorboard(work, values, repeat=1)
    rows.append([f"read {points:,} points, NumPy", t_np, tb_read, ratio(tb_read, t_np), ">= 100x"])
    rows.append([f"read {points:,} points, DataFrame", t_df, tb_read, ratio(tb_read, t_df), ">= 100x"])
    rows.append([f"(write {points:,} points: log() / SummaryWriter)", write_s, tb_write,
                 ratio(tb_write, write_s), "info"])
    return rows


def _tensorboard(work: str, values: np.ndarray, repeat: int) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from torch.utils.tensorboard import SummaryWriter

    logdir = os.path.join(work, "tb")
    t0 = time.perf_counter()
    w = SummaryWriter(logdir, max_queue=100_000, flush_secs=3600)
    for i, v in enumerate(values.tolist()):
        w.add_scalar("loss", v, i)
    w.close()
    write_s = time.perf_counter() - t0

    def read() -> list:
        acc = EventAccumulator(logdir, size_guidance={"scalars": 0})
        acc.Reload()
        return acc.Scalars("loss")

    read_s, events = best(read, repeat)
    assert len(events) == len(values)
    return write_s, read_s


def _write_rank_logs(run_dir: str, ranks: int, lines: int) -> None:
    """``lines`` records per rank in the stored line format, interleaved in time."""
    t0 = np.datetime64("2026-01-02T03:04:05", "us")
    levels = np.array(["DEBUG", "INFO", "INFO", "INFO", "INFO", "INFO", "INFO", "INFO", "WARNING",
                       "ERROR"])
    for rank in range(ranks):
        rng = np.random.default_rng(rank)
        i = np.arange(lines)
        stamps = t0 + (i * 4000 + rank * 300 + rng.integers(0, 200, lines)).astype("timedelta64[us]")
        text_t = np.datetime_as_string(stamps, unit="us")
        lv = levels[rng.integers(0, len(levels), lines)]
        loss = rng.random(lines)
        host = f"node{rank // 4}"
        mid = f"{host} n{rank // 4} r{rank} l{rank % 4} a0"
        body = "".join(
            f"{t}+00:00 {lvl} {mid} s{k // 10} step {k // 10} loss={x:.4f} tput={k % 997}.5\n"
            for t, lvl, k, x in zip(text_t.tolist(), lv.tolist(), i.tolist(), loss.tolist()))
        with open(os.path.join(run_dir, rank_log_path(rank, 0)), "w") as f:
            f.write(body)


def bench_logs(work: str, ranks: int, lines: int, repeat: int) -> list[list[Any]]:
    root = os.path.join(work, "logs")
    exp = distlog.get_logger(root)
    with exp.experiment("bench"), exp.run("logs"):
        pass
    run_dir = os.path.join(root, "bench", "logs")
    shutil.rmtree(os.path.join(run_dir, LOGS_DIR))
    os.makedirs(os.path.join(run_dir, LOGS_DIR))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(run_dir, table_commit(LOGS_TABLE)))
    _write_rank_logs(run_dir, ranks, lines)
    run = distlog.open_run(run_dir)
    total = ranks * lines
    what = f"{ranks} x {lines:,} lines"
    queries = [
        (f"merge {what}", {}),
        ("merge + level>=WARNING + regex", {"level": "WARNING", "grep": r"loss=0\.1"}),
        ("merge + rank 3 + step range", {"rank": 3, "steps": "1000:2000"}),
        ("last 100 lines", {"tail": 100}),
        ("last 100 ERROR lines", {"tail": 100, "level": "ERROR"}),
    ]
    rows: list[list[Any]] = []
    for source in ("text", "table"):
        if source == "table":
            t_write, _ = best(lambda: write_logs_table(run.storage), 1)
            rows.append([f"write the logs table ({what}, rank 0 at close)", t_write, None, None, "info"])
        for name, kw in queries:
            t, merged = best(lambda: run.logs.query(source=source, **kw), repeat)
            assert merged.source == source
            if not kw:
                assert len(merged) == total
            target = "< 3 s" if not kw.get("tail") else "info"
            rows.append([f"{name} [{source}] -> {len(merged):,}", t, None, None, target])
        t, recs = best(lambda: list(run.logs.query(source=source, level="WARNING",
                                                   grep=r"loss=0\.1")), repeat)
        rows.append([f"  ... and build those {len(recs):,} LogRecords [{source}]", t, None, None, "< 3 s"])
    return rows


def bench_ls(work: str, runs: int, repeat: int) -> list[list[Any]]:
    root = os.path.join(work, "many")
    exp = distlog.get_logger(root)
    with exp.experiment("sweep"), exp.run("template", params={"lr": 0.1, "seed": 0}):
        for i in range(100):
            exp.metrics.log(step=i, loss=1.0 / (i + 1))
        exp.info("hello")
    src = os.path.join(root, "sweep", "template")
    t0 = time.perf_counter()
    for k in range(runs):
        dst = os.path.join(root, "sweep", f"run-{k:05d}")
        shutil.copytree(src, dst)
        meta_path = os.path.join(dst, RUN_FILE)
        with open(meta_path) as f:
            meta = json.load(f)
        meta["run_id"] = f"run-{k:05d}"
        with open(meta_path, "w") as f:
            json.dump(meta, f)
        with open(os.path.join(dst, PARAMS_FILE), "w") as f:
            json.dump({"lr": [0.1, 0.01, 0.001][k % 3], "seed": k}, f)
    shutil.rmtree(src)
    setup = time.perf_counter() - t0

    def ls() -> int:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = cli_main(["ls", root])
        assert code == 0 and out.getvalue().count("\n") == runs + 2
        return code

    t_ls, _ = best(ls, repeat)
    t_table, table = best(lambda: distlog.open_root(root).table(), repeat)
    assert len(table) == runs
    t_sweep, _ = best(lambda: distlog.open_root(root).table(metrics=["loss"]), 1)
    return [
        [f"distlog ls, {runs:,} runs", t_ls, None, None, "< 2 s"],
        [f"open_root().table(), {runs:,} runs (params)", t_table, None, None, "info"],
        ["  ... with a final metric per run", t_sweep, None, None, "info"],
        [f"(make {runs:,} runs by copying one)", setup, None, None, "info"],
    ]


def ratio(baseline: float | None, ours: float) -> float | None:
    return None if baseline is None else baseline / ours


def show(rows: list[list[Any]]) -> str:
    header = ["benchmark", "distlog s", "baseline s", "ratio", "target"]

    def cell(v: Any, i: int) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.0f}x" if i == 3 else (f"{v:.3f}" if v < 10 else f"{v:.1f}")
        return str(v)

    cells = [header] + [[cell(v, i) for i, v in enumerate(r)] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(r, widths))) + " |"
    return "\n".join([fmt(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [fmt(r) for r in cells[1:]])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, default=1_000_000)
    p.add_argument("--ranks", type=int, default=8)
    p.add_argument("--lines", type=int, default=250_000, help="log lines per rank")
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--no-tensorboard", action="store_true", help="skip the TensorBoard baseline")
    p.add_argument("--only", choices=["series", "logs", "ls"], action="append")
    p.add_argument("--workdir", help="keep the data here (default: a temporary folder)")
    args = p.parse_args(argv)
    only = set(args.only or ["series", "logs", "ls"])
    work = args.workdir or tempfile.mkdtemp(prefix="distlog-bench-query-")
    os.makedirs(work, exist_ok=True)
    rows: list[list[Any]] = []
    try:
        if "series" in only:
            rows += bench_series(work, args.points, args.repeat, not args.no_tensorboard)
        if "logs" in only:
            rows += bench_logs(work, args.ranks, args.lines, args.repeat)
        if "ls" in only:
            rows += bench_ls(work, args.runs, args.repeat)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(f"distlog {distlog.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"local disk; best of {args.repeat}")
    print(show(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
