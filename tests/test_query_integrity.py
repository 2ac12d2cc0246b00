"""What a query reads back is what was written: params with a ``$t`` key of their own, params
that look alike (NaN, True vs 1, "42" vs 42), param names that clash with metric columns, and
runs whose series were rewound, killed, or lack a rank."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import distlog
from distlog.layout import PARAMS_FILE
from distlog.query import RankNotFound
from distlog.serdes import deserialize, serialize


def _runs(root: Path, params: dict[str, dict], loss=lambda rid: 1.0) -> None:
    exp = distlog.get_logger(str(root))
    with exp.experiment("e"):
        for rid, p in params.items():
            with exp.run(rid, params=p):
                exp.metrics.log(step=0, loss=loss(rid))
    exp.close()


# ---- 1. a user dict with a "$t" key -------------------------------------------------------
def test_user_dict_with_a_type_key_round_trips(tmp_path):
    value = {"fmt": {"$t": "Path", "data": "/etc"}, "other": {"$t": "templ"},
             "deep": [{"$t": "tuple", "data": [1]}]}
    assert deserialize(json.loads(json.dumps(serialize(value)))) == value
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"), exp.run("r"):
        exp.params.set(value)
        exp.metrics.log(step=0, loss=1.0)
    exp.close()
    assert distlog.open_run(tmp_path / "e" / "r").params == value
    row = distlog.open_root(tmp_path).table().to_dict("records")[0]
    assert row["fmt.$t"] == "Path" and row["other.$t"] == "templ"


def test_params_written_before_the_dict_wrapper_read_as_before(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"), exp.run("r"):
        exp.metrics.log(step=0, loss=1.0)
    exp.close()
    old = {"p": {"$t": "Path", "data": "/x"}, "plain": {"a": 1}, "nan": {"$t": "float", "data": "nan"}}
    (tmp_path / "e" / "r" / PARAMS_FILE).write_text(json.dumps(old))
    p = distlog.open_run(tmp_path / "e" / "r").params
    assert p["p"] == Path("/x") and p["plain"] == {"a": 1} and p["nan"] != p["nan"]


# ---- 3. a param named like a metric column ------------------------------------------------
def test_table_keeps_a_param_named_like_a_metric_column(tmp_path):
    _runs(tmp_path, {"a": {"loss": "l1", "lr": 0.1}, "b": {"loss": "huber", "lr": 0.2}},
          loss=lambda rid: {"a": 1.0, "b": 3.0}[rid])
    root = distlog.open_root(tmp_path)
    t = root.table("e", metrics=["loss"])
    assert list(t.columns).count("loss") == 1
    assert t["params.loss"].tolist() == ["l1", "huber"] and t["loss"].tolist() == [1.0, 3.0]
    assert t["lr"].tolist() == [0.1, 0.2]
    m = root.table("e", metrics=["loss"], final="min")  # no clash: "loss@min"
    assert m["loss"].tolist() == ["l1", "huber"] and m["loss@min"].tolist() == [1.0, 3.0]


def test_final_min_max_mean_keep_inf_and_skip_nan(tmp_path):
    """A sweep sorted by ``loss@max`` showed a diverged run (loss 1, 0.5, inf) as max 1.0,
    mean 0.75: the reductions dropped ±inf with NaN. NaN (no value at a step) is skipped;
    ±inf is a value."""
    series = {"diverged": [1.0, 0.5, float("inf"), float("nan")], "fine": [2.0, float("nan"), 1.0],
              "both": [float("inf"), 0.0, float("-inf")], "none": [float("nan")]}
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"):
        for rid, values in series.items():
            with exp.run(rid):
                for step, v in enumerate(values):
                    exp.metrics.log(step=step, loss=v)
    exp.close()
    root = distlog.open_root(tmp_path)
    for final, fn in (("min", np.min), ("max", np.max), ("mean", np.mean)):
        got = dict(zip(root.table("e")["run_id"], root.table("e", metrics=["loss"], final=final)[f"loss@{final}"]))
        for rid, values in series.items():
            v = np.array(values)[~np.isnan(values)]
            with np.errstate(invalid="ignore"):
                want = fn(v) if len(v) else np.nan
            assert (np.isnan(want) and np.isnan(got[rid])) or got[rid] == want, (final, rid, got[rid], want)
    from distlog.query.root import final_value

    assert final_value(root.run("e/diverged"), "loss", final="max") == float("inf")


# ---- 4. NaN params meet; True is not 1 ---------------------------------------------------
def test_param_key_treats_nans_as_one_value_and_bools_apart_from_ints():
    from distlog.query.batch import param_key

    nan = float("nan")
    assert param_key(nan) == param_key(float("nan")) == param_key(np.float32("nan"))
    assert len({param_key(v) for v in (True, 1, 1.0, np.int64(1))}) == 2
    assert len({param_key(v) for v in (False, 0, np.bool_(False))}) == 2
    assert param_key((nan, True)) == param_key((float("nan"), True)) != param_key((nan, 1))
    assert param_key([1, 2]) == param_key([1, 2]) != param_key([True, 2])


@pytest.mark.timeout(120)
def test_nan_params_group_together(tmp_path):
    _runs(tmp_path, {f"s{i}": {"lr": 0.1, "clip": float("nan"), "seed": i} for i in range(3)},
          loss=lambda rid: float(rid[1:]))
    root = distlog.open_root(tmp_path)
    df = root.read_metrics("loss", "e")
    assert df["runs"].tolist() == [3] and df["mean"].tolist() == [1.0]
    t = root.table("e", varying_only=True)
    assert "seed" in t.columns and "clip" not in t.columns and "lr" not in t.columns
    assert [r.info.run_id for r in root.runs("e", params={"clip": float("nan")})] == ["s0", "s1", "s2"]


@pytest.mark.timeout(120)
def test_true_and_1_are_different_params(tmp_path):
    _runs(tmp_path, {"a": {"warmup": True}, "b": {"warmup": 1}, "c": {"warmup": 2}, "d": {"warmup": False},
                     "z": {"warmup": 0}}, loss=lambda rid: float(ord(rid) - ord("a")))
    root = distlog.open_root(tmp_path)
    df = root.read_metrics("loss@mean", "e")
    assert len(df) == 5 and df["runs"].tolist() == [1] * 5
    by = {repr(w): m for w, m in zip(df["warmup"], df["mean"])}
    assert by == {"True": 0.0, "1": 1.0, "2": 2.0, "False": 3.0, "0": 25.0}
    per_run = root.read_metrics("loss", "e", per_run=True)
    assert [repr(w) for w in per_run["warmup"]] == ["True", "1", "2", "False", "0"]
    ids = lambda **p: [r.info.run_id for r in root.runs("e", params=p)]  # noqa: E731
    assert ids(warmup=True) == ["a"] and ids(warmup=1) == ["b"] and ids(warmup=1.0) == ["b"]
    assert ids(warmup=False) == ["d"] and ids(warmup=0) == ["z"] and ids(warmup=[True, 2]) == ["a", "c"]
    t = distlog.open_root(tmp_path).table("e", params={"warmup": [True, 1]}, varying_only=True)
    assert [repr(w) for w in t["warmup"]] == ["True", "1"]


# ---- 6. a series rewound to no rows; a run without the rank -------------------------------
def _client(root):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from distlog.dashboard.app import make_app

    return TestClient(make_app(distlog.open_root(root)), base_url="http://127.0.0.1")


@pytest.mark.timeout(120)
def test_a_series_rewound_to_no_rows_is_left_out(tmp_path):
    from distlog import cli

    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"):
        for rid in ("a", "b"):
            with exp.run(rid):
                for s in range(10):
                    exp.metrics.log(step=s, loss=float(s))
        with exp.run("b", resume_step=-1):  # drops every row; loss stays in the commit record
            exp.metrics.log(step=0, acc=1.0)
    exp.close()
    b = distlog.open_run(tmp_path / "e" / "b")
    assert b.metrics.lengths()["loss"] == 0 and "loss" not in b.metrics.keys()
    root = distlog.open_root(tmp_path)
    for rank in (None, 0):
        df = root.read_metrics("loss", "e", rank=rank)
        assert df["runs"].tolist() == [1] * 10, rank
    with pytest.raises(KeyError, match="no run has the metric 'nope'; keys: acc, loss"):
        root.read_metrics("nope", "e", rank=0)
    out = tmp_path / "p.png"
    assert cli.main(["plot", str(tmp_path / "e" / "a"), str(tmp_path / "e" / "b"), "loss", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
    c = _client(tmp_path).get("/api/compare", params=[("run", "e/a"), ("run", "e/b"), ("key", "loss")]).json()
    assert [s.get("missing", False) for s in c["series"]] == [False, True]


def _two_ranks(rank, world, root):
    exp = distlog.get_logger(root)
    with exp.experiment("e"), exp.run("two"):
        for s in range(10):
            if rank == 1:
                exp.metrics.log(step=s, own=float(s))
            exp.metrics.collect(step=s, loss=1.0)
        exp.metrics.flush()


@pytest.mark.timeout(180)
def test_a_run_without_the_rank_is_left_out(tmp_path):
    from support.ranks import run_ranks

    from distlog import cli

    root = str(tmp_path / "root")
    run_ranks(_two_ranks, 2, tmp_path, root, timeout=120)
    exp = distlog.get_logger(root)
    with exp.experiment("e"), exp.run("one"):
        exp.metrics.log(step=0, own=5.0, loss=2.0)
    exp.close()
    df = distlog.open_root(root).read_metrics("own", "e", rank=1, per_run=True)
    assert set(df["run_id"]) == {"two"} and df["value"].tolist() == [float(s) for s in range(10)]
    with pytest.raises(KeyError, match="no run has the metric 'loss'; keys: own"):
        distlog.open_root(root).read_metrics("loss", "e", rank=1)
    out = tmp_path / "p.png"
    assert cli.main(["plot", f"{root}/e/two", f"{root}/e/one", "own", "--rank", "1", "-o", str(out)]) == 0
    c = _client(root).get("/api/compare", params=[("run", "e/one"), ("run", "e/two"), ("key", "own"),
                                                  ("rank", "1")]).json()
    assert [s.get("missing", False) for s in c["series"]] == [True, False]
    assert c["series"][1]["columns"]["value"] == [float(s) for s in range(10)]
    one = distlog.open_run(f"{root}/e/one")
    assert one.metrics.lengths(1, missing_ok=True) == {}
    with pytest.raises(RankNotFound, match="rank 1 logged no series of its own"):
        one.metrics.lengths(1)


# ---- 9. params that flatten to one key ---------------------------------------------------
def test_params_that_flatten_to_one_key_are_refused_at_write(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"), exp.run("r"):
        exp.params.set({"optim": {"lr": 0.001}, "seed": 1})
        with pytest.raises(ValueError, match=r"params\['optim.lr'\] and params\['optim'\]\['lr'\] both "
                                             r"flatten to 'optim.lr'.*rename one"):
            exp.params.set({"optim.lr": 0.1, "optim": {"lr": 0.001}})
        with pytest.raises(ValueError, match=r"params\['optim'\]\['lr'\] and params\['optim.lr'\]"):
            exp.params.extend({"optim.lr": 0.1})
        with pytest.raises(ValueError, match=r"params\['a'\]\['b.c'\] and params\['a.b'\]\['c'\]"):
            exp.params.set({"a": {"b.c": 1}, "a.b": {"c": 2}})
        exp.params.update("optim.wd", 0.1)  # nested next to nested: fine
        exp.metrics.log(step=0, loss=1.0)
    exp.close()
    run = distlog.open_run(tmp_path / "e" / "r")
    assert run.params == {"optim": {"lr": 0.001, "wd": 0.1}, "seed": 1}  # the refused sets wrote nothing
    assert run.flat_params == {"optim.lr": 0.001, "optim.wd": 0.1, "seed": 1}


def test_old_params_that_flatten_to_one_key_still_read(tmp_path):
    _runs(tmp_path, {"r": {}})
    (tmp_path / "e" / "r" / PARAMS_FILE).write_text(json.dumps({"optim.lr": 0.1, "optim": {"lr": 0.001}}))
    run = distlog.open_run(tmp_path / "e" / "r")
    assert run.params == {"optim.lr": 0.1, "optim": {"lr": 0.001}}
    assert list(run.flat_params) == ["optim.lr"]
    assert distlog.open_root(tmp_path).table()["optim.lr"].tolist() == [0.001]
