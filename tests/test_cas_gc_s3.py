"""The content-addressed store and ``collect_garbage`` on S3 (moto): segmented manifests are
read, blobs listed and sized without downloading, and only the unreferenced one goes."""

from __future__ import annotations

import pytest


pytestmark = [pytest.mark.s3]


@pytest.mark.timeout(120)
def test_gc_on_s3_keeps_what_runs_reference(s3_bucket, monkeypatch):
    import distlog
    from distlog.cas import ContentStore, blob_path
    from distlog.gc import collect_garbage

    for k, v in s3_bucket["env"].items():
        monkeypatch.setenv(k, v)
    url, opts = s3_bucket["url"], s3_bucket["storage_options"]
    exp = distlog.get_logger(url, **opts)
    with exp.experiment("e"), exp.run("r"):
        kept = exp.files.save(b"kept bytes", "a.bin")
        exp.files.save(b"kept bytes", "same-again.bin")  # a dedup hit: still one blob
        assert exp.files.load("a.bin") == b"kept bytes"
    root = distlog.open_storage(url, **opts)
    orphan = ContentStore(root).put_bytes(b"nobody refers to me").sha256

    dry = collect_garbage(url, grace_seconds=0, dry_run=True, storage_options=opts)
    assert (dry.blobs_total, dry.referenced, dry.removed, dry.runs_scanned) == (2, 1, 1, 1)
    assert dry.bytes_freed == len(b"nobody refers to me") and root.exists(blob_path(orphan))
    young = collect_garbage(url, storage_options=opts)  # default grace: a day
    assert young.removed == 0 and young.kept_young == 1
    rep = collect_garbage(url, grace_seconds=0, storage_options=opts)
    assert rep.removed == 1 and not root.exists(blob_path(orphan))
    assert root.exists(blob_path(kept.sha256))
