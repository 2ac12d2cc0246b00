"""A reader of a live run never gets fill values as rows while a resumed attempt rewinds a
series: it read the previous attempt's commit record (100 rows), the new attempt published
the shorter length and rewrote the tail chunk (NaN past the new end), then the reader read
rows [0, 100) of that chunk. The reader is held between its two reads (once) by wrapping
``read_commit``: timing only; the rewind and the reads are the real ones."""

import numpy as np
import pytest

import distlog
import distlog.query.series as S


def _attempt(root):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    return exp, exp.run("r")


@pytest.mark.parametrize("how", ["read", "read_many", "last"])
def test_a_read_racing_a_rewind_returns_whole_rows(tmp_path, monkeypatch, how):
    root = str(tmp_path)
    exp, run_cm = _attempt(root)
    with run_cm:
        for s in range(100):
            exp.metrics("m").log(step=s, x=2.0 * s)
    run = distlog.open_run(f"{root}/default/r")
    exp, run_cm = _attempt(root)
    real, held = S.read_commit, []

    def held_once(*a, **k):
        commit = real(*a, **k)  # the reader has the previous attempt's record (100 rows)...
        if not held:
            held.append(True)
            for s in range(30, 40):  # ...while the new attempt restarts at step 30
                exp.metrics("m").log(step=s, x=2.0 * s)
            exp.metrics.commit()
        return commit

    with run_cm:
        monkeypatch.setattr(S, "read_commit", held_once)
        if how == "read":
            steps = run.metrics.read("m/x")["step"]
        elif how == "read_many":
            steps = run.metrics.read_many()["m/x"]["step"]
        else:
            steps = np.array([run.metrics.last()["m/x"]["step"]])
        monkeypatch.setattr(S, "read_commit", real)
    assert held and np.isfinite(steps).all(), steps
    assert steps[-1] == 39.0 and (how == "last" or steps.tolist() == list(range(40)))
