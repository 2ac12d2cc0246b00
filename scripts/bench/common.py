"""Small helpers shared by the benchmarks: timing and a plain-text table."""

from __future__ import annotations

import time
from typing import Callable


def per_call_ns(fn: Callable[[int], None], n: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs of ``fn(n)`` (which performs n calls), in ns per call: the
    least disturbed run, as timeit reports, since other load only ever adds time."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn(n)
        times.append((time.perf_counter_ns() - t0) / n)
    return min(times)


def table(rows: list[list[object]], header: list[str]) -> str:
    cells = [header] + [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]])
