"""A blob cut short after it was stored (a disk or a copy that failed) was read back as the
file, silently, and a later save of the same bytes deduplicated onto it: it stayed damaged for
good. Reads check the blob's size against the record's; a save finds it damaged and stores it
anew (local disk and S3)."""

from __future__ import annotations

import logging

import pytest

import distlog
from distlog import report
from distlog.cas import ContentStore, blob_path
from distlog.query.errors import DamagedRecord

DATA = bytes(range(256)) * 400  # 100 KiB


def _save(url, run_id, **opts):
    exp = distlog.get_logger(url, heartbeat_interval=0, telemetry=False, **opts)
    with exp.run(run_id):
        return exp.files.save(DATA, "ckpt/model.bin").sha256


def _cut_short(url, digest, **opts):
    root = distlog.open_storage(url, **opts)
    path = blob_path(digest)
    root.delete(path)
    assert ContentStore(root).put_bytes(DATA[:1000]).sha256 != digest  # (another blob, untouched)
    root.write_bytes(path, DATA[:1000])  # the blob, damaged in place
    return root


def _check(url, caplog, **opts):
    report.reset()
    digest = _save(url, "first", **opts)
    root = _cut_short(url, digest, **opts)
    run = distlog.open_run(f"{url}/default/first", **opts)
    for read in (lambda: run.files.read_bytes("ckpt/model.bin"), lambda: run.files.load("ckpt/model.bin"),
                 lambda: run.files.open("ckpt/model.bin").read()):
        with pytest.raises(DamagedRecord, match=r"are 1000 bytes, not the 102400 saved: the blob was cut short"):
            read()
    with caplog.at_level(logging.WARNING, logger="distlog"):
        assert _save(url, "again", **opts) == digest  # the same bytes, saved again: stored anew
    assert any(f"blob {digest}" in r.getMessage() and "is 1000 bytes, not 102400: damaged" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert root.size(blob_path(digest)) == len(DATA)
    assert run.files.read_bytes("ckpt/model.bin") == DATA  # the first run's record reads again
    # an intact blob: a save is a dedup hit, nothing said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="distlog"):
        _save(url, "third", **opts)
    assert not [r for r in caplog.records if "damaged" in r.getMessage()]


def test_a_damaged_blob_is_named_on_read_and_stored_anew_by_the_next_save(tmp_path, caplog):
    _check(str(tmp_path / "root"), caplog)


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_a_damaged_blob_on_s3_too(s3_bucket, monkeypatch, caplog):
    for k, v in s3_bucket["env"].items():
        monkeypatch.setenv(k, v)
    _check(s3_bucket["url"], caplog, **s3_bucket["storage_options"])


def test_the_dashboard_says_a_blob_is_damaged_instead_of_a_download_that_breaks_off(tmp_path):
    from starlette.testclient import TestClient

    from distlog.dashboard.app import make_app

    url = str(tmp_path / "root")
    digest = _save(url, "first")
    _cut_short(url, digest)
    c = TestClient(make_app(distlog.open_root(url)), base_url="http://127.0.0.1")
    got = c.get("/api/file", params={"run": "default/first", "path": "ckpt/model.bin"})
    assert got.status_code == 400 and "are 1000 bytes, not the 102400 saved" in got.json()["error"], got.text
