"""A run opened on rank 0 alone (wandb's ``if rank == 0: wandb.init()``) is refused with
distlog's words after the timeout.

Before: torch's ``DistStoreError: wait timeout after 20000ms, keys: /default_pg/0//1//cpu//0/1``
(after 10 minutes with the default timeout), naming neither distlog nor the fix."""

from __future__ import annotations

import time

import pytest

import distlog
from support.ranks import run_ranks


def _rank0_only(rank, world, root):
    if rank != 0:
        time.sleep(8)  # (training without opening the run)
        return None
    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=3)
    try:
        with exp.run("r"):
            exp.metrics.log(step=0, x=1.0)
    except distlog.errors.FlushTimeout as e:
        return str(e)
    return None


@pytest.mark.timeout(120)
def test_a_run_opened_on_rank_0_alone_says_every_rank_opens_it(tmp_path):
    said, _ = run_ranks(_rank0_only, 2, tmp_path, str(tmp_path / "root"), timeout=90)
    assert said is not None and said.startswith("starting the run: the other ranks did not arrive within 3 s"), said
    assert "every rank enters `with exp.run(...)`" in said
