"""``distlog.open_run``: metadata, params, series as DataFrames and as NumPy, histograms,
files, and errors that name what exists."""

from __future__ import annotations

import numpy as np
import pytest

import distlog
from distlog.query import KeyNotFound, RunNotFound, open_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader") / "root"
    exp = distlog.get_logger(str(root))
    with exp.experiment("vision/cifar"), exp.run("r1", tags=["baseline"],
                                                   params={"optim": {"lr": 3e-4}, "shape": (3, 4)}):
        for step in range(30):
            exp.metrics("train").collect(step=step, loss=1.0 / (step + 1))
            exp.metrics("train").collect(step=step, loss=float("nan") if step == 7 else 2.0 / (step + 1))
            if step % 10 == 9:
                exp.metrics.flush()
            exp.metrics.log(step=step, lr=0.1 * step)
        exp.log_histogram("weights", np.arange(100.0), bins=10, step=5)
        exp.log_histogram("weights", np.arange(50.0), bins=10, step=6)
        exp.files.save({"k": [1, 2]}, "meta.json")
        exp.warning("careful", step=3)
    return open_run(root / "vision" / "cifar" / "r1")


def test_info_and_params(run):
    info = run.info
    assert (info.experiment, info.run_id, info.status) == ("vision/cifar", "r1", "completed")
    assert info.path == "vision/cifar/r1" and info.world_size == 1 and info.tags == ("baseline",)
    assert info.duration() > 0 and info.start_time <= info.end_time and len(info.attempts) == 1
    assert info.raw["run_id"] == "r1"
    assert run.params == {"optim": {"lr": 3e-4}, "shape": (3, 4)}  # tuples round-trip
    assert run.flat_params == {"optim.lr": 3e-4, "shape": (3, 4)}
    assert run.root_storage().url.endswith("/root")
    assert "r1" in repr(run)


def test_series_as_dataframe_with_every_statistic(run):
    assert run.metrics.keys() == ["lr", "train/loss"] and "lr" in run.metrics
    df = run.metrics["train/loss"]
    assert list(df.columns) == ["step", "time", "value", "mean", "min", "max", "sum", "count", "nonfinite",
                                "argmin_rank", "argmax_rank"]
    assert df["step"].tolist() == [9, 19, 29] and df["step"].dtype == np.int64
    first = [1.0 / (s + 1) for s in range(10)] + [2.0 / (s + 1) for s in range(10) if s != 7]
    assert df["mean"][0] == pytest.approx(np.mean(first))
    assert (df["min"][0], df["max"][0]) == (min(first), max(first))
    assert df["count"].tolist() == [19, 20, 20] and df["nonfinite"].tolist() == [1, 0, 0]
    assert df["count"].dtype == np.int64
    assert (df["value"] == df["mean"]).all()  # the headline is the mean by default


def test_numpy_access_without_pandas(run):
    s = run.metrics.read("lr")
    assert len(s) == 30 and s.columns[:2] == ("step", "time")
    np.testing.assert_allclose(s["value"], 0.1 * np.arange(30))
    assert s.step.dtype == np.int64
    d = run.metrics.numpy("lr")
    np.testing.assert_array_equal(d["step"], np.arange(30))
    part = run.metrics.read("lr", start=10, stop=15)
    assert part.step.tolist() == [10, 11, 12, 13, 14]
    with pytest.raises(KeyNotFound, match="columns: step, time"):
        s["nope"]
    last = run.metrics.last(["lr"])["lr"]
    assert last["step"] == 29 and last["value"] == pytest.approx(2.9)


def test_summary_and_long_frame(run):
    summary = run.metrics.summary()
    assert summary["key"].tolist() == ["lr", "train/loss"]
    row = summary.set_index("key").loc["lr"]
    assert (row["rows"], row["first_step"], row["last_step"]) == (30, 0, 29)
    assert row["min"] == 0.0 and row["max"] == pytest.approx(2.9)
    long = run.metrics.to_frame()
    assert len(long) == 33 and set(long["key"]) == {"lr", "train/loss"}


