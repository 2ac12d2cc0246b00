"""Session 45 review of files and logs: a missing file is a FileNotFoundError in both APIs
(and a KeyError of the read API), a version another rank saved is named, what save() refuses
or takes from a buffer, a step range given backwards, a multi-line error in `show`."""

from __future__ import annotations

import io
import pathlib

import numpy as np
import pytest

import distlog
from distlog.query.errors import KeyNotFound
from support.cli_tree import cli
from support.ranks import run_ranks


def test_a_missing_file_is_a_file_not_found_error_in_both_apis(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.files.save(b"x", "a.bin")
        with pytest.raises(FileNotFoundError, match="no file 'nope' in this run; saved so far: a.bin"):
            exp.files.load("nope")
        with pytest.raises(FileNotFoundError, match="file 'a.bin' has no version 3; versions: 1"):
            exp.files.load("a.bin", version=3)
    run = distlog.open_run(f"{tmp_path}/default/r")
    for read in (lambda: run.files.load("nope"), lambda: run.files.read_bytes("a.bin", version=3)):
        with pytest.raises(FileNotFoundError):
            read()
        with pytest.raises(KeyNotFound):  # (what the read API raised before: still caught)
            read()


def _two_ranks_save(rank, world, root):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("f"):
        exp.files.save(b"first", "art/diff.bin")  # version 1, both ranks (the same bytes)
        exp.metrics.flush()  # (both ranks past version 1 before rank 1 saves version 2)
        if rank == 1:
            exp.files.save(b"second", "art/diff.bin")  # version 2, rank 1 only
        exp.metrics.flush()
        if rank == 0:
            try:
                exp.files.load("art/diff.bin", version=2, rank=0)
            except FileNotFoundError as e:
                return str(e)
    return None


@pytest.mark.dist
@pytest.mark.timeout(180)
def test_a_version_another_rank_saved_is_named_not_said_missing(tmp_path):
    root = str(tmp_path / "root")
    said = run_ranks(_two_ranks_save, 2, tmp_path, root, timeout=120)[0]
    assert said is not None and said.startswith("rank 0 saved no version 2 of 'art/diff.bin' (rank 1 did: pass rank=1, or no rank)"), said
    run = distlog.open_run(f"{root}/default/f")
    with pytest.raises(FileNotFoundError, match=r"rank 0 saved no version 2 of 'art/diff.bin' \(rank 1 did: "
                                                r"pass rank=1, or no rank\); rank 0's versions: 1"):
        run.files.read_bytes("art/diff.bin", version=2, rank=0)
    assert run.files.read_bytes("art/diff.bin", version=2) == b"second"


def test_save_takes_a_buffer_as_its_bytes_and_refuses_a_path_and_bytes_that_are_not_what_the_name_says(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        rec = exp.files.save(io.BytesIO(b"abc"), "buf.bin")  # (it was a pickle of the buffer)
        assert exp.files.load("buf.bin") == b"abc" and rec.size == 3
        buf = io.BytesIO()
        np.save(buf, np.arange(4))
        exp.files.save(buf, "arr.npy")
        np.testing.assert_array_equal(exp.files.load("arr.npy"), np.arange(4))
        with pytest.raises(TypeError, match=r"save\(bytes, 'b.npy'\): these bytes are not a NumPy .npy file "
                                            r"\(they begin b'not npy'"):
            exp.files.save(b"not npy", "b.npy")
        with pytest.raises(TypeError, match=r"a path; to store the file it names use files.log_file\('p.txt', path\)"):
            exp.files.save(pathlib.Path(__file__), "p.txt")


def test_a_step_range_given_backwards_is_an_error_not_no_records(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        for s in range(30):
            exp.info(f"line {s}", step=s)
    code, out, err = cli(capsys, "logs", tmp_path / "default" / "r", "--step", "20:10")
    assert code == 2 and "the step range '20:10' runs backwards (from 20 down to 10): give the smaller step first, 10:20" in err
    run = distlog.open_run(f"{tmp_path}/default/r")
    with pytest.raises(ValueError, match="runs backwards"):
        run.logs.query(steps=(20, 10))
    assert [r.message for r in run.logs.query(steps="10:11")] == ["line 10", "line 11"]


def test_show_keeps_a_multi_line_error_under_its_field(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with pytest.raises(RuntimeError):
        with exp.run("r"):
            raise RuntimeError("first line\nsecond line")
    code, out, err = cli(capsys, "show", tmp_path / "default" / "r")
    assert "RuntimeError on rank 0 (attempt 0, host" in out and "first line\n            second line\n" in out, out


def test_logs_json_gives_one_object_a_record(tmp_path, capsys):
    import json

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.info("hello", step=3, lr=0.1, bad=float("nan"))
        exp.warning("careful\nsecond line")
    code, out, err = cli(capsys, "logs", tmp_path / "default" / "r", "--json", "--level", "INFO")
    assert code == 0 and "structured fields" not in err
    recs = [json.loads(line) for line in out.splitlines()]
    assert [(r["level"], r["message"], r["step"]) for r in recs] == [
        ("INFO", "hello", 3), ("WARNING", "careful\nsecond line", None)]
    assert recs[0]["fields"] == {"lr": 0.1, "bad": "nan"} and recs[0]["rank"] == 0 and recs[0]["attempt"] == 0
    code, out, err = cli(capsys, "logs", tmp_path / "default" / "r", "--json", "--raw")
    assert code == 2 and "give one of them" in err


def test_files_name_writes_the_bytes_of_one_file(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.files.save(b"v1", "ckpt/x.bin")
        exp.files.save(b"v2", "ckpt/x.bin")
    run_dir = tmp_path / "default" / "r"
    out = tmp_path / "got.bin"
    code, _, err = cli(capsys, "files", run_dir, "ckpt/x.bin", "--version", "1", "-o", out)
    assert code == 0 and out.read_bytes() == b"v1" and "wrote" in err
    code, _, err = cli(capsys, "files", run_dir, "ckpt/x.bin", "-o", out)
    assert code == 0 and out.read_bytes() == b"v2"
    code, _, err = cli(capsys, "files", run_dir, "nope", "-o", out)
    assert code == 2 and "no file 'nope'" in err and "files: ckpt/x.bin" in err
    code, _, err = cli(capsys, "files", run_dir, "-o", out)
    assert code == 2 and "name it, distlog files RUN NAME -o OUT" in err
