"""Heartbeats: each rank keeps ``heartbeats/rank-RRRRR.json`` fresh while its process lives.

A daemon thread per rank writes the record (``RankMonitor.snapshot``) every ``interval``
seconds (one PUT each on an object store: 3600 / interval PUTs per rank per hour, 120 with the
default 30 s), plus once at start and once at close. The record says where the rank is (last step, flushes done, whether
it is inside a flush and since when, its last log line), so

* a ``FlushTimeout`` names the ranks that did not arrive (``hang_report``), and
* a reader shows a run whose status is still ``running`` but whose newest heartbeat is older
  than ``stale_after()`` seconds (default 300, ``DISTLOG_STALE_AFTER``) as ``stale``: its
  processes are gone (kill -9, node loss). With failure records from its ranks it shows as
  ``failed`` with the first cause (``liveness``).

The writer's clock stamps the record and the reader's clock judges it: hosts are assumed to
agree to well under the threshold (NTP).
"""

from __future__ import annotations

import math
import os
import socket
import sys
import threading
import time
from typing import Any, Callable

from .layout import HEARTBEAT_DIR, heartbeat_path
from .processes import pid_alive
from .storage.base import StorageBackend

DEFAULT_INTERVAL = 30.0
DEFAULT_STALE_AFTER = 300.0


def stale_after() -> float:
    """Seconds without a heartbeat after which a running run counts as stale:
    ``DISTLOG_STALE_AFTER`` (a number of seconds > 0; ``inf``: never), else the default. A
    value that is no such number is reported, naming it, and the default is used: NaN would
    make every live run stale (no age is <= NaN), and "5m" must not silently mean 300 s."""
    text = os.environ.get("DISTLOG_STALE_AFTER")
    if text is None or not text.strip():
        return DEFAULT_STALE_AFTER
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:  # NaN, 0, negative, not a number
        from .report import warn

        warn(f"environment variable DISTLOG_STALE_AFTER={text!r}: expected a number of "
             f"seconds > 0 (e.g. 300, or inf for never); using the default "
             f"{DEFAULT_STALE_AFTER:g} s. Fix or unset DISTLOG_STALE_AFTER.",
             key="DISTLOG_STALE_AFTER")
        return DEFAULT_STALE_AFTER
    return value


class HeartbeatThread:
    """Writes ``record()`` to ``heartbeat_path(rank)`` every ``interval`` seconds."""

    def __init__(self, storage: StorageBackend, rank: int, interval: float,
                 record: Callable[[], dict[str, Any]]) -> None:
        self.storage, self.path, self.interval, self.record = storage, heartbeat_path(rank), interval, record
        self.writes = 0
        self._stop = threading.Event()
        self._warned = False
        self._lock = threading.Lock()  # one write at a time (the final one comes from close)
        self._thread = threading.Thread(target=self._loop, name="distlog-heartbeat", daemon=True)

    def start(self) -> "HeartbeatThread":
        self.write()
        self._thread.start()
        return self

    def write(self, record: dict[str, Any] | None = None) -> None:
        with self._lock:
            try:
                self.storage.write_json(self.path, record if record is not None else self.record())
                self.writes += 1
                self._warned = False
            except Exception as e:  # noqa: BLE001 - a heartbeat must never hurt training
                if not self._warned:
                    self._warned = True
                    print(f"distlog: could not write the heartbeat {self.path}: {e!r}", file=sys.stderr)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.write()

    def stop(self, final: dict[str, Any] | None = None) -> None:
        """Stop the thread; write ``final`` (the closing record) if given."""
        self._stop.set()
        self._thread.join(max(5.0, self.interval))
        if final is not None:
            self.write(final)


