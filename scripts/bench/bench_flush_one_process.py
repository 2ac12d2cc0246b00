#!/usr/bin/env python
"""One-process ``flush()``: training-thread CPU per flush (``time.thread_time``), median of
many flushes, best of 5 rounds, for 10 keys × 10 steps per window and 1,000 keys × 1 step.

    python scripts/bench/bench_flush_one_process.py [--flushes 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import distlog  # noqa: E402


def per_flush_us(keys: int, steps_per_flush: int, flushes: int, rounds: int = 5) -> float:
    with tempfile.TemporaryDirectory() as root:
        exp = distlog.get_logger(root)
        exp.start_run("bench")
        m = exp.metrics
        values = {f"k{i:04d}": 1.0 for i in range(keys)}
        step, best = 0, []
        for _ in range(rounds):
            times = []
            for _ in range(flushes):
                for _ in range(steps_per_flush):
                    m.collect(step=step, **values)
                    step += 1
                t0 = time.thread_time()
                m.flush()
                times.append(time.thread_time() - t0)
            best.append(statistics.median(times))
        exp.close()
    return min(best) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flushes", type=int, default=300)
    a = ap.parse_args()
    print(f"10 keys x 10 steps: {per_flush_us(10, 10, a.flushes):.1f} us per flush (target <= 10)")
    print(f"1,000 keys x 1 step: {per_flush_us(1000, 1, max(1, a.flushes // 3)):.1f} us per flush (target <= 200)")


if __name__ == "__main__":
    main()
