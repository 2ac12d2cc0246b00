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


def _keep_cpu_tensors_by_reference(monkeypatch=None):
    import distlog.metrics as M

    if monkeypatch is None:  # (a spawned rank: its process ends with the test)
        M.kept_on_device = lambda t: True
    else:
        monkeypatch.setattr(M, "kept_on_device", lambda t: True)


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


def test_a_tensor_left_alone_after_collect_is_reduced_with_its_value(tmp_path, monkeypatch):
    import torch

    import distlog

    _keep_cpu_tensors_by_reference(monkeypatch)
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


def _windows(rank):
    """Two flush windows of device tensors: one float32 value per key and step (the stacked,
    equal-length path), then keys with unequal counts and mixed dtypes (the padded path)."""
    import torch

    g = np.random.default_rng(7 + rank)
    first = {k: g.normal(size=6).astype(np.float32) for k in ("a", "b", "c")}
    first["a"][2], first["b"][0], first["b"][4] = np.nan, np.inf, -np.inf
    second = {
        "a": [torch.tensor(2.0**40 + rank, dtype=torch.int64), torch.tensor(3, dtype=torch.int64)],
        "b": [torch.tensor(0.5, dtype=torch.float16), torch.tensor(-1.25, dtype=torch.bfloat16),
              torch.tensor(True), torch.tensor(float("nan"))],
        "c": [torch.tensor(float(rank), dtype=torch.float64)],
    }
    w = torch.tensor(1.5 + rank, requires_grad=True)
    second["d"] = [w * 2, (w * 3).detach()]  # part of a graph: kept detached
    return first, second


def _collecting_worker(rank, world, root, device=None):
    import torch

    import distlog

    if device is None:
        _keep_cpu_tensors_by_reference()
    first, second = _windows(rank)
    if device is not None:
        first = {k: torch.from_numpy(v).to(device) for k, v in first.items()}
        second = {k: [t.to(device) for t in vs] for k, vs in second.items()}
    exp = distlog.get_logger(root, telemetry=False, heartbeat_interval=0)
    with exp.run("stats"):
        m = exp.metrics
        for s in range(6):
            m.collect(step=s, **{k: torch.as_tensor(v[s:s + 1]).reshape(()) for k, v in first.items()})
        one = m.flush()
        for k, vs in second.items():
            for v in vs:
                m.collect(step=10, **{k: v})
        kept = [t for t, _ in m._core.tensors["d"]]
        detached = all(t.grad_fn is None and not t.requires_grad for t in kept)
        two = m.flush()
    return one, two, detached


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.parametrize("world", [1, 2, "cuda"])
@pytest.mark.timeout(180)
def test_device_tensors_of_many_keys_reduce_as_numpy_does(tmp_path, world):
    """The flush reduces every key's device tensors together (a fixed number of kernels,
    one copy to the host): equal to NumPy over the same values on every rank, with NaN and
    inf counted apart, keys of unequal counts, mixed dtypes and a tensor that needs grad
    ("cuda": real CUDA tensors in one process, where a GPU is at hand)."""
    root = str(tmp_path / "root")
    if world == "cuda":
        if not _has_cuda():
            pytest.skip("needs a CUDA GPU (make gpu-check runs this on one)")
        world, res = 1, [_collecting_worker(0, 1, root, device="cuda")]
    elif world == 1:
        res = [_collecting_worker(0, 1, root)]
    else:
        res = run_ranks(_collecting_worker, world, tmp_path, root, timeout=120)
    windows = [_windows(r) for r in range(world)]
    for w, got in ((0, 0), (1, 1)):
        keys = sorted(windows[0][w])
        for k in keys:
            vals = np.concatenate([np.array([float(getattr(v, 'detach', lambda: v)()) for v in win[w][k]]) for win in windows])
            fin = vals[np.isfinite(vals)]
            for one_rank in res:
                r = one_rank[got][k]
                assert r["count"] == fin.size and r["nonfinite"] == vals.size - fin.size, (k, r)
                assert r["sum"] == pytest.approx(fin.sum(), rel=1e-12)
                assert r["mean"] == pytest.approx(fin.mean(), rel=1e-12)
                assert (r["min"], r["max"]) == (fin.min(), fin.max()), (k, r)
    assert all(detached for *_, detached in res)


@pytest.mark.timeout(120)
def test_the_cuda_benchmark_runs_its_measures_on_cpu_tensors_kept_as_cuda_ones(tmp_path):
    """``bench_collect_cuda`` runs where a GPU is lent, rarely: its dry run keeps it working."""
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "bench", "bench_collect_cuda.py")
    out = subprocess.run([sys.executable, script, "--dry-run-on-cpu", "--n", "50", "--flushes", "3"],
                         capture_output=True, text=True, timeout=100, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for measure in ("collect(loss=<0-d CUDA tensor>)", "<CUDA tensor with grad>", "flush() of 10 keys"):
        assert measure in out.stdout, out.stdout
