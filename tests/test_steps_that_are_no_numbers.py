"""A step given as text, bytes or a boolean is refused with the error every bad step gets
(``float()`` took ``"5"``, ``b"6"`` and ``True``: ``log(step="5")`` wrote a row at step 5,
``collect(step="15")`` and ``flush(step="25")`` flushed at those steps, ``step=True`` at 1);
NumPy integers and floats stay steps."""

import numpy as np
import pytest

import distlog


@pytest.mark.parametrize("bad", ["5", b"6", True, np.bool_(True)])
def test_log_refuses_a_step_that_is_no_number_and_keeps_what_was_logged(root, bad):
    exp = distlog.get_logger(root)
    with exp.run("log"):
        m = exp.metrics
        m.log({"x": 1.0}, step=3)
        with pytest.raises(ValueError, match=r"log\(step=.*a step must be a finite number"):
            m.log({"x": 2.0}, step=bad)
        m.log({"x": 3.0}, step=np.int64(4))
        m.log({"x": 4.0}, step=np.float32(5.5))
        got = [s["step"] for s in m.get_summary("x", 1)]
    assert got == [3.0, 4.0, 5.0]  # (summary bins of one step: 5.5 falls in bin 5)


@pytest.mark.parametrize("where", ["collect", "flush"])
@pytest.mark.parametrize("bad", ["15", True])
def test_collect_and_flush_refuse_such_a_step_at_the_flush(root, where, bad):
    exp = distlog.get_logger(root)
    with exp.run("flush"):
        m = exp.metrics
        m.collect({"y": 1.0}, step=10)
        m.flush()
        if where == "collect":
            m.collect({"y": 2.0}, step=bad)
            flush = m.flush
        else:
            m.collect({"y": 2.0})
            flush = lambda: m.flush(step=bad)  # noqa: E731
        with pytest.raises(ValueError, match=rf"{where}\(step={bad!r}\): a step must be a finite number"):
            flush()
        assert m._core.flush_step != 15.0 and m._core.flush_step != 1.0
        m.collect({"y": 3.0}, step=np.int64(30))
        assert m.flush()["y"]["mean"] == 3.0
        assert m._core.flush_step == 30.0