def test_histograms(run):
    assert run.metrics.histogram_keys() == ["weights"]
    h = run.metrics.histogram("weights")
    assert h.step.tolist() == [5, 6] and h.edges.shape == (2, 11) and h.counts.shape == (2, 10)
    counts, edges = np.histogram(np.arange(100.0), bins=10)
    np.testing.assert_array_equal(h.counts[0], counts)
    np.testing.assert_allclose(h.edges[0], edges)


def test_files_and_logs(run):
    assert run.files.paths() == ["meta.json"]
    assert run.files.load("meta.json") == {"k": [1, 2]}
    with run.files.open("meta.json") as f:
        assert __import__("json").loads(f.read()) == {"k": [1, 2]}
    assert run.files.table()["path"].tolist() == ["meta.json"]
    assert [r.message for r in run.logs.query(level="WARNING")] == ["careful"]
    assert len(run.logs) == len(list(run.logs))


def test_a_run_reader_decodes_and_versions_files_as_the_logger_does(tmp_path):
    """``run.files.load`` (after the run) and ``exp.files.load`` (during it) give the same
    value for every kind, a name without an extension decoded by its recorded media type,
    and take the same versions (-1 the newest); a pickle comes back as its bytes."""
    import pickle

    import torch

    values = {"arr": np.arange(3), "cfg.yaml": {"lr": 0.1}, "t.pt": torch.ones(2),
              "notes": "text", "frame.png": np.zeros((4, 4, 3), np.uint8)}
    exp = distlog.get_logger(str(tmp_path))
    with exp.run("r"):
        for name, v in values.items():
            exp.files.save(v, name)
        exp.files.save(b"v1", "m.bin")
        exp.files.save(b"v2", "m.bin")
        exp.files.save({"obj": 1}, "state.pkl")
        during = {name: exp.files.load(name) for name in values}
        versions = [exp.files.load("m.bin", version=v) for v in (1, 2, -1, -2)]
    run = open_run(f"{tmp_path}/default/r")
    for name in values:
        after = run.files.load(name)
        assert type(after) is type(during[name]), name
        if isinstance(after, (np.ndarray, torch.Tensor)):
            assert after.tolist() == during[name].tolist(), name
        else:
            assert after == during[name], name
    assert [run.files.load("m.bin", version=v) for v in (1, 2, -1, -2)] == versions == [b"v1", b"v2", b"v2", b"v1"]
    assert pickle.loads(run.files.load("state.pkl")) == {"obj": 1}
    with pytest.raises(KeyNotFound, match="no version -3; versions: 1, 2"):
        run.files.load("m.bin", version=-3)


def test_missing_things_say_what_exists(run, tmp_path):
    with pytest.raises(KeyNotFound, match=r"did you mean 'train/loss'.*keys: lr, train/loss"):
        run.metrics["train/los"]
    with pytest.raises(KeyError):  # a KeyNotFound is also a KeyError
        run.metrics.read("nope")
    with pytest.raises(KeyNotFound, match="keys: weights"):
        run.metrics.histogram("w")
    with pytest.raises(KeyNotFound, match="files: meta.json"):
        run.files.load("other.json")
    with pytest.raises(RunNotFound, match="holds: r1"):
        open_run(run.storage.url.rsplit("/", 1)[0] + "/r2")
    with pytest.raises(FileNotFoundError):  # a RunNotFound is also a FileNotFoundError
        open_run(tmp_path / "nothing-here")


def test_open_run_is_exported_and_reads_urls(run):
    assert distlog.open_run is open_run and "open_run" in distlog.__all__
    assert "open_root" in distlog.__all__
    again = distlog.open_run(run.url)  # file:// URL
    assert again.info.run_id == "r1"
