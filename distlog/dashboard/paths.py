"""Which run a request may read: every path from a request resolves inside the root.

A run is named by its path below the root (``experiment/run_id``). The dashboard serves only
runs that the root's listing found (``RunIndex``), so a request cannot name anything else;
the syntactic check below rejects the usual tricks early with a clear reason (``..``,
absolute paths, backslashes, NUL and control characters, hidden folders such as
``.distlog``), and on local disk a run folder whose real path leaves the root (a symlink
pointing out) is refused. File bytes are never addressed by a request path at all: a file
name is looked up in the run's manifests and its bytes are read from the content-addressed
blob that record names (a 64-hex-digit sha256).
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any

from ..query.root import RootReader, scan_runs
from ..query.batch import DAMAGED
from ..query.errors import RunNotFound
from ..query.run_reader import RunReader
from ..storage.base import StorageBackend

_PART_OK = re.compile(r"^[^\x00-\x1f\x7f/\\]+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BadPath(ValueError):
    """A request path that can never name a run (answered with 400)."""


class UnknownRun(LookupError):
    """A well-formed path that names no run under the root (answered with 404)."""


def check_run_path(path: str) -> str:
    """``path`` if it is a plain relative ``a/b/c`` name, else ``BadPath`` saying why."""
    if not isinstance(path, str) or len(path) > 1024:
        raise BadPath("a run path is a string of at most 1024 characters such as 'mnist/r1'")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or "://" in path:
        raise BadPath(f"run path {path!r} is absolute; give it relative to the root ('mnist/r1')")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BadPath(f"run path {path!r} has an empty, '.' or '..' part")
        if part.startswith("."):
            raise BadPath(f"run path {path!r} names a hidden folder ({part!r})")
        if not _PART_OK.match(part):
            raise BadPath(f"run path {path!r} holds a backslash or a control character")
    return path


def check_sha256(sha: str) -> str:
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise BadPath(f"{sha!r} is not a sha256 (64 lowercase hex digits)")
    return sha


def inside_root(storage: StorageBackend, path: str) -> bool:
    """On local disk: the real path of ``path`` stays inside the real root (symlinks followed).
    Object stores have no links: a checked relative key is always inside."""
    base = getattr(storage, "_p", None)
    if not storage.url.startswith("file://") or base is None:
        return True
    root = os.path.realpath(storage.root)
    target = os.path.realpath(base(path))
    return target == root or target.startswith(root + os.sep)


class RunIndex:
    """The runs under a root. Listing a large root takes a while (one ``run.json`` read per
    run), so a listing older than ``ttl`` seconds is served while a background thread makes
    the next one; a run not in the listing is looked for again at once (at most once a
    second), so a run started a moment ago opens without waiting."""

    def __init__(self, root: RootReader, ttl: float = 3.0) -> None:
        self.root = root
        self.ttl = ttl
        self._lock = threading.Lock()
        self._at = -1e9
        self._runs: dict[str, dict[str, Any]] | None = None
        self._refreshing = False

    def _scan(self) -> None:
        found = scan_runs(self.root.storage)
        runs = {p: meta for p, meta in found if inside_root(self.root.storage, p)}
        with self._lock:
            self._runs, self._at = runs, time.monotonic()

    def _background(self) -> None:
        try:
            self._scan()
        finally:
            self._refreshing = False

    def listing(self, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """``{path: run.json}`` of every run (at most ``ttl`` seconds old, or being renewed)."""
        age = time.monotonic() - self._at
        if self._runs is None or (fresh and age > 1.0):
            self._scan()
        elif age > self.ttl and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._background, name="distlog-run-index", daemon=True).start()
        with self._lock:
            return dict(self._runs or {})

    def reader(self, path: str) -> RunReader:
        """A reader of the run at ``path``; ``BadPath`` or ``UnknownRun`` otherwise."""
        if path != "":
            check_run_path(path)
        runs = self.listing()
        if path not in runs:
            runs = self.listing(fresh=True)  # a run started since the last listing
        if path not in runs:
            raise UnknownRun(f"no run {path!r} under {self.root.url}")
        storage = self.root.storage.child(path) if path else self.root.storage
        try:
            return RunReader(storage)
        except RunNotFound:
            meta = runs[path]
            if meta.get("status") != DAMAGED:
                raise
            # its run.json is torn or missing: the listing's stand-in (status damaged, why),
            # so what else the run holds can still be read
            return RunReader(storage, meta)
