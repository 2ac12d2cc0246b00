"""Session 45 review of the metrics API's edges: ranks asking one flush for different
aggregations, an automatic step past 2**53, and int steps a float64 cannot hold."""

import logging

import numpy as np
import pytest

import distlog
from support.ranks import run_ranks


def _two_aggregations(rank, world, root):
    exp = distlog.get_logger(root, flush_timeout=60)
    try:
        with exp.run("aggs"):
            exp.metrics.collect(step=0, x=1.0 + rank)
            exp.metrics.flush()  # agreed: a row
            exp.metrics.collect(step=1, x=1.0 + rank)
            exp.metrics.flush(["mean", "sum"][rank])
    except distlog.FlushMismatch as e:
        return str(e)
    return None


@pytest.mark.dist
@pytest.mark.timeout(200)
def test_ranks_flushing_one_window_with_different_aggregations_raise_on_every_rank(tmp_path):
    """flush("mean") on rank 0 and flush("sum") on rank 1: the row held rank 0's choice and
    each rank's stats cache its own, unsaid."""
    root = str(tmp_path / "root")
    errors = run_ranks(_two_aggregations, 2, tmp_path, root, timeout=120)
    for err in errors:
        assert err is not None
        assert "rank 0: flush('mean') #2, largest collected step 1" in err, err
        assert "rank 1: flush('sum') #2, largest collected step 1" in err, err
        assert "the same aggregation" in err
    rows = distlog.open_run(f"{root}/default/aggs").metrics.read("x")
    assert rows["step"].tolist() == [0] and rows["value"].tolist() == [1.5]  # the agreed flush only


def _a_mistyped_aggregation(rank, world, root):
    exp = distlog.get_logger(root, flush_timeout=60)
    try:
        with exp.run("typo"):
            exp.metrics.collect(step=0, x=1.0)
            exp.metrics.flush(["sum", "summ"][rank])
    except distlog.FlushMismatch as e:
        return str(e)
    return None


@pytest.mark.dist
@pytest.mark.timeout(200)
def test_a_mistyped_aggregation_on_one_rank_is_named_in_the_mismatch(tmp_path):
    """flush("summ") on rank 1 (made "mean") against flush("sum"): the mismatch named
    flush('mean'), which nobody wrote, and the bad aggregation was dropped."""
    errors = run_ranks(_a_mistyped_aggregation, 2, tmp_path, str(tmp_path / "root"), timeout=120)
    for err in errors:
        assert err is not None and "rank 0: flush('sum') #1" in err, err
        assert "rank 1: _aggregation must be one of mean, min, max, sum; got 'summ'" in err, err


def test_an_automatic_step_past_2_53_that_repeats_the_last_is_refused_not_dropped(tmp_path):
    """fs + 1 == fs past 2**53: the fast flush handed the writer a repeated step; flush()
    returned as if written and only the writer thread's warning said a row was refused."""
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("big"):
        exp.metrics.collect(step=2**53 + 4, c=1.0)
        exp.metrics.flush()
        exp.metrics.collect(c=2.0)  # one past 2**53 + 4 is 2**53 + 4 in float64
        with pytest.raises(ValueError, match=r"would write 'c' at or before the last step already written for it \(9007199254740996\)"):
            exp.metrics.flush()
    run = distlog.open_run(f"{tmp_path}/default/big")
    assert run.metrics.read("c")["step"].tolist() == [2**53 + 4]


def test_an_int_step_a_float64_cannot_hold_is_said(tmp_path, caplog):
    from distlog import report

    report.reset()  # (said once a minute: another test of this worker may have said it)
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("s"), caplog.at_level(logging.WARNING, logger="distlog"):
        exp.metrics.log(step=2**53, a=1.0)  # exact: nothing said
        assert not [r for r in caplog.records if "2**53" in r.getMessage()]
        exp.metrics.log(step=np.int64(2**62 + 1), b=1.0)
    said = [r.getMessage() for r in caplog.records if "2**53" in r.getMessage()]
    assert said and said[0].startswith("distlog: step 4611686018427387905 is past 2**53 = 9007199254740992 "
                                       "and is stored as 4611686018427387904"), said
    run = distlog.open_run(f"{tmp_path}/default/s")
    assert run.metrics.read("b")["step"].tolist() == [2**62]


def test_a_decimal_is_refused_naming_float_and_a_stats_window_past_the_loggers_is_said(tmp_path, caplog):
    import decimal

    from distlog import report

    report.reset()
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False, window=100)
    with exp.run("r"):
        with pytest.raises(TypeError, match=r"got a Decimal \(Decimal\('0.1'\)\); log Python or NumPy numbers "
                                            r"\(float\(x\): a Decimal is stored as a float64\)"):
            exp.metrics.log(step=0, x=decimal.Decimal("0.1"))
        for s in range(150):
            exp.metrics.log(step=s, y=float(s))
        with caplog.at_level(logging.WARNING, logger="distlog"):
            st = exp.metrics.get_stats("y", window=500)
        assert st.rows == 100 and st.mean == pytest.approx(np.mean(np.arange(50, 150)))
        said = [r.getMessage() for r in caplog.records if "window=500" in r.getMessage()]
        assert said and "than the logger keeps a key (100: get_logger(window=100))" in said[0], said
