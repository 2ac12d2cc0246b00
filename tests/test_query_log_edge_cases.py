"""Merged logs at the edges: restart attempts, torn and foreign lines, tails longer than a
read block, segmented logs on an object store, and the logs table across generations."""

from __future__ import annotations

import uuid

import pytest

from distlog.layout import LOGS_TABLE, rank_log_path, table_commit, table_zarr
import distlog
from distlog.logline import LogRecord, format_line
from distlog.query import RankNotFound, open_run
from distlog.query.logtail import BLOCK
from distlog.writers.logtable import read_logs_table, write_logs_table


def _two_attempts(root: str):
    exp = distlog.get_logger(root)
    for attempt in range(2):
        with exp.experiment("e"), exp.run("resumed"):
            for i in range(5):
                exp.info(f"attempt {attempt} step {i}", step=i)
    return open_run(f"{root}/e/resumed")


def test_attempts_are_merged_and_filterable(tmp_path):
    run = _two_attempts(str(tmp_path / "root"))
    assert run.logs.attempts() == [0, 1] and len(run.info.attempts) == 2
    msgs = [r.message for r in run.logs.query(grep="^attempt")]
    assert msgs == [f"attempt {a} step {i}" for a in range(2) for i in range(5)]
    assert {r.attempt for r in run.logs.query(attempt=1)} == {1}
    assert [r.message for r in run.logs.query(attempt=1, grep="step 4")] == ["attempt 1 step 4"]
    with pytest.raises(RankNotFound, match="attempts: 0, 1"):
        run.logs.query(attempt=2)


def _write(run, rank: int, text: str, attempt: int = 0) -> None:
    path = run.storage.local_path(rank_log_path(rank, attempt))
    with open(path, "a") as f:
        f.write(text)


def test_torn_last_line_waits_and_foreign_lines_are_skipped(tmp_path):
    run = _two_attempts(str(tmp_path / "root"))
    before = run.logs.query().lines
    rec = LogRecord(time=4102444800.0, level="INFO", message="the end", rank=0)
    line = format_line(rec)
    _write(run, 0, "not a log line at all\n" + line[:20], attempt=1)  # a crash mid-write
    assert run.logs.query().lines == before
    assert run.logs.query(tail=1).lines == before[-1:]
    _write(run, 0, line[20:], attempt=1)
    assert run.logs.query(tail=1)[0].message == "the end"
    assert len(run.logs.query()) == len(before) + 1


def test_line_in_another_utc_offset_is_normalised_and_ordered(tmp_path):
    run = _two_attempts(str(tmp_path / "root"))
    first = run.logs.query()[0]
    # one second before the first record, written with a +02:00 offset
    import datetime as dt

    t = dt.datetime.fromtimestamp(first.time - 1, dt.timezone(dt.timedelta(hours=2)))
    _write(run, 3, f"{t.isoformat(timespec='microseconds')} WARNING elsewhere n0 r3 l0 a0 s- early\n")
    merged = run.logs.query()
    assert merged[0].message == "early" and merged[0].time == pytest.approx(first.time - 1)
    assert [r.message for r in run.logs.query(level="WARNING")] == ["early"]


