"""`distlog logs --follow`: streams a running job's lines in order and exits when it ends;
on a finished run it prints the tail and exits at once."""

from __future__ import annotations

import pytest

from distlog.cli import main
from support.cli_tree import build_tree
from support.live_writer import start_live_writer


@pytest.mark.timeout(120)
def test_follow_a_finished_run_prints_its_tail(tmp_path, capsys):
    root = build_tree(tmp_path / "root")
    code = main(["logs", str(root / "mnist/sweep/run-a"), "--follow", "--tail", "2", "--poll", "0.01"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.rsplit("  ", 1)[1] for line in out] == ["done", "run ended: completed"]


@pytest.mark.timeout(180)
def test_follow_a_running_job(tmp_path, capsys):
    proc, url = start_live_writer(tmp_path, steps=400, pause=0.004)
    try:
        code = main(["logs", url, "--follow", "--tail", "100000", "--poll", "0.05", "--lag", "0.2",
                     "--raw", "--grep", "^line", "--level", "INFO"])
    finally:
        proc.join(60)
    assert code == 0 and proc.exitcode == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split(" line ")[1].split()[0]) for line in lines] == list(range(400))


@pytest.mark.timeout(60)
def test_follow_a_rank_of_a_running_run_that_has_not_logged_yet_waits_for_it(tmp_path):
    """A rank whose log is not there yet (it starts later) is waited for while the run runs;
    once the run is over, asking for a rank that never logged is an error naming the ranks."""
    import distlog
    from distlog.query import RankNotFound

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0.2)
    with exp.run("r"):
        run = distlog.open_run(f"{tmp_path}/default/r")
        assert list(run.logs.follow(rank=1, timeout=0.3, poll=0.05)) == []
    with pytest.raises(RankNotFound, match="ranks with logs: 0"):
        list(distlog.open_run(f"{tmp_path}/default/r").logs.follow(rank=1, timeout=5))


