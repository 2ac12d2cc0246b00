"""A NumPy array or torch tensor of one element (``loss.view(1)``, ``np.array([acc])``) is the
number it holds, as Lightning's ``self.log`` takes it.

Before: refused as "of shape (1,)" — under torch.distributed at the next flush, on every rank,
which ended a training at its first flush for a value ``float()`` reads at once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import distlog
from support.ranks import run_ranks

ONE = [lambda x: torch.tensor([x]), lambda x: torch.tensor([[x]], dtype=torch.float32),
       lambda x: np.array([x]), lambda x: np.array([[x]], dtype=np.float32),
       lambda x: torch.tensor([x], requires_grad=True) * 1.0]


def test_one_element_values_are_their_number_in_one_process(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0)
    with exp.run("r"):
        for step in range(4):
            for i, make in enumerate(ONE):
                exp.metrics.collect(step=step, **{f"c{i}": make(step + 0.5)})
                exp.metrics.log(step=step, **{f"l{i}": make(step + 0.25)})
            exp.metrics.flush()
        with pytest.raises(TypeError, match=r"of shape \(2,\).*one element"):
            exp.metrics.collect(m=torch.ones(2))
        with pytest.raises(TypeError, match=r"of shape \(1, 3\)"):
            exp.metrics.log(m=np.zeros((1, 3)))
    run = distlog.open_run(tmp_path / "root" / "default" / "r")
    for i in range(len(ONE)):
        assert run.metrics.read(f"c{i}")["mean"].tolist() == [s + 0.5 for s in range(4)]
        assert run.metrics.read(f"l{i}")["value"].tolist() == [s + 0.25 for s in range(4)]


def _ranks(rank, world, root):
    exp = distlog.get_logger(root, heartbeat_interval=0, flush_timeout=60, telemetry=False)
    with exp.run("r"):
        for step in range(3):
            exp.metrics.collect(step=step, loss=torch.tensor([float(rank + step)]),
                                acc=np.array([[0.5 * rank]]))
            exp.metrics.flush()


def test_one_element_values_are_reduced_across_ranks(tmp_path):
    root = str(tmp_path / "root")
    run_ranks(_ranks, 2, tmp_path, root, timeout=120)
    run = distlog.open_run(f"{root}/default/r")
    loss = run.metrics.read("loss")
    assert loss["mean"].tolist() == [np.mean([0.0 + s, 1.0 + s]) for s in range(3)]
    assert loss["count"].tolist() == [2.0] * 3 and loss["max"].tolist() == [1.0 + s for s in range(3)]
    assert run.metrics.read("acc")["sum"].tolist() == [0.5] * 3
