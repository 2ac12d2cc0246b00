"""``collect_garbage``: unreferenced old blobs go; referenced, young and freshly reused ones stay."""

from __future__ import annotations

import os
import time

import pytest

import distlog
from distlog.cas import ContentStore, blob_path, fresh_path, lease_path, sweep_path
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


def test_log_file_stores_again_the_bytes_it_recorded_not_the_files_new_ones(tmp_path, monkeypatch):
    """gc deletes the blob as the record is written, and a checkpointer rewrites the file:
    the blob stored again is the recorded (staged) copy, not a re-read of the path."""
    root = str(tmp_path / "root")
    local = tmp_path / "last.ckpt"
    local.write_bytes(b"checkpoint of step 100")
    exp = distlog.get_logger(root)
    with exp.run("race"):
        files = exp.files
        real = files._shared.append

        def append_while_gc_deletes_and_the_file_changes(rec):
            os.unlink(os.path.join(root, blob_path(rec.sha256)))
            local.write_bytes(b"checkpoint of step 200")
            real(rec)

        monkeypatch.setattr(files._shared, "append", append_while_gc_deletes_and_the_file_changes)
        rec = files.log_file("last.ckpt", local)
        monkeypatch.undo()
        assert files.read_bytes("last.ckpt") == b"checkpoint of step 100"
        assert os.path.exists(os.path.join(root, blob_path(rec.sha256)))


@pytest.mark.parametrize("grace", [0, 60, 86400])
@pytest.mark.timeout(60)
def test_a_save_reusing_a_blob_while_gc_deletes_it_keeps_its_file(tmp_path, monkeypatch, grace):
    """gc has checked the blob (old, unreferenced) and its DELETE is on its way when another
    process's save finds the blob, records it and checks it: whatever the grace (even under
    the reuse's own freshening threshold), the run's file stays loadable."""
    import threading

    root, kept, orphan, young = _setup(tmp_path)
    _age(root, orphan, time.time() - 200)  # old for a grace of 60 s, "recent" for the saver
    exp = distlog.get_logger(root)
    with exp.run("race"):
        files, done = exp.files, []
        real_delete = LocalBackend.delete

        def delete_while_a_save_runs(self, path, recursive=False):
            if path == blob_path(orphan) and not done:  # the DELETE is in flight...
                saver = threading.Thread(target=lambda: done.append(files.save(b"orphan-bytes", "x.bin")))
                saver.start()
                saver.join(1.0)  # ...while the save records the blob and checks it
            return real_delete(self, path, recursive)

        monkeypatch.setattr(LocalBackend, "delete", delete_while_a_save_runs)
        rep = collect_garbage(root, grace_seconds=grace)
        monkeypatch.undo()
        deadline = time.time() + 30
        while grace < 86400 and not done and time.time() < deadline:
            time.sleep(0.05)
        if grace < 86400:  # the sweep reached the blob (and, with no grace, the young orphan)
            assert rep.removed == 1 + (grace == 0) and done, rep
        else:
            assert rep.removed == 0
            files.save(b"orphan-bytes", "x.bin")
        assert files.load("x.bin") == b"orphan-bytes"
        assert os.path.exists(os.path.join(root, blob_path(orphan)))
    assert collect_garbage(root, grace_seconds=0).referenced == 2  # and the next gc keeps it


@pytest.mark.timeout(60)
def test_a_save_that_records_before_gc_reads_the_manifests_again_is_spared(tmp_path, monkeypatch):
    """Another process's save records the blob after gc's first read of the manifests and
    before its second (gc has marked the blob by then): gc keeps it; the save, which found
    the marker, waits for the sweep to end and finds its blob there."""
    import threading

    import distlog.gc as G

    root, kept, orphan, young = _setup(tmp_path)
    exp = distlog.get_logger(root)
    with exp.run("race"):
        files, recorded, saved = exp.files, threading.Event(), []
        real_append = files._shared.append

        def append(rec):
            real_append(rec)
            recorded.set()

        monkeypatch.setattr(files._shared, "append", append)
        real, calls = G.referenced_digests, []

        def record_between_the_reads(backend, *layout):
            calls.append(1)
            if len(calls) == 2:  # gc has marked the blob; the save records it now
                threading.Thread(target=lambda: saved.append(files.save(b"orphan-bytes", "x.bin"))).start()
                assert recorded.wait(20)
            return real(backend, *layout)

        monkeypatch.setattr(G, "referenced_digests", record_between_the_reads)
        rep = collect_garbage(root, grace_seconds=0)
        deadline = time.time() + 20
        while not saved and time.time() < deadline:
            time.sleep(0.02)
        assert saved and files.load("x.bin") == b"orphan-bytes"
    assert len(calls) == 2 and rep.removed == 1 and rep.referenced == 2, rep  # only `young` went
    assert os.path.exists(os.path.join(root, blob_path(orphan)))
    assert not os.path.exists(os.path.join(root, blob_path(young)))


