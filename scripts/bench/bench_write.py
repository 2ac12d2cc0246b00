#!/usr/bin/env python
"""(c) Rank 0's write throughput (points/s) against writing the same NumPy arrays straight to Zarr.

distlog: rows enter the background writer one flush at a time (K keys per flush) and reach
Zarr as whole chunks plus a commit record, exactly as in a run. Direct: the same rows, already
stacked per key, written with one ``zarr.create_array`` + one assignment per key (the fastest a
hand-written exporter could do, knowing all data up front).

    python scripts/bench/bench_write.py [--keys 100] [--flushes 20000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

from distlog.layout import SCALARS_TABLE  # noqa: E402
from distlog.metrics import SCALAR_COLUMNS  # noqa: E402
from distlog.storage import open_storage  # noqa: E402
from distlog.writers.rowstore import DEFAULT_CHUNK_ROWS, BackgroundWriter, RowTable, _codecs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--flushes", type=int, default=20_000)
    a = ap.parse_args()
    K, N, W = a.keys, a.flushes, len(SCALAR_COLUMNS)
    keys = tuple(f"train/k{i:04d}" for i in range(K))
    rng = np.random.default_rng(0)
    data = rng.normal(size=(N, K, W))
    data[:, :, 0] = np.arange(N)[:, None]
    points = N * K

    tmp = tempfile.mkdtemp()
    store = open_storage(os.path.join(tmp, "distlog"))
    w = BackgroundWriter({SCALARS_TABLE: RowTable(store, SCALARS_TABLE, SCALAR_COLUMNS)}, commit_interval=10.0)
    t0 = time.perf_counter()
    enqueue = 0.0
    for i in range(N):
        t = time.perf_counter()
        w.put_many(SCALARS_TABLE, keys, data[i])
        enqueue += time.perf_counter() - t
    w.close(finalize=True)
    t_distlog = time.perf_counter() - t0

    import zarr

    direct = zarr.open_group(store=zarr.storage.LocalStore(os.path.join(tmp, "direct.zarr")), mode="w")
    t0 = time.perf_counter()
    for j, k in enumerate(keys):
        arr = direct.create_array(k, shape=(N, W), chunks=(DEFAULT_CHUNK_ROWS, W), dtype="float64",
                                  fill_value=np.nan, **_codecs())
        arr[:] = data[:, j, :]
    t_direct = time.perf_counter() - t0

    rows = [["distlog (background writer, incl. close)", points / t_distlog, t_distlog],
            ["zarr direct (all data known up front)", points / t_direct, t_direct]]
    print(table([[r[0], f"{r[1]:,.0f}", r[2]] for r in rows], ["writer", "points/s", "seconds"]))
    print(f"ratio distlog/direct throughput: {t_direct / t_distlog:.2f}; "
          f"training-thread enqueue per flush of {K} keys: {enqueue / N * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
