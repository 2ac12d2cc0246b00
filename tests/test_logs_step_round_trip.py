"""A log record's step comes back exactly as it was logged: a fractional step (metrics take
``step=2.5``) through the text log, the logs table, the merged logs, their frame, the step
filter and ``distlog logs``; logs tables written before fractional steps still read."""

from __future__ import annotations

import numpy as np
import pytest

import distlog
from distlog import cli
from distlog.logline import LogRecord, format_line, parse_line
from distlog.query import open_run

#: logged steps (None: no step); the oracle for every reader below
STEPS = [0, 1, 2.5, 2.75, 3, 1e-05, 10**15 + 7, None, 7.125]


def _run_with_steps(root: str) -> str:
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        for i, s in enumerate(STEPS):
            if s is None:
                exp.logs.info(f"m{i}")
            else:
                exp.logs.info(f"m{i}", step=s)
    return f"{root}/e/r"


def _want() -> dict[str, object]:
    return {f"m{i}": s for i, s in enumerate(STEPS)}


def test_format_and_parse_keep_a_fractional_step():
    for s in STEPS:
        rec = LogRecord(time=1.8e9, level="INFO", message="x", step=s)
        back = parse_line(format_line(rec))
        assert back.step == s and type(back.step) is type(s)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", ["text", "table"])
def test_merged_logs_keep_every_step_exactly(root, source):
    run = open_run(_run_with_steps(root))
    merged = run.logs.query(source=source)
    got = {r.message: r.step for r in merged if r.message.startswith("m")}
    want = _want()
    if source == "table":  # the table holds float64 steps: exact for these
        assert set(got) == set(want)
    assert got == want
    assert all(type(got[k]) is type(v) for k, v in want.items())
    frame = merged.to_frame().set_index("message")
    for k, v in want.items():
        cell = frame.loc[k, "step"]
        assert (v is None and (cell is None or np.isnan(cell) or cell is np.nan)) or cell == v


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", ["text", "table"])
@pytest.mark.parametrize("steps", ["2.5:3", "2.6:", ":2.5", "2.75", (1, 2.75)])
def test_step_filter_selects_fractional_steps(root, source, steps):
    run = open_run(_run_with_steps(root))
    if isinstance(steps, tuple):
        lo, hi = steps
    elif ":" in steps:
        a, b = steps.split(":")
        lo, hi = (float(a) if a else None), (float(b) if b else None)
    else:
        lo = hi = float(steps)
    want = [k for k, s in _want().items() if s is not None
            and (lo is None or s >= lo) and (hi is None or s <= hi)]
    got = [r.message for r in run.logs.query(source=source, steps=steps)]
    assert got == want and want


@pytest.mark.timeout(60)
@pytest.mark.parametrize("raw", [False, True])
def test_cli_logs_prints_the_fractional_step(root, capsys, raw):
    path = _run_with_steps(root)
    rc = cli.main(["logs", path, "--step", "2.5:2.75", *(["--raw"] if raw else [])])
    out = capsys.readouterr().out
    assert rc == 0
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 2
    assert " s2.5 " in lines[0] and "m2" in lines[0]
    assert " s2.75 " in lines[1] and "m3" in lines[1]


@pytest.mark.timeout(60)
def test_a_logs_table_of_integer_steps_reads_as_before(root):
    """Tables store steps as float64 (NaN: none): integer steps still come back as ints."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        exp.logs.info("a", step=4)
        exp.logs.info("b")
    got = {r.message: r.step for r in open_run(f"{root}/e/r").logs.query(source="table")}
    assert got["a"] == 4 and type(got["a"]) is int and got["b"] is None


@pytest.mark.timeout(60)
def test_exp_step_with_a_fractional_step_stamps_metrics_logs_and_files_with_it(root):
    """``with exp.step(2.5)`` set ``int(2.5)``: a plain log/collect inside landed at step 2
    while ``metrics.log(step=2.5)`` lands at 2.5."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        with exp.step(2.5):
            exp.metrics.log(loss=1.0)
            exp.logs.info("inside")
            exp.files.save(b"x", "f.bin")
        with exp.step(3):
            exp.metrics.log(loss=2.0)
    run = open_run(f"{root}/e/r")
    assert run.metrics.read("loss").step.tolist() == [2.5, 3]
    assert [r.step for r in run.logs.query(source="text", grep="^inside$")] == [2.5]
    assert run.files.find("f.bin").step == 2.5


@pytest.mark.timeout(120)
def test_text_table_and_tail_answers_equal_a_plain_python_oracle(root):
    """Three ranks x two attempts of lines (fractional steps, equal times, other hosts and
    levels): every filter and tail, from the text and from the logs table, equals the records
    sorted by (time, rank, attempt) and filtered in plain Python."""
    import os
    import random
    import re

    from distlog.layout import rank_log_path
    from distlog.writers.logtable import write_logs_table

    rng = random.Random(7)
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        pass
    run = open_run(f"{root}/e/r")
    logs_dir = run.storage.local_path("logs")
    for name in os.listdir(logs_dir):
        os.remove(os.path.join(logs_dir, name))
    recs, t0 = [], 1.8e9
    for rank in range(3):
        for att in range(2):
            t, lines = t0 + 10 * att, []
            for i in range(25):
                t += rng.choice([0, 1e-6, 0.5])
                r = LogRecord(time=round(t, 6), level=rng.choice(["DEBUG", "INFO", "WARNING", "LEVEL35"]),
                              message=f"r{rank} a{att} i{i} " + rng.choice(["x", "foo", "a\nb"]),
                              host=rng.choice(["h1", "h2"]), rank=rank, attempt=att,
                              step=rng.choice([None, i, i + 0.5, 2.5]))
                recs.append(r)
                lines.append(format_line(r))
            with open(run.storage.local_path(rank_log_path(rank, att)), "w") as f:
                f.write("".join(lines))
    write_logs_table(run.storage)
    oracle = sorted(recs, key=lambda r: (r.time, r.rank, r.attempt))
    cases = [({}, lambda r: True), ({"rank": 1}, lambda r: r.rank == 1),
             ({"attempt": 1}, lambda r: r.attempt == 1),
             ({"level": "WARNING"}, lambda r: r.levelno >= 30),
             ({"steps": "2.5:5"}, lambda r: r.step is not None and 2.5 <= r.step <= 5),
             ({"steps": "2.5"}, lambda r: r.step == 2.5),
             ({"host": "h1", "attempt": 0}, lambda r: r.host == "h1" and r.attempt == 0),
             ({"grep": "foo|b$"}, lambda r: re.search("foo|b$", r.message) is not None)]
    for kw, keep in cases:
        want = [r for r in oracle if keep(r)]
        assert want
        for tail in (None, 1, 7):
            w = want if tail is None else want[-tail:]
            for source in ("text", "table"):
                got = list(run.logs.query(source=source, tail=tail, **kw))
                assert got == w, (kw, tail, source)