def test_a_crashed_collectors_marker_delays_a_save_only_so_long(tmp_path):
    root, kept, orphan, young = _setup(tmp_path)
    backend = LocalBackend(root)
    store = ContentStore(backend)
    backend.write_bytes(sweep_path(orphan), b"")
    os.unlink(os.path.join(root, blob_path(orphan)))  # the crashed collector deleted it
    t0 = time.monotonic()
    store.keep(orphan, lambda: store.put_bytes(b"orphan-bytes"), wait=0.3)
    assert 0.3 <= time.monotonic() - t0 < 5
    assert backend.exists(blob_path(orphan)) and not backend.exists(sweep_path(orphan))


@pytest.mark.timeout(60)
def test_a_live_collectors_rewritten_marker_holds_a_save_past_the_wait(tmp_path):
    """Unchanged for ``wait`` means crashed; a marker written again (the blob marked once more)
    restarts the wait, so the save never takes back a live collector's marker."""
    import threading

    root, kept, orphan, young = _setup(tmp_path)
    backend = LocalBackend(root)
    store = ContentStore(backend)
    backend.write_bytes(sweep_path(orphan), b"1")
    t0 = time.monotonic()
    saver = threading.Thread(target=store.keep, args=(orphan, lambda: store.put_bytes(b"orphan-bytes"), 0.5))
    saver.start()
    for body in (b"2", b"3", b"4"):
        time.sleep(0.3)
        backend.write_bytes(sweep_path(orphan), body)
    time.sleep(0.3)
    assert saver.is_alive() and backend.exists(sweep_path(orphan))  # 1.2 s > wait, still held
    os.unlink(os.path.join(root, blob_path(orphan)))  # the collector deletes, then unmarks
    backend.delete(sweep_path(orphan))
    saver.join(10)
    assert time.monotonic() - t0 >= 1.2 and backend.exists(blob_path(orphan))  # stored again


@pytest.mark.timeout(60)
def test_a_save_that_took_back_a_slow_collectors_marker_keeps_its_blob(tmp_path, monkeypatch):
    """The save waits its full wait and takes the marker back while gc is slow on that blob:
    gc checks the marker last, just before deleting, and spares the blob."""
    import threading

    import distlog.gc as G

    root, kept, orphan, young = _setup(tmp_path)
    monkeypatch.setattr(ContentStore.keep, "__defaults__", (0.5,))  # stands for a long sweep
    exp = distlog.get_logger(root)
    with exp.run("race"):
        files, saved, reads = exp.files, [], []
        real_read, real_last_used = G.referenced_digests, G._last_used

        def read_then_the_save_records(backend, *layout):
            out = real_read(backend, *layout)
            reads.append(1)
            if len(reads) == 2:  # after gc's second read
                threading.Thread(target=lambda: saved.append(files.save(b"orphan-bytes", "x.bin"))).start()
            return out

        def slow_until_the_save_returns(backend, digest):
            deadline = time.time() + 10
            while digest == orphan and len(reads) == 2 and not saved and time.time() < deadline:
                time.sleep(0.05)
            return real_last_used(backend, digest)

        monkeypatch.setattr(G, "referenced_digests", read_then_the_save_records)
        monkeypatch.setattr(G, "_last_used", slow_until_the_save_returns)
        collect_garbage(root, grace_seconds=0)
        monkeypatch.undo()
        assert saved and files.load("x.bin") == b"orphan-bytes"


