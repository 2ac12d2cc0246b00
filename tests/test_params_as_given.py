"""Params are stored as the user gave them, and read back alike everywhere (a review with
argparse, dataclasses, Hydra-style configs and a sweep found each of these):

- a config group named ``params`` is a group, not the whole mapping (``set(**cfg)``);
- ``set()`` keeps no reference to the caller's dicts (a later edit of the config does not
  reach ``params.json`` through an unrelated ``update``);
- a key stored with dots is read as ``update`` writes it, and a param under a plain value
  stored with dots is refused as its nested form is;
- the file keeps the config's order; a ``StrEnum``/``IntEnum`` member is its value in the run
  too; a mapping or sequence other than dict/list (an OmegaConf config) is stored as one;
- a refused value's error names the key as given and the fix;
- a 0-d tensor or array param is selected by ``--where`` and ``runs(params=)`` like the
  number it holds; a tuple by its printed form; the dashboard sends paths, dates, sets, big
  ints and long arrays as the CLI shows them; a resumed attempt's warning shows values as
  Python writes them.
"""

from __future__ import annotations

import collections
import datetime
import enum
import json
from pathlib import Path

import numpy as np
import pytest

import distlog
from distlog.cli import main as cli_main
from distlog.dashboard.encode import jsonable
from distlog.query.render import fmt_exact, fmt_value


def _stored(tmp_path, run="r"):
    return json.loads((tmp_path / "default" / run / "params.json").read_text())


