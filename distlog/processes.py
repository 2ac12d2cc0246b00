"""Processes of this host, by pid: when one started (``process_start``), and whether it still
runs (``pid_alive``). Attempt claims and heartbeat readers tell a dead process from a live one
by these, and from a later process given the same pid."""

from __future__ import annotations

import os
from typing import Any


def _stat(pid: int) -> list[bytes]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first); OSError where
    there is no such file (no process, or no /proc)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def process_start(pid: int) -> int | None:
    """When process ``pid`` of this host started, in clock ticks after boot (``/proc/<pid>/stat``):
    with the pid it names one process, not a later one given the same pid (a restarted
    container's first process is pid 1 again). None where it cannot be read."""
    try:
        return int(_stat(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: Any, started: Any = None) -> bool:
    """Whether process ``pid`` of this host still runs (a zombie, killed but not yet reaped by
    its parent, does not; nor a later process given the same pid, when ``started`` — its
    ``process_start`` as recorded — says otherwise; a pid that cannot be checked counts as
    running)."""
    if type(pid) is not int or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        pass  # another user's process (or a pid this process may not signal): /proc tells
    try:
        fields = _stat(pid)
        if fields[0] in (b"Z", b"X"):
            return False
        return type(started) is not int or int(fields[19]) == started
    except (OSError, IndexError, ValueError):
        return True
