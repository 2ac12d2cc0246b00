"""A run's liveness as a reader judges it from the heartbeats of a real, live (then killed)
writer process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

import distlog

CHILD = """
import sys, time, distlog
exp = distlog.get_logger(sys.argv[1], heartbeat_interval=0.2, telemetry=False)
with exp.run("r"):
    exp.metrics.log({"loss": 1.0}, step=0)
    print("ready", flush=True)
    time.sleep(120)
"""

READER = """
import distlog, sys
print(distlog.open_run(sys.argv[1]).info.status)
"""


def _status(run_url: str, stale_after: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DISTLOG_STALE_AFTER": stale_after}
    return subprocess.run([sys.executable, "-c", READER, run_url], capture_output=True, text=True,
                          timeout=60, env=env)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("value", ["nan", "-5", "0", "5m", "inf"])
def test_a_malformed_stale_after_never_shows_a_live_run_stale(tmp_path: Any, value: str) -> None:
    """DISTLOG_STALE_AFTER=nan (or <= 0) made every running run ``stale`` while its ranks were
    beating (no age is <= nan); "5m" silently meant 300 s. A value that is not a number of
    seconds > 0 is reported, naming the variable, and the default is used."""
    root = tmp_path / "root"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # a few beats
        got = _status(f"{root}/default/r", value)
        assert got.returncode == 0, got.stderr
        assert got.stdout.strip() == "running", (got.stdout, got.stderr)
        if value != "inf":
            assert f"DISTLOG_STALE_AFTER={value!r}" in got.stderr, got.stderr
            assert "seconds > 0" in got.stderr, got.stderr
    finally:
        child.kill()
        child.wait(30)


@pytest.mark.timeout(120)
def test_a_killed_run_turns_stale_after_the_threshold(tmp_path: Any) -> None:
    root = tmp_path / "root"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert _status(f"{root}/default/r", "1.5").stdout.strip() == "running"
    finally:
        child.kill()
        child.wait(30)
    time.sleep(2.0)
    got = _status(f"{root}/default/r", "1.5")
    assert got.stdout.strip() == "stale", (got.stdout, got.stderr)



ROWS_THEN_KILLED = """
import sys, time, os, distlog
exp = distlog.get_logger(sys.argv[1], heartbeat_interval=0.2, telemetry=False)
exp.start_run("r")
exp.metrics.log({"loss": 1.0}, step=0)
exp.metrics.commit()  # on the store now
print(time.time(), flush=True)
os._exit(0)  # killed: no end recorded
"""


@pytest.mark.timeout(120)
def test_a_stale_run_ended_no_earlier_than_its_last_commit(tmp_path: Any) -> None:
    """A killed run's end was its last heartbeat, which a rank writes every 30 s by default:
    rows committed after it fell past the run's end (the dashboard showed a duration of 0 s
    for a run killed before its second beat). Its end is now the later of the two. The store
    is left as such a run leaves it: its last beat 20 s before its last commit."""
    import json

    from distlog.layout import heartbeat_path

    root = tmp_path / "root"
    out = subprocess.run([sys.executable, "-c", ROWS_THEN_KILLED, str(root)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    committed = float(out.stdout.strip())
    beat = root / "default" / "r" / heartbeat_path(0)
    record = json.loads(beat.read_text())
    record["time"] = committed - 20.0
    beat.write_text(json.dumps(record))
    reader = """
