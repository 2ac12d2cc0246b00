"""A resumed attempt on an object store reads what earlier attempts stored concurrently: the
commit record, the array documents and the chunks of every series at once, not three or
four requests one after another per series (a requeued job with hundreds of series would
wait minutes before its first step)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

KEYS, ROWS, CHUNK = 24, 150, 64  # three chunks a series (the last one partial)
CUT = 100.0  # the checkpoint the second attempt resumes from
SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRST = """
import os, distlog
exp = distlog.get_logger({url!r}, chunk_rows={chunk}, telemetry=False, heartbeat_interval=0, **{opts!r})
with exp.experiment("e"):
    exp.start_run("resumed")
keys = {keys!r}
for step in range({rows}):
    exp.metrics.log({{k: i * 1000.0 + step for i, k in enumerate(keys)}}, step=step)
{end}
"""


def _values(key: int, steps: np.ndarray, attempt: int) -> np.ndarray:
    return key * 1000.0 + steps + attempt * 0.5


@pytest.mark.s3
@pytest.mark.timeout(240)
@pytest.mark.parametrize("closed", [True, False], ids=["closed", "killed"])
def test_a_resume_on_s3_reads_every_series_at_once(s3_bucket: dict[str, Any], closed: bool) -> None:
    import distlog
    from support.faultproxy import LatencyProxy

    keys = [f"train/k{i:02d}" for i in range(KEYS)]
    # the first attempt, in a process of its own: closed, or killed after a commit (no final
    # close: no consolidated metadata, arrays larger than their committed rows)
    script = FIRST.format(url=s3_bucket["url"], opts=s3_bucket["storage_options"], chunk=CHUNK, keys=keys,
                          rows=ROWS, end="exp.close()" if closed else "exp.metrics.commit(); os._exit(0)")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, env={**os.environ, "PYTHONPATH": SRC})
    with LatencyProxy(s3_bucket["endpoint_url"], delay=0.05) as proxy:
        opts = {**s3_bucket["storage_options"], "endpoint_url": proxy.url}
        exp2 = distlog.get_logger(s3_bucket["url"], chunk_rows=CHUNK, telemetry=False, heartbeat_interval=0, **opts)
        proxy.reset()
        with exp2.experiment("e"):
            exp2.start_run("resumed", resume="must", resume_step=CUT)
        series = [(m, p) for m, p, *_ in proxy.log if "/scalars.zarr/" in p]
        if os.environ.get("SHOWREQ"):
            t0 = proxy.times[0]
            print("\n".join(f"{t - t0:6.2f} {m} {p.rsplit('/e/', 1)[-1]}" for t, (m, p, *_) in zip(proxy.times, proxy.log)))
        detail = f"{len(proxy.log)} requests, at most {proxy.max_in_flight} at once: " + " ".join(
            f"{m} {p.rsplit('/e/', 1)[-1]}" for m, p, *_ in proxy.log)
        # per series: its three chunks (the steps), its document (unless the close consolidated
        # them) and the rewrite of the chunk the checkpoint cut; a few for the table itself
        assert len(series) <= KEYS * (3 + (0 if closed else 1) + 1) + 6, detail
        # many series' chunks at once: the next series' chunk GETs start before the previous
        # series' answers are back (each request is held 50 ms; one series after another: none
        # does). From arrival times, not requests in flight: the rewrites of the cut chunks go
        # out together too, and a loaded machine spreads the GETs ("> KEYS in flight" flaked)
        first: dict[str, float] = {}
        last: dict[str, float] = {}
        for t, (verb, p, *_) in zip(proxy.times, proxy.log):
            if verb == "GET" and (m := re.search(r"/scalars\.zarr/(.+)/c[./]\d", p)):
                first.setdefault(m.group(1), t)
                last[m.group(1)] = t
        order = sorted(first, key=first.get)
        overlapping = sum(first[b] < last[a] + 0.05 for a, b in zip(order, order[1:]))
        assert len(order) == KEYS and overlapping >= KEYS // 2, f"{overlapping} series overlap: {detail}"
        chunks = [p for m, p in series if m == "GET" and "/train/" in p]
        assert len(chunks) == len(set(chunks)), f"read twice: {detail}"
        assert not [p for m, p in series if p.endswith((".zgroup", ".zattrs", ".zarray", ".zmetadata"))], detail
        for step in range(int(CUT) + 1, ROWS + 20):
            exp2.metrics.log({k: _values(i, np.float64(step), 1) for i, k in enumerate(keys)}, step=step)
        exp2.close()

    run = distlog.open_run(f"{s3_bucket['url']}/e/resumed", **s3_bucket["storage_options"])
    for i, k in enumerate(keys):
        frame = run.metrics.frame(k)
        steps = np.arange(ROWS + 20, dtype=np.float64)
        want = np.where(steps <= CUT, _values(i, steps, 0), _values(i, steps, 1))
        np.testing.assert_array_equal(frame["step"].to_numpy(np.float64), steps)
        np.testing.assert_array_equal(frame["value"].to_numpy(), want)


@pytest.mark.s3
@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", ["rewind", "append"])
def test_a_resume_reads_each_chunk_once_and_an_appending_attempt_only_the_last(s3_bucket: dict[str, Any],
                                                                              mode: str) -> None:
    """Without a checkpoint, a rewinding attempt reads every chunk once at its first row
    (each chunk's first step then finds the cut without reading the series again: here in the
    last chunk, which stays decoded; a cut in an earlier chunk reads that one chunk again); an
    attempt that only appends (an evaluation: ``run.rewind = False``) reads each series' last
    chunk."""
    import distlog
    from support.faultproxy import LatencyProxy

    keys = [f"train/k{i:02d}" for i in range(KEYS)]
    script = FIRST.format(url=s3_bucket["url"], opts=s3_bucket["storage_options"], chunk=CHUNK, keys=keys,
                          rows=ROWS, end="exp.close()")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, env={**os.environ, "PYTHONPATH": SRC})
    first = 2 * CHUNK + 12 if mode == "rewind" else ROWS  # (rewind: a cut inside the last chunk)
    with LatencyProxy(s3_bucket["endpoint_url"], delay=0.02) as proxy:
        opts = {**s3_bucket["storage_options"], "endpoint_url": proxy.url}
        exp = distlog.get_logger(s3_bucket["url"], chunk_rows=CHUNK, telemetry=False, heartbeat_interval=0, **opts)
        with exp.experiment("e"):
            exp.start_run("resumed", resume="must")
        exp.current_run.rewind = mode == "rewind"
        proxy.reset()
        for step in range(first, ROWS + 20):
            exp.metrics.log({k: _values(i, np.float64(step), 1) for i, k in enumerate(keys)}, step=step)
        exp.metrics.commit()
        chunks = [p for m, p, *_ in proxy.log if m == "GET" and "/train/" in p and "/c." in p]
        assert len(chunks) == len(set(chunks)), f"a chunk read twice: {sorted(chunks)}"
        assert len(chunks) == KEYS * (3 if mode == "rewind" else 1), sorted(chunks)
        exp.close()
    run = distlog.open_run(f"{s3_bucket['url']}/e/resumed", **s3_bucket["storage_options"])
    steps = np.arange(ROWS + 20, dtype=np.float64)
    for i, k in enumerate(keys):
        frame = run.metrics.frame(k)
        np.testing.assert_array_equal(frame["step"].to_numpy(np.float64), steps)
        np.testing.assert_array_equal(frame["value"].to_numpy(), np.where(steps < first, _values(i, steps, 0),
                                                                         _values(i, steps, 1)))


@pytest.mark.s3
@pytest.mark.timeout(240)
def test_a_resume_with_other_chunk_rows_on_s3_stores_every_new_row(s3_bucket: dict[str, Any]) -> None:
    """Series an earlier attempt stored with other chunk rows are written through zarr: its
    array growth ran as a coroutine that opened the table's group synchronously inside zarr's
    event loop (SyncError), and every new row was lost."""
    import distlog

    opts = s3_bucket["storage_options"]
    exp = distlog.get_logger(s3_bucket["url"], chunk_rows=8, telemetry=False, heartbeat_interval=0, **opts)
    with exp.experiment("e"):
        exp.start_run("r")
    for step in range(20):
        exp.metrics.log({"loss": float(step)}, step=step)
    exp.close()
    exp = distlog.get_logger(s3_bucket["url"], chunk_rows=4, telemetry=False, heartbeat_interval=0, **opts)
    with exp.experiment("e"):
        exp.start_run("r", resume="must")
    for step in range(20, 300):
        exp.metrics.log({"loss": step + 0.5}, step=step)
    exp.close()
    steps = np.arange(300.0)
    frame = distlog.open_run(f"{s3_bucket['url']}/e/r", **opts).metrics.frame("loss")
    np.testing.assert_array_equal(frame["value"].to_numpy(), np.where(steps < 20, steps, steps + 0.5))