def test_gc_deletes_only_within_half_the_sweep_wait_of_marking_batch_by_batch(tmp_path, monkeypatch):
    import distlog.gc as G

    root, kept, orphan, young = _setup(tmp_path)
    _age(root, young)
    monkeypatch.setattr(G, "SWEEP_BATCH", 1)
    monkeypatch.setattr(G, "SWEEP_WAIT", 2.0)
    real_last_used = G._last_used

    def slow(backend, digest):
        time.sleep(1.1)  # past SWEEP_WAIT / 2 since marking: a waiting save may take it back
        return real_last_used(backend, digest)

    monkeypatch.setattr(G, "_last_used", slow)
    rep = collect_garbage(root, grace_seconds=0)
    assert rep.removed == 0 and os.path.exists(os.path.join(root, blob_path(orphan)))
    assert not os.listdir(os.path.join(root, ".distlog/cas/sweeping"))  # unmarked
    monkeypatch.setattr(G, "_last_used", real_last_used)
    rep = collect_garbage(root, grace_seconds=0)  # one blob a batch: each in time
    assert (rep.removed, rep.referenced) == (2, 1)
    assert not os.path.exists(os.path.join(root, blob_path(orphan)))


def test_stale_leases_and_orphan_markers_are_swept(tmp_path):
    root, kept, orphan, young = _setup(tmp_path)
    backend = LocalBackend(root)
    backend.write_bytes(lease_path("0" * 64), b'{"time": 0}')
    backend.write_bytes(fresh_path("1" * 64), b"0")
    backend.write_bytes(sweep_path("2" * 64), b"")  # a crashed collector's
    backend.write_bytes(sweep_path("3" * 64), b"")  # a live collector's (recent)
    for p in (lease_path("0" * 64), fresh_path("1" * 64), sweep_path("2" * 64)):
        os.utime(os.path.join(root, p), (OLD, OLD))
    collect_garbage(root, grace_seconds=0)
    assert not backend.exists(lease_path("0" * 64)) and not backend.exists(fresh_path("1" * 64))
    assert not backend.exists(sweep_path("2" * 64)) and backend.exists(sweep_path("3" * 64))


def test_run_discovery_skips_the_store_and_tables(tmp_path):
    root, *_ = _setup(tmp_path)
    layout = scan_layout(LocalBackend(root))
    assert layout.runs == ["a/b/r1"]
    assert layout.manifests == [f"a/b/r1/{manifest_path(0)}"]


@pytest.mark.parametrize("grace", [-1, float("nan")])
def test_a_negative_or_nan_grace_is_refused(tmp_path, grace):
    young = ContentStore(LocalBackend(str(tmp_path))).put_bytes(b"record on its way").sha256
    with pytest.raises(ValueError, match=r"grace_seconds must be a number >= 0 .*got (-1|nan)"):
        collect_garbage(str(tmp_path), grace_seconds=grace)
    from support.hostile_names import gc

    code, text = gc(str(tmp_path), "--grace", str(grace))
    assert code == 2 and "grace_seconds must be a number >= 0" in text, text
    assert os.path.exists(os.path.join(tmp_path, blob_path(young)))


def test_a_crashed_uploads_partial_file_is_swept_once_old(tmp_path):
    """A local upload killed midway leaves a hidden partial file in the blob store that no
    listing shows: gc removes it once older than the grace (and than any live upload's
    pause), and leaves a recent one (an upload in progress) alone."""
    root, kept, orphan, young = _setup(tmp_path)
    folder = os.path.join(root, os.path.dirname(blob_path(kept)))
    old, live = os.path.join(folder, ".tmp-0123456789abcdef.part"), os.path.join(folder, ".tmp-fedcba9876543210.part")
    for p in (old, live):
        with open(p, "wb") as f:
            f.write(b"x" * 1000)
    os.utime(old, (OLD, OLD))
    dry = collect_garbage(root, grace_seconds=3600, dry_run=True)
    assert (dry.leftover_uploads, dry.young_uploads) == (1, 1)  # (said, kept; the young one said too)
    assert os.path.exists(old)
    done = collect_garbage(root, grace_seconds=3600)
    assert (done.leftover_uploads, done.young_uploads) == (1, 1)
    assert not os.path.exists(old) and os.path.exists(live)
    assert os.path.exists(os.path.join(root, blob_path(kept)))
