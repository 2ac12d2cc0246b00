"""Session 45 review of a sweep read back: one experiment/run id in two roots (the NaN/inf
mark, a plot of both), --where given twice or with a comparison, --sort by a param every run
shares, a param filter function that fails on a run's value, a metric column no run has."""

import json

import pytest
from starlette.testclient import TestClient

import distlog
from distlog.dashboard.app import make_app
from support.cli_tree import cli


def _two_roots(tmp_path):
    for name, bad in (("a", False), ("b", True)):
        exp = distlog.get_logger(str(tmp_path / name), heartbeat_interval=0, telemetry=False)
        with exp.experiment("e"), exp.run("r1"):
            exp.params.set(lr=0.1 if bad else 0.2)
            for s in range(5):
                exp.metrics("val").log(step=s, acc=float("nan") if bad and s >= 3 else 0.5 + s / 10)
    return tmp_path / "a" / "e" / "r1", tmp_path / "b" / "e" / "r1"


@pytest.mark.parametrize("order", [0, 1])
def test_compare_of_one_run_id_in_two_roots_marks_the_run_that_went_nan(tmp_path, capsys, order):
    good, bad = _two_roots(tmp_path)
    runs = (good, bad) if order == 0 else (bad, good)
    code, out, err = cli(capsys, "compare", *runs, "-m", "val/acc", "--format", "json")
    assert code == 0, err
    rows = {r["run"]: r for r in json.loads(out)}  # (a run column: their ids are alike)
    assert rows[f"file://{bad}"]["nonfinite_from"] == {"val/acc": 3} and rows[f"file://{bad}"]["lr"] == 0.1
    assert rows[f"file://{good}"]["nonfinite_from"] == {} and rows[f"file://{good}"]["val/acc"] == 0.9
    code, out, err = cli(capsys, "compare", *runs, "-m", "val/acc", "--sort", "lr")
    lines = out.splitlines()[2:]
    assert lines[0].startswith(f"file://{bad}") and "val/acc@3" in lines[0], out
    assert lines[1].startswith(f"file://{good}") and "val/acc@" not in lines[1], out


def test_a_plot_of_one_run_id_in_two_roots_draws_both(tmp_path, capsys):
    good, bad = _two_roots(tmp_path)
    out_svg = tmp_path / "both.svg"
    code, _, err = cli(capsys, "plot", good, bad, "val/acc", "-o", out_svg)
    assert code == 0, err
    svg = out_svg.read_text()
    assert f"file://{good}" in svg and f"file://{bad}" in svg  # (the legend: one line each)


def _sweep(root):
    exp = distlog.get_logger(str(root), heartbeat_interval=0, telemetry=False)
    for i, (lr, name) in enumerate([(0.1, "adam"), (0.01, "sgd"), (0.1, "sgd"), (0.001, "adamw")]):
        with exp.experiment("s"), exp.run(f"r{i}"):
            exp.params.set(lr=lr, optim={"name": name}, dropout=0.1)
            exp.metrics.log(step=0, acc=float(i))


def test_where_given_twice_or_with_a_comparison_is_refused_naming_the_fix(tmp_path, capsys):
    _sweep(tmp_path)
    code, out, err = cli(capsys, "compare", tmp_path, "-w", "lr=0.1", "-w", "lr=0.01")
    assert code == 2 and "--where lr given twice (lr=0.1 and lr=0.01)" in err and "--where lr=0.1,0.01" in err, err
    for bad in ("lr<0.01", "lr==0.1", "lr>=0.01", "lr!=0.1"):
        code, out, err = cli(capsys, "compare", tmp_path, "-w", bad)
        assert code == 2 and "--where selects by equality only" in err and "lambda v: v < 0.01" in err, (bad, err)
    code, out, err = cli(capsys, "compare", tmp_path, "-w", "lr=0.1,0.01", "--format", "json")
    assert sorted(r["run_id"] for r in json.loads(out)) == ["r0", "r1", "r2"]
    # a value no run holds: the values they do hold (here a case apart)
    code, out, err = cli(capsys, "compare", tmp_path, "-w", "optim.name=Adam")
    assert code != 0 and "--where optim.name: the 4 run(s) selected hold optim.name = adam, adamw, sgd" in err, err


def test_sort_by_a_param_every_run_shares_keeps_the_order_and_a_typo_says_did_you_mean(tmp_path, capsys):
    _sweep(tmp_path)
    code, out, err = cli(capsys, "compare", tmp_path, "--sort", "dropout", "--format", "json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)] == ["r0", "r1", "r2", "r3"]
    assert "every run shown has the same dropout" in err
    code, out, err = cli(capsys, "compare", tmp_path, "--sort", "lrr")
    assert code == 2 and "--sort 'lrr' is not a column; did you mean 'lr'?" in err, err


def test_a_param_filter_function_that_fails_names_the_run_and_value(tmp_path):
    _sweep(tmp_path)
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.experiment("s"), exp.run("text"):
        exp.params.set(lr="1e-3")
    with pytest.raises(TypeError, match=r"params=\{'lr': \.\.\.\}: the function given failed on run .*/s/text, "
                                        r"whose lr is '1e-3' \(str\): TypeError: '<' not supported"):
        distlog.open_root(str(tmp_path)).runs(params={"lr": lambda v: v < 0.05})
    picked = distlog.open_root(str(tmp_path)).runs(params={"lr": lambda v: isinstance(v, float) and v < 0.05})
    assert sorted(r.info.run_id for r in picked) == ["r1", "r3"]


def test_the_runs_table_names_a_metric_column_no_run_has(tmp_path):
    _sweep(tmp_path)
    c = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url="http://127.0.0.1")
    got = c.get("/api/runs", params=[("metric", "acc"), ("metric", "accc")]).json()
    assert got["unknown_metrics"] == {"accc": "; did you mean 'acc'?"}
    assert sorted(r["metrics"]["acc"] for r in got["runs"]) == [0.0, 1.0, 2.0, 3.0]


def test_ls_says_why_a_run_failed(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("ok"):
        exp.metrics.log(step=0, loss=1.0)
    with pytest.raises(RuntimeError):
        with exp.run("bad"):
            raise RuntimeError("CUDA out of memory\nTried to allocate 2 GiB")
    code, out, err = cli(capsys, "ls", tmp_path, "--format", "json")
    rows = {r["run_id"]: r for r in json.loads(out)}
    assert rows["ok"]["error"] is None
    assert rows["bad"]["error"] == "RuntimeError on rank 0: CUDA out of memory\\nTried to allocate 2 GiB"
    code, out, err = cli(capsys, "ls", tmp_path, "--status", "failed")
    assert out.splitlines()[0].endswith("error") and "RuntimeError on rank 0: CUDA out of memory" in out, out
    rows = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url="http://127.0.0.1").get("/api/runs").json()["runs"]
    failures = {r["run_id"]: r["failure"] for r in rows}  # (the runs table's status badge title)
    assert failures["ok"] is None and failures["bad"].startswith("RuntimeError on rank 0: CUDA out of memory")