import distlog, sys
info = distlog.open_run(sys.argv[1]).info
print(info.status, info.end_time, info.duration())
"""
    env = {**os.environ, "DISTLOG_STALE_AFTER": "0.5"}
    got = subprocess.run([sys.executable, "-c", reader, f"{root}/default/r"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert got.returncode == 0, got.stderr
    status, ended, duration = got.stdout.split()
    assert status == "stale", got.stdout
    assert committed - 1.0 <= float(ended) <= committed, (ended, committed)  # not the beat
    assert float(duration) > 0, got.stdout


@pytest.mark.timeout(120)
def test_a_killed_run_on_this_host_is_stale_once_its_next_beat_is_overdue(tmp_path: Any) -> None:
    """kill -9 left a run "running" for the stale threshold (5 minutes by default) to every
    reader, also one on the run's own host, where its process is known to be gone. There it
    is stale once the beat after its last is overdue (interval + MISSED_BEAT_SLACK); a live
    run beating slower than that is not (the threshold's default is kept)."""
    from distlog.heartbeat import MISSED_BEAT_SLACK

    root = tmp_path / "root"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        assert _status(f"{root}/default/r", "300").stdout.strip() == "running"
    finally:
        child.kill()
        child.wait(30)
    assert _status(f"{root}/default/r", "300").stdout.strip() == "running"  # (the next beat is not late yet)
    time.sleep(0.2 + MISSED_BEAT_SLACK + 0.5)
    got = _status(f"{root}/default/r", "300")
    assert got.stdout.strip() == "stale", (got.stdout, got.stderr)


@pytest.mark.timeout(60)
def test_a_rank_whose_process_is_gone_is_named_at_once(tmp_path: Any) -> None:
    """A rank SIGKILLed (the OOM killer) mid-run: its peers' error listed it with the live
    ranks as "not known to have arrived ... they may be inside it", and ``show --ranks`` kept
    saying it was inside its flush for ever longer. On its host its process is known gone:
    named so at once, its wait frozen at its last heartbeat."""
    import socket

    from distlog.heartbeat import describe, hang_report, process_gone
    from distlog.layout import heartbeat_path
    from distlog.processes import process_start
    from distlog.storage import open_storage

    dead = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start(dead.pid)
    dead.kill()
    dead.wait(30)
    storage = open_storage(str(tmp_path / "run"))
    now = time.time()
    host = os.environ.get("DISTLOG_HOSTNAME") or socket.gethostname()

    def beat(rank: int, pid: int, pid_start: Any, **more: Any) -> dict[str, Any]:
        rec = {"format": 1, "rank": rank, "attempt": 0, "host": host, "pid": pid, "pid_start": pid_start,
               "time": now - 1.5, "interval": 1.0, "state": "running", "step": 95, "flushes": 24,
               **more}
        storage.write_json(heartbeat_path(rank), rec)
        return rec

    beat(0, os.getpid(), process_start(os.getpid()))
    killed = beat(1, dead.pid, started, in_flush=24, flush_entered=now - 2.5)
    beat(2, os.getpid(), process_start(os.getpid()))  # alive, its beat older than the flush
    assert process_gone(killed) and not process_gone({**killed, "pid": os.getpid(),
                                                      "pid_start": process_start(os.getpid())})
    report = hang_report(storage, 0, 3, 24, me=0, entered=now - 0.01)
    first = report.splitlines()[0]
    assert first.startswith("ranks whose process is gone: 1 (killed"), report
    assert "ranks not known to have arrived at flush #25: 2 " in report, report
    said = describe(killed, now + 100)
    assert "its process is gone" in said and "was inside flush #25 at its last heartbeat (1.0 s in it)" in said
    assert "for 10" not in said  # (not a wait growing with the reader's clock)


@pytest.mark.timeout(60)
def test_a_rank_killed_as_its_peer_reports_is_named_gone(tmp_path: Any) -> None:
    """A rank SIGKILLed has its sockets closed by the kernel before its pid exits: its peers'
    all_gather failed ("connection reset") and their report, made at once, found its process
    still there — 2 runs of 3 in a user review recorded "FlushError on rank 2" listing the
    killed rank with the live ones as "not known to have arrived". The report looks again for
    a moment (``GONE_GRACE``) before it says no rank on its host is gone."""
    import socket

    from distlog.heartbeat import GONE_GRACE, hang_report
    from distlog.layout import heartbeat_path
    from distlog.processes import process_start
    from distlog.storage import open_storage

    dying = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.4)"])
    started = process_start(dying.pid)
    storage = open_storage(str(tmp_path / "run"))
    now = time.time()
    host = os.environ.get("DISTLOG_HOSTNAME") or socket.gethostname()
    for rank, pid, pid_start in ((0, os.getpid(), process_start(os.getpid())), (1, dying.pid, started)):
        storage.write_json(heartbeat_path(rank), {
            "format": 1, "rank": rank, "attempt": 0, "host": host, "pid": pid, "pid_start": pid_start,
            "time": now - 1.5, "interval": 30.0, "state": "running", "step": 7, "flushes": 3})
    try:
        t0 = time.monotonic()
        report = hang_report(storage, 0, 3, 3, me=2, entered=now - 0.01)  # (rank 1 still runs)
        took = time.monotonic() - t0
    finally:
        dying.wait(30)
    assert report.startswith("ranks whose process is gone: 1 (killed"), report
    assert took < GONE_GRACE + 0.5
    # nobody gone: the report waits the grace once, then says what it knows
    t0 = time.monotonic()
    report = hang_report(storage, 0, 2, 3, me=1, entered=now - 0.01)
    assert "process is gone" not in report and time.monotonic() - t0 >= GONE_GRACE, report


def test_heartbeats_come_at_least_three_times_within_a_flush_timeout(tmp_path: Any) -> None:
    """With ``flush_timeout`` at or under ``heartbeat_interval`` a FlushTimeout's report had
    only the start's heartbeats: the hung rank was listed with the live ones ("no step yet; 0
    flush(es) done"), without its last log line."""
    from distlog.layout import heartbeat_path

    exp = distlog.get_logger(str(tmp_path / "root"), flush_timeout=15, heartbeat_interval=30)
    with exp.run("r"):
        rec = json.loads((tmp_path / "root" / "default" / "r" / heartbeat_path(0)).read_text())
        assert rec["interval"] == 5.0
    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=30)  # (600 s timeout: as set)
    with exp.run("s"):
        rec = json.loads((tmp_path / "root" / "default" / "s" / heartbeat_path(0)).read_text())
        assert rec["interval"] == 30


def test_a_tiny_flush_timeout_beats_no_more_than_once_a_second(tmp_path: Any) -> None:
    from distlog.layout import heartbeat_path

    exp = distlog.get_logger(str(tmp_path / "root"), flush_timeout=0.3, heartbeat_interval=30)
    with exp.run("r"):
        rec = json.loads((tmp_path / "root" / "default" / "r" / heartbeat_path(0)).read_text())
        assert rec["interval"] == 1.0
