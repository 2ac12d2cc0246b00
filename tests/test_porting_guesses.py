"""What a user porting a wandb or TensorBoard script guesses first gets the answer it needs
(a user review that ported two scripts).

Before: ``log_histogram(tag, values, 3)`` (TensorBoard's step) stored 3 bins at another step;
``exp.log({...})`` said "unknown log level"; a reader given one key as a str iterated its
characters (``last("val/acc")`` returned {}); params could not be read back by key, and
``params.update({...})`` failed with Python's missing-argument error; a nested dict in
``log()`` said only "got a dict"; one bad key of a ``log()`` call refused the whole call
without saying the other keys went too."""

from __future__ import annotations

import numpy as np
import pytest

import distlog


@pytest.fixture()
def exp(tmp_path):
    e = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0, telemetry=False)
    yield e
    e.close()


def test_log_histograms_third_argument_is_refused_not_taken_as_bins(exp):
    with exp.run("r"):
        with pytest.raises(TypeError, match=r"bins=, step= and range= are taken by keyword .* write step=N or bins=N"):
            exp.log_histogram("h", np.arange(10.0), 3)
        with pytest.raises(TypeError, match="taken by keyword"):
            exp.metrics.log_histogram("h", np.arange(10.0), 3)
        exp.log_histogram("h", np.arange(10.0), step=3, bins=4)
    hg = exp_run(exp).metrics.histogram("h")
    assert hg.step.tolist() == [3] and hg.counts.shape == (1, 4)


def exp_run(exp):
    return distlog.open_run(f"{exp.storage.root}/default/r")


def test_exp_log_of_a_dict_points_to_the_metrics(exp):
    with exp.run("r"):
        for args in (({"loss": 0.5},), ({"loss": 0.5}, 3)):
            with pytest.raises(TypeError, match=r"exp.log writes a text log record.*exp.metrics.log\(\{...\}, step=N\)"):
                exp.log(*args)
        with pytest.raises(TypeError, match="exp.log writes a text log record"):
            exp.log({"loss": 0.5}, step=0)
        exp.log("INFO", "a text record", k=1)
    assert [r.message for r in exp_run(exp).logs.query(level="INFO")][-1] == "a text record"


def test_readers_take_one_key_as_a_str(exp):
    with exp.run("r"):
        for step in range(3):
            exp.metrics.log(step=step, **{"val/acc": 0.5 + step, "loss": 1.0})
    run = exp_run(exp)
    assert list(run.metrics.last("val/acc")) == ["val/acc"]
    assert list(run.metrics.read_many("loss")) == ["loss"]
    assert run.metrics.summary("loss")["key"].tolist() == ["loss"]
    assert "val/acc" in distlog.open_root(exp.storage.root).table(metrics="val/acc").columns
    with pytest.raises(TypeError, match=r"read_many\(keys\) reads several"):
        run.metrics.frame(["val/acc", "loss"])


def test_params_read_back_by_key_and_a_dict_update_says_extend(exp):
    with exp.run("r"):
        exp.params.set(lr=0.1, optim={"name": "adam", "betas": [0.9, 0.99]})
        assert exp.params["lr"] == 0.1 and exp.params["optim.name"] == "adam"
        assert exp.params["optim"] == {"name": "adam", "betas": [0.9, 0.99]}
        assert exp.params.get("wd") is None and exp.params.get("wd", 0.0) == 0.0
        assert "optim.betas" in exp.params and "wd" not in exp.params
        with pytest.raises(KeyError, match="no param 'wd'; params: lr, optim"):
            exp.params["wd"]
        with pytest.raises(TypeError, match=r"a dict is merged with params.extend"):
            exp.params.update({"wd": 0.01})


def test_a_nested_dict_and_a_refused_call_say_what_to_do(exp):
    with exp.run("r"):
        with pytest.raises(TypeError, match=r"a group of metrics goes under a namespace: exp.metrics\('train'\)"):
            exp.metrics.log({"train": {"loss": 0.5}}, step=0)
        exp.metrics.log(step=5, c=1.0)
        with pytest.raises(ValueError, match=r"nothing of this log\(\) call of 2 keys was stored"):
            exp.metrics.log({"e": 3.0, "c": 2.0}, step=5)
        with pytest.raises(TypeError, match=r"got a str .*nothing of this log\(\) call of 2 keys"):
            exp.metrics.log({"e": 3.0, "c": "x"}, step=6)
        with pytest.raises(ValueError, match=r"already written; .*increase\. Pass a larger step=.*\(or none"):
            exp.metrics.log(step=5, c=2.0)  # (one key: no word about others)


def test_an_object_saved_under_another_formats_name_is_refused_not_pickled(exp, tmp_path):
    pd = pytest.importorskip("pandas")
    with exp.run("r"):
        with pytest.raises(TypeError, match=r"distlog does not write \.parquet files.*log_file\(name, path\)"):
            exp.files.save(pd.DataFrame({"a": [1, 2]}), "t.parquet")
        exp.files.save(b"PAR1 raw bytes", "raw.parquet")  # (bytes: stored as they are)
        local = tmp_path / "written.parquet"
        local.write_bytes(b"PAR1 written by pandas")
        exp.files.log_file("t.parquet", local)
        exp.files.save({"a": 1}, "obj.pkl")
    run = exp_run(exp)
    assert run.files.read_bytes("t.parquet") == b"PAR1 written by pandas"
    assert run.files.read_bytes("raw.parquet") == b"PAR1 raw bytes"


def test_torch_and_numpy_bytes_under_another_formats_name_are_refused_too(exp):
    torch = pytest.importorskip("torch")
    with exp.run("r"):
        with pytest.raises(TypeError, match=r"does not write \.safetensors files, and would store torch bytes"):
            exp.files.save(torch.nn.Linear(2, 2).state_dict(), "model.safetensors")
        with pytest.raises(TypeError, match=r"does not write \.parquet files, and would store npy bytes"):
            exp.files.save(np.arange(3.0), "x.parquet")
        exp.params.set(lr=0.1, optim={"name": "adam"})
        assert dict(exp.params) == {"lr": 0.1, "optim": {"name": "adam"}} and list(exp.params) == ["lr", "optim"]
        assert [1] not in exp.params and len(exp.params) == 2
