"""Versions of a re-saved name, listing, namespaces, the files table written at close, and
versions continuing across a resumed attempt."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import zarr

from distlog.layout import FILES_TABLE, manifest_path, table_commit, table_zarr
import distlog
from distlog.files import TABLE_COLUMNS, read_manifests


def test_resaving_a_name_keeps_earlier_versions(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"))
    with exp.run("r"):
        ck = exp.files("checkpoints")
        assert [ck.save(b, "model.bin").version for b in (b"v1", b"v2", b"v3")] == [1, 2, 3]
        assert ck.load("model.bin") == b"v3"
        assert ck.load("model.bin", version=1) == b"v1"
        assert ck.load("model.bin", version=-2) == b"v2"
        assert [r.version for r in ck.versions("model.bin")] == [1, 2, 3]
        # identical bytes to the latest version: one more record, not a new version
        assert ck.save(b"v3", "model.bin").version == 3
        assert len(ck.records("model.bin")) == 4
        # going back to earlier content is a new version
        assert ck.save(b"v1", "model.bin").version == 4
        assert ck.info("model.bin").version == 4 and ck.load("model.bin") == b"v1"
        with pytest.raises(FileNotFoundError, match="versions"):
            ck.load("model.bin", version=9)


def test_list_namespaces_and_patterns(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"))
    with exp.run("r"):
        exp.files.save(b"a", "top.bin")
        exp.files("ckpt").save(b"b", "e1.pt.bin")
        exp.files("ckpt").save(b"c", "e2.pt.bin")
        exp.files("ckpt").save(b"c2", "e2.pt.bin")
        exp.files("ckpt")("best").save(b"d", "m.bin")
        assert [r.path for r in exp.files.list()] == [
            "ckpt/best/m.bin", "ckpt/e1.pt.bin", "ckpt/e2.pt.bin", "top.bin"]
        ck = exp.files("ckpt")
        assert [r.name for r in ck.list("e*")] == ["e1.pt.bin", "e2.pt.bin"]
        assert [r.version for r in ck.list("e2*")] == [2]
        # the same logical path from the root namespace or a namespaced view
        assert exp.files.load("ckpt/best/m.bin") == ck("best").load("m.bin") == b"d"
        assert exp.files.exists("top.bin") and not exp.files.exists("nope.bin")


def test_files_table_written_at_close(tmp_path):
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root))
    with exp.run("r"):
        with exp.step(5):
            exp.files.save(np.arange(3), "a.npy")
        exp.files("ns").save(b"x", "b.bin")
        exp.files("ns").save(b"y", "b.bin")
    run = root / "default" / "r"
    commit = json.loads((run / table_commit(FILES_TABLE)).read_text())
    assert commit["length"] == 3 and commit["columns"] == [c for c, _ in TABLE_COLUMNS]
    g = zarr.open_group(str(run / table_zarr(FILES_TABLE)), mode="r")
    n = commit["length"]
    assert list(g["path"][:n]) == ["a.npy", "ns/b.bin", "ns/b.bin"]
    assert g["version"][:n].tolist() == [1, 1, 2]
    np.testing.assert_array_equal(g["step"][:n], [5.0, np.nan, np.nan])  # none: NaN, not -1
    assert g["size"].dtype == np.int64 and g["time"].dtype == np.float64 and g["step"].dtype == np.float64
    assert g["rank"][:n].tolist() == [0, 0, 0]
    recs = read_manifests(distlog.open_storage(str(run)))
    assert [r.sha256 for r in recs] == list(g["sha256"][:n])


def test_the_files_table_is_what_zarr_writes(tmp_path, monkeypatch):
    """The files table is built without zarr (a run on local disk never imports it): its
    documents, consolidated metadata and chunk bytes must be what zarr writes for the same
    columns, including a padded edge chunk, non-ASCII names and a missing step."""
    from distlog.storage import open_storage
    from distlog.writers import manifest

    monkeypatch.setattr(manifest, "TABLE_CHUNK", 4)  # 10 rows: chunks of 4, 4 and 2 (+2 fill)
    recs = [manifest.FileRecord(path=f"ns/é{i}.bin", name=f"é{i}.bin", namespace="ns", sha256=f"{i:064x}",
                                size=i * 1000, media_type="application/octet-stream", rank=i % 3,
                                host="nœud", step=None if i % 4 == 0 else i, time=1.7e9 + i,
                                version=1 + i // 5, attempt=i // 7) for i in range(10)]
    store = open_storage(str(tmp_path / "mine"))
    store.put_object("files.zarr/stale/zarr.json", b"{}")  # an earlier table is replaced whole
    assert manifest.write_files_table(store, recs) == 10
    ref = zarr.open_group(str(tmp_path / "ref.zarr"), mode="w")
    for col, kind in TABLE_COLUMNS:
        values = [getattr(r, col) for r in recs]
        missing = -1 if kind == "int" else np.nan  # (a missing step is NaN)
        data = (np.array(values, dtype=str) if kind == "str" else np.array(
            [missing if v is None else v for v in values], np.int64 if kind == "int" else np.float64))
        ref.create_array(col, shape=(10,), chunks=(4,), dtype=str if kind == "str" else data.dtype)[:] = data
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "consolidated metadata is not in the v3 spec"
        zarr.consolidate_metadata(str(tmp_path / "ref.zarr"))
    mine, theirs = tmp_path / "mine" / table_zarr(FILES_TABLE), tmp_path / "ref.zarr"
    files = sorted(os.path.relpath(os.path.join(d, f), mine) for d, _, fs in os.walk(mine) for f in fs)
    assert files == sorted(os.path.relpath(os.path.join(d, f), theirs) for d, _, fs in os.walk(theirs) for f in fs)
    assert "path/c/2" in files and not any(f.startswith("stale") for f in files)
    for f in files:
        a, b = (mine / f).read_bytes(), (theirs / f).read_bytes()
        assert (json.loads(a) == json.loads(b)) if f.endswith("zarr.json") else a == b, f
    g = zarr.open_consolidated(str(mine), mode="r")
    assert list(g["name"][:]) == [r.name for r in recs]
    np.testing.assert_array_equal(g["step"][:2], [np.nan, 1.0])


def test_versions_continue_in_a_resumed_attempt(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.run("resumable"):
        exp.files.save(b"one", "state.bin")
    with exp.run("resumable"):
        rec = exp.files.save(b"two", "state.bin")
        assert (rec.version, rec.attempt) == (2, 1)
        assert exp.files.load("state.bin", version=1) == b"one"
    lines = open(os.path.join(root, "default", "resumable", manifest_path(0))).read().splitlines()
    assert [json.loads(x)["attempt"] for x in lines] == [0, 1]
    g = zarr.open_group(os.path.join(root, "default", "resumable", table_zarr(FILES_TABLE)), mode="r")
    assert g["version"][:].tolist() == [1, 2]


def test_a_torn_manifest_line_is_skipped_and_not_glued_to_the_next(tmp_path):
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root))
    with exp.run("torn"):
        exp.files.save(b"ok", "a.bin")
    manifest = root / "default" / "torn" / manifest_path(0)
    with open(manifest, "a") as f:
        f.write('{"path": "b.bin", "sha2')  # the attempt crashed mid-line
    with exp.run("torn"):
        assert [r.path for r in exp.files.list()] == ["a.bin"]
        exp.files.save(b"next", "c.bin")
        assert [r.path for r in exp.files.list()] == ["a.bin", "c.bin"]
    assert len(manifest.read_text().splitlines()) == 3
