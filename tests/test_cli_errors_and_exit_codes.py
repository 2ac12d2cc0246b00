"""Exit codes (0 ok, 1 nothing matched, 2 usage error) and errors that say what exists."""

from __future__ import annotations

import sys

import pytest

from distlog.cli import main
from support.cli_tree import build_tree, cli


@pytest.fixture
def tree(tmp_path):
    return build_tree(tmp_path / "root")


def test_missing_run_lists_what_is_there(tree, capsys):
    code, out, err = cli(capsys, "show", tree / "mnist" / "sweep" / "run-z")
    assert code == 2 and out == ""
    assert "no run at" in err and "run-a, run-b" in err


def test_folder_that_is_not_a_run_lists_its_content(tree, capsys):
    code, _, err = cli(capsys, "params", tree / "mnist")
    assert code == 2 and "holds: other, sweep" in err


def test_run_id_prefix_and_last(tree, capsys):
    code, out, _ = cli(capsys, "params", tree / "mnist" / "other" / "run")
    assert code == 0 and "batch" in out
    code, _, err = cli(capsys, "params", tree / "mnist" / "sweep" / "run")
    assert code == 2 and "matches several runs" in err and "run-a, run-b" in err
    code, out, _ = cli(capsys, "show", tree / "mnist" / "sweep", "--last")
    assert code == 0 and "run         mnist/sweep/run-b" in out


def test_missing_key_suggests_and_lists(tree, capsys):
    code, _, err = cli(capsys, "metrics", tree / "mnist/sweep/run-a", "train/los")
    assert code == 2
    assert "did you mean 'train/loss'" in err and "train/loss, val/acc" in err


def test_missing_rank_lists_ranks(tree, capsys):
    code, _, err = cli(capsys, "logs", tree / "mnist/sweep/run-a", "--rank", "5")
    assert code == 2 and "ranks with logs: 0, 1" in err
    code, _, err = cli(capsys, "metrics", tree / "mnist/sweep/run-a", "--rank", "3")
    assert code == 2 and "ranks with series: 0, 1" in err


def test_a_host_no_rank_ran_on_lists_the_hosts(tree, capsys):
    """``--host`` matching no rank's host said only "no log records matched" (``--rank`` and
    ``--attempt`` name what there is)."""
    import distlog

    run = tree / "mnist/sweep/run-a"
    hosts = distlog.open_run(run).info.hosts
    code, out, err = cli(capsys, "logs", run, "--host", "localhost")
    assert (code, out) == (1, "") and f"no rank of this run ran on host localhost; its hosts: {', '.join(hosts)}" in err, err
    code, _, err = cli(capsys, "logs", run, "--host", hosts[0], "--grep", "no such text")
    assert code == 1 and err.strip().endswith("no log records matched")


def test_nothing_matched_is_exit_1(tree, capsys):
    code, out, err = cli(capsys, "logs", tree / "mnist/sweep/run-a", "--grep", "no such text")
    assert (code, out) == (1, "") and "no log records matched" in err
    code, _, _ = cli(capsys, "ls", tree, "--status", "running")
    assert code == 1
    code, _, err = cli(capsys, "files", tree / "mnist/sweep/run-b")
    assert code == 1 and "no files" in err


def test_bad_arguments_are_exit_2(tree, capsys):
    run = tree / "mnist/sweep/run-a"
    assert cli(capsys, "logs", run, "--grep", "(")[0] == 2
    code, _, err = cli(capsys, "logs", run, "--since", "yesterday-ish")
    assert code == 2 and "cannot read the time" in err
    assert cli(capsys, "logs", run, "--level", "LOUD")[0] == 2
    assert cli(capsys, "logs", run, "--step", "a:b")[0] == 2
    code, _, err = cli(capsys, "export", run, "--format", "parquet")
    assert code == 2 and "-o" in err
    assert cli(capsys, "metrics", run, "--bogus")[0] == 2
    assert cli(capsys, "frobnicate")[0] == 2
    assert cli(capsys, "compare", tree, "--where", "lr")[0] == 2
    code, _, err = cli(capsys, "compare", tree, "--sort", "nope")
    assert code == 2 and "not a column" in err
    code, _, err = cli(capsys, "plot", tree / "nowhere", "loss", "-o", tree / "x.png")
    assert code == 2 and "not a run" in err
    code, _, err = cli(capsys, "plot", run, "nope", "-o", tree / "x.png")
    assert code == 2 and "train/loss" in err


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert "distlog" in capsys.readouterr().out
    assert main(["logs", "--help"]) == 0
    assert "--follow" in capsys.readouterr().out


