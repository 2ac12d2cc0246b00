"""Small helpers shared by the benchmarks: timing and a plain-text table."""

from __future__ import annotations

import os
import shutil
import tempfile
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


def file_create_ms(parent: str | None = None, files: int = 200) -> float:
    """What creating (and closing) one empty file costs in a fresh folder under ``parent``
    (the system temporary folder by default, where the benchmarks' runs are written), in ms.
    A run's close creates ~60-80 files: on a folder where this is far above local disk's
    ~0.02 ms (some VMs' ``/tmp``: 0.4-1 ms), close times measure the folder. ``TMPDIR`` moves
    the benchmarks' runs."""
    d = tempfile.mkdtemp(dir=parent)
    try:
        t0 = time.perf_counter()
        for i in range(files):
            os.close(os.open(os.path.join(d, f"f{i}"), os.O_CREAT | os.O_WRONLY))
        return (time.perf_counter() - t0) / files * 1e3
    finally:
        shutil.rmtree(d, ignore_errors=True)


def folder_note(before: float) -> str:
    """One line saying where the benchmark's runs were written and what creating a file cost
    there ``before`` the runs (``file_create_ms()``) and now: it swings on some machines."""
    return (f"runs written under {tempfile.gettempdir()} (TMPDIR): creating a file there cost "
            f"{before:.3f} ms before the runs, {file_create_ms():.3f} ms after (local disk: ~0.02 ms)")
