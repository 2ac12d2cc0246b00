"""Campaign 31: a new user's walk through the README (quick start, torchrun, a SLURM sweep):
the CLI says what it expected when given a typo, instead of an empty answer."""

from __future__ import annotations

import json

import pytest

import distlog
from support.cli_tree import build_tree, cli


@pytest.fixture
def tree(tmp_path):
    return build_tree(tmp_path / "root")


@pytest.mark.parametrize("command", ["ls", "compare"])
def test_a_mistyped_status_is_a_usage_error_naming_the_statuses(tree, capsys, command):
    # before: "no runs under ... matching the filters", exit status 1, as if none had it
    code, out, err = cli(capsys, command, tree, "--status", "complete")
    assert code == 2 and out == ""
    assert "'complete'" in err and "running, completed, failed, preempted, interrupted, stale, damaged" in err
    code, out, _ = cli(capsys, command, tree, "--status", "failed", "--format", "csv")
    assert code == 0 and "run-b" in out and "run-a" not in out


def test_compare_where_on_a_param_no_run_has_names_the_params(tree, capsys):
    # before: "no runs under ... matching the filters", exit status 1, for a typo'd KEY
    code, out, err = cli(capsys, "compare", tree, "--where", "lrr=0.1")
    assert code == 2 and out == ""
    assert "no run of the 3 selected has the param 'lrr'; did you mean 'lr'?" in err
    assert "optim.name" in err  # the params the runs have
    code, _, err = cli(capsys, "compare", tree, "--where", "lr=0.5")  # a value none has
    assert code == 1 and "matching the filters" in err
    code, _, err = cli(capsys, "compare", tree, "--where", "=0.1")
    assert code == 2 and "is not KEY=VALUE" in err
    code, out, _ = cli(capsys, "compare", tree, "--where", "lr=0.1", "--format", "csv")
    assert code == 0 and "run-a" in out


def test_distlog_slurm_usage_names_distlog_slurm_and_returns_its_status(capsys):
    # before: "usage: python -m distlog.slurm grid ..." under `distlog slurm`, and a usage
    # error raised SystemExit out of cli.main instead of returning 2 as every other command
    code, out, err = cli(capsys, "slurm", "grid", "--param", "lr")
    assert code == 2 and out == ""
    assert err.startswith("usage: distlog slurm grid") and "distlog slurm grid: error: argument --param" in err
    assert "python -m distlog.slurm" not in err
    code, out, _ = cli(capsys, "slurm", "render", "--help")
    assert code == 0 and out.startswith("usage: distlog slurm render")


def _one_process_run(root, name="r", flushes=4):
    import distlog

    exp = distlog.get_logger(str(root))
    with exp.experiment("e"), exp.run(name):
        exp.params.set(lr=0.1)
        for step in range(flushes * 2):
            exp.metrics("train").collect(step=step, loss=1.0 / (step + 1))
            if step % 2 == 1:
                exp.metrics.flush()
    return root / "e" / name


def test_ranks_field_is_checked_before_any_output(tmp_path, capsys):
    run = _one_process_run(tmp_path / "runs")
    # before: a mistyped --field without --plot was ignored (exit 0), and with --plot the
    # table was printed before the error about the field
    code, out, err = cli(capsys, "ranks", run, "--field", "step_tme")
    assert code == 2 and out == "" and "add --plot OUT.png" in err
    code, out, err = cli(capsys, "ranks", run, "--field", "step_tme", "--plot", tmp_path / "h.png")
    assert code == 2 and out == "" and "no telemetry field 'step_tme'" in err and "step_time" in err
    assert not (tmp_path / "h.png").exists()
    code, out, err = cli(capsys, "ranks", run, "--plot", tmp_path / "h.png")
    assert code == 0 and "rank" in out and "(step_time, 1 rank(s))" in err


def test_params_format_help_names_its_own_formats(capsys):
    # before: "--format {flat,json}  output format (csv/json: exact values; ...)": no csv here
    code, out, _ = cli(capsys, "params", "--help")
    assert code == 0
    text = " ".join(out.split("--format {flat,json}")[-1].split())
    assert "csv" not in text and text.startswith("flat: one dotted key")


def test_a_finished_runs_files_list_their_versions_as_the_writer_did(tmp_path):
    import distlog

    exp = distlog.get_logger(str(tmp_path / "runs"))
    with exp.experiment("e"), exp.run("r"):
        for w in ([1], [2], [3]):
            exp.files("ckpt").save({"w": w}, "model.json")
        written = [(r.version, r.sha256) for r in exp.files("ckpt").versions("model.json")]
    run = distlog.open_run(str(tmp_path / "runs" / "e" / "r"))
    # before: AttributeError ('FilesReader' object has no attribute 'versions')
    assert [(r.version, r.sha256) for r in run.files.versions("ckpt/model.json")] == written
    assert [v for v, _ in written] == [1, 2, 3]
    assert [r.version for r in run.files.versions("model.json", rank=0)] == [1, 2, 3]
    assert run.files.load("ckpt/model.json", version=1) == {"w": [1]}
    with pytest.raises(distlog.query.KeyNotFound, match="no file 'ckpt/modl.json'"):
        run.files.versions("ckpt/modl.json")


