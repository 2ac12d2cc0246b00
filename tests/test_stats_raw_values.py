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


def test_the_summary_counts_nan_and_inf_values_and_the_cli_shows_them_only_when_there_are(tmp_path):
    """A NaN loss on one rank showed in ``distlog show`` only as a lower ``count``: the summary
    counts the non-finite values (every rank's, for reduced rows) and the CLI shows the column
    when a key has any."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    vals = [1.0, float("nan"), 2.0, float("inf"), 3.0, 4.0]
    with exp.experiment("e"), exp.run("r"):
        for step, v in enumerate(vals):
            exp.metrics.collect(step=step, loss=v)
            exp.metrics.log(step=step, direct=-v)
            if step % 3 == 2:
                exp.metrics.flush()
        exp.metrics.log(step=10, clean=1.0)
    path = os.path.join(str(tmp_path), "e", "r")
    summary = distlog.open_run(path).metrics.summary().set_index("key")
    bad = int(np.count_nonzero(~np.isfinite(vals)))
    assert summary.loc["loss", "nonfinite"] == bad and summary.loc["loss", "count"] == len(vals) - bad
    assert summary.loc["direct", "nonfinite"] == bad and summary.loc["clean", "nonfinite"] == 0
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["metrics", path, "--format", "csv"]) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].endswith(",count,nonfinite"), lines
    assert [ln.rsplit(",", 1)[1] for ln in lines[1:]] == ["0", str(bad), str(bad)], lines  # clean, direct, loss
    exp2 = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp2.experiment("f"), exp2.run("r"):
        exp2.metrics.log(step=0, clean=1.0)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["metrics", os.path.join(str(tmp_path), "f", "r"), "--format", "csv"]) == 0
    assert "nonfinite" not in out.getvalue()  # no NaN anywhere: the column is not shown