def test_a_group_named_params_is_a_group(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.params.set(**{"lr": 1e-4, "params": {"hidden": 256}})
        assert exp.params["params.hidden"] == 256 and exp.params["lr"] == 1e-4
        exp.params.extend(params={"lr": 5.0})
        assert exp.params["lr"] == 1e-4 and exp.params["params"] == {"hidden": 256, "lr": 5.0}
    assert _stored(tmp_path) == {"lr": 1e-4, "params": {"hidden": 256, "lr": 5.0}}
    log = "".join(p.read_text() for p in (tmp_path / "default" / "r").rglob("*.log"))
    assert log.count("params.extend(params={...}) stores a group named 'params'") == 1  # (said once)


def test_set_keeps_no_reference_to_the_callers_config(tmp_path):
    cfg = {"optim": {"lr": 0.1, "betas": [0.9, 0.99]}}
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.params.set(cfg)
        cfg["optim"]["lr"] = 999.0
        cfg["optim"]["betas"].append(1.0)
        assert exp.params["optim.lr"] == 0.1
        exp.params.update("seed", 2)
    assert _stored(tmp_path) == {"optim": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 2}


def test_keys_stored_with_dots_are_read_and_refused_as_update_writes_them(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.params.set({"sched": {"warm.up": 10}, "optim.lr": 0.1})
        exp.params.update("sched.warm.up", 20)
        assert exp.params["sched.warm.up"] == 20 and exp.params.get("sched.warm.up") == 20
        assert "sched.warm.up" in exp.params and "sched.warm.down" not in exp.params
        assert exp.params["optim.lr"] == 0.1
        with pytest.raises(ValueError, match=r"param 'optim.lr' is 0.1, not a group"):
            exp.params.update("optim.lr.decay", 0.5)
        with pytest.raises(KeyError, match="no param 'optim.lr.decay'"):
            exp.params["optim.lr.decay"]
    assert _stored(tmp_path) == {"sched": {"warm.up": 20}, "optim.lr": 0.1}  # nothing beside it
    # a key stored with dots beside the nested form: each param found where it is
    with exp.run("both"):
        exp.params.set({"a.b": {"c": 1}, "a": {"b": {"d": 2}}})
        assert exp.params["a.b.c"] == 1 and exp.params["a.b.d"] == 2 and "a.b.e" not in exp.params


class Opt(str, enum.Enum):
    ADAM = "adam"


class Size(enum.IntEnum):
    BIG = 3


class Colour(enum.Enum):
    RED = 1


class Config(collections.abc.Mapping):
    """A mapping that is no dict (as OmegaConf's DictConfig is), with a sequence inside."""

    def __init__(self, d):
        self._d = d

    def __getitem__(self, k):
        v = self._d[k]
        return Config(v) if isinstance(v, dict) else Seq(v) if isinstance(v, list) else v

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)


class Seq(collections.abc.Sequence):
    def __init__(self, items):
        self._items = items

    def __getitem__(self, i):
        return self._items[i]

    def __len__(self):
        return len(self._items)


def test_order_enums_and_other_mappings(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.params.set(Config({"model": {"name": "vit", "layers": [1, 2]}, "data": {"root": "/d"},
                               "lr": 1e-4, "opt": Opt.ADAM, "size": Size.BIG}))
        assert exp.params["opt"] == "adam" and type(exp.params["opt"]) is str
        assert type(exp.params["size"]) is int and exp.params["model.layers"] == [1, 2]
        with pytest.raises(TypeError, match=r"param 'colour' has type Colour.*Colour.RED.value or .name"):
            exp.params.update("colour", Colour.RED)
        with pytest.raises(TypeError, match=r"param 'model.dev' has type .*str\(x\)"):
            exp.params.extend({"model": {"dev": object()}})
    text = (tmp_path / "default" / "r" / "params.json").read_text()
    assert list(json.loads(text)) == ["model", "data", "lr", "opt", "size"]  # the config's order
    assert list(distlog.open_run(str(tmp_path / "default" / "r")).params) == ["model", "data", "lr", "opt", "size"]


def test_zero_d_tensor_and_array_params_are_selected_as_numbers(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    exp = distlog.get_logger(str(tmp_path))
    for name, lr in (("tensor", torch.tensor(1e-4)), ("np0d", np.array(1e-4, np.float32)),
                     ("f32", np.float32(1e-4)), ("other", 2e-4)):
        with exp.run(name):
            exp.params.set(lr=lr, betas=(0.9, 0.999))
    root = distlog.open_root(str(tmp_path))
    assert sorted(r.info.run_id for r in root.runs(params={"lr": 1e-4})) == ["f32", "np0d", "tensor"]
    assert cli_main(["compare", str(tmp_path), "--where", "lr=1e-4", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert sorted(line.split(",")[0] for line in out.splitlines()[1:]) == ["f32", "np0d", "tensor"]
    # every form prints as the number it holds, alike
    assert fmt_exact(np.array(1e-4, np.float32)) == fmt_exact(np.float32(1e-4)) == fmt_exact(1e-4) == "0.0001"
    # NaN in a float32 array or a 0-d tensor is selected by NaN, as a float NaN is
    from distlog.query.root import _matches

    assert _matches(np.array(np.nan, np.float32), float("nan")) and _matches(np.float32(np.nan), float("nan"))
    assert _matches(np.array([np.nan, 1e-4], np.float32), [float("nan"), 1e-4])
    assert not _matches(np.float32(1e-4), 2e-4) and _matches(np.float64(1e-4), 1e-4)
    # a wanted value past float32's range, or past any float, selects nothing (no overflow warning)
    assert not _matches(np.float32(1e-4), 1e300) and not _matches(np.float32(1e-4), 10**400)
    # a tuple selected by the text distlog prints for it
    assert cli_main(["compare", str(tmp_path), "--where", "betas=(0.9, 0.999)", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5


def test_the_dashboard_sends_params_as_the_cli_shows_them():
    when = datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert jsonable(Path("/data/x")) == "/data/x" == fmt_value(Path("/data/x"))
    assert jsonable(when) == "2026-01-02 03:04:05" == fmt_value(when)
    assert jsonable({"b", "a", "c"}) == ["a", "b", "c"]
    assert jsonable(2**60 + 1) == "1152921504606846977" and jsonable(2**53) == 2**53
    assert jsonable(np.int64(2**60 + 1)) == "1152921504606846977"
    long = jsonable(np.arange(1000))
    assert long == fmt_value(np.arange(1000)) == "[0, 1, 2, ..., 997, 998, 999]"
    assert "\\n" not in fmt_value(np.arange(200).reshape(20, 10))  # one line, nothing escaped


def test_a_resumed_attempt_warns_with_values_as_python_writes_them(tmp_path, caplog):
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.params.set(shape=(1, 2), lr=0.1)
    with exp.run("r"):  # (resume="allow": a new attempt)
        exp.params.set(shape=(3, 4), lr=0.1)
    log = "".join(p.read_text() for p in (tmp_path / "default" / "r").rglob("*.log"))
    assert "shape (1, 2) -> (3, 4)" in log, log[-2000:]
    assert "$t" not in log


def test_a_mapping_that_holds_itself_or_cannot_be_read_is_refused_naming_the_key():
    from distlog.serdes import serialize

    class Bad(collections.abc.Mapping):
        def __getitem__(self, k):
            raise RuntimeError("boom")

        def __iter__(self):
            return iter(["a"])

        def __len__(self):
            return 1

    loop = {}
    loop["a"] = Config(loop)  # (a Mapping over a dict that holds it)
    with pytest.raises(ValueError, match=r"param 'x.a.a' contains itself"):
        serialize({"x": loop}, "")
    with pytest.raises(TypeError, match=r"param 'x': reading the Bad failed \(RuntimeError: boom\).*to_container"):
        serialize({"x": Bad()}, "")
