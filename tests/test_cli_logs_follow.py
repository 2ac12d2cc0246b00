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


@pytest.mark.timeout(60)
def test_follow_a_rank_of_a_running_run_that_has_not_logged_yet_waits_for_it(tmp_path):
    """A rank whose log is not there yet (it starts later) is waited for while the run runs;
    once the run is over, asking for a rank that never logged is an error naming the ranks."""
    import distlog
    from distlog.query import RankNotFound

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0.2)
    with exp.run("r"):
        run = distlog.open_run(f"{tmp_path}/default/r")
        assert list(run.logs.follow(rank=1, timeout=0.3, poll=0.05)) == []
    with pytest.raises(RankNotFound, match="ranks with logs: 0"):
        list(distlog.open_run(f"{tmp_path}/default/r").logs.follow(rank=1, timeout=5))
