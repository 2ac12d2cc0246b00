"""Blosc settings on distlog's own chunks: one 8,192-row chunk of a scalars series, stored
column-major (the transpose codec), as the writer encodes it.

Chunks: logged rows (a value repeated in its value/mean/min/max/sum columns, count 1, no
ranks) for a random-walk loss, a decaying learning rate and an integer counter, and rows of
flushes reducing 10 values each (all columns differ). Reported per setting: encode and decode
time per chunk (best of 30) and the compression ratio. The series codec is ``_codecs()`` in
``distlog/writers/rowstore.py``.

    python scripts/bench/bench_codecs.py
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from numcodecs import Blosc

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402

ROWS = 8192
SETTINGS = [("zstd", 3, Blosc.SHUFFLE), ("zstd", 1, Blosc.SHUFFLE), ("zstd", 5, Blosc.SHUFFLE),
            ("lz4", 5, Blosc.SHUFFLE), ("lz4", 9, Blosc.SHUFFLE), ("lz4", 1, Blosc.SHUFFLE),
            ("zstd", 3, Blosc.BITSHUFFLE), ("lz4", 5, Blosc.BITSHUFFLE)]


def chunks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    steps = np.arange(ROWS, dtype=np.float64)
    times = 1.7e9 + steps * 3e-3 + rng.random(ROWS) * 1e-4

    def logged(v: np.ndarray) -> np.ndarray:
        r = np.empty((ROWS, 11))
        r[:, 0], r[:, 1] = steps, times
        r[:, 2:7] = v[:, None]
        r[:, 7:] = [1.0, 0.0, np.nan, np.nan]
        return r

    x = (rng.normal(size=ROWS).cumsum() * 0.01 + 1)[:, None] + rng.normal(size=(ROWS, 10)) * 0.1
    flushed = np.empty((ROWS, 11))
    flushed[:, 0], flushed[:, 1] = steps * 10, times
    flushed[:, 2] = flushed[:, 3] = x.mean(1)
    flushed[:, 4], flushed[:, 5], flushed[:, 6] = x.min(1), x.max(1), x.sum(1)
    flushed[:, 7], flushed[:, 8] = 10, 0
    flushed[:, 9:] = rng.integers(0, 8, (ROWS, 2))
    return {"logged loss": logged(rng.normal(size=ROWS).cumsum() * 0.01 + 1),
            "logged lr": logged(np.round(np.linspace(1e-3, 1e-5, ROWS), 8)),
            "logged counter": logged(steps * 32),
            "flushed (10 values each)": flushed}


def best_ms(fn, n: int = 30) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main() -> None:
    rows = []
    for name, data in chunks().items():
        block = np.ascontiguousarray(data.T)  # column-major, as stored
        for cname, level, shuffle in SETTINGS:
            codec = Blosc(cname=cname, clevel=level, shuffle=shuffle)
            encoded = codec.encode(block)
            rows.append([name, f"{cname}-{level} {'bit' if shuffle == Blosc.BITSHUFFLE else 'byte'}shuffle",
                         best_ms(lambda: codec.encode(block)), best_ms(lambda: codec.decode(encoded)),
                         block.nbytes / len(encoded)])
    print(table(rows, ["chunk (8,192 rows x 11)", "Blosc", "encode ms", "decode ms", "ratio"]))


if __name__ == "__main__":
    main()
