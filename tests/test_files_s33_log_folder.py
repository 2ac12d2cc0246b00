"""``files.log_file`` given a folder (a checkpoint folder) says it takes one file and how to
store a folder's files, and that way stores every file of it under its relative name."""

from __future__ import annotations

import hashlib
import pathlib

import pytest

import distlog


def test_a_folder_is_refused_with_how_to_store_its_files(tmp_path):
    folder = tmp_path / "checkpoint-10"
    (folder / "sub").mkdir(parents=True)
    want = {"model.bin": b"\x00w" * 1000, "config.json": b'{"a": 1}', "sub/x y.txt": b"t\xc3\xa9"}
    for rel, data in want.items():
        (folder / rel).write_bytes(data)
    exp = distlog.get_logger(str(tmp_path / "root"))
    with exp.run("r"):
        url = exp.run_url
        files = exp.files("ckpt")
        with pytest.raises(IsADirectoryError, match=r"expected one file, got a folder.*rglob"):
            files.log_file("checkpoint-10", folder)
        with pytest.raises(FileNotFoundError, match="pass an existing file"):
            files.log_file("gone.bin", folder / "gone.bin")
        # what the message says to do
        for p in pathlib.Path(folder).rglob("*"):
            if p.is_file():
                files.log_file(f"checkpoint-10/{p.relative_to(folder)}", p)
    run = distlog.open_run(url)
    assert sorted(run.files.paths()) == sorted(f"ckpt/checkpoint-10/{k}" for k in want)
    for rel, data in want.items():
        got = run.files.read_bytes(f"ckpt/checkpoint-10/{rel}")
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), rel
