"""Log records survive odd content and racing readers: every line written is read back whole,
in the order it was written, at its level."""

from __future__ import annotations

import pytest

import distlog
from distlog.layout import rank_log_path
from distlog.logline import LogRecord, format_line
from distlog.query import open_run
from distlog.query import logtail
from distlog.query.logfilter import LogFilter


@pytest.mark.timeout(60)
def test_follow_keeps_written_order_of_lines_with_the_same_time(root):
    exp = distlog.get_logger(root)
    with exp.run("r"):
        pass
    run = open_run(f"{root}/default/r")
    path = run.storage.local_path(rank_log_path(1, 0))
    open(path, "w").close()
    msgs = ["step 10: saving checkpoint", "step 10: checkpoint saved", "step 10: barrier"]

    polls = []

    def sleep(_: float) -> None:  # the rank writes while follow waits after its first poll
        polls.append(1)
        if len(polls) > 1:
            return
        with open(path, "a") as f:
            for m in msgs:
                f.write(format_line(LogRecord(time=1.8e9 + 0.5, level="INFO", message=m, rank=1)))

    running = iter([True, False])
    lines = logtail.follow_lines(run.storage, LogFilter.make(rank=1), lambda: next(running, False),
                                 tail=0, poll=0, lag=0, sleep=sleep)
    assert [line.split(" s- ")[1] for line in lines] == msgs
    assert [r.message for r in run.logs.query(source="text", rank=1)] == msgs


LINE_BREAKS_OF_STR = ["page\x0cbreak", "para\u2028graph", "nel\x85x", "rec\x1esep", "v\x0btab"]


def test_get_logs_keeps_messages_with_characters_str_splitlines_breaks_at(root):
    exp = distlog.get_logger(root)
    with exp.run("r"):
        for m in LINE_BREAKS_OF_STR:
            exp.info(m)
        got = [r.message for r in exp.get_logs(limit=None)][1:]
    assert got == LINE_BREAKS_OF_STR


def test_table_parser_keeps_such_messages_next_to_a_line_in_another_layout():
    from distlog.writers.logtable import parse_columns

    lines = [format_line(LogRecord(time=1.8e9 + i, level="INFO", message=m))
             for i, m in enumerate(LINE_BREAKS_OF_STR)]
    other = "2027-01-15T09:00:00.000000+02:00 INFO h n0 r0 l0 a0 s- elsewhere\n"  # not the fast path
    cols = parse_columns("".join(lines) + other)
    assert [cols.record(i).message for i in range(len(cols))] == [*LINE_BREAKS_OF_STR, "elsewhere"]
