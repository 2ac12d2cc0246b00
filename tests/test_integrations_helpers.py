"""The framework-free parts of distlog.integrations: install hints, key and param cleaning,
the tqdm postfix feed (a real tqdm bar, a real flush)."""

import argparse
import enum
import io

import numpy as np
import pytest

import distlog
from distlog.integrations import tqdm_postfix
from distlog.integrations._session import RunSession, clean_key, numeric, plain_params, require


def test_missing_framework_names_the_extra():
    with pytest.raises(ImportError, match=r"pip install distlog\[lightning\]") as e:
        require("lightning", "no_such_module_xyz.pytorch", "no_such_module_abc")
    assert "'no_such_module_xyz.pytorch' or 'no_such_module_abc'" in str(e.value)
    assert require("lightning", "no_such_module_xyz", "json").__name__ == "json"


def test_import_distlog_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, distlog, distlog.integrations; "
            "print(sorted(m for m in ('lightning', 'pytorch_lightning', 'transformers', 'accelerate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("raw, key", [("train/loss", "train/loss"), ("a//b/", "a/b"), ("lr-Adam\\pg1", "lr-Adam_pg1"),
                                      ("x\ty", "x_y"), ("./..", None), ("/abs", "abs")])
def test_clean_key(raw, key):
    assert clean_key(raw) == key


def test_numeric_keeps_numbers_and_drops_the_rest():
    import torch

    t = torch.tensor(2.5)
    got = numeric({"a": 1, "b": "text", "c": [1, 2], "d": np.float32(0.5), "e": t, "f": torch.ones(3)}, "p/")
    assert got == {"p/a": 1, "p/d": np.float32(0.5), "p/e": t}


def test_plain_params():
    class Color(enum.Enum):
        RED = "red"

    ns = argparse.Namespace(lr=0.1, tags={"b", "a"}, color=Color.RED, nan=float("nan"), obj=object)
    got = plain_params({"ns": ns, "t": (1, 2)})
    assert got["ns"]["lr"] == 0.1 and got["ns"]["tags"] == ["a", "b"] and got["ns"]["color"] == "red"
    assert got["ns"]["nan"] == "nan" and got["ns"]["obj"] == "builtins.object" and got["t"] == [1, 2]


def test_plain_params_of_a_dataclass_class_is_its_name():
    import dataclasses

    @dataclasses.dataclass
    class Config:
        width: int = 4

    got = plain_params({"cls": Config, "inst": Config()})
    assert got == {"cls": f"{__name__}.test_plain_params_of_a_dataclass_class_is_its_name.<locals>.Config",
                   "inst": {"width": 4}}


def test_numeric_flattens_nested_dicts_and_names_what_it_drops():
    dropped = []
    got = numeric({"loss": {"train": 1.0, "val": {"a": 2}}, "note": "text", "xs": [1, 2]}, "p/", dropped)
    assert got == {"p/loss/train": 1.0, "p/loss/val/a": 2}
    assert dropped == ["p/note (str)", "p/xs (list)"]


def test_session_reopens_the_same_run_as_a_new_attempt(tmp_path):
    s = RunSession(str(tmp_path), "exp", tags=["t"])
    s.add_params({"lr": 0.1})  # before the run opens: kept
    s.collect(0, {"loss": 1.0})
    s.open()
    s.collect(1, {"loss": 3.0, "note": "skip me"})
    s.flush()
    s.close(ok=True)
    s.open()
    s.collect(2, {"loss": 5.0})
    s.close(ok=False, reason="the framework said 'failed'")
    run = distlog.open_run(tmp_path / "exp" / s.run_id)
    assert run.params == {"lr": 0.1} and run.info.tags == ("t",)
    assert [a["status"] for a in run.info.attempts] == ["completed", "failed"]
    assert "failed" in run.info.error["message"]
    rows = run.metrics.numpy("loss")
    # the failed attempt's last collected values are kept (one process: its closing flush runs)
    np.testing.assert_array_equal(rows["step"], [1, 2])
    np.testing.assert_array_equal(rows["mean"], [2.0, 5.0])


def test_closing_drops_a_refused_value_with_a_warning(tmp_path):
    s = RunSession(str(tmp_path), "exp")
    s.open()
    s.collect(3, {"a": 1.0, "epoch": 0})
    s.flush()
    s.collect(3, {"epoch": 0, "b": 2.0})  # 'epoch' at step 3 again: refused at the closing flush
    s.close(ok=True)  # no exception: the framework's fit must not end in one
    run = distlog.open_run(tmp_path / "exp" / s.run_id)
    assert run.info.status == "completed"
    assert list(run.metrics.numpy("b")["step"]) == [3] and list(run.metrics.numpy("epoch")["step"]) == [3]
    warnings = [r.message for r in run.logs.query(level="WARNING")]
    assert len(warnings) == 1 and "refused values" in warnings[0] and "'epoch'" in warnings[0]


