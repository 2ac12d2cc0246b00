#!/usr/bin/env python
"""GPU check for collect()/flush() (run on a machine with CUDA; exits 0 when all checks pass).

1. ``collect()`` of 0-d CUDA tensors makes no host synchronisation: the loop runs under
   ``torch.cuda.set_sync_debug_mode("error")``, which raises on any implicit sync.
2. A flush of CUDA-resident values gives the same numbers as the same values on the CPU.
3. Telemetry carries the GPU's memory (torch.cuda) and utilisation (NVML, when installed).
4. The per-call cost of ``collect()`` of a CUDA tensor against a bare ``tensor.detach()``.
5. A CUDA tensor changed in place after its ``collect()`` is refused at the flush.
6. ``log_histogram`` of CUDA values with CUDA bin edges and range bounds.
7. Two ranks whose default process group is NCCL (as training scripts start it) collect CUDA
   tensors without a host synchronisation and flush through distlog's own gloo group: the
   reduced mean, min, max, sum and count equal NumPy's over both ranks' values.
"""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import torch

import distlog


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 2
    dev = torch.device("cuda")
    values = torch.randn(1000, dtype=torch.float32, device=dev)
    values[7] = float("nan")
    root = tempfile.mkdtemp()
    exp = distlog.get_logger(root)
    exp.start_run("gpu")
    cuda_ns = exp.metrics("cuda")
    for i in range(3):  # register keys first (first use validates names, off the hot path)
        cuda_ns.collect(loss=values[i])
    exp.metrics.flush()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(values.numel()):
            cuda_ns.collect(step=i, loss=values[i], scaled=values[i] * 2)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    print("collect() on CUDA tensors: no host synchronisation in 1000 calls")
    # the per-call cost on the training thread, against the least a logger must do with a
    # CUDA value (keep a detached reference), best of 5 runs of 1,000 calls each
    import time

    parts = [values[i] for i in range(values.numel())]
    timing = exp.metrics("timing")
    kept: list = []
    best = {"collect": float("inf"), "detach": float("inf")}
    for rep in range(5):
        t0 = time.perf_counter()
        for i, t in enumerate(parts):
            timing.collect(step=rep * 1000 + i, loss=t)
        best["collect"] = min(best["collect"], (time.perf_counter() - t0) / len(parts))
        kept.clear()
        t0 = time.perf_counter()
        for t in parts:
            kept.append(t.detach())
        best["detach"] = min(best["detach"], (time.perf_counter() - t0) / len(parts))
    print(f"collect(loss=<0-d CUDA tensor>): {best['collect'] * 1e6:.2f} µs per call; bare "
          f"tensor.detach() + list.append: {best['detach'] * 1e6:.2f} µs "
          f"({best['collect'] / best['detach']:.1f}×)")
    cpu_ns = exp.metrics("cpu")
    host = values.cpu()
    for i in range(host.numel()):
        cpu_ns.collect(step=i, loss=host[i], scaled=host[i] * 2)
    red = exp.metrics.flush()
    ok = True
    for key in ("loss", "scaled"):
        a, b = red[f"cuda/{key}"], red[f"cpu/{key}"]
        for stat in ("mean", "min", "max", "sum", "count", "nonfinite"):
            same = abs(a[stat] - b[stat]) <= 1e-6 * max(1.0, abs(b[stat]))
            ok &= same
            print(f"{key:>7} {stat:>9}: cuda {a[stat]: .9g}  cpu {b[stat]: .9g}  {'ok' if same else 'DIFFERENT'}")
    # an accumulator changed in place after collect() no longer holds the collected value:
    # the flush refuses it (ValueError) instead of reducing its later value
    acc = torch.zeros((), device=dev)
    for i in range(3):
        acc += values[i]
        cuda_ns.collect(step=2000 + i, acc=acc)
    try:
        exp.metrics.flush()
        refused = False
    except ValueError as e:
        refused = "changed in place" in str(e)
    ok &= refused
    print(f"a CUDA accumulator changed in place after collect(): {'refused' if refused else 'NOT REFUSED'}")
    # a histogram of CUDA values with CUDA bin edges and range bounds (read on the host)
    edges = torch.linspace(-4, 4, 9, device=dev)
    exp.metrics.log_histogram("cuda/h", values, bins=edges, step=0)
    exp.metrics.log_histogram("cuda/h", values, bins=edges.numel() - 1, step=1,
                              range=(edges[0], edges[-1]))
    exp.close()
    hist = distlog.open_run(f"{root}/default/gpu").metrics.histogram("cuda/h")
    finite = host[torch.isfinite(host)].double().numpy()
    want = np.histogram(finite, bins=np.linspace(-4, 4, 9))[0]
    same = all(row.tolist() == want.tolist() for row in hist.counts)
    ok &= same
    print(f"log_histogram of CUDA values and edges: {hist.counts.tolist()}  {'ok' if same else 'DIFFERENT'}")
    tel = distlog.open_run(f"{root}/default/gpu").telemetry
    for field in ("gpu_allocated", "gpu_reserved", "gpu_peak", "gpu_util"):
        have = field in tel.fields()
        vals = tel.matrix(field).values.ravel().tolist() if have else []
        good = have and all(v == v and v >= 0 for v in vals)  # no NaN, none negative
        ok &= good or field == "gpu_util"  # utilisation needs nvidia-ml-py
        print(f"telemetry {field:>13}: {vals}  {'ok' if good else 'MISSING'}")
    ok &= _two_nccl_ranks()
    return 0 if ok else 1


def _nccl_rank(rank: int, world: int, port: int, root: str, out: str) -> None:
    import json

    import torch.distributed as dist

    # lazily initialised NCCL (no device_id): both ranks may share this machine's one GPU, as
    # long as nothing runs a NCCL collective; distlog's flush uses a gloo group of its own
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        torch.manual_seed(0)
        values = torch.randn(1000, dtype=torch.float32).cuda()
        values[7] = float("nan")
        exp = distlog.get_logger(root)
        with exp.run("nccl"):
            exp.metrics.collect(step=0, loss=values[0])  # first use registers the key
            exp.metrics.flush()
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            try:
                for i in range(rank, values.numel(), world):
                    exp.metrics.collect(step=1, loss=values[i])
            finally:
                torch.cuda.set_sync_debug_mode("default")
            red = exp.metrics.flush()
        if rank == 0:
            with open(out, "w") as f:
                json.dump(red["loss"], f)
    finally:
        dist.destroy_process_group()


def _two_nccl_ranks() -> bool:
    import json
    import os
    import socket

    import torch.multiprocessing as mp

    if not torch.distributed.is_nccl_available():
        print("NCCL: not available in this torch; two-rank check skipped")
        return True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tempfile.mkdtemp()
    out = os.path.join(root, "reduced.json")
    mp.spawn(_nccl_rank, args=(2, port, root, out), nprocs=2, join=True)
    with open(out) as f:
        red = json.load(f)
    torch.manual_seed(0)
    vals = torch.randn(1000, dtype=torch.float32).double().numpy()
    vals[7] = np.nan
    fin = vals[np.isfinite(vals)]
    want = {"mean": fin.mean(), "min": fin.min(), "max": fin.max(), "sum": fin.sum(),
            "count": fin.size, "nonfinite": 1}
    ok = True
    for stat, w in want.items():
        same = abs(red[stat] - w) <= 1e-6 * max(1.0, abs(w))
        ok &= same
        print(f"two NCCL ranks, loss {stat:>9}: distlog {red[stat]: .9g}  numpy {w: .9g}  "
              f"{'ok' if same else 'DIFFERENT'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
