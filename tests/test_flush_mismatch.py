"""Ranks that are not in the same flush raise one clear error on every rank; no row is written
from the mismatched flushes (issue 10: a flush only on rank 0 used to write `step 49, count 160`)."""

import json
import os

import pytest

from distlog.layout import RUN_FILE, SCALARS_TABLE, table_commit
from support.ranks import run_ranks

pytestmark = pytest.mark.dist


def _flush_on_rank0_only(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, flush_timeout=60)
    caught = None
    try:
        with exp.experiment("mm"), exp.run("r"):
            for step in range(50):
                exp.metrics.collect(step=step, loss=float(step + rank))
                if rank == 0 and step % 10 == 9:
                    exp.metrics.flush()
    except distlog.FlushMismatch as e:
        caught = str(e)
    return caught


@pytest.mark.timeout(200)
def test_flush_on_rank_0_only_raises_on_every_rank_and_writes_nothing(tmp_path):
    root = str(tmp_path / "root")
    errors = run_ranks(_flush_on_rank0_only, 2, tmp_path, root, timeout=120)
    for rank, err in enumerate(errors):
        assert err is not None, f"rank {rank} raised nothing"
        assert "rank 0: flush() #1" in err and "rank 1: its closing flush (close()) #1" in err, err
        assert "nothing from it was written" in err
    run_dir = os.path.join(root, "mm", "r")
    commit_path = os.path.join(run_dir, table_commit(SCALARS_TABLE))
    lengths = json.load(open(commit_path))["lengths"] if os.path.exists(commit_path) else {}
    assert not any(lengths.values()), lengths  # no row from mismatched flushes
    meta = json.load(open(os.path.join(run_dir, RUN_FILE)))
    assert meta["status"] == "failed"
    assert meta["error"]["type"] == "FlushMismatch"


def _skip_one_flush(rank, world, root, explicit):
    import distlog

    exp = distlog.get_logger(root, flush_timeout=60)
    caught = []
    try:
        with exp.experiment("mm"), exp.run("skip"):
            for step in range(40):
                exp.metrics.collect(step=step, loss=float(step))
                if step % 10 == 9 and not (rank == 1 and step == 9):  # rank 1 skips one flush
                    exp.metrics.flush(step=step) if explicit else exp.metrics.flush()
    except distlog.FlushMismatch as e:
        caught.append(str(e))
    return caught


@pytest.mark.timeout(200)
def test_a_skipped_flush_with_explicit_steps_is_caught_at_once(tmp_path):
    root = str(tmp_path / "root")
    errors = run_ranks(_skip_one_flush, 2, tmp_path, root, True, timeout=120)
    for err in errors:
        assert len(err) == 1 and "rank 0: flush() #1, step=9" in err[0] and "rank 1: flush() #1, step=19" in err[0], err
    commit = os.path.join(root, "mm", "skip", table_commit(SCALARS_TABLE))
    assert not os.path.exists(commit) or not any(json.load(open(commit))["lengths"].values())


@pytest.mark.timeout(200)
def test_a_skipped_flush_without_steps_is_caught_by_the_closing_flush(tmp_path):
    root = str(tmp_path / "root")
    errors = run_ranks(_skip_one_flush, 2, tmp_path, root, False, timeout=120)
    for err in errors:
        # rank 0's 4th flush meets rank 1's closing flush
        assert len(err) == 1 and "rank 0: flush() #4" in err[0] and "rank 1: its closing flush" in err[0], err
    import numpy as np

    from distlog.storage import open_storage
    from distlog.writers.rowstore import read_commit, read_series

    store = open_storage(os.path.join(root, "mm", "skip"))
    rows = read_series(store, "scalars", "loss", read_commit(store, "scalars"))
    # the rows written before the mismatch was provable keep strictly increasing steps
    assert (np.diff(rows[:, 0]) > 0).all()
