"""The name rules per place (distlog.names): what is rejected, with a message naming the
argument, the value (shortened), the limit and the fix; what is accepted."""

from __future__ import annotations

import pytest

import distlog
from distlog.layout import LOGS_DIR, PARAMS_FILE, RANKS_DIR, RUN_FILE, STORE_DIR
from distlog.names import check_name

EXP, RUN, KEY, NS, FILE = "experiment name", "run id", "metric key", "files namespace", "file name"


@pytest.mark.parametrize("what,value,expect", [
    (RUN, "n" * 256, "256 bytes of UTF-8, over the 255-byte limit"),
    (EXP, "é" * 128, "256 bytes of UTF-8, over the 255-byte limit"),
    (KEY, "😀" * 64, "256 bytes of UTF-8, over the 255-byte limit"),
    (KEY, "a/" + "b" * 254, "256 bytes of UTF-8, over the 255-byte limit (the whole name"),
    (EXP, "x/" * 7 + "x", "8 '/'-separated parts, over the limit of 7"),
    (FILE, "/".join(["d" * 200] * 6), "over the 1024-byte limit"),
    (KEY, "zarr.json", "'zarr.json' is reserved by Zarr"),
    (KEY, "train/.zattrs", "starts with '.'"),
    (KEY, "__meta", "reserved by the Zarr v3 specification"),
    (KEY, "...", "starts with '.'"),
    (EXP, STORE_DIR, "starts with '.'"),
    (EXP, "a/.hidden", "starts with '.'"),
    (RUN, "...", "starts with '.'"),
    (EXP, RUN_FILE, f"{RUN_FILE!r} is reserved"),
    (RUN, RUN_FILE, f"{RUN_FILE!r} is reserved"),
    (KEY, f"a/{RUN_FILE}", f"{RUN_FILE!r} is reserved"),
    (RUN, "x.seg", "reserved for the segments of appended files"),
    (RUN, "trail.", "ends with '.'"),
    (RUN, "trail ", "whitespace"),
    (KEY, " lead", "whitespace"),
    (RUN, "br[1]", "glob"),
    (KEY, "star*", "glob"),
    (EXP, "q?versionId=1", "glob"),
    (RUN, "a\u202eb", "control characters"),
    (RUN, "del\x7f", "control characters"),
    (KEY, "\ud800", "unpaired surrogate"),
])
def test_rejected_with_argument_value_limit_and_fix(what, value, expect):
    with pytest.raises(ValueError) as e:
        check_name(value, what, allow_slash=True)
    msg = str(e.value)
    assert msg.startswith(what) and expect in msg, msg
    assert len(msg) < 600  # the value is shortened, not dumped whole
    assert any(w in msg for w in ("shorten", "choose", "remove", "strip", "use", "nest less",
                                  "decode")), msg


@pytest.mark.parametrize("what,value", [
    (RUN, "n" * 255), (EXP, "€" * 85), (KEY, "😀" * 63 + "abc"), (EXP, "x/" * 6 + "x"),
    (KEY, "aux"), (RUN, "CON"), (EXP, "%2e%2e/%2e%2e"), (KEY, "with space"), (RUN, "数据集"),
    (KEY, "c"), (KEY, RANKS_DIR), (RUN, LOGS_DIR), (EXP, PARAMS_FILE), (KEY, "train/loss"),
    (FILE, ".hydra/config.yaml"), (FILE, "weights[1]*.bin"), (NS, "..."), (FILE, "trail."),
])
def test_accepted(what, value):
    assert check_name(value, what, allow_slash=True) == value


def test_long_experiment_and_run_names_raise_value_error_not_oserror(tmp_path):
    """Issue 10: 400 characters gave ``OSError: File name too long`` from the run start."""
    exp = distlog.get_logger(str(tmp_path / "root"))
    with pytest.raises(ValueError, match=r"experiment name 'x+'\.\.\. \(400 bytes\).*255-byte"):
        with exp.experiment("x" * 400), exp.run("r"):
            pass
    with pytest.raises(ValueError, match=r"run id 'y+'\.\.\. \(400 bytes\).*255-byte"):
        exp.start_run("y" * 400)
    assert not (tmp_path / "root").exists() or not any((tmp_path / "root").iterdir())


def test_a_run_folder_too_long_for_an_object_key_is_refused(tmp_path):
    deep = tmp_path / ("d" * 200) / ("e" * 200) / ("f" * 200)
    exp = distlog.get_logger(str(deep))
    with pytest.raises(ValueError, match=r"over the 1024-byte key limit of object stores"):
        with exp.experiment("g" * 200), exp.run("h" * 100):
            pass


def test_runs_cannot_nest_either_way(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"))
    with exp.experiment("a"), exp.run("b"):
        exp.metrics.log(step=0, x=1.0)
    with pytest.raises(ValueError, match=r"inside the run 'a/b'"):
        with exp.experiment("a/b"), exp.run("c"):
            pass
    with exp.experiment("p/q"), exp.run("r"):
        exp.metrics.log(step=0, x=1.0)
    with pytest.raises(ValueError, match=r"'p/q' already exists as an experiment folder"):
        with exp.experiment("p"), exp.run("q"):
            pass
    runs = {(r.info.experiment, r.info.run_id) for r in distlog.open_root(str(tmp_path / "root")).runs()}
    assert runs == {("a", "b"), ("p/q", "r")}


def test_a_bad_key_is_refused_at_the_call_and_the_good_ones_are_kept(tmp_path):
    """Issue 10: a 400-character or ``zarr.json`` key was accepted, failed the background
    writer, and no series of the run was committed again."""
    exp = distlog.get_logger(str(tmp_path / "root"))
    with exp.experiment("e"), exp.run("r"):
        for step in range(3):
            exp.metrics.log(step=step, good=float(step))
            for bad in ("k" * 400, "zarr.json"):
                with pytest.raises(ValueError, match="metric key"):
                    exp.metrics.log(step=step, **{bad: 1.0})
                with pytest.raises(ValueError, match="metric key"):
                    exp.metrics.collect(step=step, **{bad: 1.0})
                with pytest.raises(ValueError, match="metrics namespace|metric key"):
                    exp.metrics(bad).log(step=step, v=1.0)
            exp.metrics.flush()
    run = distlog.open_run(str(tmp_path / "root" / "e" / "r"))
    assert run.info.status == "completed"
    assert run.metrics.keys() == ["good"]
    assert list(run.metrics.read("good")["value"]) == [0.0, 1.0, 2.0]


def test_a_files_namespace_and_name_together_over_the_limit_are_refused(tmp_path):
    """The limit is the artifact's whole logical path: a 200-byte namespace and an 824-byte
    name (1,025 bytes) were accepted, though the same path without the namespace is not."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("r"):
        name = "/".join(["n" * 200] * 4) + "/" + "m" * 20  # 824 bytes
        with pytest.raises(ValueError, match="1025 bytes of UTF-8, over the 1024-byte limit"):
            exp.files("s" * 200).save(b"x", name)
        with pytest.raises(ValueError, match="over the 1024-byte limit"):
            exp.files("s" * 200)("/".join(["t" * 200] * 5) + "/u")  # namespaces nested past it
        assert exp.files("s" * 200).save(b"x", name[:-1]).path == "s" * 200 + "/" + name[:-1]