def test_values_that_are_not_numbers_are_named_in_the_log(tmp_path):
    s = RunSession(str(tmp_path), "exp")
    s.open()
    s.log(0, {"loss": {"train": 1.0}, "note": "text"})
    s.log(1, {"note": "again"})  # reported once per key
    s.close(ok=True)
    run = distlog.open_run(tmp_path / "exp" / s.run_id)
    assert run.metrics.keys() == ["loss/train"]
    warnings = [r.message for r in run.logs.query(level="WARNING")]
    assert len(warnings) == 1 and "not stored: note (str)" in warnings[0]


def test_an_appending_attempt_keeps_every_stored_row(tmp_path):
    """An evaluation after training (Lightning's validate, transformers' evaluate) appends."""
    s = RunSession(str(tmp_path), "exp")
    s.open()
    for step in (2, 4):
        s.collect(step, {"eval/loss": float(step), "train/loss": 1.0})
        s.flush()
    s.close(ok=True)
    s.open(append=True)
    s.collect(0, {"eval/loss": 9.0, "test/loss": 5.0})  # eval/loss at 0: refused, not rewound
    s.flush()
    s.collect(5, {"eval/loss": 7.0})
    s.close(ok=True)
    run = distlog.open_run(tmp_path / "exp" / s.run_id)
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed"]
    np.testing.assert_array_equal(run.metrics.numpy("eval/loss")["step"], [2, 4, 5])
    np.testing.assert_array_equal(run.metrics.numpy("eval/loss")["mean"], [2.0, 4.0, 7.0])
    np.testing.assert_array_equal(run.metrics.numpy("train/loss")["step"], [2, 4])
    np.testing.assert_array_equal(run.metrics.numpy("test/loss")["step"], [0])
    assert run.info.last_step == 5


def test_a_later_training_attempt_still_rewinds(tmp_path):
    s = RunSession(str(tmp_path), "exp")
    s.open()
    for step in (0, 1, 2):
        s.collect(step, {"loss": float(step)})
        s.flush()
    s.close(ok=True)
    s.open()  # a restarted training run: writes step 1 again and replaces from there
    s.collect(1, {"loss": 10.0})
    s.close(ok=True)
    rows = distlog.open_run(tmp_path / "exp" / s.run_id).metrics.numpy("loss")
    np.testing.assert_array_equal(rows["step"], [0, 1])
    np.testing.assert_array_equal(rows["mean"], [0.0, 10.0])


def test_tqdm_postfix_shows_a_flush(tmp_path):
    tqdm = pytest.importorskip("tqdm").tqdm
    exp = distlog.get_logger(str(tmp_path))
    with exp.run():
        exp.metrics("train").collect(step=3, loss=1.0, acc=0.5)
        exp.metrics("train").collect(step=3, loss=2.0)
        reduced = exp.metrics.flush()
        out = io.StringIO()
        with tqdm(total=10, file=out, mininterval=0) as bar:
            shown = tqdm_postfix(bar, reduced, keys=["train/loss", "train/acc", "missing"])
            bar.update(1)
            assert tqdm_postfix(bar, reduced, rank=1) == {}  # other ranks draw nothing
            assert tqdm_postfix(None, reduced) == {}
    assert shown == {"train/loss": "1.5", "train/acc": "0.5"}
    assert "train/loss=1.5, train/acc=0.5" in out.getvalue()
    # a short name that names one key shows it (under the name given); one that names none
    # or several (val/loss beside train/loss) shows nothing
    assert tqdm_postfix(bar, reduced, keys=["loss", "acc"]) == {"loss": "1.5", "acc": "0.5"}
    exp = distlog.get_logger(str(tmp_path))
    with exp.run():
        exp.metrics.collect({"train/loss": 1.0, "val/loss": 2.0})
        assert tqdm_postfix(bar, exp.metrics.flush(), keys=["loss", "val/loss"]) == {"val/loss": "2"}
    with pytest.raises(ValueError, match="stat must be one of"):
        tqdm_postfix(bar, reduced, stat="median")


def test_refused_values_from_a_framework_hook_do_not_end_training(tmp_path):
    s = RunSession(str(tmp_path), "exp")
    s.open()
    s.collect(0, {"a": 1.0})
    assert s.flush()["a"]["mean"] == 1.0
    with pytest.raises(ValueError, match="clashes with"):
        s.collect(1, {"a/b": 2.0}, tolerant=False)  # what a script's own collect() does
    s.collect(1, {"a/b": 2.0, "c": 3.0})  # a framework hook: 'a/b' dropped and recorded, 'c' kept
    assert s.refused == 1
    assert list(s.flush().keys) == ["a", "c"]
    # a second row for a step already written: refused at flush by distlog versions that keep
    # steps strictly increasing; from a hook that is a record, not an exception
    s.collect(1, {"c": 5.0})
    reduced = s.flush()
    s.close(ok=True)
    run = distlog.open_run(tmp_path / "exp" / s.run_id)
    assert run.info.status == "completed"
    c = run.metrics.numpy("c")
    if s.refused == 2:
        assert reduced is None and list(c["step"]) == [1]
    else:
        assert reduced["c"]["mean"] == 5.0 and list(c["step"]) == [1, 1]
    np.testing.assert_array_equal(c["mean"][:1], [3.0])
    warnings = [r.message for r in run.logs.query(level="WARNING")]
    assert len(warnings) == 1 and "refused values" in warnings[0] and "clashes with" in warnings[0]
