"""Sweep queries over params that look alike or are damaged: what ``read_metrics`` groups,
``table`` shows and ``distlog ls``/``compare`` list equals a plain-Python oracle over the
values that were written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import distlog


def _runs(root: Path, params: dict[str, dict], loss) -> None:
    exp = distlog.get_logger(str(root))
    with exp.experiment("e"):
        for rid, p in params.items():
            with exp.run(rid, params=p):
                for step, v in enumerate(loss(rid)):
                    exp.metrics.log(step=step, loss=v)
    exp.close()


# ---- list and array params group by value, as runs(params=...) selects them ---------------
@pytest.mark.timeout(120)
def test_list_and_array_params_group_by_their_values(tmp_path):
    big = np.arange(2000.0)  # NumPy prints it cut: "[0.000e+00 1.000e+00 ... 1.999e+03]"
    other = big.copy()
    other[1000] = -1.0  # the same printed text, another value
    params = {
        "a": {"milestones": [30, 60], "w": big, "seed": 0},
        "b": {"milestones": [30.0, 60.0], "w": big, "seed": 1},  # equal to a's
        "c": {"milestones": [30, 90], "w": big, "seed": 2},
        "d": {"milestones": [30, 60], "w": other, "seed": 3},
    }
    values = {rid: [float(i), 10.0 + i] for i, rid in enumerate(params)}
    _runs(tmp_path, params, lambda rid: values[rid])
    root = distlog.open_root(tmp_path)

    # the oracle: runs meet when their values are equal (Python's ==, elementwise for arrays)
    def same(p, q):
        return p["milestones"] == q["milestones"] and np.array_equal(p["w"], q["w"])

    groups: list[list[str]] = []
    for rid, p in params.items():
        for g in groups:
            if same(params[g[0]], p):
                g.append(rid)
                break
        else:
            groups.append([rid])
    assert groups == [["a", "b"], ["c"], ["d"]]
    want = sorted((len(g), float(np.mean([values[r][1] for r in g]))) for g in groups)

    df = root.read_metrics("loss", "e")
    last = df[df["step"] == 1]
    assert sorted(zip(last["runs"].tolist(), last["mean"].tolist())) == want
    assert set(df.columns) >= {"milestones", "w"}  # both vary between the groups

    # as the filter selects them
    assert [r.info.run_id for r in root.runs("e", params={"milestones": [30, 60]})] == ["a", "b", "d"]
    # the sweep table shows both params as varying
    t = root.table("e", varying_only=True)
    assert {"milestones", "w", "seed"} <= set(t.columns)


# ---- a run folder whose run.json is torn, missing or foreign is listed as damaged ---------
def _damaged_root(url: str, opts: dict) -> dict[str, list[float]]:
    """Five runs of experiment ``e/sub`` with losses; three then lose their ``run.json``."""
    from distlog.storage import open_storage

    values = {rid: [float(i), 10.0 + i] for i, rid in enumerate(("ok", "torn", "gone", "list", "ok2"))}
    exp = distlog.get_logger(url, **opts)
    with exp.experiment("e/sub"):
        for rid, v in values.items():
            with exp.run(rid, params={"lr": 0.1 * (1 + len(rid))}):
                for step, x in enumerate(v):
                    exp.metrics.log(step=step, loss=x)
    exp.close()
    st = open_storage(url, **opts)
    st.write_bytes("e/sub/torn/run.json", b'{"experiment": "e/sub", "run_id": "to')
    st.delete("e/sub/gone/run.json")
    st.write_bytes("e/sub/list/run.json", b"[1, 2]")
    return values


def _check_damaged(url: str, opts: dict, values: dict[str, list[float]], capsys) -> None:
    import json

    from distlog.cli import main

    damaged = {"torn", "gone", "list"}
    for at in (url, f"{url}/e/sub"):  # the root, and a root opened at the experiment folder
        root = distlog.open_root(at, **opts)
        runs = root.runs()
        got = {r.info.run_id: (r.info.experiment, r.info.status) for r in runs}
        assert got == {rid: ("e/sub", "damaged" if rid in damaged else "completed") for rid in values}
        for r in runs:
            if r.info.run_id in damaged:
                assert "run.json" in r.info.error["message"]
        assert {r.info.run_id for r in root.runs(status="damaged")} == damaged
        # its series are still read: the last loss and last step of every run
        t = root.table(metrics=["loss"])
        assert dict(zip(t["run_id"], t["loss"])) == {rid: v[-1] for rid, v in values.items()}
        assert dict(zip(t["run_id"], t["last_step"])) == {rid: len(v) - 1 for rid, v in values.items()}
    capsys.readouterr()
    assert main(["ls", url, "--format", "json", *sum((["-O", f"{k}={json.dumps(v)}"]
                                                       for k, v in opts.items()), [])]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["experiment"], r["run_id"], r["status"], r["last_step"]) for r in rows} == {
        ("e/sub", rid, "damaged" if rid in damaged else "completed", len(v) - 1)
        for rid, v in values.items()}


@pytest.mark.timeout(120)
def test_damaged_run_json_is_listed_local(tmp_path, capsys):
    url = str(tmp_path / "root")
    _check_damaged(url, {}, _damaged_root(url, {}), capsys)
    # opening the run itself says which file is damaged
    with pytest.raises(distlog.query.RunNotFound, match=r"torn/run\.json is damaged"):
        distlog.open_run(f"{url}/e/sub/torn")


@pytest.mark.s3
@pytest.mark.timeout(240)
def test_damaged_run_json_is_listed_s3(s3_bucket, capsys):
    url = f"s3://{s3_bucket['bucket']}/damaged"
    opts = s3_bucket["storage_options"]
    _check_damaged(url, opts, _damaged_root(url, opts), capsys)


# ---- compare prints a last step as ls does: an int in full, a run without one as null ------
@pytest.mark.timeout(120)
def test_compare_last_step_equals_ls_and_the_api(tmp_path, capsys):
    import csv
    import io
    import json

    from distlog.cli import main
    from distlog.query.root import run_row

    big = 2**53 - 1  # the largest step float64 holds with every integer below it
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"):
        with exp.run("a", params={"lr": 0.1}):
            exp.metrics.log(step=3, loss=1.0)
            exp.metrics.log(step=big, loss=2.0)
        with exp.run("b", params={"lr": 0.2}):  # no metrics: no last step
            pass
    exp.close()
    root = distlog.open_root(tmp_path)
    want = {r.info.run_id: run_row(r)["last_step"] for r in root.runs()}
    assert want == {"a": big, "b": None} and type(want["a"]) is int

    t = root.table("e", metrics=["loss"])
    got = dict(zip(t["run_id"], t["last_step"]))
    assert got == want and type(got["a"]) is int
    assert dict(zip(t["run_id"], t["world_size"])) == {"a": 1, "b": 1}

    def cli(*argv):
        capsys.readouterr()
        main(list(argv))
        return capsys.readouterr().out

    for cmd in (["ls", str(tmp_path)], ["compare", str(tmp_path / "e")]):
        rows = json.loads(cli(*cmd, "--format", "json"))
        assert {r["run_id"]: r["last_step"] for r in rows} == want
        assert all(type(r["last_step"]) in (int, type(None)) for r in rows)
        rows = list(csv.DictReader(io.StringIO(cli(*cmd, "--format", "csv"))))
        assert {r["run_id"]: r["last_step"] for r in rows} == {"a": str(big), "b": ""}
        text = cli(*cmd)
        line_b = next(ln for ln in text.splitlines() if ln.split()[:2] in (["e", "b"], ["b", "completed"]))
        assert "nan" not in line_b and str(big) in text


# ---- one run's torn params.json or commit record: that run is damaged, the others read ------
@pytest.mark.timeout(120)
def test_a_torn_params_or_commit_record_marks_its_run_and_spares_the_others(tmp_path, capsys):
    import json

    from distlog.cli import main

    params = {"a": {"lr": 0.1, "seed": 0}, "b": {"lr": 0.1, "seed": 1}, "c": {"lr": 0.2, "seed": 0},
              "p": {"lr": 0.2, "seed": 1}, "k": {"lr": 0.1, "seed": 2}}
    values = {rid: [float(i), 10.0 * (i + 1)] for i, rid in enumerate(params)}
    _runs(tmp_path, params, lambda rid: values[rid])
    (tmp_path / "e/p/params.json").write_text('{"lr": 0.')  # torn
    (tmp_path / "e/k/scalars.commit.json").write_text('{"lengths": {"lo')  # torn
    healthy = ["a", "b", "c"]
    root = distlog.open_root(tmp_path)

    t = root.table("e", metrics=["loss"])
    assert dict(zip(t["run_id"], t["status"])) == {**{r: "completed" for r in healthy},
                                                  "p": "damaged", "k": "damaged"}
    loss = dict(zip(t["run_id"], t["loss"]))
    assert {r: loss[r] for r in healthy} == {r: values[r][-1] for r in healthy}
    assert loss["p"] == values["p"][-1] and loss["k"] is None  # p's series is intact

    # bands: the damaged runs are in no group (a torn params.json is no param-less group);
    # oracle: the healthy runs grouped by lr
    with pytest.warns(RuntimeWarning, match=r"2 run\(s\) left out.*e/p.*params\.json is damaged"):
        df = root.read_metrics("loss", "e")
    last = df[df["step"] == 1]
    want = {}
    for r in healthy:
        want.setdefault(params[r]["lr"], []).append(values[r][1])
    assert dict(zip(last["lr"], zip(last["runs"], last["mean"]))) == {
        lr: (len(v), float(np.mean(v))) for lr, v in want.items()}

    # a filter cannot tell whether p matches: left out, with a warning naming it
    with pytest.warns(RuntimeWarning, match=r"params\.json is damaged.*e/p"):
        assert [r.info.run_id for r in root.runs("e", params={"lr": 0.2})] == ["c"]

    # distlog compare: every run shown, the damaged ones as such; exit status 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "e"), "-m", "loss", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["run_id"]: r["status"] for r in rows} == dict(zip(t["run_id"], t["status"]))


# ---- a filter on an array param selects by its values -------------------------------------
@pytest.mark.timeout(120)
def test_params_filter_on_an_array_param(tmp_path, capsys):
    import json

    from distlog.cli import main

    params = {"a": {"w": np.array([1.0, 2.0])}, "b": {"w": np.array([1.0, 3.0])}, "c": {"w": [1, 2]},
              "d": {"w": np.array([[1.0, 2.0], [3.0, 4.0]])}}
    _runs(tmp_path, params, lambda rid: [1.0])
    root = distlog.open_root(tmp_path)
    for want in ([1, 2], np.array([1.0, 2.0]), [[1, 2], [3, 4]]):
        # selected: w equals want, or one of want's items (a list is also "any of these")
        oracle = [rid for rid, p in params.items()
                  if any(np.shape(p["w"]) == np.shape(x) and np.array_equal(p["w"], x)
                         for x in (want, *want))]
        assert [r.info.run_id for r in root.runs("e", params={"w": want})] == oracle
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "e"), "--where", "w=[1,2]", "--format", "json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == ["a", "c"]


# ---- reading a damaged run directly: the error names the file and what is still readable ---
@pytest.mark.timeout(120)
def test_direct_reads_of_a_torn_record_name_the_file_and_read_metrics_by_rank_leaves_it_out(tmp_path):
    import json

    from distlog.query.errors import DamagedRecord

    params = {"a": {"lr": 0.1}, "b": {"lr": 0.2}, "p": {"lr": 0.2}, "k": {"lr": 0.1}}
    values = {rid: [float(i), 10.0 * (i + 1)] for i, rid in enumerate(params)}
    _runs(tmp_path, params, lambda rid: values[rid])
    (tmp_path / "e/p/params.json").write_text('{"lr": 0.')  # torn
    (tmp_path / "e/k/scalars.commit.json").write_text('{"lengths": {"lo')  # torn
    with pytest.raises(json.JSONDecodeError):  # the records really are torn JSON
        json.loads((tmp_path / "e/k/scalars.commit.json").read_text())

    k = distlog.open_run(tmp_path / "e/k")
    for read in (k.metrics.keys, lambda: k.metrics.read("loss"), lambda: k.metrics["loss"],
                 k.metrics.last, k.metrics.summary, lambda: k.metrics.lengths(missing_ok=True)):
        with pytest.raises(DamagedRecord) as err:
            read()
        msg = str(err.value)
        assert "e/k/scalars.commit.json is damaged" in msg and "not valid JSON" in msg, msg
        assert "series cannot be read" in msg and "params, logs and files still can" in msg, msg
    assert k.params == params["k"]  # what the message says is still readable, is
    p = distlog.open_run(tmp_path / "e/p")
    for read in (lambda: p.params, lambda: p.flat_params):
        with pytest.raises(DamagedRecord, match=r"e/p/params\.json is damaged.*params cannot be "
                                                r"read; its series, logs and files still can"):
            read()
    assert p.metrics.read("loss")["value"].tolist() == values["p"]
    assert isinstance(DamagedRecord("x"), ValueError)  # callers catching ValueError still do

    # read_metrics(rank=0) leaves both out of every group, as rank=None does, with a warning
    # naming each file; oracle: the healthy runs' values by lr
    root = distlog.open_root(tmp_path)
    for rank in (None, 0):
        with pytest.warns(RuntimeWarning, match=r"2 run\(s\) left out") as w:
            df = root.read_metrics("loss", "e", rank=rank)
        text = " ".join(str(x.message) for x in w)
        assert "e/p/params.json is damaged" in text and "e/k/scalars.commit.json is damaged" in text
        got = {(lr, st): (n, m) for lr, st, n, m in zip(df["lr"], df["step"], df["runs"], df["mean"])}
        assert got == {(params[r]["lr"], st): (1, values[r][st]) for r in ("a", "b") for st in (0, 1)}


# ---- ls reads only run.json of a finished run: its help says where a torn record shows ------
@pytest.mark.timeout(120)
def test_ls_lists_a_finished_run_with_a_torn_commit_record_as_recorded_and_says_so(tmp_path, capsys):
    import json

    from distlog.cli import main

    _runs(tmp_path, {"a": {"lr": 0.1}, "k": {"lr": 0.2}}, lambda rid: [1.0, 2.0])
    (tmp_path / "e/k/scalars.commit.json").write_text('{"lengths": {"lo')  # torn

    def statuses(*argv):
        capsys.readouterr()
        assert main([*argv, "--format", "json"]) == 0
        return {r["run_id"]: r["status"] for r in json.loads(capsys.readouterr().out)}

    # ls: as run.json records (its commit record is not read: two requests per run at most)
    assert statuses("ls", str(tmp_path)) == {"a": "completed", "k": "completed"}
    # what reads the commit record shows the run damaged
    assert statuses("compare", str(tmp_path / "e"), "-m", "loss") == {"a": "completed", "k": "damaged"}
    # and ls's help says which listings differ and why
    capsys.readouterr()
    assert main(["ls", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "commit record is torn is listed with the status its run.json records" in text, text
    assert "compare ROOT -m KEY" in text and "show it as damaged" in text, text


# ---- a param some runs lack is not the param set to None: grouping and the table agree ------
@pytest.mark.timeout(120)
def test_a_missing_param_is_not_a_param_set_to_none(tmp_path):
    # warmup=None in two seeds; two more seeds made before the sweep had warmup at all
    params = {"a": {"lr": 0.1, "warmup": None, "seed": 0}, "b": {"lr": 0.1, "warmup": None, "seed": 1},
              "c": {"lr": 0.1, "seed": 0}, "d": {"lr": 0.1, "seed": 1}}
    values = {rid: [float(i), 10.0 * (i + 1)] for i, rid in enumerate(params)}
    _runs(tmp_path, params, lambda rid: values[rid])
    root = distlog.open_root(tmp_path)

    # the sweep table keeps warmup as a varying column ...
    t = root.table("e", varying_only=True)
    assert [c for c in t.columns if c in ("lr", "warmup", "seed")] == ["seed", "warmup"]
    # ... and read_metrics groups by it: oracle, the runs grouped by (has warmup, its value)
    oracle = {}
    for rid, p in params.items():
        oracle.setdefault(("warmup" in p, p.get("warmup")), []).append(values[rid])
    df = root.read_metrics("loss", "e")
    assert [c for c in df.columns if c in ("lr", "warmup", "seed")] == ["warmup"]
    got = {}
    for w, st, n, m in zip(df["warmup"], df["step"], df["runs"], df["mean"]):
        got[(w is not pd_NA(), None if w is pd_NA() else w), st] = (n, m)
    assert got == {(g, st): (len(v), float(np.mean([x[st] for x in v]))) for g, v in oracle.items()
                   for st in (0, 1)}
    # per run: each run labelled as it is (NA: it lacks warmup; None: it set None)
    pr = root.read_metrics("loss", "e", per_run=True)
    labels = {rid: w for rid, w in zip(pr["run_id"], pr["warmup"])}
    assert all(labels[r] is None for r in "ab") and all(labels[r] is pd_NA() for r in "cd"), labels
    # an explicit group_by keeps them apart the same way
    assert len(root.read_metrics("loss", "e", group_by=["warmup"])) == 4


def pd_NA():
    import pandas as pd

    return pd.NA


@pytest.mark.timeout(120)
def test_a_params_filter_on_a_param_no_run_has_warns_with_the_nearest_name(tmp_path):
    """``runs(params={"lrr": 0.1})`` (a typo) selected no run without a word; it now warns
    naming the nearest param (not an error: a script polling a sweep goes on), and says
    nothing where some run has the param, or no run has params yet."""
    import warnings

    _runs(tmp_path, {"a": {"lr": 0.1, "optim": {"name": "adam"}}, "b": {"lr": 0.01}}, lambda rid: [1.0])
    root = distlog.open_root(str(tmp_path))
    with pytest.warns(RuntimeWarning, match=r"no run selected has the param 'lrr'; did you mean 'lr'\?"):
        assert root.runs(params={"lrr": 0.1}) == []
    with pytest.warns(RuntimeWarning, match=r"'optim\.nme'; did you mean 'optim\.name'\?"):
        assert len(root.table(params={"optim.nme": "adam"})) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [r.info.run_id for r in root.runs(params={"optim.name": "adam"})] == ["a"]  # b lacks it
        assert [r.info.run_id for r in root.runs(params={"lr": 0.01})] == ["b"]
        fresh = tmp_path / "fresh"
        exp = distlog.get_logger(str(fresh))
        with exp.run("x"):  # no params yet
            exp.metrics.log(step=0, loss=1.0)
        assert distlog.open_root(str(fresh)).runs(params={"lr": 0.1}) == []
