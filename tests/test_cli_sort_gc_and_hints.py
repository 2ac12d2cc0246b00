"""Small things a user runs into with the CLI and the API: ``compare --sort`` by a metric's
name when ``--final`` renamed its column, a preemption signal given as a number, and a
``no run at`` hint that does not offer distlog's own ``.distlog`` folder."""

from __future__ import annotations

import signal

import pytest

import distlog
from distlog.cli import main as cli_main


def test_compare_sorts_by_a_metric_named_without_its_final_suffix(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path))
    for run, losses in (("a", [3.0, 1.0, 2.0]), ("b", [0.5, 4.0]), ("c", [2.0, 1.5])):
        with exp.run(run):
            for i, v in enumerate(losses):
                exp.metrics.log({"val/loss": v}, step=i)
    assert cli_main(["compare", str(tmp_path), "-m", "val/loss", "--final", "min", "--sort", "val/loss",
                     "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert "val/loss@min" in rows[0]
    assert [r.split(",")[0] for r in rows[1:]] == ["b", "a", "c"]  # 0.5, 1.0, 1.5
    assert cli_main(["compare", str(tmp_path), "-m", "val/loss", "--sort", "nope"]) == 2
    assert "--sort 'nope' is not a column" in capsys.readouterr().err


def test_a_preemption_signal_may_be_given_as_signal_sigusr1_or_its_number(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    before = signal.getsignal(signal.SIGUSR1)
    try:
        exp.install_preemption_handler((signal.SIGUSR1,))
        exp.install_preemption_handler((int(signal.SIGUSR1),))
        assert signal.getsignal(signal.SIGUSR1) is not before
        with pytest.raises(ValueError, match=r"no signal 99999 here.*signal.SIGUSR1"):
            exp.install_preemption_handler((99999,))
    finally:
        signal.signal(signal.SIGUSR1, before)


def test_no_run_hint_lists_runs_not_distlogs_own_folder(tmp_path, capsys):
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.files.save(b"x", "blob.bin")
    assert cli_main(["files", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "it holds: default" in err and ".distlog" not in err
