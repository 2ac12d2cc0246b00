#!/usr/bin/env python
"""(b) Flush latency against one bare packed ``all_reduce``, at 2 and 4 gloo ranks.

For K keys each rank collects one value per key, then flushes; the baseline is one
``all_reduce`` of a float64 tensor of the packed size (5 K values) on the same group, timed
in the same processes. Also reports collective calls per steady-state flush and rank 0's
``put_many`` time per flush (rows reduced on the training thread and handed to the writer:
0 when the steady flush handed its window on unreduced, as it does on the all_gather
transport).

    python scripts/bench/bench_flush.py [--ranks 2 4] [--keys 1 10 100 1000] [--iters 50]
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
from common import table  # noqa: E402


def _rank(rank, world, init, root, keys_list, iters, q):
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    import torch.distributed as dist

    import distlog

    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))
    exp = distlog.get_logger(root, commit_interval=3600)
    exp.start_run(f"bench-{world}")
    run = exp.current_run
    group = run.comm.group
    out = []
    step = 0  # steps increase through the whole run, as in training (each key set its own series)
    for K in keys_list:
        names = [f"bench{K}/k{i:04d}" for i in range(K)]
        vals = {n: 0.5 + rank for n in names}
        exp.metrics.collect(step=step, **vals)
        exp.metrics.flush()  # agree on the key set once
        t_flush, t_base, calls, t_enqueue = [], [], [], []
        packed = torch.zeros(5 * K, dtype=torch.float64)
        writer = run.writers.main() if rank == 0 else None
        for it in range(iters):
            step += 1
            exp.metrics.collect(step=step, **vals)
            dist.barrier(group)
            before = run.comm.calls
            if writer is not None:
                real = writer.put_many
                spent = [0.0]

                def timed(*a, _real=real, _spent=spent):
                    t = time.perf_counter()
                    _real(*a)
                    _spent[0] += time.perf_counter() - t

                writer.put_many = timed
            t0 = time.perf_counter()
            exp.metrics.flush()
            t_flush.append(time.perf_counter() - t0)
            if writer is not None:
                writer.put_many = real
                t_enqueue.append(spent[0])
            calls.append(run.comm.calls - before)
            dist.barrier(group)
            t0 = time.perf_counter()
            dist.all_reduce(packed, group=group)
            t_base.append(time.perf_counter() - t0)
        out.append((K, statistics.median(t_flush), statistics.median(t_base), max(calls),
                    statistics.median(t_enqueue) if t_enqueue else float("nan")))
    exp.close()
    if rank == 0:
        q.put(out)
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ranks", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--keys", type=int, nargs="+", default=[1, 10, 100, 1000])
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    rows = []
    for world in args.ranks:
        tmp = tempfile.mkdtemp()
        q = ctx.Queue()
        procs = [ctx.Process(target=_rank, args=(r, world, f"{tmp}/init", f"{tmp}/root", args.keys, args.iters, q))
                 for r in range(world)]
        for p in procs:
            p.start()
        res = q.get(timeout=900)
        for p in procs:
            p.join(60)
        for K, tf, tb, calls, te in res:
            rows.append([world, K, tf * 1e3, tb * 1e3, tf / tb, calls, te * 1e6])
    print(table(rows, ["ranks", "keys", "flush ms", "bare all_reduce ms", "ratio", "collectives", "put_many µs (rank 0)"]))


if __name__ == "__main__":
    main()
