"""Steps are read as they were stored (an integer step as int64; 1.25 or 1e19 as float64, never
cut or wrapped), `--where` selects list params and names with commas, and the CLI's text
output stays exact and aligned (a review of the read side found each of these wrong)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import distlog
from distlog.cli import NOTHING
from distlog.query.render import table
from support.cli_tree import cli


def test_fractional_and_huge_steps_read_as_stored(tmp_path, capsys):
    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("steps"):
        m = exp.metrics("t")
        for step, v in ((1.25, 10.0), (1.75, 20.0)):
            m.collect(x=v)
            m.flush(step=step)
        m.log(step=1.5, y=1.0)  # log() keeps its step as given, as flush() does (it was cut to 1)
        m.log(step=2.5, y=2.0)
        m.log(step=5, z=0.0)
        m.log(step=2**63, z=1.0)  # past int64: read as the float64 it is, not wrapped negative
        m.log(step=3, n=3.0)
        with pytest.raises(ValueError, match="finite number"):
            m.log(step=float("nan"), y=3.0)
    run = distlog.open_run(f"{root}/default/steps")
    x = run.metrics.read("t/x")
    assert x.step.dtype == np.float64 and x.step.tolist() == [1.25, 1.75]
    assert x.to_frame()["step"].tolist() == [1.25, 1.75]
    assert run.metrics.read("t/y").step.tolist() == [1.5, 2.5]
    z = run.metrics.read("t/z")
    assert z.step.tolist() == [5.0, float(2**63)] and (z.step >= 0).all()
    n = run.metrics.read("t/n")  # integer steps: int64, as before
    assert n.step.dtype == np.int64 and n.to_frame()["step"].dtype == np.int64
    # `distlog metrics` shows both rows of x (it dropped one: both were "step 1")
    code, out, err = cli(capsys, "metrics", f"{root}/default/steps", "t/x", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["step"] for r in rows] == [1.25, 1.75] and [r["t/x"] for r in rows] == [10.0, 20.0]


def test_show_prints_a_large_last_step_in_full(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("big"):
        exp.metrics.log(step=1_000_000_000_000_007, v=1.0)
    code, out, err = cli(capsys, "show", f"{tmp_path}/default/big")
    assert code == 0, err
    assert "last step   1000000000000007\n" in out


def test_tables_print_every_step_in_full(tmp_path, capsys):
    """`metrics RUN KEY` printed its step column with %.6g (2**53 - 1 and 2**53 + 2 both
    9.0072e+15, 1234567.25 and 1234567.5 both 1.23457e+06); every step column of a table
    now prints as `show` does, and an integer float64 step past 2**53 in full (as `ls` did)."""
    from distlog.query.render import fmt_step

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    big = [10**15 + 7, 2**53 - 1, 2**53 + 2]
    with exp.run("big"):
        for s in big:
            exp.metrics.log(step=s, loss=1.0)
    with exp.run("frac"):
        for s in (1234567.25, 1234567.5, 1234568.75):
            exp.metrics.log(step=s, loss=1.0)
    code, out, err = cli(capsys, "metrics", f"{tmp_path}/default/big", "loss")
    assert code == 0, err
    assert [ln.split()[0] for ln in out.splitlines()[2:]] == [str(s) for s in big]
    code, out, err = cli(capsys, "metrics", f"{tmp_path}/default/frac", "loss")
    assert [ln.split()[0] for ln in out.splitlines()[2:]] == ["1234567.25", "1234567.5", "1234568.75"]
    code, out, _ = cli(capsys, "metrics", f"{tmp_path}/default/big")  # the summary
    assert out.splitlines()[2].split()[2:4] == [str(10**15 + 7), str(2**53 + 2)]
    assert fmt_step(float(2**62)) == str(2**62) and fmt_step(2**62) == str(2**62)
    assert fmt_step(1.5) == "1.5" and fmt_step(None) == "-" and fmt_step(float("nan")) == "nan"
    code, out, _ = cli(capsys, "show", f"{tmp_path}/default/big")
    assert f"last step   {2**53 + 2}\n" in out
    code, out, _ = cli(capsys, "ls", tmp_path)
    assert {ln.split()[1]: ln.split()[-1] for ln in out.splitlines()[2:]}["big"] == str(2**53 + 2)


def test_fractional_steps_are_not_cut_in_summaries_ls_and_compare(tmp_path, capsys):
    """first_step/last_step of `metrics RUN`, and last_step of `ls` and `compare`, were int():
    0.5 and 3.75 printed (also as JSON and CSV) as 0 and 3. An integer step stays an int."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("frac"):
        for s in (0.5, 1.25, 3.75):
            exp.metrics.log(step=s, loss=s)
        exp.metrics.log(step=7, acc=1.0)
    with exp.run("whole"):
        exp.metrics.log(step=3, loss=1.0)
    run = f"{tmp_path}/default/frac"
    code, out, err = cli(capsys, "metrics", run, "--format", "json")
    assert code == 0, err
    steps = {r["key"]: (r["first_step"], r["last_step"]) for r in json.loads(out)}
    assert steps == {"loss": (0.5, 3.75), "acc": (7, 7)} and type(steps["acc"][0]) is int
    code, out, _ = cli(capsys, "metrics", run, "--format", "csv")
    assert "acc,1,7,7," in out and "loss,3,0.5,3.75," in out
    code, out, _ = cli(capsys, "metrics", run)
    assert out.splitlines()[3].split()[:4] == ["loss", "3", "0.5", "3.75"]
    for args in (("ls", tmp_path), ("compare", tmp_path)):
        code, out, err = cli(capsys, *args, "--format", "json")
        assert code == 0, err
        last = {r["run_id"]: r["last_step"] for r in json.loads(out)}
        assert last == {"frac": 7, "whole": 3} and type(last["frac"]) is int, (args, last)
    with exp.run("frac-only"):
        exp.metrics.log(step=2.5, loss=1.0)
    for args in (("ls", tmp_path), ("compare", tmp_path)):
        code, out, err = cli(capsys, *args, "--format", "json")
        last = {r["run_id"]: r["last_step"] for r in json.loads(out)}
        assert last["frac-only"] == 2.5 and last["whole"] == 3 and type(last["whole"]) is int, (args, last)
    code, out, _ = cli(capsys, "ls", tmp_path)
    assert {ln.split()[1]: ln.split()[-1] for ln in out.splitlines()[2:]}["frac-only"] == "2.5"


