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


@pytest.mark.timeout(120)
def test_gc_aborts_a_multipart_upload_a_killed_writer_left(s3_bucket, monkeypatch):
    """A writer killed while uploading a large blob leaves a multipart upload that S3 keeps
    (and bills) until it is aborted and that no listing shows: gc --dry-run counts it, gc
    aborts it once older than the grace; another prefix's upload is not gc's to touch."""
    import time

    import s3fs

    import distlog.gc as G
    from distlog.cas import BLOB_DIR
    from distlog.gc import collect_garbage

    url, opts, bucket = s3_bucket["url"], s3_bucket["storage_options"], s3_bucket["bucket"]
    distlog_root = url[len("s3://"):]
    fs = s3fs.S3FileSystem(**opts)

    def start_upload(key):
        up = fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)
        fs.call_s3("upload_part", Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=1,
                   Body=b"x" * (5 << 20))
        return up["UploadId"]

    def open_uploads():
        page = fs.call_s3("list_multipart_uploads", Bucket=bucket)
        return sorted(u["Key"] for u in page.get("Uploads") or ())

    mine = f"{distlog_root.partition('/')[2]}/{BLOB_DIR}/ab/ab{'0' * 62}"
    other = "elsewhere/big.bin"
    start_upload(mine)
    start_upload(other)
    time.sleep(1.1)  # (S3 gives the start time in whole seconds)
    assert collect_garbage(url, grace_seconds=0, storage_options=opts).leftover_uploads == 0  # within SWEEP_WAIT
    monkeypatch.setattr(G, "SWEEP_WAIT", 0.0)
    assert collect_garbage(url, grace_seconds=3600, storage_options=opts).leftover_uploads == 0  # within the grace
    dry = collect_garbage(url, grace_seconds=0, dry_run=True, storage_options=opts)
    assert dry.leftover_uploads == 1 and open_uploads() == sorted([mine, other])
    assert collect_garbage(url, grace_seconds=0, storage_options=opts).leftover_uploads == 1
    assert open_uploads() == [other]
