"""Ranks in different ``exp.run(...)`` blocks are refused on every rank at the run's start.

A rank that skipped a ``with exp.run("r1")`` block met the others in it with ``run("r2")``:
its values went into r1 (counted as a rank that was there), r2 never existed, and rank 0
hung in its own ``run("r2")`` until the process group's timeout. Ids built per rank merged
into rank 0's run with no word. A rank passing no id follows rank 0 (as documented).
"""

from __future__ import annotations

import numpy as np

import distlog
from support.ranks import run_ranks


def _skipping_rank(rank, world, root):
    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=60)
    said = []
    blocks = ["r1", "r2"] if rank == 0 else ["r2"]  # rank 1 skipped r1
    for run_id in blocks:
        try:
            with exp.run(run_id):
                exp.metrics.collect(step=0, x=float(rank + 1))
                exp.metrics.flush()
        except ValueError as e:
            said.append(str(e))
            break  # the script stops here, as it would without the except
    exp.close()
    return said


def test_a_rank_that_skipped_a_run_block_is_refused_on_every_rank(tmp_path):
    root = str(tmp_path / "root")
    said0, said1 = run_ranks(_skipping_rank, 2, tmp_path, root, timeout=60)
    assert len(said0) == len(said1) == 1  # the same error, on both ranks, at once
    assert said1[0] == f"starting the run failed on rank 0: {said0[0]}"
    assert "the ranks opened different runs of experiment 'default' (rank 0: 'r1', rank 1: 'r2')" in said0[0]
    assert "same exp.run(...) blocks, in the same order" in said0[0]
    # nothing was written as r1 with a rank that never entered it (no run was written)
    assert not (tmp_path / "root" / "default" / "r1").exists()


def _ids_per_rank(rank, world, root, ids):
    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=60)
    try:
        with exp.run(ids[rank]):
            exp.metrics.collect(step=0, x=float(rank + 1))
            exp.metrics.flush()
    except ValueError as e:
        return str(e)
    finally:
        exp.close()
    return None


def test_ids_built_per_rank_are_refused_and_a_rank_without_an_id_follows_rank_0(tmp_path):
    root = str(tmp_path / "root")
    said = run_ranks(_ids_per_rank, 2, tmp_path, root, ["r0", "r1"], timeout=60)
    assert said[1] == f"starting the run failed on rank 0: {said[0]}"
    assert "(rank 0: 'r0', rank 1: 'r1')" in said[0]
    assert said[0].count("Build the id on rank 0 alone") == 1
    # rank 0 names the run, rank 1 passes None: one run, both ranks' values in it
    assert run_ranks(_ids_per_rank, 2, tmp_path, root, ["ok", None], timeout=60) == [None, None]
    x = distlog.open_run(f"{root}/default/ok").metrics.read("x")
    np.testing.assert_allclose(x["mean"], [1.5])
    assert x["count"].tolist() == [2]
    # an id on rank 1 only: rank 0 would have made up another one
    said = run_ranks(_ids_per_rank, 2, tmp_path, root, [None, "mine"], timeout=60)
    assert said[1].endswith(said[0]) and "(rank 0: no id, rank 1: 'mine')" in said[0]
