"""Statistics over reduced rows describe the raw values, not the per-flush means (issue 10)."""

import io
import os
from contextlib import redirect_stdout

import numpy as np
import pytest

import distlog
from distlog.cli import main


def test_get_stats_min_max_mean_over_reduced_rows(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    values = []
    with exp.experiment("e"), exp.run("r"):
        for step in range(100):
            loss = 1.0 / (step + 1)
            values.append(loss)
            exp.metrics("train").collect(step=step, loss=loss)
            if step % 10 == 9:
                exp.metrics.flush()
        st = exp.metrics.get_stats("train/loss")
        assert st.min == pytest.approx(0.01)  # the lowest value seen, not the lowest mean
        assert st.max == pytest.approx(1.0)
        assert st.mean == pytest.approx(np.mean(values))  # Σsum/Σcount
        assert st.count == 100 and st.rows == 10
        summ = exp.metrics.get_summary("train/loss", frequency=50)
        assert [s["count"] for s in summ] == [50, 50]
        assert summ[1]["min"] == pytest.approx(0.01) and summ[0]["max"] == pytest.approx(1.0)
        exp.metrics.log(step=200, direct=2.0)
        exp.metrics.log(step=201, direct=float("nan"))
        d = exp.metrics.get_stats("direct")
        assert (d.min, d.max, d.mean, d.count, d.rows) == (2.0, 2.0, 2.0, 1, 2)
    run = distlog.open_run(os.path.join(str(tmp_path), "e", "r"))
    summary = run.metrics.summary().set_index("key")
    assert summary.loc["train/loss", "min"] == pytest.approx(0.01)
    assert summary.loc["train/loss", "max"] == pytest.approx(1.0)
    assert summary.loc["train/loss", "mean"] == pytest.approx(np.mean(values))
    assert summary.loc["train/loss", "count"] == 100
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["show", os.path.join(str(tmp_path), "e", "r")]) == 0
    lines = out.getvalue().splitlines()
    header = next(ln for ln in lines if ln.split()[:2] == ["key", "rows"]).split()
    row = dict(zip(header, next(ln for ln in lines if "train/loss" in ln).split()))
    assert (row["last"], row["min"], row["max"], row["count"]) == ("0.0104807", "0.01", "1", "100"), row
