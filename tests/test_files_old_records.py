"""Records written by an earlier distlog still load. Before ad072c2 a compressed file was
recorded with its content's media type (``table.csv.gz``: text/csv, ``x.json.bz2``:
application/json, ``data.tar.xz``: application/x-tar, what ``mimetypes.guess_type`` says), and
load decoded the gzip bytes as that content."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import mimetypes

import pytest

import distlog
from distlog import cli
from distlog.files import logger as files_logger
from distlog.query import open_run


def _old_media_type_of(name: str, default: str = "application/octet-stream") -> str:
    """``files.kinds.media_type_of`` as distlog wrote records before ad072c2."""
    from distlog.files.kinds import _KINDS, _ext

    ext = _ext(name)
    if ext in _KINDS:
        return _KINDS[ext][1]
    return mimetypes.guess_type(name.rsplit("/", 1)[-1])[0] or default


CASES = [("table.csv.gz", gzip.compress(b"a,b\n1,2\n"), "text/csv"),
         ("cfg.json.bz2", bz2.compress(b'{"lr": 0.1}'), "application/json"),
         ("data.tar.xz", lzma.compress(b"\xff\x00 not text"), "application/x-tar"),
         ("notes.txt.gz", gzip.compress("caf\u00e9 \xff".encode("latin-1")), "text/plain")]


@pytest.fixture
def old_run(tmp_path, monkeypatch):
    """A run whose compressed files were saved by the old code (same manifest lines)."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with monkeypatch.context() as m:
        m.setattr(files_logger, "media_type_of", _old_media_type_of)
        with exp.experiment("e"), exp.run("r"):
            for name, data, old_type in CASES:
                local = tmp_path / name
                local.write_bytes(data)
                assert exp.files.log_file(name, local).media_type == old_type  # the old shape
            exp.files.save({"k": 1}, "plain.json")
    return exp, f"{root}/e/r"


@pytest.mark.parametrize("name, data, old_type", CASES, ids=[c[0] for c in CASES])
def test_an_old_compressed_record_loads_as_its_bytes_from_the_query_side(old_run, name, data, old_type):
    _, url = old_run
    run = open_run(url)
    rec = run.files.find(name)
    assert rec.media_type == old_type  # as stored
    assert run.files.load(name) == data
    assert run.files.read_bytes(name) == data
    assert run.files.load("plain.json") == {"k": 1}


@pytest.mark.parametrize("name, data, old_type", CASES, ids=[c[0] for c in CASES])
def test_an_old_compressed_record_loads_as_its_bytes_in_a_resumed_run(old_run, name, data, old_type):
    exp, _ = old_run
    with exp.experiment("e"), exp.run("r", resume="must"):
        assert exp.files.load(name) == data
        assert exp.files.load("plain.json") == {"k": 1}


def test_cli_files_lists_old_compressed_records(old_run, capsys):
    _, url = old_run
    assert cli.main(["files", url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in rows) == sorted(
        [c[0] for c in CASES] + ["plain.json"])