def test_tail_reads_backwards_across_blocks(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"))
    with exp.experiment("big"), exp.run("r"):
        pad = "y" * 200
        for i in range(BLOCK // 150):  # > 1 MiB: several backward blocks
            exp.info(f"n {i} {pad}", step=i)
    run = open_run(tmp_path / "root" / "big" / "r")
    full = run.logs.query(source="text")
    for n in (1, 50, 6000, len(full) + 10):
        assert run.logs.query(tail=n, source="text").lines == full.lines[-n:]
    every_1000 = run.logs.query(grep=r"^n \d+000 ", source="text")
    assert run.logs.query(tail=3, grep=r"^n \d+000 ", source="text").lines == every_1000.lines[-3:]


def test_segmented_logs_on_an_object_store(tmp_path):
    root = f"memory://t-{uuid.uuid4().hex[:12]}/root"
    exp = distlog.get_logger(root, segment_max_bytes=2000)  # many small segments
    try:
        with exp.experiment("obj"), exp.run("seg"):
            for i in range(300):
                exp.warning(f"warn {i}") if i % 3 == 0 else exp.info(f"info {i}", step=i)
        run = open_run(f"{root}/obj/seg")
        assert len(run.storage.segment_names(rank_log_path(0, 0))) > 5
        msgs = [r.message for r in run.logs.query(grep=r"^(warn|info) ")]
        assert msgs == [f"{'warn' if i % 3 == 0 else 'info'} {i}" for i in range(300)]
        assert [r.message for r in run.logs.query(tail=2, level="WARNING")] == ["warn 294", "warn 297"]
        followed = [r.message for r in run.logs.follow(tail=4, poll=0.01, lag=0.0)]
        assert followed == [r.message for r in run.logs.query(tail=4)]
        write_logs_table(run.storage)
        assert run.logs.query().source == "table"
        assert run.logs.query(tail=2, level="WARNING").lines == \
            run.logs.query(tail=2, level="WARNING", source="text").lines
    finally:
        from distlog.storage.memory import discard_store

        discard_store(root.split("/")[2])


def test_logs_table_rewrite_keeps_one_generation(tmp_path):
    run = _two_attempts(str(tmp_path / "root"))
    write_logs_table(run.storage)
    first = run.storage.read_json(table_commit(LOGS_TABLE))["generation"]
    write_logs_table(run.storage)
    second = run.storage.read_json(table_commit(LOGS_TABLE))["generation"]
    assert first != second and run.storage.list_dir(table_zarr(LOGS_TABLE)) == [second]
    assert run.logs.query().source == "table"
    assert run.logs.query().lines == run.logs.query(source="text").lines
    table = read_logs_table(run.storage)
    assert table.rows == len(run.logs.query(source="text"))
    run.storage.delete(table_commit(LOGS_TABLE))  # as if the run died before closing
    assert run.logs.query().source == "text"
    with pytest.raises(FileNotFoundError, match="no current logs table"):
        run.logs.query(source="table")


def test_escaped_and_non_ascii_messages_round_trip_through_the_table(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"))
    messages = ["two\nlines", "tab\there", "back\\slash \\n not a newline", "café 日本", "", "plain"]
    with exp.experiment("esc"), exp.run("r"):
        for i, m in enumerate(messages):
            exp.info(m, step=i, detail={"k": m})
    run = open_run(tmp_path / "root" / "esc" / "r")
    table = run.logs.query(steps="0:")
    assert table.source == "table"  # written when the run closed
    assert [r.message for r in table] == messages
    assert [r.fields for r in table] == [{"detail": {"k": m}} for m in messages]
    assert list(table) == list(run.logs.query(steps="0:", source="text"))
    assert [r.message for r in run.logs.query(grep="^two\nl")] == ["two\nlines"]
    assert [r.message for r in run.logs.query(tail=2, steps="0:")] == messages[-2:]
    assert run.logs.to_frame(steps="0:")["message"].tolist() == messages


def test_rank_and_attempt_filters_take_numpy_ints_and_refuse_what_is_no_int(tmp_path):
    """``query(rank=np.int64(1))`` raised "'numpy.int64' object is not iterable";
    ``rank=[1.7]`` silently meant rank 1; now NumPy ints count and anything else is refused
    with what was expected."""
    import numpy as np

    from distlog.query.logfilter import LogFilter

    assert LogFilter.make(rank=np.int64(1), attempt=np.int32(0)).ranks == {1}
    assert LogFilter.make(rank=[0, np.int32(2)], attempt="0,1").attempts == {0, 1}
    assert LogFilter.make(rank=np.array([0, 3])).ranks == {0, 3}
    for bad in (1.7, [1.7], True, {1: 2}):
        with pytest.raises(TypeError, match=r"rank=.*e\.g\. rank=0"):
            LogFilter.make(rank=bad)
    with pytest.raises(ValueError, match="rank='a': expected whole numbers separated by commas"):
        LogFilter.make(rank="a")
    with pytest.raises(TypeError, match="attempt=0.5"):
        LogFilter.make(attempt=0.5)


def test_the_logs_merge_lists_each_ranks_segments_once_on_an_object_store():
    """On an object store each rank's text log is segments: the close's merge lists them once
    per rank (its signature and its bytes from the same listing) and looks for no plain
    object first. Before: 1 + 2N listings and N GETs that found nothing, at every close."""
    import uuid

    from distlog.storage.memory import discard_store

    url = f"memory://logs-{uuid.uuid4().hex}/root"
    try:
        exp = distlog.get_logger(url, heartbeat_interval=0)
        with exp.run("r"):
            for i in range(30):
                exp.info(f"line {i}", step=i)
        storage = open_run(f"{url}/default/r").storage
        listed, got = [], []
        real_list, real_read = storage.list_dir, storage._read_object
        storage.list_dir = lambda p: listed.append(p) or real_list(p)
        storage._read_object = lambda p: got.append(p) or real_read(p)
        write_logs_table(storage)
        sources = [p for p in real_list("logs") if p.endswith(".log.seg") or p.endswith(".log")]
        assert len(sources) == 1
        assert listed.count("logs") == 1 and len(listed) == 2 + 1, listed  # + the old generations' cleanup
        assert not [p for p in got if p.endswith(".log")], got  # no plain-object GET of a segmented log
        run = open_run(f"{url}/default/r")
        assert run.logs.query().source == "table"
        assert [r.message for r in run.logs.query(level="INFO")] == [f"line {i}" for i in range(30)]
    finally:
        discard_store(url.split("/")[2])
