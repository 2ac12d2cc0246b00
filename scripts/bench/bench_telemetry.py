#!/usr/bin/env python
"""Cost of every-rank visibility: flush time with and without per-rank telemetry, at 1 and 4
gloo ranks; collectives per flush; heartbeat PUTs on S3.

Within one run the modes alternate flush by flush (so load drifts hit them alike):

* ``base``       no telemetry (``telemetry=False``)
* ``telemetry``  per-rank telemetry (the default)

Every flush names its argmin/argmax ranks: on the all_gather transport they come from the
gathered rows (a steady flush reduces them later, with the rows, off the training thread);
the all_reduce transport takes one more MAX pass for them.

Heartbeats: one process with ``heartbeat_interval`` = ``--hb-interval`` against moto S3
behind a counting proxy; PUTs per hour are scaled to the default interval (30 s).

    python scripts/bench/bench_telemetry.py [--ranks 1 4] [--keys 10] [--iters 200]
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests"))
from common import table  # noqa: E402

MODES = ("base", "telemetry")


def _rank(rank, world, init, root, keys, iters, q):
    os.environ["OMP_NUM_THREADS"] = "1"
    import numpy as np
    import torch.distributed as dist

    import distlog

    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=120))
    exp = distlog.get_logger(root, commit_interval=3600)
    exp.start_run(f"bench-{world}")
    run = exp.current_run
    comm, tele = run.comm, run.monitor.telemetry
    names = {f"k{i:03d}": 0.5 + rank + i for i in range(keys)}
    exp.metrics.collect(step=0, **names)
    exp.metrics.flush()  # agree on the key set once
    times = {m: [] for m in MODES}
    calls = {m: [] for m in MODES}
    step = 1
    for it in range(iters):
        for mode in MODES[it % 2:] + MODES[: it % 2]:  # rotated: no mode always goes first
            run.monitor.telemetry = tele if mode == "telemetry" else None
            exp.metrics.collect(step=step, **names)
            step += 1
            if world > 1:
                comm.barrier()
            before = comm.calls
            t0 = time.perf_counter()
            exp.metrics.flush()
            times[mode].append(time.perf_counter() - t0)
            calls[mode].append(comm.calls - before)
    run.monitor.telemetry = tele
    exp.close()
    if rank == 0:
        q.put({m: (statistics.median(times[m]), float(np.min(times[m])), max(calls[m])) for m in MODES})
    if world > 1:
        dist.destroy_process_group()


def bench_flush(worlds, keys, iters):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    rows = []
    for world in worlds:
        tmp = tempfile.mkdtemp()
        q = ctx.Queue()
        procs = [ctx.Process(target=_rank, args=(r, world, f"{tmp}/init", f"{tmp}/root", keys, iters, q))
                 for r in range(world)]
        for p in procs:
            p.start()
        res = q.get(timeout=900)
        for p in procs:
            p.join(60)
        base, base_min = res["base"][0], res["base"][1]
        for m in MODES:
            med, low, c = res[m]
            rows.append([world, keys, m, med * 1e6, (med / base - 1) * 100, low * 1e6,
                         (low / base_min - 1) * 100, c])
    print(table(rows, ["ranks", "keys", "mode", "median µs", "vs base %", "min µs", "vs base %",
                       "collectives"]))


def bench_heartbeats(seconds, interval):
    from moto.server import ThreadedMotoServer

    import distlog
    from distlog.layout import HEARTBEAT_DIR
    from support.faultproxy import FaultProxy
    from support.servers import s3_options, unique_bucket, _s3_request

    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    ep = f"http://{host}:{port}"
    bucket = unique_bucket()
    _s3_request("PUT", f"{ep}/{bucket}")
    try:
        with FaultProxy(ep, fail_rate=0.0) as proxy:
            exp = distlog.get_logger(f"s3://{bucket}/hb", heartbeat_interval=interval,
                                     **{**s3_options(ep), "endpoint_url": proxy.url})
            with exp.run("idle"):
                before = proxy.count("PUT", f"/{HEARTBEAT_DIR}/")
                t0 = time.monotonic()
                time.sleep(seconds)
                n = proxy.count("PUT", f"/{HEARTBEAT_DIR}/") - before
                elapsed = time.monotonic() - t0
    finally:
        server.stop()
    rate = n / elapsed
    print(f"\nheartbeats: {n} PUTs in {elapsed:.1f} s at heartbeat_interval={interval:g} s "
          f"({rate * 3600:.0f} per rank per hour); at the default 30 s: "
          f"{rate * 3600 * interval / 30:.0f} per rank per hour (+1 at start, +1 at close)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--hb-seconds", type=float, default=5.0)
    ap.add_argument("--hb-interval", type=float, default=0.25)
    args = ap.parse_args()
    bench_flush(args.ranks, args.keys, args.iters)
    bench_heartbeats(args.hb_seconds, args.hb_interval)


if __name__ == "__main__":
    main()