def _sweep(root):
    exp = distlog.get_logger(root, heartbeat_interval=0)
    for rid, p in (("b", {"name": "x,y", "opt": {"b": [1, 2]}}), ("d", {"name": "x", "opt": {"b": [3]}})):
        with exp.experiment("e"), exp.run(rid):
            exp.params.set(**p)
            exp.metrics("m").log(step=0, v=1.0)


def test_where_selects_list_params_and_names_with_commas(tmp_path, capsys):
    root = str(tmp_path)
    _sweep(root)

    def ids(*where):
        code, out, err = cli(capsys, "compare", f"{root}/e", *[a for w in where for a in ("--where", w)],
                             "--format", "json")
        return [] if code == NOTHING else [r["run_id"] for r in json.loads(out)]

    assert ids("opt.b=[1,2]") == ["b"]  # split at its comma before: selected nothing
    assert ids("opt.b=[3]") == ["d"]
    assert ids("name=x,y") == ["b", "d"]  # the text itself, and each of its parts
    assert ids("name=x") == ["d"]
    assert ids("name=y") == []
    api = distlog.open_root(root)
    assert [r.info.run_id for r in api.runs(params={"opt.b": [1, 2]})] == ["b"]
    assert [r.info.run_id for r in api.runs(params={"opt.b": [[1, 2], [3]]})] == ["b", "d"]


def test_compare_named_runs_none_left_by_status_says_so(tmp_path, capsys):
    root = str(tmp_path)
    _sweep(root)
    code, out, err = cli(capsys, "compare", f"{root}/e/b", f"{root}/e/d", "--status", "failed")
    assert code == NOTHING and "no runs" in err and "Traceback" not in err


def test_text_tables_align_wide_characters():
    out = table([["train", "run1", "completed"], ["训练", "运行一", "completed"]], ["exp", "run", "status"])
    lines = out.splitlines()

    def col(line, text):  # the display column where text starts
        before = line[: line.index(text)]
        return sum(2 if "\u4e00" <= c <= "\u9fff" else 1 for c in before)

    assert col(lines[2], "completed") == col(lines[3], "completed") == col(lines[0], "status")


def test_sweep_table_and_compare_keep_params_as_stored(tmp_path, capsys):
    """Params of several runs side by side: an int stays an int next to another run's float
    (pandas made 1 a 1.0 and 2**53 + 1 another number), NaN inside a list param is JSON "nan"
    (it was a bare NaN: invalid JSON; then null, which reads as no value), and a param named like the renamed column of another
    keeps its own column."""
    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0)
    runs = {"a": {"n": 2**53 + 1, "betas": [0.1, float("nan")], "status": "A", "params": {"status": "B"}},
            "b": {"n": 0.5, "betas": [0.1, 0.2], "status": "C", "params": {"status": "D"}}}
    for rid, p in runs.items():
        with exp.experiment("e"), exp.run(rid):
            exp.params.set(p)
    df = distlog.open_root(root).table().set_index("run_id")
    assert df.loc["a", "n"] == 2**53 + 1 and type(df.loc["a", "n"]) is int and df.loc["b", "n"] == 0.5
    assert df.loc["a", "params.status"] == "B" and df.loc["a", "params.params.status"] == "A"
    assert df.loc["b", "params.status"] == "D" and df.loc["b", "params.params.status"] == "C"
    code, out, err = cli(capsys, "compare", f"{root}/e", "--format", "json")
    assert code == 0, err
    rows = {r["run_id"]: r for r in json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c}"))}
    assert rows["a"]["n"] == 2**53 + 1 and rows["b"]["n"] == 0.5
    assert rows["a"]["betas"] == [0.1, "nan"] and rows["b"]["betas"] == [0.1, 0.2]  # (as inf is "inf")
