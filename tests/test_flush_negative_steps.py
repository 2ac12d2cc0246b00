"""A negative step is a step like any other (an evaluation "before training" at step -1):
every flush path stores it where it was collected. The MAX bucket once said "no rank had a
step" with -1, so a real -1 (or any negative step, where another rank passed none) was stored
one past the previous flush instead."""

import pytest

from support.ranks import run_ranks


def test_one_process_flushes_keep_negative_steps(root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("neg"):
        exp.metrics.collect(step=-1, a=1.0)
        exp.metrics.flush()  # a new key: the general path
        exp.metrics.collect(step=0, a=2.0)
        exp.metrics.flush()  # the steady one-process path
    frame = distlog.open_run(f"{root}/default/neg").metrics.read("a").to_frame()
    assert frame["step"].tolist() == [-1.0, 0.0] and frame["mean"].tolist() == [1.0, 2.0]


def _worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("neg"):
        m = exp.metrics
        for f, step in enumerate((-5, -1, 3)):
            # rank 1 passes no step: the row's step is the largest one any rank passed
            m.collect(**({"step": step} if rank == 0 else {}), a=float(f))
            m.flush()
    return True


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_several_ranks_keep_negative_steps(tmp_path):
    import distlog

    root = str(tmp_path / "root")
    run_ranks(_worker, 2, tmp_path, root, timeout=90)
    frame = distlog.open_run(f"{root}/default/neg").metrics.read("a").to_frame()
    assert frame["step"].tolist() == [-5.0, -1.0, 3.0]
    assert frame["mean"].tolist() == [0.0, 1.0, 2.0] and frame["count"].tolist() == [2.0] * 3
