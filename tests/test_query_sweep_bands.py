"""A sweep of 6 runs (2 learning rates x 3 seeds): the sweep table and the ``loss@mean``
bands equal a NumPy oracle computed from the values that were logged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import distlog
from distlog.query.sweeps import parse_spec

LRS, SEEDS, STEPS = (0.1, 0.01), (1, 2, 3), 57


def _values(lr: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed * 1000 + int(lr * 1000))
    v = 1.0 / (1 + lr * np.arange(STEPS)) + rng.normal(0, 0.05, STEPS)
    if (lr, seed) == (0.1, 2):
        v[23] = np.nan  # a non-finite value is left out of every statistic
    return v


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("sweep") / "root")
    exp = distlog.get_logger(root)
    with exp.experiment("sweep"):
        for lr in LRS:
            for seed in SEEDS:
                with exp.run(f"lr{lr}-s{seed}", params={"optim": {"lr": lr}, "seed": seed, "bs": 32}):
                    for step, v in enumerate(_values(lr, seed)):
                        exp.metrics.log(step=step, loss=v)
                    exp.metrics.log(step=STEPS, acc=seed * lr)
    with exp.experiment("other"), exp.run("x", params={"optim": {"lr": 0.5}}):
        exp.metrics.log(step=0, loss=9.0)
    return root


def _oracle(bin_size: int, agg: str, percentiles=(25, 50, 75)) -> pd.DataFrame:
    rows = []
    for lr in sorted(LRS):
        per_run = []
        for seed in SEEDS:
            v = _values(lr, seed)
            steps = np.arange(STEPS)
            binned = {}
            for b in range(0, STEPS, bin_size):
                sel = v[(steps >= b) & (steps < b + bin_size)]
                sel = sel[np.isfinite(sel)]
                if len(sel):
                    binned[b] = {"mean": np.mean, "min": np.min, "max": np.max, "sum": np.sum,
                                 "median": np.median, "first": lambda x: x[0],
                                 "last": lambda x: x[-1], "count": len}[agg](sel)
            per_run.append(binned)
        for b in sorted(set().union(*per_run)):
            x = np.array([r[b] for r in per_run if b in r], dtype=float)
            row = {"optim.lr": lr, "step": b, "runs": len(x), "mean": x.mean(), "std": x.std(),
                   "min": x.min(), "max": x.max()}
            row.update({f"p{p}": np.percentile(x, p) for p in percentiles})
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("bin_size,agg", [(10, "mean"), (1, "mean"), (7, "max"), (20, "median"),
                                          (5, "last"), (9, "count")])
def test_bands_equal_numpy_oracle(root, bin_size, agg):
    got = distlog.open_root(root).read_metrics(f"loss@{agg}", "sweep", bin_size=bin_size)
    want = _oracle(bin_size, agg)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12)
    assert got["step"].dtype == np.int64 and got["runs"].dtype == np.int64


def test_band_grouping_and_per_run_values(root):
    r = distlog.open_root(root)
    one_group = r.read_metrics("loss", "sweep", group_by=[], bins=3, percentiles=(10, 90))
    assert list(one_group.columns) == ["step", "runs", "mean", "std", "min", "max", "p10", "p90"]
    assert one_group["runs"].max() == 6 and one_group["step"].tolist() == [0, 19, 38]
    per_run = r.read_metrics("loss@mean", "sweep", bin_size=10, per_run=True)
    assert len(per_run) == 6 * 6 and set(per_run["run_id"]) == {f"lr{lr}-s{s}" for lr in LRS for s in SEEDS}
    seeds = r.read_metrics("loss@mean", "sweep", bin_size=100, group_by=["optim.lr", "seed"])
    assert len(seeds) == 6 and (seeds["runs"] == 1).all()
    with pytest.raises(KeyError, match="keys: acc, loss"):
        r.read_metrics("nope@mean", "sweep")
    with pytest.raises(ValueError, match="unknown reduction"):
        parse_spec("loss@avg")
    assert parse_spec("train/loss") == ("train/loss", "mean")


def test_sweep_table_equals_oracle(root):
    r = distlog.open_root(root)
    table = r.table("sweep", metrics=["loss", "acc"])
    assert list(table["run_id"]) == [f"lr{lr}-s{s}" for lr in LRS for s in SEEDS]  # start order
    assert (table["status"] == "completed").all() and table["world_size"].tolist() == [1] * 6
    # last_step comes from run.json (what the run recorded at close)
    assert table["last_step"].tolist() == [run.info.last_step for run in r.runs("sweep")]
    assert list(table.columns[-5:]) == ["bs", "optim.lr", "seed", "loss", "acc"]
    for _, row in table.iterrows():
        v = _values(row["optim.lr"], row["seed"])
        assert row["loss"] == v[-1] and row["acc"] == pytest.approx(row["seed"] * row["optim.lr"])
    mins = r.table("sweep", metrics=["loss"], final="min", varying_only=True)
    assert "bs" not in mins.columns and "loss@min" in mins.columns
    for _, row in mins.iterrows():
        assert row["loss@min"] == np.nanmin(_values(row["optim.lr"], row["seed"]))
    means = r.table("sweep", metrics=["loss"], stat="max", final="mean")
    assert means["loss.max@mean"].tolist() == pytest.approx(
        [np.nanmean(_values(lr, s)) for lr in LRS for s in SEEDS])


def test_run_selection_by_params_status_and_experiment(root):
    r = distlog.open_root(root)
    assert r.experiments() == ["other", "sweep"]
    assert len(r.runs()) == 7 and len(r.runs("sweep")) == 6 and len(r.runs("s*")) == 6
    assert [x.info.run_id for x in r.runs(params={"optim.lr": 0.01, "seed": [1, 3]})] == \
        ["lr0.01-s1", "lr0.01-s3"]
    assert len(r.runs(params={"seed": lambda s: s > 1})) == 4
    assert r.runs(status="failed") == [] and len(r.runs(status=["completed"])) == 7
    assert len(r.runs(where=lambda run: "acc" in run.metrics)) == 6
    with pytest.raises(distlog.query.RunNotFound):
        distlog.open_root(root + "/missing")


# ---- fractional steps: bins=N gives N bins, and the default keeps distinct steps apart ------
@pytest.mark.timeout(120)
def test_fractional_steps_bins_and_one_bin_per_distinct_step(tmp_path):
    """Two seeds (one group) logging every 1/8 step from 0 to 1, and a run stepping by 0.1
    (a step float64 does not hold exactly). Oracle, over the n distinct steps s_0 < ... < s_n-1
    of the group: bins=N puts s_i in bin floor(i * N / n) (N equal shares of the span, each
    step a share 1/n of it), the default puts each step in a bin of its own; per bin, each
    run's mean over its steps, then mean/min/max/runs across the runs."""
    steps = [i / 8 for i in range(9)]
    vals = {s: [10.0 * s + (s * 8) ** 2 + 3 * s for s in steps] for s in (0, 1)}
    vals[1] = [v + 1.0 for v in vals[0]]
    tenth = [i / 10 for i in range(11)]
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("frac"):
        for seed in (0, 1):
            with exp.run(f"s{seed}", params={"seed": seed}):
                for st, v in zip(steps, vals[seed]):
                    exp.metrics.log(step=st, loss=v)
    with exp.experiment("tenth"), exp.run("t", params={"seed": 0}):
        for st in tenth:
            exp.metrics.log(step=st, loss=st * 100)
    exp.close()
    root = distlog.open_root(tmp_path)

    def oracle(n_bins):
        n = len(steps)
        members = {}
        for i in range(n):
            members.setdefault(i if n_bins is None else i * n_bins // n, []).append(i)
        out = []
        for k, idx in sorted(members.items()):
            per_run = [np.mean([vals[seed][i] for i in idx]) for seed in (0, 1)]
            out.append((len(per_run), np.mean(per_run), min(per_run), max(per_run)))
        return out

    for n_bins in (4, 3, 2, 1, None):
        df = root.read_metrics("loss", "frac", bins=n_bins)
        assert len(df) == (len(steps) if n_bins is None else n_bins), (n_bins, df)
        got = list(zip(df["runs"], df["mean"], df["min"], df["max"]))
        np.testing.assert_allclose(np.array(got, dtype=float), np.array(oracle(n_bins), dtype=float))
        if n_bins is None:  # one bin per step, each labelled with its step
            assert df["step"].tolist() == steps
        else:  # the bins' first steps: N equal shares of [0, 1 + 1/8)
            np.testing.assert_allclose(df["step"].astype(float), [k * 1.125 / n_bins for k in range(n_bins)])
    # more bins than distinct steps: one bin per step, no more
    assert root.read_metrics("loss", "frac", bins=50)["step"].tolist() == steps
    # steps that float64 holds only nearly (0.3 / 0.1 is 2.9999999999999996): still one bin
    # each, labelled with the step as logged
    t = root.read_metrics("loss", "tenth")
    assert t["step"].tolist() == tenth and t["mean"].tolist() == [st * 100 for st in tenth]
    assert t["runs"].tolist() == [1] * len(tenth)
    pr = root.read_metrics("loss", "tenth", per_run=True)
    assert pr["step"].tolist() == tenth and pr["value"].tolist() == [st * 100 for st in tenth]
