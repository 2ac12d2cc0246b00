"""Bad input and missing ranks fail on every rank alike, and nothing valid is lost."""

import os
import time

import pytest

from support.ranks import run_ranks


def _flush_error(metrics, kind):
    """What ``metrics.flush()`` raised (of ``kind``), or "no error"."""
    try:
        metrics.flush()
        return "no error"
    except kind as e:
        return str(e)


def _bad_input_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("bad"):
        exp.metrics.collect(step=1, loss=float(rank))
        if rank == 1:
            exp.metrics.collect(step=1, loss="nan?")  # not raised here: decided at flush
        outcome = _flush_error(exp.metrics, TypeError)
        # the group is still usable afterwards: a second flush works on every rank
        exp.metrics.collect(step=2, loss=1.0)
        red = exp.metrics.flush()
        return outcome, red["loss"]["count"]


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_bad_value_on_one_rank_raises_on_every_rank(tmp_path):
    root = str(tmp_path / "root")
    res = run_ranks(_bad_input_worker, 3, tmp_path, root, timeout=90)
    for outcome, count in res:
        assert "metric 'loss' got a str ('nan?')" in outcome and "rank 1" in outcome
        assert count == 3
    from distlog.storage import open_storage
    from distlog.layout import SCALARS_TABLE
    from distlog.writers.rowstore import read_series

    rows = read_series(open_storage(os.path.join(root, "default", "bad")), SCALARS_TABLE, "loss")
    assert rows[:, 0].tolist() == [1.0, 2.0]  # the valid values of the failed flush were kept
    assert rows[0, 3] == pytest.approx(1.0) and rows[0, 7] == 3  # mean of 0,1,2 over 3 values


def _huge_int_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root, flush_timeout=60)
    with exp.run("huge"):
        exp.metrics.collect(step=0, a=1.0)
        exp.metrics.flush()  # the key is known: its next values take collect()'s hot path
        exp.metrics.collect(step=1, a=10**400 if rank == 1 else 2.0)
        outcome = _flush_error(exp.metrics, ValueError)
        exp.metrics.collect(step=2, a=3.0)
        return outcome, exp.metrics.flush()["a"]["count"]


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_an_int_too_large_for_a_float_raises_on_every_rank(tmp_path):
    """A Python int beyond float64 (past the key's first, checked call) is bad input like any
    other: raised on every rank from the same flush, the valid values kept (it failed inside
    one rank's flush before its collective: that rank raised alone, the others waited)."""
    res = run_ranks(_huge_int_worker, 2, tmp_path, str(tmp_path / "root"), timeout=90)
    for outcome, count in res:
        assert "rank 1: metric 'a' got a int too large for a float64" in outcome, outcome
        assert count == 2
    import distlog

    frame = distlog.open_run(str(tmp_path / "root" / "default" / "huge")).metrics.read("a").to_frame()
    assert frame["step"].tolist() == [0.0, 1.0, 2.0] and frame["count"].tolist() == [2.0, 1.0, 2.0]


def test_an_int_too_large_for_a_float_raises_at_once_and_loses_nothing(root):
    """One process: ``log()``/``collect()`` raise at the call (it reached the writer thread
    before, which dropped the whole batch of rows around it)."""
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("huge"):
        m = exp.metrics
        for s in range(200):
            if s == 100:
                for call in (m.log, m.collect):
                    with pytest.raises(ValueError, match="'x' got a int too large for a float64"):
                        call(step=s, x=-(10**400), y=1.0)
            m.log(step=s, x=s, y=float(s))
        m.collect(step=300, z=1.0)
        m.flush()
        m.collect(step=301, z=2**1023 + 1)  # beyond the hot path's range, within float64
        m.flush()
    run = distlog.open_run(f"{root}/default/huge")
    assert run.metrics.read("y").to_frame()["step"].tolist() == [float(s) for s in range(200)]
    assert run.metrics.read("x").to_frame()["mean"].tolist() == [float(s) for s in range(200)]
    assert run.metrics.read("z").to_frame()["mean"].tolist() == [1.0, float(2**1023 + 1)]


