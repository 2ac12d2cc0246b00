"""The warning that a flush merged two windows (a rank flushed at other steps than the others, without ``step=``)
is in the run's log, where it is read afterwards.

Before: it went to stderr only; ``distlog logs RUN --level WARNING`` showed nothing, so once
the console was gone nothing in the run said that those rows merged two windows."""

from __future__ import annotations

import distlog
from support.ranks import run_ranks


def _one_rank_flushes_early(rank, world, root):
    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=60, telemetry=False)
    with exp.run("r"):
        for step in range(6):
            exp.metrics.collect(step=step, loss=float(rank + step))
            # rank 1 flushes a step early once (its flush #1 ends at step 0, rank 0's at 1)
            if (step % 2 == 1 and not (rank == 1 and step == 1)) or (rank == 1 and step == 0):
                exp.metrics.flush()


def test_the_merged_windows_warning_is_in_every_ranks_log(tmp_path):
    root = str(tmp_path / "root")
    run_ranks(_one_rank_flushes_early, 2, tmp_path, root, timeout=120)
    run = distlog.open_run(f"{root}/default/r")
    said = [(r.rank, r.message) for r in run.logs.query(level="WARNING")]
    merged = [(rank, m) for rank, m in said if "the ranks' largest collected steps differ (0 to 1)" in m]
    assert sorted(rank for rank, _ in merged) == [0, 1], said
    assert "merged two windows" in merged[0][1]
