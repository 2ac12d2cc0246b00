"""Campaign 32: a demanding user of the "every rank visible" telemetry (real gloo ranks, real
processes): a peer killed mid-run, evaluation flushes between training flushes, the
``distlog ranks`` options."""

import os
import re
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import distlog
from distlog import cli
from support.ranks import run_ranks

pytestmark = pytest.mark.dist

KILLED_RANK = r"""
import datetime, json, os, signal, sys, time
rank, world, init, root, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
import torch.distributed as dist
dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world,
                        timeout=datetime.timedelta(seconds=60))
import distlog
from distlog.errors import FlushError
# heartbeats every 30 s: only the one at start is written during this short run
exp = distlog.get_logger(root, heartbeat_interval=30, flush_timeout=30)
done = 0
try:
    with exp.run("killed"):
        for step in range(1000):
            exp.metrics.collect(step=step, loss=1.0)
            if rank == world - 1 and step == 10:
                os.kill(os.getpid(), signal.SIGKILL)  # lost before flush #11
            exp.metrics.flush()
            done += 1
except FlushError as e:
    with open(out, "w") as f:
        json.dump({"flushes_done": done, "message": str(e)}, f)
"""


@pytest.mark.timeout(180)
def test_a_killed_peer_names_no_rank_that_was_inside_the_flush(tmp_path):
    """Rank 2 is SIGKILLed before flush #11; ranks 0 and 1 are inside it when gloo reports the
    lost peer. Their heartbeats (every 30 s) are older than the flush, so they show each other
    at flush 0: the error named every surviving peer as a rank that "did not arrive" (rank 0
    blamed rank 1, rank 1 blamed rank 0). A heartbeat older than the flush proves nothing while
    it is younger than the rank's interval: such ranks are "not known", never "did not arrive"."""
    import json

    script = tmp_path / "rank.py"
    script.write_text(KILLED_RANK)
    root, init = str(tmp_path / "root"), str(tmp_path / "init")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(distlog.__file__))] + sys.path))
    procs = [subprocess.Popen([sys.executable, str(script), str(r), "3", init, root,
                               str(tmp_path / f"err{r}.json")], env=env) for r in range(3)]
    try:
        for p in procs:
            p.wait(timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert procs[2].returncode == -9
    for r in (0, 1):
        got = json.loads((tmp_path / f"err{r}.json").read_text())
        # the oracle: each surviving rank did 10 flushes and failed inside the 11th (0-based
        # 10), the one rank 2 never reached
        assert got["flushes_done"] == 10, got
        msg = got["message"]
        named = re.search(r"ranks that did not arrive at flush #\d+: ([\d, ]+)", msg)
        blamed = {int(x) for x in named.group(1).split(",")} if named else set()
        assert not blamed & {0, 1}, msg  # both were inside flush #11
        # every other rank is still accounted for, as not known (its heartbeat predates it)
        other = 1 - r
        assert re.search(r"ranks not known to have arrived at flush #11: [\d, ]*\b%d\b" % other, msg), msg
        assert "beat every 30 s" in msg, msg
