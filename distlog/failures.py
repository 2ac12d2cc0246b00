"""Failure records: each rank whose part of an attempt fails leaves one (docs/FORMAT.md), so the
run's status can name the first cause rather than a peer's echo of it."""

from __future__ import annotations

from typing import Any

from .layout import FAILURES_DIR, failure_prefix
from .storage.base import StorageBackend


def read_failures(storage: StorageBackend, attempt: int) -> list[dict[str, Any]]:
    """The failure records of ``attempt``, the first cause first: a rank's own failure before
    the collective errors its peers saw because of it (``FlushError``, ``FlushTimeout``:
    echoes), each kind earliest first. By time alone, a clock a few seconds ahead on another
    node put a peer's "connection reset" before the error that caused it."""
    prefix = failure_prefix(attempt)
    try:
        names = [n for n in storage.list_dir(FAILURES_DIR) if n.startswith(prefix)]
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        try:
            out.append(storage.read_json(f"{FAILURES_DIR}/{n}"))
        except (FileNotFoundError, ValueError):
            continue
    return sorted(out, key=lambda r: (r.get("type") in ECHOES, r.get("time", 0), r.get("rank", 0)))


#: failures a rank records because a peer failed or vanished (its own cause is elsewhere)
ECHOES = frozenset({"FlushError", "FlushTimeout"})