@pytest.mark.parametrize("command", ["ls", "compare"])
def test_an_experiment_that_is_not_there_is_named_with_those_that_are(tree, capsys, command):
    # before: "no runs under ... matching the filters", exit status 1, for a typo'd name
    code, out, err = cli(capsys, command, tree, "--experiment", "mnist/swep")
    assert code == 2 and out == ""
    assert "no experiment of that name" in err and "did you mean 'mnist/sweep'" in err
    code, _, err = cli(capsys, command, tree, "-e", "mnist/other", "--status", "failed")
    assert code == 1 and "matching the filters" in err  # there, but no run matches
    code, out, _ = cli(capsys, command, tree, "-e", "mnist", "--format", "csv")
    assert code == 0 and "run-a" in out


def test_a_mistyped_status_in_the_python_api_is_refused_naming_the_statuses(tmp_path):
    """``open_root(r).runs(status="runing")`` and ``table(status="complete")`` selected no run,
    silently (the CLI refused the same typo)."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("a"):
        exp.metrics.log(step=0, x=1.0)
    r = distlog.open_root(root)
    assert [x.info.run_id for x in r.runs(status="completed")] == ["a"]
    assert [x.info.run_id for x in r.runs(status=("completed", "stale"))] == ["a"]
    with pytest.raises(ValueError, match=r"status='runing': expected one of running, completed, "
                                         r"failed, preempted, interrupted, stale, damaged; did you mean 'running'\?"):
        r.runs(status="runing")
    with pytest.raises(ValueError, match=r"status='complete'.*did you mean 'completed'"):
        r.table(status=["failed", "complete"])


def test_compare_sort_desc_puts_the_largest_first_and_runs_without_a_value_last(tree, capsys):
    # before: --sort ordered smallest first only: "the best run by accuracy" had no CLI form
    def order(*extra):
        code, out, _ = cli(capsys, "compare", tree, "-m", "train/loss", "--format", "csv", *extra)
        assert code == 0
        return [line.split(",")[1] for line in out.splitlines()[1:]]

    assert order("--sort", "train/loss") == ["run-a", "run-b", "run-c"]  # 0.25, 0.9, none
    assert order("--sort", "train/loss", "--desc") == ["run-b", "run-a", "run-c"]
    assert order() == ["run-c", "run-a", "run-b"]
    assert order("--sort", "lr", "--desc") == ["run-c", "run-a", "run-b"]  # ties keep their order
    code, out, err = cli(capsys, "compare", tree, "--desc")
    assert code == 2 and out == "" and "add --sort COLUMN" in err


def test_the_ranks_table_prints_six_significant_digits_as_every_table(tmp_path, capsys):
    import csv
    import io

    run = _one_process_run(tmp_path / "runs")
    code, out, _ = cli(capsys, "ranks", run, "--format", "csv")
    assert code == 0
    row = next(csv.DictReader(io.StringIO(out)))
    code, table, _ = cli(capsys, "ranks", run)
    assert code == 0
    # before: "%.4g" (0.0001235 where the csv held 0.000123456...)
    for c in ("step_time_median", "wait_median", "wait_total"):
        v = float(row[c])
        assert f"{v:.6g}" in table.split(), (c, v, table)


def test_plot_of_a_logged_series_draws_no_band_and_no_band_caption(tmp_path, capsys):
    # a logged series has min = max = value: the band had no width, but the caption
    # "band: min..max" was drawn (the image differed from --no-band's)
    exp = distlog.get_logger(str(tmp_path / "runs"))
    with exp.experiment("e"), exp.run("r"):
        for step in range(20):
            exp.metrics.log(step=step, loss=1.0 / (step + 1))
    run = tmp_path / "runs" / "e" / "r"
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert cli(capsys, "plot", run, "loss", "-o", a)[0] == 0
    assert cli(capsys, "plot", run, "loss", "-o", b, "--no-band")[0] == 0
    assert a.read_bytes() == b.read_bytes()


def test_the_sweep_table_refuses_a_metric_no_run_has_as_read_metrics_does(tree):
    """``open_root(r).table(metrics=["train/los"])`` added a column of None (``read_metrics``
    and ``distlog compare`` said "no run has the metric")."""
    r = distlog.open_root(str(tree))
    with pytest.raises(distlog.query.KeyNotFound,
                       match=r"no run of the 3 selected has the metric 'train/los'; did you mean "
                             r"'train/loss'\? \(keys: loss, train/loss, val/acc\)"):
        r.table(metrics=["train/loss", "train/los"])
    df = r.table(metrics=["train/loss", "val/acc"])  # a key some runs lack: None there
    assert df.set_index("run_id")["val/acc"].to_dict() == {"run-c": None, "run-a": 0.9, "run-b": None}
    with pytest.warns(RuntimeWarning, match="no experiment of that name"):  # (said, stop 37)
        assert r.table("nothing-here", metrics=["x"]).empty  # no run selected: nothing to refuse


def test_the_sweep_table_of_a_live_run_keeps_a_metric_it_has_not_committed_yet(tmp_path):
    """A sweep watched while it runs: ``table(metrics=["val/acc"])`` raised KeyNotFound ("keys:
    none") until a run's first commit brought the key, where it gave a column of None; a
    typo among ended runs is still refused."""
    root = str(tmp_path / "root")
    done = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with done.experiment("sweep"), done.run("ended"):
        done.metrics.log(step=0, loss=1.0)
    done.close()
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, commit_interval=1000)
    try:
        with exp.experiment("sweep"), exp.run("live"):
            exp.metrics.log(step=0, **{"val/acc": 0.5})  # not committed yet
            r = distlog.open_root(root)
            df = r.table(metrics=["val/acc"]).set_index("run_id")
            assert df["val/acc"].to_dict() == {"ended": None, "live": None}
            assert r.table(metrics=["loss"], runs=[r.run("sweep/live")])["loss"].tolist() == [None]
            with pytest.raises(distlog.query.KeyNotFound, match="no run of the 1 selected has the metric 'val/acc'"):
                r.table(metrics=["val/acc"], status="completed")
            exp.metrics.commit()
            assert r.table(metrics=["val/acc"]).set_index("run_id")["val/acc"].to_dict() == {"ended": None, "live": 0.5}
    finally:
        exp.close()


def test_compare_where_takes_nan_and_inf_as_compare_prints_them(tmp_path, capsys):
    """`compare --format csv` prints a float param that is no number as `nan`, `inf`, `-inf`;
    `--where lr=nan` selected nothing (only JSON's `NaN` did, and no spelling selected inf).
    A text param spelled so is selected by its text too."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"):
        for rid, lr in (("a", float("nan")), ("b", float("inf")), ("c", float("-inf")), ("d", 0.1), ("t", "nan")):
            with exp.run(rid, params={"lr": lr}):
                exp.metrics.log(step=0, loss=1.0)
    exp.close()
    for text, want in (("nan", ["a", "t"]), ("NaN", ["a"]), ("inf", ["b"]), ("-inf", ["c"]), ("0.1", ["d"])):
        code, out, err = cli(capsys, "compare", f"{root}/e", "--where", f"lr={text}", "--format", "csv")
        assert code == 0, (text, err)
        got = sorted(line.split(",")[0] for line in out.splitlines()[1:])
        assert got == want, (text, out)
    code, out, err = cli(capsys, "compare", f"{root}/e", "--where", "lr=nan", "--format", "json")
    assert code == 0, err  # the float NaN and the text: both "nan" in JSON, neither missing
    assert sorted((r["run_id"], r["lr"]) for r in json.loads(out)) == [("a", "nan"), ("t", "nan")], out
    code, out, err = cli(capsys, "compare", f"{root}/e", "--where", "lr=nan", "--format", "csv")
    assert [line.split(",")[-2] for line in out.splitlines()[1:]] == ["nan", "nan"], out  # (was empty for a)


def test_a_mistyped_experiment_in_the_python_api_is_said(tree):
    """`open_root(root).runs("swep")` returned [] and `table("swep")` an empty frame with no
    word (the CLI said "did you mean"); `read_metrics` then blamed the metric."""
    root = distlog.open_root(tree)
    experiments = root.experiments()
    wrong = experiments[0][:-1] + "x"
    with pytest.warns(RuntimeWarning, match=rf"experiment={wrong!r}: no experiment of that name.*did you mean {experiments[0]!r}"):
        assert root.runs(wrong) == []
    with pytest.warns(RuntimeWarning, match="no experiment of that name"):
        assert root.table(wrong).empty
    assert root.runs(experiments[0])  # (the right name: no warning, under filterwarnings=error)


def test_read_metrics_grouped_by_a_param_no_run_has_says_so(tree):
    """`read_metrics(..., group_by=["lrr"])` put every run in one group (lrr = <NA>) with no
    word: a result that looked real. A param only some runs have still groups the others as
    not set."""
    root = distlog.open_root(tree)
    with pytest.raises(distlog.query.KeyNotFound, match=r"group_by 'lrr': no run of the \d+ read has the param; did you mean 'lr'\?"):
        root.read_metrics("train/loss", group_by=["lrr"])
    assert len(root.read_metrics("train/loss", group_by=["lr"]))