@pytest.mark.timeout(60)
def test_a_line_half_written_when_follow_starts_is_shown_once_it_ends(tmp_path):
    """Following started at the file's end, past the torn bytes: the line's second half then
    read as a broken line and was dropped, so the line was never shown."""
    import threading
    import time

    import distlog
    from distlog.logline import LogRecord, format_line

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        exp.info("before")
        path = tmp_path / "root" / "e" / "r" / "logs" / "rank-00000.attempt-0.log"
        line = format_line(LogRecord(time=time.time(), level="INFO", message="the line being written", host="h"))
        with open(path, "a") as f:  # a writer caught mid-line
            f.write(line[: len(line) // 2])
        run = distlog.open_run(f"{root}/e/r")
        got: list[str] = []
        started = threading.Event()

        def follow() -> None:
            for r in run.logs.follow(tail=10, poll=0.05, lag=0.0, timeout=3):
                got.append(r.message)
                started.set()

        t = threading.Thread(target=follow)
        t.start()
        assert started.wait(10)  # the tail ("before") is out: following has begun
        with open(path, "a") as f:
            f.write(line[len(line) // 2 :])
        exp.info("after")
        t.join(30)
    assert [m for m in got if m in ("before", "the line being written", "after")] == [
        "before", "the line being written", "after"], got


@pytest.mark.timeout(40)
def test_follow_ends_on_a_run_whose_heartbeats_stopped(tmp_path, monkeypatch):
    """A killed job never records that it ended: following went on until it was interrupted,
    though `distlog show` already called the run stale."""
    import subprocess
    import sys
    import time

    import distlog

    root = str(tmp_path / "root")
    monkeypatch.setenv("DISTLOG_STALE_AFTER", "1")
    script = (f"import os, distlog\nexp = distlog.get_logger({root!r}, heartbeat_interval=0.2)\n"
              "with exp.experiment('e'), exp.run('r'):\n    exp.info('working')\n    os._exit(9)\n")
    subprocess.run([sys.executable, "-c", script], timeout=50)
    time.sleep(1.5)  # past the stale threshold
    run = distlog.open_run(f"{root}/e/r")
    got = [r.message for r in run.logs.follow(poll=0.1, lag=0.0)]  # (no timeout: it must end by itself)
    assert "working" in got


def _rank_0_fails_first(rank, world, root, steps):
    import time

    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, flush_timeout=30)
    try:
        with exp.experiment("e"), exp.run("r"):
            exp.info(f"rank {rank} started")
            if rank == 0:
                time.sleep(1.0)
                raise RuntimeError("rank 0 dies")
            for i in range(steps):  # ~2-3 s more of logging after rank 0 marked the run failed
                exp.info(f"rank1 i{i}")
                time.sleep(0.002)
    except RuntimeError:
        if rank == 0:
            time.sleep(3.0)  # (rank 0 writes an emergency checkpoint before it exits)
        else:
            raise
    return rank


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_follow_waits_for_ranks_still_logging_after_rank_0_marked_the_run_failed(tmp_path):
    """Rank 0 failed and wrote the run's end (failed) while rank 1 went on logging for
    seconds: follow stopped one read after rank 0's end and rank 1's last lines (hundreds,
    and its "run ended") never showed. It now waits for every rank's "run ended" line."""
    import threading
    import time

    import distlog
    from support.ranks import run_ranks

    root = str(tmp_path / "root")
    steps = 800
    outcome = {}
    ranks = threading.Thread(target=lambda: outcome.update(r=run_ranks(
        _rank_0_fails_first, 2, tmp_path, root, steps, timeout=120, expect_failure=True)))
    ranks.start()
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "root" / "e" / "r" / "run.json").exists():
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        followed = [r.message for r in distlog.open_run(f"{root}/e/r").logs.follow(
            tail=100_000, poll=0.05, lag=0.2, timeout=90)]
    finally:
        ranks.join(150)
    stored = [r.message for r in distlog.open_run(f"{root}/e/r").logs.query(source="text")]
    assert distlog.open_run(f"{root}/e/r").info.status == "failed"
    assert [f"rank1 i{i}" for i in range(steps)] == [m for m in stored if m.startswith("rank1 i")]
    assert sorted(followed) == sorted(stored), (len(followed), len(stored), stored[-3:])
    assert followed.count("run ended: failed") == 2


@pytest.mark.timeout(60)
def test_logs_show_stored_terminal_sequences_escaped_and_raw_keeps_them(tmp_path, capsys):
    """A message holding a terminal sequence (set the window title, clear the screen), a
    bare CR or BEL went to the terminal as stored and ran there; the formatted view escapes
    every control character but newline and tab, ``--raw`` prints the stored line."""
    import distlog

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    message = "a\x1b]0;pwned\x07\x1b[2J b\rc\x9bd\tt\nsecond line"
    with exp.experiment("e"), exp.run("r"):
        exp.info(message)
    capsys.readouterr()
    assert main(["logs", f"{root}/e/r", "--grep", "pwned"]) == 0
    out = capsys.readouterr().out
    assert "\\x1b]0;pwned\\x07\\x1b[2J b\\rc\\x9bd\tt\n    second line" in out, out
    assert not any(c in out for c in "\x1b\x07\r\x9b"), repr(out)
    assert main(["logs", f"{root}/e/r", "--grep", "pwned", "--fields"]) == 0
    assert "\x1b" not in capsys.readouterr().out
    assert main(["logs", f"{root}/e/r", "--grep", "pwned", "--raw"]) == 0
    raw = capsys.readouterr().out
    assert distlog.open_run(f"{root}/e/r").logs.query(grep="pwned")[0].message == message
    assert "pwned" in raw  # the stored line (its own escaping, FORMAT.md)
    assert main(["logs", f"{root}/e/r", "--grep", "no such text", "--follow", "--poll", "0.01"]) == 1
    assert "no log records matched" in capsys.readouterr().err  # (it said nothing)
