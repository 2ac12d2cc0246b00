#!/usr/bin/env python
"""The training-thread cost of logging CUDA values (run on a machine with CUDA): ``collect()``
of a 0-d CUDA tensor against a bare ``tensor.detach()`` kept in a list, and a ``flush()`` of
10 keys × 10 steps of them against the least any logger must do to read them (one
``torch.stack(...).cpu()`` of the 100 tensors: one host synchronisation).

    python scripts/bench/bench_collect_cuda.py [--n 2000] [--flushes 200]

Exits 2 without CUDA.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import per_call_ns, table  # noqa: E402

import torch  # noqa: E402

import distlog  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--flushes", type=int, default=200)
    ap.add_argument("--dry-run-on-cpu", action="store_true",
                    help="CPU tensors kept as CUDA ones are (a check of this script, no figures)")
    args = ap.parse_args()
    if args.dry_run_on_cpu:
        from distlog import metrics as distlog_metrics

        distlog_metrics.kept_on_device = lambda t: True
        torch.cuda.synchronize = lambda: None
        dev = torch.device("cpu")
    elif not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 2
    else:
        dev = torch.device("cuda")
    values = torch.randn(args.n, device=dev)
    parts = [values[i] for i in range(args.n)]
    w = torch.randn((), device=dev, requires_grad=True)
    graph = [values[i] * w for i in range(args.n)]  # a loss still attached to its graph
    exp = distlog.get_logger(tempfile.mkdtemp(), telemetry=False, heartbeat_interval=0)
    exp.start_run("bench")
    m = exp.metrics("train")
    kept: list = []

    def detach(k):
        kept.clear()
        for t in parts[:k]:
            kept.append(t.detach())

    def collect(k):
        for i in range(k):
            m.collect(loss=parts[i])

    def collect_graph(k):
        for i in range(k):
            m.collect(loss=graph[i])

    keys = [f"k{j}" for j in range(10)]
    window = [[values[(10 * s + j) % args.n] for j in range(10)] for s in range(10)]

    def timed_flushes(fn) -> float:
        best = float("inf")
        for _ in range(args.flushes):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best * 1e6

    def window_flush():
        for row in window:
            m.collect(dict(zip(keys, row)))
        t0 = time.perf_counter()
        exp.metrics.flush()
        return time.perf_counter() - t0

    def flush_only() -> float:
        best = float("inf")
        for _ in range(args.flushes):
            torch.cuda.synchronize()
            best = min(best, window_flush())
        return best * 1e6

    flat = [t for row in window for t in row]
    rows = [["collect(loss=<0-d CUDA tensor>), per call", per_call_ns(collect, args.n) / 1e3,
             per_call_ns(detach, args.n) / 1e3]]
    exp.metrics.flush()
    rows.append(["collect(loss=<CUDA tensor with grad>), per call",
                 per_call_ns(collect_graph, args.n) / 1e3, per_call_ns(detach, args.n) / 1e3])
    exp.metrics.flush()
    floor = timed_flushes(lambda: torch.stack(flat).cpu())
    rows.append(["flush() of 10 keys × 10 steps (collected before)", flush_only(), floor])
    exp.close()
    out = [[name, a, b, f"{a / b:.1f}×"] for name, a, b in rows]
    print(table(out, ["measure", "distlog µs", "baseline µs", "ratio"]))
    print("baselines: tensor.detach() + list.append per value; torch.stack(100 tensors).cpu() per flush")
    return 0


if __name__ == "__main__":
    sys.exit(main())