# ---- reading ----------------------------------------------------------------------------------
def read_heartbeats(storage: StorageBackend, attempt: int | None = None) -> dict[int, dict[str, Any]]:
    """Every rank's heartbeat record (of ``attempt`` when given), by rank."""
    try:
        names = storage.list_dir(HEARTBEAT_DIR)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out: dict[int, dict[str, Any]] = {}
    for n in sorted(names):
        if not (n.startswith("rank-") and n.endswith(".json")):
            continue
        try:
            rec = storage.read_json(f"{HEARTBEAT_DIR}/{n}")
        except (FileNotFoundError, ValueError):
            continue
        if isinstance(rec, dict) and (attempt is None or rec.get("attempt") == attempt):
            out[int(rec.get("rank", -1))] = rec
    return out


def _read_one(storage: StorageBackend, rank: int) -> dict[str, Any] | None:
    try:
        rec = storage.read_json(heartbeat_path(rank))
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _stopped(rec: dict[str, Any], now: float) -> bool:
    """Whether a running rank's heartbeats stopped: its next beat is overdue by more than
    ``MISSED_BEAT_SLACK`` (the process is gone or stuck where its heartbeat thread cannot run)."""
    try:
        interval, beat = float(rec.get("interval") or 0.0), float(rec.get("time", 0))
    except (TypeError, ValueError):
        return False
    return interval > 0 and now - beat > interval + MISSED_BEAT_SLACK


#: seconds past a rank's own interval after which the beat it did not write shows it dead,
#: when its process was on this host and runs no more (``_gone``)
MISSED_BEAT_SLACK = 5.0


def _gone(rec: dict[str, Any], now: float) -> bool:
    """Whether the rank of ``rec`` is known to be dead: its process was on this host and no
    longer runs (``processes.pid_alive``, with its start time where recorded: not a later process
    given the pid), and its next beat is overdue (a process of a container that shares this
    host's name but not its process ids goes on beating). A killed run shows stale within its
    heartbeat interval, not the stale threshold's minutes, to a reader on its host."""
    if rec.get("state") == "completed" or not _this_host(rec):
        return False
    return _stopped(rec, now) and not pid_alive(rec.get("pid"), rec.get("pid_start"))


def _this_host(rec: dict[str, Any]) -> bool:
    return rec.get("host") == (os.environ.get("DISTLOG_HOSTNAME") or socket.gethostname())


def process_gone(rec: dict[str, Any]) -> bool:
    """Whether the still-running rank of ``rec`` has no process any more: it ran on this host
    and its pid (with its start time) runs no more — killed (the OOM killer sends SIGKILL) or
    crashed without closing. Unlike ``_gone``, at once: no beat needs to be overdue."""
    if rec.get("state", "running") != "running" or not _this_host(rec):
        return False
    return not pid_alive(rec.get("pid"), rec.get("pid_start"))


def _fresh(rec: dict[str, Any], now: float, threshold: float) -> bool:
    """Whether a heartbeat shows a live rank: not a rank's final record of a failure (its
    peers' run is over: a killed rank 0 leaves no end to the run, its peers' fresh "failed"
    records must not keep it "running") and recent — younger than ``threshold``, or than two
    of its own intervals when the rank beats less often than that (``heartbeat_interval=900``
    against the default 300 s threshold: alive between beats). A final "completed" record
    counts: rank 0 writes the run's end right after its own."""
    if rec.get("state") == "failed" or _gone(rec, now):
        return False
    try:
        interval = float(rec.get("interval") or 0.0)
    except (TypeError, ValueError):
        interval = 0.0
    return now - float(rec.get("time", 0)) <= max(threshold, 2 * interval)


