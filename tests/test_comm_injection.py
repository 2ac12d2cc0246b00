"""The flush protocol without any process group: a ``Comm`` injected through ``get_logger``
plays the other ranks (issue 11: metrics testable without spawning ranks)."""

import numpy as np
import pytest

import distlog
from distlog import reduce as R
from distlog.comm import Comm


class PeerComm(Comm):
    """Rank 0 of a 2-rank world whose peer sends what ``peer(my_vector)`` returns."""

    def __init__(self, peer=lambda v: v):
        self.rank, self.world_size, self.peer = 0, 2, peer

    def all_reduce(self, arr, op):
        other = self.peer(arr)
        self.calls += 1
        return arr + other if op == "sum" else np.maximum(arr, other)

    def all_gather_object(self, obj):
        self.calls += 1
        if isinstance(obj, np.ndarray):
            return [obj, self.peer(obj)]
        return [obj, obj]

    def broadcast_object(self, obj, src=0):
        self.calls += 1
        return obj


def test_a_mirrored_peer_doubles_counts_and_keeps_the_mean(tmp_path):
    comm = PeerComm()
    exp = distlog.get_logger(str(tmp_path), comm=comm, telemetry=False, heartbeat_interval=0)
    with exp.run("mirror"):
        for v in (1.0, 2.0, 6.0):
            exp.metrics.collect(step=3, loss=v)
        red = exp.metrics.flush()
        assert red["loss"]["count"] == 6 and red["loss"]["mean"] == pytest.approx(3.0)
        assert red["loss"]["min"] == 1.0 and red["loss"]["max"] == 6.0
        before = comm.calls
        exp.metrics.collect(step=4, loss=5.0)
        exp.metrics.flush()
        assert comm.calls - before == 1  # the steady state: one all_gather
    run = distlog.open_run(str(tmp_path / "default" / "mirror"))
    assert run.metrics.frame("loss")["count"].tolist() == [6, 2]


def test_a_peer_in_another_flush_is_a_mismatch(tmp_path):
    comm = PeerComm()
    exp = distlog.get_logger(str(tmp_path), comm=comm, telemetry=False, heartbeat_interval=0)
    with pytest.raises(distlog.FlushMismatch, match="rank 0: flush\\(\\) #1, step=5"):
        with exp.run("mm"):
            exp.metrics.collect(step=5, loss=1.0)
            # the peer passes another explicit step: seen through the MAX bucket's identity
            comm.peer = lambda v: _with_explicit_step(v, 7.0)
            exp.metrics.flush(step=5)


def _with_explicit_step(v, step):
    """The gathered vector is [SUM bucket, MAX bucket]; the MAX bucket starts with the identity."""
    v = v.copy()
    k = (len(v) - R.HEADER_LEN - R.MAX_HEADER_LEN) // 5  # 3k SUM slots + 2k MAX slots (+ telemetry off)
    m0 = R.HEADER_LEN + 3 * k
    v[m0 + R.M_XSTEP], v[m0 + R.M_NXSTEP] = step, -step
    return v
