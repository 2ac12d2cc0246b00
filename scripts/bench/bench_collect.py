#!/usr/bin/env python
"""(a) Per-call cost of ``collect()`` against ``list.append`` and TensorBoard's ``add_scalar``.

    python scripts/bench/bench_collect.py [--n 200000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import per_call_ns, table  # noqa: E402

import distlog  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    n = ap.parse_args().n
    tmp = tempfile.mkdtemp()
    exp = distlog.get_logger(tmp)
    exp.start_run("bench")
    m = exp.metrics
    train = exp.metrics("train")
    sink: list[float] = []

    def append(k):
        for i in range(k):
            sink.append(0.5)

    def collect(k):
        for i in range(k):
            m.collect(loss=0.5)

    add = exp.metrics("train").collector("hot")

    def collector(k):
        for i in range(k):
            add(0.5)

    def collect_ns_step(k):
        for i in range(k):
            train.collect(step=i, loss=0.5)

    import numpy as np

    x64 = np.float64(0.5)  # what np.mean() and friends return

    def collect_np(k):
        for i in range(k):
            m.collect(nploss=x64)

    import torch

    t = torch.tensor(0.5)

    def collect_tensor(k):
        for i in range(k):
            m.collect(tloss=t)

    from torch.utils.tensorboard import SummaryWriter

    tb = SummaryWriter(os.path.join(tmp, "tb"))

    def tb_add(k):
        for i in range(k):
            tb.add_scalar("loss", 0.5, i)

    rows = []
    for name, fn, k in [("list.append", append, n), ("collect(loss=x)", collect, n),
                        ("metrics('train').collect(step=i, loss=x)", collect_ns_step, n),
                        ("add = metrics('train').collector('hot'); add(x)", collector, n),
                        ("collect(loss=np.float64)", collect_np, n),
                        ("collect(0-d CPU tensor)", collect_tensor, n // 4),
                        ("TensorBoard add_scalar", tb_add, n // 10)]:
        ns = per_call_ns(fn, k)
        if fn is not append:
            m.flush()
        rows.append([name, ns])
    tb.close()
    exp.close()
    base = rows[0][1]
    print(table([[name, ns, ns / base] for name, ns in rows], ["call", "ns/call", "x list.append"]))


if __name__ == "__main__":
    main()
