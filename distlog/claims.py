"""One live attempt per run: may this process start writing a run folder?

Two processes writing one run interleave their rows in one set of series, their commit records
overwrite each other and both call themselves the same attempt: the rows of two trainings mix
with no error. It happens when concurrent ``srun`` steps of one allocation take the job's run
id, or when a script is started twice with one run id. So rank 0 of a new attempt, before it
writes anything,

* checks that the run's last attempt is not live (``live_holder``): recorded ``running``, and
  not by this job before a restart of it (``restarted``: a requeue or an elastic restart counts
  up under the same launcher ids: its launcher ended the old processes first), with a process
  of it still running — a rank on this host whose pid exists and names the same process (its
  start time: a restarted container's process has the dead one's pid again), or, for ranks
  elsewhere, a heartbeat of that attempt younger than two of its intervals plus ``SLACK``
  seconds (or, before their first heartbeat, the attempt's claim younger than
  ``CLAIM_STALE_AFTER``);
* claims its attempt number (``claim_attempt``): ``attempts/attempt-AAAA.json`` is created only
  where absent (``create_bytes``), so two processes starting the same run at the same moment
  cannot both become attempt A. A claim whose process died before it recorded its attempt in
  ``run.json`` is passed over once it is ``CLAIM_STALE_AFTER`` seconds old, or at once when
  it ran on this host (its pid is gone).

A process killed without closing (kill -9, OOM) on this host is known dead at once (its pid is
gone); one on another host counts as live until its heartbeat ages past the window above.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from .heartbeat import DEFAULT_INTERVAL, read_heartbeats
from .layout import attempt_claim_path
from .processes import pid_alive, process_start
from .storage.base import MISSING, StorageBackend

CLAIM_STALE_AFTER = 120.0  # seconds: a claim older than this with no recorded attempt is dead
SLACK = 30.0  # seconds a live rank's heartbeat may be late beyond two of its intervals


def _age(rec: Any, now: float) -> float | None:
    try:
        return now - float(rec["time"])
    except (KeyError, TypeError, ValueError):
        return None


def read_claim(storage: StorageBackend, attempt: int) -> dict[str, Any] | None:
    """The claim of ``attempt`` (None: none, or unreadable)."""
    try:
        rec = json.loads(storage.read_bytes(attempt_claim_path(attempt)))
    except (MISSING, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def _where(rec: dict[str, Any]) -> str:
    return f"host {rec.get('host', '?')} pid {rec.get('pid', '?')}"


def _job(ids: Any) -> dict[str, Any]:
    """A record's launcher ids without its restart counts: the job (or elastic run) it names."""
    return {k: v for k, v in (ids if isinstance(ids, dict) else {}).items() if not k.endswith(".restart_count")}


def restarted(attempt: dict[str, Any], counts: dict[str, int], ids: dict[str, str]) -> bool:
    """Whether a start with restart ``counts`` and launcher ``ids`` is a restart of the job that
    ran ``attempt`` (a requeue, an elastic restart: its launcher ended that attempt's processes
    first): the same job, other restart counts. Another job whose counts differ (a second
    submission while a requeued one runs) is no restart of it."""
    return attempt.get("restart_counts") != counts and _job(attempt.get("launcher_ids")) == _job(ids)


def live_holder(storage: StorageBackend, attempt: dict[str, Any], host: str,
                now: float | None = None) -> str | None:
    """Which process still writes ``attempt`` (a record of ``run.json``'s ``attempts``), in
    words; None when none does."""
    now = time.time() if now is None else now
    number = attempt.get("attempt")
    ranks = [r for r in attempt.get("ranks") or () if isinstance(r, dict)]
    for r in ranks:
        if r.get("host") == host and pid_alive(r.get("pid"), r.get("pid_start")):
            if r.get("pid") == os.getpid():
                return (f"rank {r.get('rank', '?')} of attempt {number} is this process ({_where(r)}): "
                        "close the run it started first (exp.close(), or leave its with-block; "
                        "distlog.close_open_runs() closes every run this process has open, also "
                        "one whose logger is gone, e.g. a notebook cell that made its logger again)")
            return f"rank {r.get('rank', '?')} of attempt {number} still runs ({_where(r)}, this host)"
    remote = {r.get("rank") for r in ranks if r.get("host") != host}
    if ranks and not remote:
        return None  # every rank ran on this host, and none runs any more
    for rank, rec in sorted(read_heartbeats(storage, number).items()):
        if ranks and rank not in remote or rec.get("state") != "running":
            continue
        age = _age(rec, now)
        try:
            interval = float(rec.get("interval") or DEFAULT_INTERVAL)
        except (TypeError, ValueError):
            interval = DEFAULT_INTERVAL
        if age is not None and age <= 2 * interval + SLACK:
            return f"rank {rank} of attempt {number} beat {age:.0f} s ago ({_where(rec)})"
    claim = read_claim(storage, number) if isinstance(number, int) else None
    age = None if claim is None else _age(claim, now)
    if age is not None and age <= CLAIM_STALE_AFTER:
        return f"attempt {number} started {age:.0f} s ago ({_where(claim)}); its ranks have not all beaten yet"
    return None


def claim_attempt(storage: StorageBackend, first: int, body: dict[str, Any],
                  now: float | None = None) -> tuple[int | None, str | None]:
    """Claim the first free attempt number from ``first`` on: ``(number, None)``, or ``(None,
    holder)`` when another process claimed ``first`` (or a number after a dead claim) moments
    ago — it is starting the same run now. A claim of a process of this host that is gone
    (killed while starting) is passed over at once, as one older than ``CLAIM_STALE_AFTER``."""
    n = first
    while True:
        stamp = time.time() if now is None else now
        record = {**body, "attempt": n, "time": stamp, "pid": os.getpid(), "pid_start": process_start(os.getpid())}
        if storage.create_bytes(attempt_claim_path(n), json.dumps(record).encode()):
            return n, None
        other = read_claim(storage, n)
        age = None if other is None else _age(other, stamp)
        gone = (other is not None and other.get("host") == body.get("host")
                and not pid_alive(other.get("pid"), other.get("pid_start")))  # killed while starting
        if age is not None and age <= CLAIM_STALE_AFTER and not gone:
            return None, f"attempt {n} was claimed {max(age, 0.0):.0f} s ago ({_where(other)}): it is starting now"
        n += 1  # a claim whose process died before recording its attempt: pass it over


def release_claim(storage: StorageBackend, attempt: int, host: str) -> None:
    """Remove this process's claim of ``attempt`` (best effort), when its start failed before
    ``run.json`` recorded the attempt: a retry is then no "other process starting it now"."""
    with contextlib.suppress(Exception):
        rec = read_claim(storage, attempt)
        if rec is not None and rec.get("host") == host and rec.get("pid") == os.getpid():
            storage.delete(attempt_claim_path(attempt))
