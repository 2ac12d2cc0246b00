"""0-d tensors that ``collect()`` keeps on their device until the flush (CUDA, where reading
one would wait on the device): the flush reduces them on their device, and a tensor changed
in place after its ``collect()`` (an accumulator, ``acc += loss``) is refused on every rank
alike rather than reduced with its later value; every other key of the flush is written.

This machine has no GPU: ``metrics.kept_on_device`` (the only device-dependent decision) is
made to keep CPU tensors too, so they take the device path — references kept with their
versions, statistics computed with torch, one copy to the host. ``make gpu-check`` runs the
same path on CUDA."""

import os

import numpy as np
import pytest

from support.ranks import run_ranks


def _keep_cpu_tensors_by_reference():
    import distlog.metrics as M

    M.kept_on_device = lambda t: True


def _accumulating_worker(rank, world, root):
    import torch

    import distlog

    _keep_cpu_tensors_by_reference()
    exp = distlog.get_logger(root, telemetry=False, heartbeat_interval=0)
    with exp.run("acc"):
        m = exp.metrics
        acc = torch.zeros((), dtype=torch.float64)
        fresh = []
        for s in range(4):
            loss = torch.tensor(float(rank * 10 + s), dtype=torch.float64)
            fresh.append(loss.item())
            m.collect(step=s, loss=loss, plain=float(s))
            if rank == world - 1:
                acc += loss  # in place: the tensors collected before now hold a later value
                m.collect(step=s, acc=acc)
            else:
                m.collect(step=s, acc=loss.clone())
        try:
            m.flush()
            outcome = "no error"
        except ValueError as e:
            outcome = str(e)
        m.collect(step=10, acc=torch.tensor(1.0), loss=torch.tensor(2.0))  # usable afterwards
        after = m.flush()
        return outcome, fresh, after["acc"]["count"]


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.timeout(180)
def test_a_tensor_changed_in_place_after_collect_is_refused_on_every_rank(tmp_path, world):
    root = str(tmp_path / "root")
    if world == 1:
        res = [_accumulating_worker(0, 1, root)]
    else:
        res = run_ranks(_accumulating_worker, world, tmp_path, root, timeout=120)
    for outcome, _, count_after in res:
        assert "metric 'acc'" in outcome and "changed in place" in outcome, outcome
        assert f"rank {world - 1}" in outcome and "clone()" in outcome
        assert count_after == world
    from distlog.layout import SCALARS_TABLE
    from distlog.storage import open_storage
    from distlog.writers.rowstore import read_series

    store = open_storage(os.path.join(root, "default", "acc"))
    loss = read_series(store, SCALARS_TABLE, "loss")  # reduced on the device path, all ranks
    values = np.array([v for _, fresh, _ in res for v in fresh])
    assert loss[0, 0] == 3.0 and loss[0, 3] == pytest.approx(values.mean())
    assert loss[0, 4] == values.min() and loss[0, 5] == values.max() and loss[0, 7] == values.size
    plain = read_series(store, SCALARS_TABLE, "plain")
    assert plain[:, 0].tolist() == [3.0] and plain[0, 7] == 4 * world
    acc = read_series(store, SCALARS_TABLE, "acc")
    if world == 1:
        assert acc[:, 0].tolist() == [10.0], acc  # the refused window wrote no row
    else:  # as with any refused value, the other ranks' valid ones make the row (rank 0's copies)
        assert acc[:, 0].tolist() == [3.0, 10.0]
        assert acc[0, 7] == 4 and acc[0, 3] == pytest.approx(np.mean(res[0][1]))


def test_a_tensor_left_alone_after_collect_is_reduced_with_its_value(tmp_path):
    import torch

    import distlog

    _keep_cpu_tensors_by_reference()
    exp = distlog.get_logger(str(tmp_path), telemetry=False, heartbeat_interval=0)
    with exp.run("r"):
        xs = [torch.tensor(v) for v in (1.0, float("nan"), 5.0, -2.0)]
        for s, x in enumerate(xs):
            exp.metrics.collect(step=s, x=x)
        with torch.inference_mode():  # no version counter: taken as it is
            exp.metrics.collect(step=4, x=torch.tensor(3.0))
        red = exp.metrics.flush()
    assert red["x"]["count"] == 4 and red["x"]["nonfinite"] == 1
    assert red["x"]["sum"] == 7.0 and red["x"]["min"] == -2.0 and red["x"]["max"] == 5.0
