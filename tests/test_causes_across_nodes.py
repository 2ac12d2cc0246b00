"""What a run of several nodes says about why it ended (a review simulating two nodes):
the first cause is a rank's own failure, not the collective error its peers saw because of
it (a clock 3 s ahead put rank 0's "connection reset" before rank 3's RuntimeError); an
interrupted run whose peer recorded a failure after rank 0 closed reads failed; a heartbeat
from another host's future is named so."""

from __future__ import annotations

from distlog.failures import read_failures
from distlog.storage.registry import open_storage


def _record(st, rank, typ, t):
    st.write_json(f"failures/attempt-0000-rank-{rank:05d}.json",
                  {"rank": rank, "attempt": 0, "type": typ, "message": typ, "time": t})


def test_a_ranks_own_failure_leads_its_peers_echoes_whatever_the_clocks(tmp_path):
    st = open_storage(str(tmp_path))
    _record(st, 0, "FlushError", 100.0)
    _record(st, 1, "FlushTimeout", 99.0)
    _record(st, 3, "RuntimeError", 103.0)  # (its node's clock 3 s ahead)
    _record(st, 2, "ValueError", 104.0)
    assert [r["rank"] for r in read_failures(st, 0)] == [3, 2, 1, 0]
    st2 = open_storage(str(tmp_path / "b"))
    _record(st2, 1, "FlushError", 5.0)
    _record(st2, 0, "FlushTimeout", 4.0)
    assert [r["rank"] for r in read_failures(st2, 0)] == [0, 1]  # (only echoes: the earliest)


def test_an_interrupted_run_with_a_peers_later_failure_record_reads_failed(tmp_path):
    """Rank 0 closed alone on a SIGTERM (its node's launcher acted first) and recorded the run
    interrupted, no cause; a rank on the other node, stopped later, recorded the failure that
    ended the run. Readers (show, ls, the dashboard) now show it failed with that cause."""
    import json

    import distlog

    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        exp.metrics.log({"loss": 1.0}, step=0)
    run_dir = tmp_path / "default" / "r"
    meta = json.loads((run_dir / "run.json").read_text())
    meta.update(status="interrupted", error=None)
    (run_dir / "run.json").write_text(json.dumps(meta))
    assert distlog.open_run(run_dir).info.status == "interrupted"  # (no record: as recorded)
    _record(open_storage(str(run_dir)), 1, "FlushError", 9.0)  # (a peer's echo of the stop itself)
    assert distlog.open_run(run_dir).info.status == "interrupted"
    _record(open_storage(str(run_dir)), 2, "RankLost", 10.0)
    info = distlog.open_run(run_dir).info
    assert info.status == "failed" and info.error["type"] == "RankLost" and info.error["rank"] == 2
    assert [r.info.status for r in distlog.open_root(str(tmp_path)).runs()] == ["failed"]


def test_a_heartbeat_from_the_future_is_named_so():
    """A review with a node whose clock ran 400 s ahead: reports said "last heartbeat -374.6 s
    ago" with no word of the clocks."""
    from distlog.heartbeat import describe

    text = describe({"time": 1400.0, "host": "nodeB", "pid": 1, "state": "running"}, now=1000.0)
    assert "400.0 s in the future by this host's clock" in text and "nodeB differ" in text
    assert "-400" not in text
    assert "last heartbeat 3.0 s ago" in describe({"time": 997.0, "host": "h", "pid": 1}, now=1000.0)
