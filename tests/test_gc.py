"""``collect_garbage``: unreferenced old blobs go; referenced, young and freshly reused ones stay."""

from __future__ import annotations

import os
import time

import pytest

import distlog
from distlog.cas import ContentStore, blob_path, fresh_path, lease_path
from distlog.gc import GCReport, collect_garbage, scan_layout
from distlog.layout import manifest_path
from distlog.storage.local import LocalBackend

OLD = time.time() - 7 * 86400


def _age(root, digest, when=OLD):
    os.utime(os.path.join(root, blob_path(digest)), (when, when))


def _setup(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("a/b"), exp.run("r1"):  # nested experiment names
        kept = exp.files.save(b"referenced", "keep.bin").sha256
    store = ContentStore(LocalBackend(root))
    orphan = store.put_bytes(b"orphan-bytes").sha256  # e.g. its run was deleted
    young = store.put_bytes(b"young orphan").sha256
    for d in (kept, orphan):
        _age(root, d)
    return root, kept, orphan, young


def test_dry_run_reports_and_deletes_nothing(tmp_path):
    root, kept, orphan, young = _setup(tmp_path)
    rep = collect_garbage(root, dry_run=True)
    assert rep == GCReport(blobs_total=3, referenced=1, removed=1, bytes_freed=len(b"orphan-bytes"),
                           kept_young=1, runs_scanned=1, dry_run=True)
    assert all(os.path.exists(os.path.join(root, blob_path(d))) for d in (kept, orphan, young))


def test_removes_only_unreferenced_blobs_older_than_the_grace(tmp_path):
    root, kept, orphan, young = _setup(tmp_path)
    rep = collect_garbage(root, grace_seconds=3600)
    assert (rep.removed, rep.referenced, rep.kept_young) == (1, 1, 1)
    assert not os.path.exists(os.path.join(root, blob_path(orphan)))
    assert os.path.exists(os.path.join(root, blob_path(kept)))
    assert os.path.exists(os.path.join(root, blob_path(young)))
    # the referenced file still loads
    exp = distlog.get_logger(root)
    with exp.experiment("a/b"), exp.run("r1"):
        assert exp.files.load("keep.bin") == b"referenced"
    rep = collect_garbage(root, grace_seconds=0)  # no grace: the young orphan goes too
    assert rep.removed == 1 and not os.path.exists(os.path.join(root, blob_path(young)))


def test_reusing_an_old_orphan_protects_it(tmp_path):
    root, kept, orphan, young = _setup(tmp_path)
    exp = distlog.get_logger(root)
    with exp.run("later"):
        rec = exp.files.save(b"orphan-bytes", "again.bin")  # a dedup hit on the old blob
    assert rec.sha256 == orphan and os.path.exists(os.path.join(root, fresh_path(orphan)))
    rep = collect_garbage(root, grace_seconds=3600)
    assert rep.referenced == 2 and os.path.exists(os.path.join(root, blob_path(orphan)))


def test_a_recorded_reuse_whose_blob_vanished_is_uploaded_again(tmp_path, monkeypatch):
    root, kept, orphan, young = _setup(tmp_path)
    exp = distlog.get_logger(root)
    with exp.run("race"):
        files = exp.files
        real = files._shared.append

        def append_while_gc_deletes(rec):  # the sweep lands between the hit and the record
            os.unlink(os.path.join(root, blob_path(orphan)))
            real(rec)

        monkeypatch.setattr(files._shared, "append", append_while_gc_deletes)
        files.save(b"orphan-bytes", "x.bin")
        monkeypatch.undo()
        assert files.load("x.bin") == b"orphan-bytes"


def test_stale_leases_and_orphan_markers_are_swept(tmp_path):
    root, kept, orphan, young = _setup(tmp_path)
    backend = LocalBackend(root)
    backend.write_bytes(lease_path("0" * 64), b'{"time": 0}')
    backend.write_bytes(fresh_path("1" * 64), b"0")
    for p in (lease_path("0" * 64), fresh_path("1" * 64)):
        os.utime(os.path.join(root, p), (OLD, OLD))
    collect_garbage(root, grace_seconds=3600)
    assert not backend.exists(lease_path("0" * 64)) and not backend.exists(fresh_path("1" * 64))


def test_run_discovery_skips_the_store_and_tables(tmp_path):
    root, *_ = _setup(tmp_path)
    layout = scan_layout(LocalBackend(root))
    assert layout.runs == ["a/b/r1"]
    assert layout.manifests == [f"a/b/r1/{manifest_path(0)}"]


def test_negative_grace_is_refused(tmp_path):
    with pytest.raises(ValueError, match="grace_seconds"):
        collect_garbage(str(tmp_path), grace_seconds=-1)
