"""TorchComm's all_gather on real gloo ranks: one output tensor (``all_gather_single`` /
``all_gather_into_tensor``), and the list form where a torch's gloo lacks it, each equal to
the NumPy stack of every rank's vector."""

import numpy as np
import pytest

from support.ranks import run_ranks

pytestmark = pytest.mark.dist


def _vector(rank, n):
    return np.random.default_rng(rank).normal(size=n)


def _worker(rank, world):
    from distlog.comm import TorchComm
    from distlog.errors import FlushError

    comm = TorchComm(timeout=60)
    out = {"native": comm.all_gather_array(_vector(rank, 5)), "native_mode": comm._gather_into is not False}
    # the buffers are reused from call to call: an earlier result must not change with a later
    # gather of the same size, nor of another size
    out["kept"] = [comm.all_gather_array(_vector(rank + 10 * i, 5 if i < 3 else 4)) for i in range(5)]

    def unsupported(*a, **k):  # what an older gloo raises on every rank, before sending anything
        raise RuntimeError("ProcessGroupGloo does not support _allgather_base")

    comm._gather_into = unsupported
    before = comm.calls
    out["fallback"] = comm.all_gather_array(_vector(rank, 7))
    out["fallback_mode"] = comm._gather_into
    out["again"] = comm.all_gather_array(_vector(rank, 3))  # the list form from now on
    out["calls"] = comm.calls - before

    def broken(*a, **k):  # any other failure is the flush's error, not a reason to fall back
        raise RuntimeError("Connection closed by peer")

    comm._gather_into = broken
    try:
        comm.all_gather_array(_vector(rank, 2))
        out["broken"] = None
    except FlushError as e:
        out["broken"] = str(e)
    comm.close()
    return out


def test_all_gather_array_equals_numpy_with_and_without_the_tensor_form(tmp_path):
    res = run_ranks(_worker, 2, tmp_path, timeout=60)
    for got in res:  # every rank gets every rank's vector, in rank order
        np.testing.assert_array_equal(got["native"], np.stack([_vector(r, 5) for r in range(2)]))
        assert got["native_mode"]
        for i, rows in enumerate(got["kept"]):
            np.testing.assert_array_equal(rows, np.stack([_vector(r + 10 * i, 5 if i < 3 else 4) for r in range(2)]))
        np.testing.assert_array_equal(got["fallback"], np.stack([_vector(r, 7) for r in range(2)]))
        assert got["fallback_mode"] is False
        np.testing.assert_array_equal(got["again"], np.stack([_vector(r, 3) for r in range(2)]))
        assert got["calls"] == 3  # the refused try, its list-form retry, the next gather
        assert "Connection closed by peer" in got["broken"]
