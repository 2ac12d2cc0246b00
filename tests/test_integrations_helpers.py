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
    assert got["ns"]["nan"] == "nan" and got["ns"]["obj"] == str(object) and got["t"] == [1, 2]


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
