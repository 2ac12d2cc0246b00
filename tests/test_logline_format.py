import time

import pytest

from distlog.logline import LogRecord, format_line, level_number, parse_line


@pytest.mark.parametrize("msg", ["plain", "multi\nline\r\nmsg", "tab\there", "back\\slash\\n", "", "  spaced  ", "ünïcødé ✓"])
def test_round_trip(msg):
    r = LogRecord(time=time.time(), level="WARNING", message=msg, host="node-1", rank=3,
                  local_rank=1, node=1, attempt=2, step=120, fields={"shape": [3, 4], "x": "a\tb"})
    line = format_line(r)
    assert line.count("\n") == 1 and line.endswith("\n")
    back = parse_line(line)
    assert back.message == msg
    assert (back.host, back.rank, back.local_rank, back.node, back.attempt, back.step) == ("node-1", 3, 1, 1, 2, 120)
    assert back.fields == {"shape": [3, 4], "x": "a\tb"}
    assert abs(back.time - r.time) < 1e-6  # microsecond resolution


def test_no_step_and_bad_lines():
    r = LogRecord(time=0.5, level="INFO", message="m")
    assert parse_line(format_line(r)).step is None
    with pytest.raises(ValueError, match="not a distlog log line"):
        parse_line("hello world")


def test_levels():
    assert level_number("warn") == 30 and level_number("error") == 40
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        level_number("LOUD")
