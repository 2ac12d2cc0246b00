"""``distlog gc ROOT``: delete content-addressed blobs that no run references.

Mark and sweep over one root. *Mark*: every run folder under the root (a folder holding
``run.json``; experiments may nest) contributes the digests in its
``files/manifest-rank-*.jsonl`` records. *Sweep*: a blob under ``.distlog/cas/sha256`` that is
not referenced is removed only when it is older than ``grace_seconds`` — judged by the blob's
modification time and its freshness marker (``.distlog/cas/fresh/<digest>``, rewritten when a
save reuses an old blob), checked again just before each delete.

Why that is safe against saves in progress: a save uploads its blob (new, so young) or finds
it (and freshens it if old) *before* it writes the manifest record, and a save that reused an
old blob checks after recording that the blob is still there, uploading it again if a sweep
removed it at that moment. So the grace period must exceed the longest save (upload plus
record), which the one-day default does by far. A manifest that cannot be read aborts the
collection: deleting on a partial mark would lose data.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Iterator

from .cas import BLOB_DIR, FRESH_DIR, LEASE_DIR, blob_path, fresh_path, is_digest
from .files import MANIFEST_DIR, parse_manifest
from .storage import open_storage
from .storage.base import StorageBackend

RUN_FILE = "run.json"
_NOT_RUN_PARTS = (".zarr", ".json", ".jsonl", ".log", ".md", ".seg")


@dataclass(frozen=True)
class GCReport:
    blobs_total: int
    referenced: int
    removed: int  # with ``dry_run``: would be removed
    bytes_freed: int  # with ``dry_run``: would be freed
    kept_young: int  # unreferenced, but younger than the grace period
    runs_scanned: int = 0
    dry_run: bool = False


def collect_garbage(root_url: str, grace_seconds: float = 86400, dry_run: bool = False,
                    storage_options: dict[str, Any] | None = None) -> GCReport:
    """Remove unreferenced blobs older than ``grace_seconds`` under ``root_url``."""
    if grace_seconds < 0:
        raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds!r}")
    root = open_storage(str(root_url), **(storage_options or {}))
    blobs = list_blobs(root)  # listed before the mark: blobs created later are not swept
    referenced, runs = referenced_digests(root)
    n_ref = removed = freed = young = 0
    for digest in blobs:
        if digest in referenced:
            n_ref += 1
            continue
        if _last_used(root, digest) > time.time() - grace_seconds:
            young += 1
            continue
        size = _size(root, blob_path(digest))
        if size is None:  # removed meanwhile (another collector)
            continue
        if not dry_run:
            # checked again right before the delete: a save may have just reused it
            if _last_used(root, digest) > time.time() - grace_seconds:
                young += 1
                continue
            root.delete(blob_path(digest))
            root.delete(fresh_path(digest))
        removed += 1
        freed += size
    if not dry_run:
        _sweep_markers(root, grace_seconds)
    return GCReport(len(blobs), n_ref, removed, freed, young, runs, dry_run)


def list_blobs(root: StorageBackend) -> list[str]:
    out = []
    for prefix in root.list_dir(BLOB_DIR):
        out.extend(d for d in root.list_dir(f"{BLOB_DIR}/{prefix}") if is_digest(d))
    return sorted(out)


def iter_runs(root: StorageBackend, path: str = "", depth: int = 0) -> Iterator[str]:
    """Run folders (holding ``run.json``) under ``path``; experiments may nest."""
    names = root.list_dir(path)
    if RUN_FILE in names:
        yield path
        return
    if depth > 32:
        return
    for n in names:
        if (not path and n == ".distlog") or n.startswith(".tmp-") or n.endswith(_NOT_RUN_PARTS):
            continue
        yield from iter_runs(root, f"{path}/{n}" if path else n, depth + 1)


def referenced_digests(root: StorageBackend) -> tuple[set[str], int]:
    """Digests referenced by any run's manifests, and the number of runs scanned."""
    refs: set[str] = set()
    runs = 0
    for run in iter_runs(root):
        runs += 1
        folder = f"{run}/{MANIFEST_DIR}" if run else MANIFEST_DIR
        for n in root.list_dir(folder):
            if n.startswith("manifest-rank-") and n.endswith(".jsonl"):
                refs.update(r.sha256 for r in parse_manifest(root.read_bytes(f"{folder}/{n}")))
    return refs, runs


def _last_used(root: StorageBackend, digest: str) -> float:
    """The later of the blob's and its freshness marker's times (``inf`` when unknown)."""
    times = [root.modified_time(blob_path(digest)), root.modified_time(fresh_path(digest))]
    if times[0] is None and root.exists(blob_path(digest)):
        return float("inf")  # the store does not say: never old enough to delete
    return max((t for t in times if t is not None), default=float("-inf"))


def _size(root: StorageBackend, path: str) -> int | None:
    try:
        with root.open_read(path) as f:
            return f.seek(0, 2)  # the end offset; no download on object stores
    except FileNotFoundError:
        return None


def _sweep_markers(root: StorageBackend, grace: float) -> None:
    """Remove old upload leases and freshness markers whose blob is gone (best effort)."""
    cutoff = time.time() - grace
    for folder, strip in ((LEASE_DIR, ".json"), (FRESH_DIR, "")):
        for n in root.list_dir(folder):
            digest = n[: -len(strip)] if strip and n.endswith(strip) else n
            p = f"{folder}/{n}"
            t = root.modified_time(p)
            if t is None or t > cutoff:
                continue
            if folder == FRESH_DIR and root.exists(blob_path(digest)):
                continue
            with contextlib.suppress(FileNotFoundError):
                root.delete(p)