def liveness(storage: StorageBackend, meta: dict[str, Any], now: float | None = None,
             threshold: float | None = None) -> tuple[str, dict[str, Any] | None, float | None]:
    """``(status, error, last_seen)`` of a run from evidence: a ``running`` run whose newest
    heartbeat of its current attempt (``last_seen``) is older than ``threshold`` (or than two
    of that rank's heartbeat intervals, when longer) is ``stale``,
    or ``failed`` (error: the first failure record) when its ranks left failure records. Other statuses are returned
    as recorded; so is a running run without heartbeats (written before they existed, or with
    heartbeats off). Usually one read: rank 0's heartbeat, when fresh, settles it."""
    status, error = str(meta.get("status", "unknown")), meta.get("error")
    if status != "running":
        return status, error, None
    now = time.time() if now is None else now
    threshold = stale_after() if threshold is None else threshold
    attempt = int(meta.get("attempt") or 0)
    first = _read_one(storage, 0)
    if first is not None and first.get("attempt") == attempt and _fresh(first, now, threshold):
        return status, error, float(first["time"])
    beats = read_heartbeats(storage, attempt)
    if not beats:
        return status, error, None
    newest = max(float(b.get("time", 0)) for b in beats.values())
    if any(_fresh(b, now, threshold) for b in beats.values()):
        return status, error, newest
    from .failures import read_failures

    causes = read_failures(storage, attempt)
    if causes:
        return "failed", causes[0], newest
    return "stale", error, newest


def describe(rec: dict[str, Any], now: float | None = None) -> str:
    """One line about a rank from its heartbeat record."""
    now = time.time() if now is None else now
    # what follows is as of that heartbeat (ranks beat every ``heartbeat_interval`` s): said so
    # when it is old, so a step or flush count from then is not read as now's
    age = now - float(rec.get("time", 0))
    said = ", which said" if age >= 5 else ""
    when = (f"{age:.1f} s ago" if age > -1 else f"{-age:.1f} s in the future by this host's clock (the clocks "
            f"of this host and {rec.get('host', '?')} differ: heartbeat ages, stale and live, read wrong)")
    parts = [f"last heartbeat {when}{said} ({rec.get('state', '?')})",
             f"host {rec.get('host', '?')} pid {rec.get('pid', '?')}"]
    step = rec.get("step")
    parts.append("no step yet" if step is None else f"last step {step:g}")
    gone = process_gone(rec)
    if gone:
        parts.append(f"its process is gone (no pid {rec.get('pid')} on this host now: killed, "
                     "e.g. by the OOM killer, or crashed without closing)")
    if rec.get("in_flush") is not None:
        n, entered = int(rec["in_flush"]) + 1, float(rec["flush_entered"])
        beat = float(rec.get("time", entered))
        if rec.get("state", "running") != "running":  # its final record: the wait ended with
            parts.append(f"was inside flush #{n} when it ended ({beat - entered:.1f} s in it)")  # it
        elif gone or _stopped(rec, now):  # (a dead rank's wait does not grow)
            parts.append(f"was inside flush #{n} at its last heartbeat ({max(0.0, beat - entered):.1f} s in it)")
        else:
            parts.append(f"inside flush #{n} for {now - entered:.1f} s")
    else:
        ended = rec.get("last_flush_end")
        done = f"{int(rec.get('flushes') or 0)} flush(es) done"
        parts.append(done if ended is None else f"{done}, the last {now - float(ended):.1f} s ago")
    line = rec.get("last_log")
    if line:
        parts.append(f"last log line: {line.get('level')} {line.get('message')!r}")
    return "; ".join(parts)


#: how long a peer's report waits for a rank on its host to be seen gone: a rank SIGKILLed (the
#: OOM killer) has its sockets closed by the kernel before its pid exits, so its peers'
#: collective fails ("connection reset") while its process still runs for a moment
GONE_GRACE = 1.0


def _gone_ranks(beats: dict[int, dict[str, Any]], world_size: int, me: int) -> list[int]:
    """The other ranks whose process is gone (``process_gone``); while none is, and a rank
    still running on this host might be about to be, looked at again for ``GONE_GRACE`` s."""
    others = [r for r in range(world_size) if r != me and r in beats]
    local = [r for r in others if _this_host(beats[r]) and beats[r].get("state", "running") == "running"]
    deadline = time.monotonic() + GONE_GRACE
    while True:
        gone = [r for r in others if process_gone(beats[r])]
        if gone or not local or time.monotonic() >= deadline:
            return gone
        time.sleep(0.05)