def test_single_process_raises_at_once(root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("single"):
        for bad, what in [("x", "str"), (None, "NoneType"), ([1.0], "list"), (1 + 2j, "complex")]:
            with pytest.raises(TypeError, match=f"metric 'm' got a {what}"):
                exp.metrics.collect(m=bad)
        import numpy as np
        import torch

        with pytest.raises(TypeError, match=r"of shape \(2,\)"):
            exp.metrics.collect(m=torch.ones(2))
        with pytest.raises(TypeError, match=r"of shape \(3,\)"):
            exp.metrics.log(m=np.zeros(3))
        with pytest.raises(ValueError, match="_aggregation must be one of mean, min, max, sum"):
            exp.metrics.collect(m=1.0)
            exp.metrics.flush(_aggregation="median")


def _key_clash_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("clash"):
        exp.metrics.collect(step=0, **({"train": 1.0} if rank == 0 else {"train/loss": 2.0}))
        try:
            exp.metrics.flush()
            return "no error"
        except ValueError as e:
            return str(e)


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_key_that_is_also_a_namespace_fails_everywhere(tmp_path):
    res = run_ranks(_key_clash_worker, 2, tmp_path, str(tmp_path / "root"), timeout=90)
    assert all("clashes with" in r for r in res), res


def _established_key_worker(rank, world, root, mode):
    import distlog

    exp = distlog.get_logger(root)
    out = []
    with exp.run(mode):
        m = exp.metrics
        for f in range(4):
            if rank == 0:
                if mode == "collected":
                    m.collect(step=f, **{"train/loss": 10.0 * f})
                else:  # rank 0's own series, in the run's namespace
                    m.log(step=f, train=10.0 * f)
            m.collect(step=f, other=1.0)
            if rank == 1 and f == 2:  # never seen the other key here: no clash locally
                m.collect(step=f, **({"train": 5.0} if mode == "collected" else {"train/loss": 5.0}))
            try:
                m.flush()
                out.append("ok")
            except ValueError as e:
                out.append(str(e))
    return out


@pytest.mark.dist
@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["collected", "logged"])
def test_a_new_key_never_displaces_an_established_series(tmp_path, mode):
    """A key new on one rank that clashes with a series already in the run (a key every rank
    agreed on, or one rank 0 logs) is refused on every rank; the established series keeps
    every row (the union kept the first key in sorted order: ``train`` took the place of
    ``train/loss``, whose rows stopped; rank 0's logged ``train`` failed its close)."""
    import distlog

    root = str(tmp_path / "root")
    res = run_ranks(_established_key_worker, 2, tmp_path, root, mode, timeout=90)
    new, old = ("train", "train/loss") if mode == "collected" else ("train/loss", "train")
    for out in res:
        assert out[:2] == ["ok", "ok"] and out[3] == "ok", out
        assert f"metric key {new!r} clashes with {old!r}" in out[2], out[2]
    frame = distlog.open_run(f"{root}/default/{mode}").metrics.read(old).to_frame()
    assert frame["step"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert frame["mean"].tolist() == [0.0, 10.0, 20.0, 30.0]


def _logged_and_collected_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    out = []
    with exp.run("mixed"):
        m = exp.metrics
        if rank == 0:
            m.log(step=0, x=-1.0)  # e.g. an evaluation before training, on rank 0 alone
        for step in (3, 4):
            m.collect(step=step, x=float(step + rank))
            out.append(str(m.flush()["x"]["mean"]))
        if rank == 0:
            m.log(step=10, x=10.0)
        for step in (6, 12):  # 6: at or before rank 0's logged step 10
            m.collect(step=step, x=float(step + rank))
            try:
                out.append(str(m.flush()["x"]["mean"]))
            except ValueError as e:
                out.append(str(e))
    return out


@pytest.mark.parametrize("world", [1, 2])
@pytest.mark.timeout(120)
def test_a_flush_goes_past_the_steps_rank_0_logged_for_its_keys(tmp_path, world):
    """A key rank 0 log()s and the ranks also collect lives in one series: a flush at or
    before a step logged there is refused for that key on every rank (its row was dropped
    by the writer with a warning, and the stats cache counted it), and later ones are kept."""
    import distlog

    root = str(tmp_path / "root")
    res = run_ranks(_logged_and_collected_worker, world, tmp_path, root, timeout=90)
    for out in res:
        assert out[:2] == [str(3 + (world - 1) / 2), str(4 + (world - 1) / 2)], out
        assert "flush at step 6 would write 'x' at or before the last step already written for it (10)" in out[2]
        assert out[3] == str(12 + (world - 1) / 2)
    frame = distlog.open_run(f"{root}/default/mixed").metrics.read("x").to_frame()
    assert frame["step"].tolist() == [0.0, 3.0, 4.0, 10.0, 12.0]


def _newly_collected_logged_key_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("newly"):
        m = exp.metrics
        m.collect(step=1, a=1.0)
        m.flush()
        if rank == 0:
            m.log(step=20, y=1.0)
        m.collect(step=5, a=2.0, y=float(rank))  # y new to the union: its first flush, at 5
        first = _flush_error(m, ValueError)
        m.collect(step=25, y=3.0)
        return first, str(m.flush()["y"]["mean"])


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_a_key_rank_0_logged_is_checked_from_its_first_flush(tmp_path):
    import distlog

    root = str(tmp_path / "root")
    for first, later in run_ranks(_newly_collected_logged_key_worker, 2, tmp_path, root, timeout=90):
        assert "flush at step 5 would write 'y' at or before the last step already written for it (20)" in first
        assert later == "3.0"
    run = distlog.open_run(f"{root}/default/newly")
    assert run.metrics.read("y").to_frame()["step"].tolist() == [20.0, 25.0]
    assert run.metrics.read("a").to_frame()["step"].tolist() == [1.0, 5.0]


def test_a_refused_log_call_leaves_its_key_to_be_checked_again(root):
    """A ``log()`` call refused after its values were checked (a step going back, a step that
    is no number) must not leave its key looking valid but never noted as logged: the next
    ``log()`` of it would take the fast path and the flush's logged-step check would miss it."""
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("again"):
        m = exp.metrics
        m.collect(step=10, x=1.0)
        m.flush()
        for bad in (5, "ten"):
            with pytest.raises((ValueError, TypeError)):
                m.log(step=bad, x=2.0)
        m.log(step=20, x=3.0)
        m.collect(step=15, x=4.0)
        assert "flush at step 15 would write 'x'" in _flush_error(m, ValueError)
        assert m.get_stats("x").rows == 2
    frame = distlog.open_run(f"{root}/default/again").metrics.read("x").to_frame()
    assert frame["step"].tolist() == [10.0, 20.0]


def _late_rank_worker(rank, world, root):
    import distlog
    from distlog.errors import FlushTimeout

    exp = distlog.get_logger(root, flush_timeout=3)
    exp.start_run("late")
    exp.metrics.collect(step=1, loss=1.0)
    if rank == 1:
        time.sleep(8)  # never arrives in time
        return "slept"
    t0 = time.monotonic()
    try:
        exp.metrics.flush()
        return "no error"
    except FlushTimeout as e:
        return f"{time.monotonic() - t0:.1f}|{e}"


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_missing_rank_becomes_a_clear_timeout(tmp_path):
    res = run_ranks(_late_rank_worker, 2, tmp_path, str(tmp_path / "root"), timeout=60, expect_failure=True)
    ok, text = res[0]
    assert ok, text
    waited, msg = text.split("|", 1)
    assert float(waited) < 30
    assert "did not arrive within 3 s" in msg and "flush" in msg


def test_a_views_flush_at_its_own_step_axis_says_that_flush_writes_every_namespace(tmp_path):
    """``exp.metrics("val").flush(step=epoch)`` with train/ values pending wrote them at the
    epoch (refused: before their last row) and its hint said "pass step= to flush()", which
    the script had done."""
    import pytest

    import distlog

    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        for step in range(38):
            exp.metrics("train").collect(step=step, loss=1.0)
            if step % 10 == 9:
                exp.metrics.flush(step=step)
        exp.metrics("val").collect(loss=0.5)
        with pytest.raises(ValueError, match=r"would write 'train/loss' at or before the last step already written "
                           r"for it \(29\); steps of a series must increase\. this flush was called on "
                           r"exp.metrics\('val'\), but flush\(\) writes the values of every namespace"):
            exp.metrics("val").flush(step=0)
        exp.metrics("train").collect(step=50, loss=1.0)
        with pytest.raises(ValueError, match=r"'train/loss' at or before .*\(29\).* pass flush\(\) a step past theirs"):
            exp.metrics.flush(step=20)
