"""``distlog gc ROOT``: delete content-addressed blobs that no manifest references.

Mark and sweep over one root. *Mark*: the whole root is listed (every file below it, not only
the runs a reader finds) and every ``manifest-rank-*.jsonl`` anywhere contributes the digests
of its records. *Sweep*: a blob under ``.distlog/cas/sha256`` that is not referenced is removed
only when it is older than ``grace_seconds`` — judged by the blob's modification time and its
freshness marker (``.distlog/cas/fresh/<digest>``, rewritten when a save reuses an old blob).

Why that is safe against saves in progress, whatever the grace (0 included): before deleting,
gc marks each blob it is about to delete (``.distlog/cas/sweeping/<digest>``, exclusive
create), then reads every manifest *again* and deletes only blobs still unreferenced and old,
then removes the markers — batch by batch (``SWEEP_BATCH``), each blob's marker checked last and
its delete sent within ``SWEEP_WAIT / 2`` of marking, since a save waiting on a marker that
has not changed for ``SWEEP_WAIT`` takes it back as a crashed collector's. A save writes its manifest record first, then checks for a marker
(waiting while there is one), then checks that the blob is there, storing it again if not
(``ContentStore.keep``). A record written before a marker is seen by the second read; one
written after it finds the marker, or — the sweep over — the blob gone. The grace period only
spares blobs that a save is still uploading or about to record. A manifest that cannot be
read aborts the collection: deleting on a partial mark would lose data.

gc refuses to run (``LayoutError``, exit status 2) when the root holds a layout it does not
understand — a folder named ``run.json``, a run inside another run, a hidden or ``*.seg``
folder on the way to a run, a manifest outside a run's ``files/`` folder (one in the
``files/`` folder of a run whose ``run.json`` is missing is read, its blobs kept, and the run
named in a warning), or a run folder given as the root — since such a layout means the listing rules of writers and readers no
longer hold, and a guess could delete a blob that a run still needs. A folder it cannot list
(another user's, mode 700) is refused alike: its runs' references would be missing.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from .cas import (BLOB_DIR, FRESH_DIR, LEASE_DIR, SWEEP_DIR, SWEEP_WAIT, blob_path, fresh_path, is_digest,
                  owner_body, sweep_path)
from .errors import LayoutError
from .report import warn
from .writers.manifest import MANIFEST_DIR, parse_manifest
from .layout import RUN_FILE, RUN_MARKERS, STORE_DIR, is_manifest_name
from .names import short
from .storage import open_storage
from .storage.base import SEGMENT_SUFFIX, StorageBackend


#: blobs marked, checked against the manifests read again, and deleted at once: a batch's
#: deletes must all be sent within SWEEP_WAIT / 2 of its marking (see the module docstring);
#: a blob not reached by then goes to the next batch
SWEEP_BATCH = 1000


@dataclass(frozen=True)
class GCReport:
    blobs_total: int
    referenced: int
    removed: int  # with ``dry_run``: would be removed
    bytes_freed: int  # with ``dry_run``: would be freed
    kept_young: int  # unreferenced, but younger than the grace period
    runs_scanned: int = 0
    dry_run: bool = False
    # partial uploads crashed writers left in the blob store (local ``.tmp-`` files, S3
    # multipart uploads never completed), older than the grace: removed (dry run: would be)
    leftover_uploads: int = 0
    # partial uploads younger than that: kept (a live upload, or a writer killed just now: a
    # later gc removes it once it is older than the grace)
    young_uploads: int = 0
    # run folders with no run.json (damaged): the blobs their manifests reference were kept
    damaged_runs: tuple[str, ...] = ()


def collect_garbage(root_url: str, grace_seconds: float = 86400, dry_run: bool = False,
                    storage_options: dict[str, Any] | None = None) -> GCReport:
    """Remove unreferenced blobs older than ``grace_seconds`` under ``root_url``."""
    if not grace_seconds >= 0:  # NaN too: it compares false with every time, i.e. no grace
        raise ValueError(f"grace_seconds must be a number >= 0 (how long an unreferenced blob "
                         f"is kept), got {grace_seconds!r}; pass e.g. 86400 for a day")
    root = open_storage(str(root_url), **(storage_options or {}))
    blobs = list_blobs(root)  # listed before the mark: blobs created later are not swept
    layout = scan_layout(root)
    if layout.damaged:
        warn(f"gc found {len(layout.damaged)} run folder(s) with no {RUN_FILE} ({', '.join(map(short, layout.damaged[:5]))}"
             f"{', ...' if len(layout.damaged) > 5 else ''}): the blobs their manifests reference are kept. "
             f"Restore each {RUN_FILE} from a copy of the run, or delete the folder if the run is gone")
    damaged = tuple(layout.damaged)
    referenced, runs = referenced_digests(root, layout)
    n_ref = young = 0
    old: list[str] = []
    for digest in blobs:
        if digest in referenced:
            n_ref += 1
        elif _last_used(root, digest) > time.time() - grace_seconds:
            young += 1
        else:
            old.append(digest)
    partial = len(root.leftover_temporaries(BLOB_DIR, time.time()))  # (every one, young or old)
    if dry_run:
        sizes = [s for s in (_size(root, blob_path(d)) for d in old) if s is not None]
        gone = len(_leftovers(root, grace_seconds))
        return GCReport(len(blobs), n_ref, len(sizes), sum(sizes), young, runs, dry_run, gone,
                        max(0, partial - gone), damaged)
    tally = _Tally(n_ref, young)
    pending = old
    while pending:
        batch = pending[:SWEEP_BATCH]
        left = _sweep_batch(root, batch, grace_seconds, tally)
        if len(left) == len(batch):  # not one decided in time: the rest waits for another gc
            warn(f"gc stopped with {len(pending)} unreferenced blob(s) left: reading every manifest "
                 f"again took longer than {SWEEP_WAIT / 2:.0f} s, after which a blob marked before "
                 "it may no longer be deleted safely; run gc again when the store answers faster")
            break
        pending = left + pending[SWEEP_BATCH:]
    leftovers = _sweep_markers(root, grace_seconds)
    return GCReport(len(blobs), tally.referenced, tally.removed, tally.freed, tally.young, runs, dry_run,
                    leftovers, max(0, partial - leftovers), damaged)


@dataclass
class _Tally:
    referenced: int
    young: int
    removed: int = 0
    freed: int = 0


def _sweep_batch(root: StorageBackend, batch: list[str], grace: float, tally: _Tally) -> list[str]:
    """Mark ``batch``, read every manifest again, delete the blobs still unreferenced and old,
    unmark; the marked blobs it had no time to decide (see ``SWEEP_BATCH``)."""
    started = time.monotonic()
    marked = [d for d in batch if root.create_bytes(sweep_path(d), owner_body())]  # (else another collector's)
    try:
        # marked first, then every manifest read again: a save that recorded one of these
        # blobs before its marker is seen here; one that records it later finds the marker
        # and waits for it to go (``ContentStore.keep``), then stores the blob again if gone
        referenced, _ = referenced_digests(root) if marked else (set(), 0)
        for i, digest in enumerate(marked):
            size = _size(root, blob_path(digest))
            if size is None:  # removed meanwhile
                continue
            if digest in referenced:  # recorded by a save meanwhile
                tally.referenced += 1
                continue
            if _last_used(root, digest) > time.time() - grace:  # reused meanwhile
                tally.young += 1
                continue
            if not root.exists(sweep_path(digest)):  # a save waited SWEEP_WAIT and took it back
                continue
            if time.monotonic() - started > SWEEP_WAIT / 2:  # a waiting save may soon take it back
                return marked[i:]
            root.delete(blob_path(digest))
            root.delete(fresh_path(digest))
            tally.removed += 1
            tally.freed += size
    finally:
        for digest in marked:
            with contextlib.suppress(FileNotFoundError):
                root.delete(sweep_path(digest))
    return []


def list_blobs(root: StorageBackend) -> list[str]:
    out = []
    for prefix in root.list_dir(BLOB_DIR):
        out.extend(d for d in root.list_dir(f"{BLOB_DIR}/{prefix}") if is_digest(d))
    return sorted(out)


@dataclass
class Layout:
    """What a walk of the root found: run folders and manifest files (paths below the root)."""

    runs: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    #: run folders whose run.json is missing (they hold what only a run writes): their
    #: manifests are read like every other, so their blobs are kept
    damaged: list[str] = field(default_factory=list)


def scan_layout(root: StorageBackend) -> Layout:
    """Walk every file under the root except the blob store; raise ``LayoutError`` on a layout
    gc does not understand (see the module docstring)."""
    # one listing of everything (a paginated recursive listing on object stores), raw names
    try:
        files = [f for f in root.walk() if not f.startswith(STORE_DIR + "/")]
    except PermissionError as e:  # a folder it cannot list may hold runs: no partial mark
        raise LayoutError(f"gc cannot list everything under {root.url} ({e}), and a folder it "
                          "cannot list may hold runs whose blobs it would delete; nothing was "
                          "deleted. Run gc as a user who can read every folder under the root") from e
    if RUN_FILE in files:
        raise LayoutError(f"{root.url} holds {RUN_FILE}: it is a run folder, not a root; give "
                          f"`distlog gc` the root that holds {STORE_DIR}/")
    folders = sorted({f.split("/", 1)[0] for f in files if "/" in f})
    layout = Layout()
    for f in files:
        parts = f.split("/")
        if RUN_FILE in parts[:-1]:
            folder = "/".join(parts[: parts.index(RUN_FILE) + 1])
            raise LayoutError(f"{short(folder)} under {root.url} is a folder named {RUN_FILE}, "
                              "where distlog keeps a run's metadata file; gc cannot tell which "
                              "runs it holds. Rename that folder (it was written under an "
                              "experiment or run named run.json), then run gc again")
        if parts[-1] == RUN_FILE:
            layout.runs.append("/".join(parts[:-1]))
        elif is_manifest_name(parts[-1]):
            layout.manifests.append(f)
    runs = set(layout.runs)
    # folders holding what only a run writes (its params, its scalars' commit record or
    # arrays) but no run.json: runs whose run.json is missing. A manifest in the files/ folder
    # of one is read like any other (its blobs kept), and the run named in a warning
    orphans = {m.rpartition("/")[0].rpartition("/")[0] for m in layout.manifests
               if m.rpartition("/")[0].rpartition("/")[2] == MANIFEST_DIR} - runs - {""}
    if orphans:  # (the walk again only then: a healthy root's files are not split up for nothing)
        marked = set()
        for f in files:
            parts = f.split("/")
            marked.update("/".join(parts[:i]) for i in range(1, len(parts)) if parts[i] in RUN_MARKERS)
        layout.damaged.extend(sorted(orphans & marked))
    every = runs | set(layout.damaged)
    for run in [*layout.runs, *layout.damaged]:  # (a damaged run keeps the layout's rules too)
        parts = run.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in every:
                raise LayoutError(f"run {short(run)} under {root.url} is inside another run "
                                  f"({short('/'.join(parts[:i]))}); runs cannot nest. Move it "
                                  "out, then run gc again")
        odd = [p for p in parts if p.startswith(".") or p.endswith(SEGMENT_SUFFIX)]
        if odd:
            raise LayoutError(f"run {short(run)} under {root.url} sits in a folder named "
                              f"{short(odd[0])}: hidden and *.seg folders are not experiments "
                              "or runs, and readers skip them. Rename it, then run gc again")
    for m in layout.manifests:
        folder, _, _ = m.rpartition("/")
        run, _, leaf = folder.rpartition("/")
        if leaf != MANIFEST_DIR or run not in every:
            raise LayoutError(f"manifest {short(m)} under {root.url} is not in a run's "
                              f"{MANIFEST_DIR}/ folder; gc cannot tell which run it belongs to. "
                              "Move it back into its run (or delete it if the run is gone), "
                              "then run gc again")
    for name in folders:  # a hidden file (.DS_Store) is harmless; a hidden folder may hide runs
        if name.startswith("."):
            raise LayoutError(f"{short(name)} at the top of {root.url} is a hidden folder that "
                              f"distlog does not write (only {STORE_DIR}/ is its own); it may "
                              "hold runs that readers and gc do not see. Rename or remove it, "
                              "then run gc again")
    layout.runs.sort()
    layout.damaged.sort()
    return layout


def referenced_digests(root: StorageBackend, layout: Layout | None = None) -> tuple[set[str], int]:
    """Digests referenced by any manifest anywhere under the root, and the number of runs
    (``layout``: the root's ``scan_layout()``, taken just now)."""
    layout = scan_layout(root) if layout is None else layout
    refs: set[str] = set()
    for m in layout.manifests:
        refs.update(r.sha256 for r in parse_manifest(root.read_bytes(m)))
    return refs, len(layout.runs)


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


def _leftovers(root: StorageBackend, grace: float) -> list[str]:
    """Partial uploads in the blob store older than the grace and than any live upload's
    pause (``SWEEP_WAIT``)."""
    return root.leftover_temporaries(BLOB_DIR, time.time() - max(grace, SWEEP_WAIT))


def _sweep_markers(root: StorageBackend, grace: float) -> int:
    """Remove old upload leases, freshness markers whose blob is gone, sweeping markers that
    crashed collectors left (older than ``SWEEP_WAIT``: never a live collector's) and partial
    uploads of crashed writers in the blob store (local disk: hidden ``.tmp-`` files; S3:
    multipart uploads never completed) older than the grace — best effort. Returns how many
    partial uploads were removed."""
    now = time.time()
    leftovers = _leftovers(root, grace)
    for p in leftovers:
        with contextlib.suppress(FileNotFoundError):
            root.drop_temporary(p)
    for folder, strip, cutoff in ((LEASE_DIR, ".json", now - grace), (FRESH_DIR, "", now - grace),
                                  (SWEEP_DIR, "", now - SWEEP_WAIT)):
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
    return len(leftovers)
