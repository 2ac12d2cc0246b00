"""The run's status names the first cause, and every rank tells the same story (issue 10)."""

import json
import os

import pytest

from distlog.layout import RUN_FILE, rank_log_path
from support.ranks import run_ranks

pytestmark = pytest.mark.dist


def _rank1_raises(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, flush_timeout=60)
    try:
        with exp.experiment("fc"), exp.run("r"):
            for step in range(20):
                exp.metrics.collect(step=step, loss=1.0)
                if rank == 1 and step == 5:
                    raise RuntimeError("boom on rank one")
                exp.metrics.flush()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__
    return None


@pytest.mark.timeout(200)
def test_first_cause_is_the_rank_that_raised_not_the_echo(tmp_path):
    root = str(tmp_path / "root")
    got = run_ranks(_rank1_raises, 2, tmp_path, root, timeout=120)
    assert got[1] == "RuntimeError" and got[0] is not None  # rank 0 sees the lost peer
    meta = json.load(open(os.path.join(root, "fc", "r", RUN_FILE)))
    assert meta["status"] == "failed"
    assert (meta["error"]["rank"], meta["error"]["type"]) == (1, "RuntimeError"), meta["error"]
    assert "boom on rank one" in meta["error"]["message"] and "Traceback" in meta["error"]["traceback"]
    assert [e["rank"] for e in meta["rank_errors"]][0] == 1
    assert meta["attempts"][-1]["error"]["rank"] == 1
    import distlog

    info = distlog.open_run(os.path.join(root, "fc", "r")).info
    assert info.error["type"] == "RuntimeError"


def _slow_rank_at_close(rank, world, root):
    import time

    import distlog

    exp = distlog.get_logger(root, flush_timeout=4)
    try:
        with exp.experiment("fc"), exp.run("t"):
            exp.metrics.collect(step=0, loss=1.0)
            exp.metrics.flush()
            if rank == 1:
                time.sleep(10)  # rank 0 gives up on the closing flush
    except Exception as e:  # noqa: BLE001
        return type(e).__name__
    return None


@pytest.mark.timeout(200)
def test_after_a_flush_timeout_no_rank_says_completed(tmp_path):
    root = str(tmp_path / "root")
    got = run_ranks(_slow_rank_at_close, 2, tmp_path, root, timeout=120)
    assert got[0] == "FlushTimeout" and got[1] is not None, got
    run_dir = os.path.join(root, "fc", "t")
    meta = json.load(open(os.path.join(run_dir, RUN_FILE)))
    assert meta["status"] == "failed"
    for rank in (0, 1):
        text = open(os.path.join(run_dir, rank_log_path(rank, 0))).read()
        assert "run ended: completed" not in text and "run ended: failed" in text, (rank, text[-800:])
    # rank 0's own log says why its close failed (it said only "run ended: failed"; the cause
    # was in its failure record alone)
    import distlog

    errors = distlog.open_run(run_dir).logs.query(rank=0, level="ERROR", source="text")
    said = [r for r in errors if r.message.startswith("closing the run failed on this rank: FlushTimeout")]
    assert len(said) == 1 and "Traceback" in said[0].fields["traceback"], [r.message for r in errors]
