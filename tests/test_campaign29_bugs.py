"""Focused reproductions of what the public-API campaign (test_campaign29_api.py) found."""

import os

import numpy as np
import pytest

import distlog


def _series(root, key):
    s = distlog.open_run(os.path.join(root, "default", "r")).metrics.read(key)
    return list(map(float, s["step"])), list(s["value"])


@pytest.mark.parametrize("form", ["collect", "collector"])
def test_a_refused_collect_does_not_move_the_flush_step(root, form):
    """One process: collect() of a str raises at once and keeps none of the call's values;
    its step must not become the step of the window's row either (it was: the row of step 1
    was stored at the refused call's step 7, and the next flush at step 2 was then refused as
    a repeated step, losing its value)."""
    exp = distlog.get_logger(root, heartbeat_interval=0)
    exp.start_run("r")
    m = exp.metrics
    m.collect(step=1, a=1.0)
    with pytest.raises(TypeError):
        if form == "collect":
            m.collect(step=7, a="bad")
        else:
            m.collector("a")("bad", 7)
    m.flush()
    m.collect(step=2, a=2.0)
    m.flush()
    exp.close()
    assert _series(root, "a") == ([1.0, 2.0], [1.0, 2.0])