def lost_ranks(storage: StorageBackend, attempt: int, world_size: int, me: int) -> str | None:
    """The other ranks of this host whose process ended without closing the run (``process_gone``;
    no wait: read when a launcher stopped this rank after one died), described; None if none.
    A rank on another host cannot be told from here (its process ids are not this host's)."""
    if world_size < 2:
        return None
    beats = read_heartbeats(storage, attempt)
    gone = [r for r in range(world_size) if r != me and r in beats and process_gone(beats[r])]
    if not gone:
        return None
    now = time.time()
    return "; ".join(f"rank {r} ended without closing the run ({describe(beats[r], now)})" for r in gone)


def hang_report(storage: StorageBackend, attempt: int, world_size: int, seq: int | None, me: int,
                entered: float | None = None) -> str:
    """Which ranks did not reach flush ``#seq + 1`` (0-based ``seq``) by their heartbeats;
    outside a flush (``seq`` None), every other rank's last heartbeat.

    A rank arrived when its heartbeat shows it inside that flush or past it; one without a
    heartbeat is named as not arrived, and so is one whose heartbeat shows it elsewhere. A
    heartbeat written before this rank ``entered`` the flush proves nothing when it is younger
    than two of that rank's intervals (a peer lost at once, with heartbeats every 30 s: the
    ranks that arrived have not beaten since): such ranks are listed apart, as not known. One
    whose heartbeats stopped (older than that) is named as not arrived.
    """
    beats = read_heartbeats(storage, attempt)
    gone = _gone_ranks(beats, world_size, me)
    now = time.time()
    first = (f"ranks whose process is gone: {', '.join(map(str, gone))} (killed, e.g. by the OOM "
             "killer, or crashed without closing: look at what stopped them, not at the ranks "
             "that lost them)\n" if gone else "")
    if seq is None:
        return first + "the other ranks' last heartbeats:\n" + "\n".join(
            f"  rank {r}: " + ("no heartbeat" if r not in beats else describe(beats[r], now))
            for r in range(world_size) if r != me)
    missing, unknown = [], []
    for r in range(world_size):
        rec = beats.get(r)
        if r in gone:
            missing.append((r, rec))
            continue
        inside = rec is not None and rec.get("in_flush") is not None and int(rec["in_flush"]) >= seq
        past = rec is not None and int(rec.get("flushes") or 0) > seq
        if r == me or inside or past:
            continue
        if rec is not None and entered is not None and float(rec.get("time", 0)) < entered \
                and _fresh(rec, now, 0.0):
            unknown.append((r, rec))
        else:
            missing.append((r, rec))
    if not missing and not unknown:
        return ("the heartbeats show every rank inside this flush (they may be older than the "
                "timeout: see heartbeat_interval)")
    lines = [first.rstrip("\n")] if gone else []
    if missing:
        lines.append(f"ranks that did not arrive at flush #{seq + 1}: {', '.join(str(r) for r, _ in missing)}")
        for r, rec in missing:
            lines.append(f"  rank {r}: " + ("no heartbeat" if rec is None else describe(rec, now)))
        stuck = [(r, rec) for r, rec in missing if rec is not None and r not in gone
                 and rec.get("state", "running") == "running" and _fresh(rec, now, MISSED_BEAT_SLACK)]
        for r, rec in stuck:  # alive (beating) but elsewhere: its own code, not the network
            lines.append(f"  rank {r} is alive (its heartbeat is fresh) but not in this flush: stuck or slow "
                         f"in the script's own code (a data loader, a rank-only branch, a flush() it skips); "
                         f"`py-spy dump --pid {rec.get('pid', '?')}` on host {rec.get('host', '?')} shows where")
    if unknown:
        every = max(float(rec.get("interval") or 0.0) for _, rec in unknown)
        lines.append(f"ranks not known to have arrived at flush #{seq + 1}: "
                     f"{', '.join(str(r) for r, _ in unknown)} (their last heartbeats are older than "
                     f"this flush, which rank {me} entered {now - float(entered or now):.1f} s ago, "
                     f"and they beat every {every:g} s: they may be inside it)")
        for r, rec in unknown:
            lines.append(f"  rank {r}: " + describe(rec, now))
    return "\n".join(lines)
