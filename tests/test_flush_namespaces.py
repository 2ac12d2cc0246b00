"""A view's flush covers its own namespace: ``exp.metrics("val").flush(step=epoch)`` reduces
the ``val/`` keys and leaves the ``train/`` values collected since the last training flush for
that flush. Before, it reduced every namespace: the pending training values were written at
the epoch (a row at an unexpected step), or, the epoch being behind their last row, refused
and lost. Checked against NumPy on one process and on two gloo ranks; ranks flushing
different views raise ``FlushMismatch`` on every rank."""

from __future__ import annotations

import os

import numpy as np
import pytest

from support.ranks import run_ranks


def _train_and_evaluate(exp, rank: int, steps: int = 40, evals=(15, 25, 38)):
    """Training collects every step in three ways (keywords, a dict, a ``collector``) and
    flushes every 10 steps; an evaluation in the middle of a training window collects
    ``val/acc`` and flushes it at the epoch (1, 2, ...). Returns the values collected, per
    flush, as the oracle sees them: ``{key: {step: [values]}}``."""
    tr, va = exp.metrics("train"), exp.metrics("val")
    rng = np.random.default_rng(100 + rank)
    grad = tr.collector("grad_norm")
    want: dict[str, dict[float, list[float]]] = {"train/loss": {}, "train/lr": {}, "train/grad_norm": {},
                                                 "val/acc": {}}
    window: dict[str, list[float]] = {"train/loss": [], "train/lr": [], "train/grad_norm": []}
    epoch = 0
    for step in range(1, steps + 1):
        loss, lr, g = (float(x) for x in rng.normal(size=3))
        tr.collect(step=step, loss=loss)
        tr.collect({"lr": lr}, step=step)
        grad(g, step)
        window["train/loss"].append(loss)
        window["train/lr"].append(lr)
        window["train/grad_norm"].append(g)
        if step % 10 == 0:
            tr.flush(step=step)
            for k, v in window.items():
                want[k][step] = v
            window = {k: [] for k in window}
        if step in evals:
            epoch += 1
            accs = [float(a) for a in rng.uniform(size=4)]
            for a in accs:
                va.collect(acc=a)
            va.flush(step=epoch)
            want["val/acc"][epoch] = accs
    return want


def _rows(root: str, run: str, key: str):
    import distlog

    f = distlog.open_run(os.path.join(root, "default", run)).metrics.frame(key)
    return f["step"].tolist(), f["mean"].tolist(), f["count"].tolist(), f["min"].tolist(), f["max"].tolist()


def _check(root: str, run: str, wants: list[dict[str, dict[float, list[float]]]]) -> None:
    """Every key's rows against the values every rank collected for them (NumPy)."""
    for key in wants[0]:
        steps, mean, count, mn, mx = _rows(root, run, key)
        assert steps == sorted(wants[0][key]), (key, steps)
        for i, s in enumerate(steps):
            vals = np.concatenate([w[key][s] for w in wants])
            assert count[i] == len(vals), (key, s, count[i], len(vals))
            np.testing.assert_allclose(mean[i], vals.mean(), rtol=1e-12, err_msg=f"{key} at {s}")
            assert (mn[i], mx[i]) == (vals.min(), vals.max()), (key, s)


def test_a_views_flush_leaves_the_other_namespaces_values_for_their_flush(tmp_path):
    import distlog

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        want = _train_and_evaluate(exp, 0)
    _check(root, "r", [want])  # (an error or a warning from any flush fails the test)


def test_the_root_flush_and_the_closing_flush_still_cover_every_namespace(tmp_path):
    import distlog

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.metrics("train").collect(step=1, loss=1.0)
        exp.metrics("val").collect(step=1, acc=0.5)
        red = exp.metrics.flush()
        assert red["train/loss"]["count"] == 1 and red["val/acc"]["count"] == 1
        exp.metrics("train").collect(step=2, loss=3.0)
        exp.metrics("val").collect(step=2, acc=0.7)
        exp.metrics("val").flush()  # train/loss at step 2 stays for the closing flush
    assert _rows(root, "r", "train/loss")[:3] == ([1, 2], [1.0, 3.0], [1, 1])
    assert _rows(root, "r", "val/acc")[:3] == ([1, 2], [0.5, 0.7], [1, 1])


def test_a_view_above_the_namespace_has_its_values_split_by_key(tmp_path):
    """The run's root view collects keys of both namespaces in one dict and through a
    ``collector``, and a tensor waits in another view: a view's flush takes its own keys out
    of each."""
    import torch

    import distlog

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        m = exp.metrics
        other = m.collector("val/n")
        for step in range(1, 5):
            m.collect({"train/a": float(step), "val/b": 10.0 * step}, step=step)  # dicts
            other(100.0 * step)
            m("val").collect(t=torch.tensor(float(step)))  # a tensor, kept until its flush
        red = m("train").flush(step=4)
        assert red["train/a"]["count"] == 4 and "val/b" not in red and "val/n" not in red  # (never flushed yet)
        m("val").flush(step=4)
    steps, mean, count, _, _ = _rows(root, "r", "val/t")
    assert (steps, mean, count) == ([4], [2.5], [4])
    steps, mean, count, _, _ = _rows(root, "r", "train/a")
    assert (steps, mean, count) == ([4], [2.5], [4])
    steps, mean, count, _, _ = _rows(root, "r", "val/b")
    assert (steps, mean, count) == ([4], [25.0], [4])
    steps, mean, count, _, _ = _rows(root, "r", "val/n")
    assert (steps, mean, count) == ([4], [250.0], [4])


def test_a_call_site_of_a_view_above_with_keys_on_both_sides_is_split(tmp_path):
    import distlog

    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        m = exp.metrics
        for step in range(1, 4):
            m.collect(step=step, loss=float(step), **{"val/acc": float(step) / 10})  # one call site
        m("val").flush(step=3)
        m("train").collect(step=4, x=1.0)
        m.flush(step=4)
    assert _rows(root, "r", "val/acc")[:3] == ([3], [pytest.approx(0.2)], [3])
    steps, mean, count, _, _ = _rows(root, "r", "loss")
    assert (steps, mean, count) == ([4], [2.0], [3])


def _ranks_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, flush_timeout=60, heartbeat_interval=0)
    with exp.run("r"):
        return _train_and_evaluate(exp, rank)


@pytest.mark.dist
@pytest.mark.timeout(200)
def test_namespaced_flushes_on_two_ranks_match_numpy(tmp_path):
    root = str(tmp_path / "root")
    wants = run_ranks(_ranks_worker, 2, tmp_path, root, timeout=150)
    _check(root, "r", wants)


def _mismatch_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, flush_timeout=60, heartbeat_interval=0)
    try:
        with exp.run("r"):
            exp.metrics("train").collect(step=1, loss=float(rank))
            exp.metrics("val").collect(step=1, acc=float(rank))
            exp.metrics("train" if rank == 0 else "val").flush(step=1)
    except distlog.FlushMismatch as e:
        return str(e)
    return None


@pytest.mark.dist
@pytest.mark.timeout(200)
def test_ranks_flushing_different_views_raise_on_every_rank(tmp_path):
    root = str(tmp_path / "root")
    errors = run_ranks(_mismatch_worker, 2, tmp_path, root, timeout=150)
    for err in errors:
        assert err is not None
        assert "rank 0: exp.metrics('train').flush() #1, step=1" in err, err
        assert "rank 1: exp.metrics('val').flush() #1, step=1" in err, err
        assert "on the same view (namespace)" in err