def test_gc_without_the_artifacts_module_is_a_clear_error(tree, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distlog.gc", None)  # import fails as if not installed
    code, _, err = cli(capsys, "gc", tree, "--dry-run")
    assert code == 2 and "gc is not available" in err


def test_gc_dry_run_prints_the_report(tree, capsys):
    code, out, _ = cli(capsys, "gc", tree, "--dry-run", "--grace", "0")
    assert code == 0
    assert "dry run" in out and "referenced" in out and "would_remove" in out and "removed" not in out


def test_storage_option_must_be_key_value(tree, capsys):
    code, _, err = cli(capsys, "ls", tree, "-O", "novalue")
    assert code == 2 and "KEY=VALUE" in err


def test_an_output_file_that_cannot_be_written_is_a_usage_error(tree, capsys, monkeypatch):
    """export/plot -o and ranks --plot into a missing folder, or onto a folder, raised a
    traceback (exit 1): now one line naming the path and the fix, exit 2, before any work."""
    run = tree / "mnist/sweep/run-a"
    missing = tree / "no-such-folder"
    for args in (("export", run, "-o", missing / "x.csv"), ("export", run, "-o", missing / "x.parquet"),
                 ("plot", run, "train/loss", "-o", missing / "x.png"),
                 ("ranks", run, "--plot", missing / "x.png")):
        code, out, err = cli(capsys, *args)
        assert code == 2 and "Traceback" not in err, (args, err)
        assert f"the folder {missing} does not exist" in err and "mkdir -p" in err, (args, err)
    code, _, err = cli(capsys, "export", run, "-o", tree)
    assert code == 2 and f"-o {tree} is a folder" in err and f"{tree / 'out.csv'}" in err
    code, _, err = cli(capsys, "plot", run, "train/loss", "-o", tree)
    assert code == 2 and f"-o {tree} is a folder" in err
    assert not missing.exists()

    import pandas as pd

    def refuse(self, path, *a, **k):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", refuse)
    code, _, err = cli(capsys, "export", run, "-o", tree / "x.csv")
    assert code == 2 and f"cannot write -o {tree / 'x.csv'}: Permission denied" in err


def test_compare_metric_no_run_has_is_a_usage_error(tree, capsys):
    """`compare -m train/losss` exited 0 with a column of '-': now exit 2 with a suggestion,
    as `metrics` and `plot` do; a key only some runs have is still a column."""
    code, out, err = cli(capsys, "compare", tree / "mnist/sweep", "-m", "train/losss")
    assert code == 2 and out == ""
    assert "'train/losss'" in err and "did you mean 'train/loss'" in err and "train/loss, val/acc" in err
    code, _, err = cli(capsys, "compare", tree / "mnist/sweep", "-m", "train/loss", "-m", "vall/acc",
                       "--final", "min")
    assert code == 2 and "'vall/acc'" in err and "did you mean 'val/acc'" in err and "train/losss" not in err
    code, out, err = cli(capsys, "compare", tree / "mnist/sweep", "-m", "train/loss")
    assert code == 0, err


def test_tail_zero_shows_none_and_a_negative_tail_is_a_usage_error(tree, capsys):
    """`metrics --tail 0` printed every row (0 is falsy) and `--tail -2` all but two."""
    run = tree / "mnist/sweep/run-a"
    code, out, _ = cli(capsys, "metrics", run, "train/loss", "--tail", "0")
    assert (code, out) == (1, "")
    code, out, _ = cli(capsys, "metrics", run, "train/loss", "--tail", "0", "--format", "json")
    assert code == 1 and out.strip() == "[]"
    code, out, _ = cli(capsys, "metrics", run, "train/loss", "--tail", "1", "--format", "json")
    assert code == 0 and len(__import__("json").loads(out)) == 1
    for args in (("metrics", run, "train/loss", "--tail", "-2"), ("logs", run, "-n", "-1"),
                 ("logs", run, "--tail", "x")):
        code, out, err = cli(capsys, *args)
        assert code == 2 and out == "" and "expected a whole number >= 0" in err, args
    code, out, _ = cli(capsys, "logs", run, "-n", "0")
    assert (code, out) == (1, "")


def test_gc_of_a_root_that_is_not_there_is_a_usage_error(tree, capsys):
    """`gc` of a mistyped root reported 0 blobs and exited 0; ls says "nothing at" (exit 2)."""
    code, out, err = cli(capsys, "gc", tree.parent / "runz", "--dry-run")
    assert code == 2 and out == "" and "nothing at" in err and "runz" in err
    assert cli(capsys, "ls", tree.parent / "runz")[0] == 2
    code, out, _ = cli(capsys, "gc", tree, "--dry-run")
    assert code == 0 and "dry run" in out


def test_logs_rank_and_attempt_must_be_numbers(tree, capsys):
    """`logs -a x` / `-r x` reported a raw "invalid literal for int()"."""
    run = tree / "mnist/sweep/run-a"
    for opt in ("-a", "-r", "--rank", "--attempt"):
        code, out, err = cli(capsys, "logs", run, opt, "x")
        assert code == 2 and out == "" and "invalid literal" not in err, (opt, err)
        assert "expected a number or numbers separated by commas (0 or 0,2), got 'x'" in err
    code, out, err = cli(capsys, "logs", run, "-r", "0,1", "-a", "0")
    assert code == 0, err
