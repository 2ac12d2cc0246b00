"""`distlog logs --follow`: streams a running job's lines in order and exits when it ends;
on a finished run it prints the tail and exits at once."""

from __future__ import annotations

import pytest

from distlog.cli import main
from support.cli_tree import build_tree
from support.live_writer import start_live_writer


@pytest.mark.timeout(120)
def test_follow_a_finished_run_prints_its_tail(tmp_path, capsys):
    root = build_tree(tmp_path / "root")
    code = main(["logs", str(root / "mnist/sweep/run-a"), "--follow", "--tail", "2", "--poll", "0.01"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert [line.rsplit("  ", 1)[1] for line in out] == ["done", "run ended: completed"]


@pytest.mark.timeout(180)
def test_follow_a_running_job(tmp_path, capsys):
    proc, url = start_live_writer(tmp_path, steps=400, pause=0.004)
    try:
        code = main(["logs", url, "--follow", "--tail", "100000", "--poll", "0.05", "--lag", "0.2",
                     "--raw", "--grep", "^line", "--level", "INFO"])
    finally:
        proc.join(60)
    assert code == 0 and proc.exitcode == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(line.split(" line ")[1].split()[0]) for line in lines] == list(range(400))
