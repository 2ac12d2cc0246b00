"""Bugs of reading runs left after tests/test_sweep_s33_bugs.py (stop 33, second sweep); each
test failed before its fix.

* A copied or renamed run folder (``a-copy`` beside ``a``, the same ``run.json``): the
  dashboard's ``/api/run`` named it by ``run.json``'s experiment/run id, so its page read
  ``a``'s series, logs and files; its files (``/api/file``) were looked for below the wrong
  root (``.distlog`` of the experiment's parent folder); ``distlog show`` printed ``a``.
* A run named twice (``compare RUNDIR/exp RUNDIR/exp/r1``; ``?run=a&run=a``) was listed twice,
  and counted twice in ``/api/bands``' mean.
* ``-e`` below a root opened at an experiment folder took only ``run.json``'s name
  (``beta/sub``), not the folder's (``sub``).
* ``--sort``: a NaN sorted among the runs without a value, in the order they came; the
  dashboard's ``/api/runs`` had no order of its own.
"""

from __future__ import annotations

import json
import math
import shutil

import pytest

import distlog
from test_sweep_s33_bugs import _cli, _client, _write


def _copied_root(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    for rid, lr in (("a", 0.1), ("b", 0.2)):
        with exp.experiment("beta/sub"), exp.run(rid):
            exp.params.set(lr=lr)
            exp.metrics.log(step=1, loss=lr)
            exp.files.save(f"notes of {rid}", "notes.txt")
    shutil.copytree(f"{root}/beta/sub/a", f"{root}/beta/sub/a-copy")  # same run.json as a
    return root


@pytest.mark.timeout(120)
def test_a_copied_run_folder_is_named_by_its_folder(tmp_path):
    root = _copied_root(tmp_path)
    for served, prefix in ((root, "beta/sub/"), (f"{root}/beta", "sub/"), (f"{root}/beta/sub", "")):
        client = _client(served)
        for name in ("a", "a-copy", "b"):
            path = prefix + name
            d = client.get("/api/run", params={"run": path}).json()
            assert d["path"] == path, (served, path, d["path"])
            files = client.get("/api/files", params={"run": path}).json()
            [f] = [f for f in files["files"] if f["path"] == "notes.txt"]
            r = client.get("/api/file", params={"run": path, "path": "notes.txt"})
            assert r.status_code == 200, (served, path, r.text)
            assert r.text == f"notes of {'b' if name == 'b' else 'a'}"
    code, out, err = _cli("show", f"{root}/beta/sub/a-copy")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["run", "beta/sub/a-copy"], lines[:3]
    assert any(line.startswith("recorded    beta/sub/a ") for line in lines), lines
    code, out, err = _cli("show", f"{root}/beta/sub/a")
    assert out.splitlines()[0].split() == ["run", "beta/sub/a"] and "recorded" not in out


@pytest.mark.timeout(120)
def test_a_run_named_twice_is_one_row_where_first_named(tmp_path):
    root = str(tmp_path / "root")
    _write(root, "exp", [("r1", 0.1), ("r2", 0.2)])
    for target, want in (([f"{root}/exp", f"{root}/exp/r1"], ["r1", "r2"]),
                         ([f"{root}/exp/r2", f"{root}/exp"], ["r2", "r1"]),
                         ([f"{root}/exp/r1", f"{root}/exp/r1/"], ["r1"])):
        code, out, err = _cli("compare", *target, "-m", "loss", "--format", "json")
        assert code == 0, err
        assert [r["run_id"] for r in json.loads(out)] == want, (target, out)
    client = _client(root)
    q = [("run", "exp/r2"), ("run", "exp/r1"), ("run", "exp/r2")]
    series = client.get("/api/compare", params=q + [("key", "loss")]).json()["series"]
    assert [s["run"] for s in series] == ["exp/r2", "exp/r1"]
    keys = client.get("/api/keys", params=q).json()
    assert list(keys["params"]) == ["exp/r2", "exp/r1"]
    [band] = client.get("/api/bands", params=q + [("key", "loss")]).json()["groups"]
    assert band["runs"] == [2] and band["mean"] == [pytest.approx(0.15)]  # not (0.2 * 2 + 0.1) / 3


@pytest.mark.timeout(120)
def test_experiment_filter_takes_the_name_below_the_folder_given(tmp_path):
    root = str(tmp_path / "root")
    _write(root, "beta/sub", [("a", 0.1)])
    _write(root, "beta/other", [("b", 0.2)])
    beta = f"{root}/beta"
    for e, want in (("sub", ["a"]), ("beta/sub", ["a"]), ("s*", ["a"]), ("other", ["b"]), ("beta", ["a", "b"])):
        assert sorted(r.info.run_id for r in distlog.open_root(beta).runs(experiment=e)) == want, e
        code, out, err = _cli("ls", beta, "-e", e, "--format", "json")
        assert code == 0, (e, err)
        assert sorted(r["run_id"] for r in json.loads(out)) == want, e
        code, out, err = _cli("compare", beta, "-e", e, "-m", "loss", "--format", "json")
        assert code == 0, (e, err)
        assert sorted(r["run_id"] for r in json.loads(out)) == want, e
    assert list(distlog.open_root(beta).table("sub")["run_id"]) == ["a"]
    code, out, err = _cli("ls", beta, "-e", "sbu")
    assert code == 2 and "'sbu'" in err and "'sub'" in err and "beta/sub" not in err, err


def _sorted_root(tmp_path):
    root = str(tmp_path / "root")
    nan = float("nan")
    exp = distlog.get_logger(root)
    # (run, lr param, last loss); a run without lr or loss
    spec = [("m1", None, None), ("n1", nan, nan), ("x2", 2, 2.0), ("s", "b", 1.0), ("t", True, -1.0),
            ("n2", nan, nan), ("x1", 0.5, 0.5), ("f", False, math.inf), ("m2", None, 3.0), ("s2", "a", nan)]
    for rid, lr, loss in spec:
        with exp.experiment("e"), exp.run(rid):
            exp.params.set(seed=1, **({} if lr is None else {"lr": lr}))
            if loss is not None:
                exp.metrics.log(step=1, loss=loss)
    return root


#: the documented order (distlog/query/order.py): numbers, booleans, text, NaN, missing;
#: --desc reverses the first three only
LR_ASC = ["x1", "x2", "f", "t", "s2", "s", "n1", "n2", "m1", "m2"]
LR_DESC = ["s", "s2", "t", "f", "x2", "x1", "n1", "n2", "m1", "m2"]
LOSS_ASC = ["t", "x1", "s", "x2", "m2", "f", "n1", "n2", "s2", "m1"]
LOSS_DESC = ["f", "m2", "x2", "s", "x1", "t", "n1", "n2", "s2", "m1"]


@pytest.mark.timeout(120)
def test_sort_puts_numbers_then_booleans_then_text_then_nan_then_missing(tmp_path):
    root = _sorted_root(tmp_path)
    rr = distlog.open_root(root)
    for col, asc, desc in (("lr", LR_ASC, LR_DESC), ("loss", LOSS_ASC, LOSS_DESC)):
        for d, want in ((False, asc), (True, desc)):
            code, out, err = _cli("compare", root, "-m", "loss", "--sort", col,
                                  *(["--desc"] if d else []), "--format", "json")
            assert code == 0, err
            assert [r["run_id"] for r in json.loads(out)] == want, (col, d)
            assert list(rr.table(metrics=["loss"], sort=col, desc=d)["run_id"]) == want, (col, d)
    client = _client(root)
    for d, want in ((0, LR_ASC), (1, LR_DESC)):
        r = client.get("/api/runs", params={"sort": "lr", "desc": d})
        assert [x["run_id"] for x in r.json()["runs"]] == want, d
    r = client.get("/api/runs", params={"sort": "run_id", "desc": 1})
    assert [x["run_id"] for x in r.json()["runs"]] == sorted(LR_ASC, reverse=True)
    r = client.get("/api/runs", params={"sort": "lrr"})
    assert r.status_code == 400 and "'lrr'" in r.text and "'lr'" in r.text, r.text
    with pytest.raises(KeyError, match="sort='losss'.*'loss'"):
        rr.table(metrics=["loss"], sort="losss")


@pytest.mark.timeout(120)
def test_listings_and_tables_name_a_copied_run_by_its_folder(tmp_path):
    """`distlog ls`, `compare` and `open_root().table()` / `read_metrics(per_run=True)` gave
    the copy the id its run.json records (`a`): two rows named `a`, values that could not be
    told apart. They name it by its folder, as `show` and the dashboard do."""
    root = _copied_root(tmp_path)
    reader = distlog.open_root(root)
    table = reader.table(metrics=["loss"])
    assert sorted(zip(table["experiment"], table["run_id"])) == [
        ("beta/sub", "a"), ("beta/sub", "a-copy"), ("beta/sub", "b")]
    per_run = reader.read_metrics("loss", per_run=True)
    assert sorted(per_run["run_id"]) == ["a", "a-copy", "b"]
    code, out, err = _cli("ls", root)
    assert code == 0, err
    assert "a-copy" in out, out
    code, out, err = _cli("compare", f"{root}/beta/sub/a", f"{root}/beta/sub/a-copy", "-m", "loss", "--format", "json")
    assert code == 0, err
    assert [r["run_id"] for r in json.loads(out)] == ["a", "a-copy"], out
