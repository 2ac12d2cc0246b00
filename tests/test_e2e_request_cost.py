"""Request cost on S3: PUTs are set by commits, chunks and segments, never by steps.

A single process flushes 20 metrics 200 times and logs a text line every step, through a
counting proxy in front of moto. One PUT per metric per flush would be 4,000 PUTs, one per
flush 200; the writer instead rewrites each series' tail chunk once per commit (time-driven:
``commit_interval``), writes one commit record per commit, and the text log goes out in
segments closed by size or age (and at close), not at every flush.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from distlog.layout import (ATTEMPTS_DIR, HEARTBEAT_DIR, SCALARS_TABLE, TELEMETRY_TABLE, is_chunk_key, rank_log_path, table_commit,
                            table_zarr)
from distlog.storage.base import SEGMENT_SUFFIX

N_FLUSHES, N_KEYS = 200, 20
INTERVAL, STEP_SECONDS = 0.25, 0.005


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_puts_are_bounded_by_commits_chunks_and_segments(s3_bucket: dict[str, Any]) -> None:
    import distlog
    from support.faultproxy import FaultProxy

    with FaultProxy(s3_bucket["endpoint_url"], fail_rate=0.0) as proxy:
        opts = {**s3_bucket["storage_options"], "endpoint_url": proxy.url}
        exp = distlog.get_logger(s3_bucket["url"], commit_interval=INTERVAL, **opts)
        with exp.experiment("cost"), exp.run("r"):
            run = exp.current_run
            t0 = time.monotonic()
            puts0 = proxy.count("PUT")
            for step in range(N_FLUSHES):
                exp.metrics("train").collect(step=step, **{f"k{i:02d}": step * 0.1 + i
                                                           for i in range(N_KEYS)})
                exp.metrics.flush()
                exp.info(f"step {step}", loss=step * 0.1)
                time.sleep(STEP_SECONDS)  # the "training": commits happen during the loop
            loop_puts = proxy.count("PUT") - puts0
            elapsed = time.monotonic() - t0
        writer = run.writers.main_writer
        assert writer is not None
    commits = writer.commits
    puts = proxy.count("PUT")
    scalars = f"/{table_zarr(SCALARS_TABLE)}/"
    chunks = sum(1 for m, p in proxy.log if m == "PUT" and f"{scalars}train/k" in p and is_chunk_key(p))
    arrays = sum(1 for m, p in proxy.log if m == "PUT" and scalars in p and p.endswith("/zarr.json"))
    records = proxy.count("PUT", f"/{table_commit(SCALARS_TABLE)}")
    segments = proxy.count("PUT", f"/{rank_log_path(0, 0)}{SEGMENT_SUFFIX}/")
    # per-rank telemetry (one series per field, written with the same commits) and heartbeats
    tele = proxy.count("PUT", f"/{TELEMETRY_TABLE}.")
    tele_series = len(reader_fields(s3_bucket))
    beats = proxy.count("PUT", f"/{HEARTBEAT_DIR}/")
    claims = proxy.count("PUT", f"/{ATTEMPTS_DIR}/")  # the attempt's claim, once
    detail = (f"{puts} PUTs for {N_FLUSHES} flushes of {N_KEYS} keys ({loop_puts} during the "
              f"loop): {chunks} chunk writes, {arrays} array metadata, {records} commit records, "
              f"{segments} log segments, {tele} telemetry ({tele_series} series), {beats} "
              f"heartbeats, {claims} attempt claim; {commits} commits in {elapsed:.1f} s")
    print(detail)
    # every stored row is there
    reader = distlog.open_run(f"{s3_bucket['url']}/cost/r", **s3_bucket["storage_options"])
    assert reader.metrics.lengths() == {f"train/k{i:02d}": N_FLUSHES for i in range(N_KEYS)}
    # commits are driven by time (commit_interval), not by flushes
    assert 1 <= commits <= elapsed / INTERVAL + 3, detail
    # each commit rewrites at most each series' tail chunk once, plus one commit record
    assert N_KEYS <= chunks <= commits * N_KEYS, detail
    assert records <= commits, detail
    # array metadata: created once, shrunk to size and consolidated at close
    assert arrays <= 3 * N_KEYS + 5, detail
    # text lines leave in segments closed by size or age (30 s) and at close, not per flush
    assert segments <= 2 + elapsed / 30, detail
    # telemetry: like any series (tail chunk per commit, metadata at creation and close);
    # heartbeats: at start, every 30 s, at close
    assert tele <= commits * (tele_series + 1) + 3 * tele_series + 5, detail
    assert beats <= 2 + elapsed / 30, detail
    assert claims == 1, detail
    # all told: a small fraction of the 4,000 values flushed, and independent of N_FLUSHES
    assert puts <= commits * (N_KEYS + 1) + arrays + segments + tele + beats + claims + 10, detail
    assert puts < N_FLUSHES * N_KEYS / 10, detail


def reader_fields(s3_bucket: dict[str, Any]) -> list[str]:
    import distlog
    from distlog.telemetry import FIELDS

    run = distlog.open_run(f"{s3_bucket['url']}/cost/r", **s3_bucket["storage_options"])
    return [f for f in run.telemetry.fields() if f in FIELDS]


def test_segments_close_by_size_or_age_not_at_every_flush() -> None:
    """``flush_due`` (called at every metrics flush) writes a segment only when it is full or
    ``max_age`` old; ``flush``/``close`` always write what is buffered."""
    import uuid

    from distlog import open_storage
    from distlog.storage.memory import discard_store

    name = f"t-{uuid.uuid4().hex[:12]}"
    b = open_storage(f"memory://{name}/r")
    try:
        app = b.open_appender("x.log", max_bytes=100, max_age=0.3)
        app.write("a\n")
        for _ in range(50):
            app.flush_due()
        assert b.segment_names("x.log") == []
        time.sleep(0.35)
        app.flush_due()  # old enough now
        assert len(b.segment_names("x.log")) == 1 and b.read_text("x.log") == "a\n"
        app.flush_due()  # nothing buffered: nothing written
        app.write("b" * 100)  # full: written by the write itself
        assert len(b.segment_names("x.log")) == 2
        app.write("c\n")
        app.close()
        assert len(b.segment_names("x.log")) == 3
        assert b.read_text("x.log") == "a\n" + "b" * 100 + "c\n"
    finally:
        discard_store(name)


def test_local_log_lines_are_on_disk_after_each_flush(tmp_path: Any) -> None:
    """On local disk (real appends) a metrics flush still makes every line durable."""
    import distlog

    exp = distlog.get_logger(str(tmp_path / "root"))
    with exp.experiment("e"), exp.run("r"):
        for step in range(3):
            exp.info(f"line {step}")
            exp.metrics.collect(step=step, x=1.0)
            exp.metrics.flush()
            text = (tmp_path / "root/e/r" / rank_log_path(0, 0)).read_text()
            assert f"line {step}\n" in text
