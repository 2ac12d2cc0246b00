"""``log(dict, step=)`` and ``collect(dict, step=)``: the same rows as the keyword form, the
caller's dict copied, clear errors for values or steps given twice and for keys that are no
strings (raised on every rank alike for collect)."""

import os

import numpy as np
import pytest

from distlog.layout import SCALARS_TABLE
from distlog.storage import open_storage
from distlog.writers.rowstore import read_series
from support.ranks import run_ranks


def _series(root, run, key):
    return read_series(open_storage(os.path.join(root, "default", run)), SCALARS_TABLE, key)


def test_dict_form_stores_what_the_keyword_form_stores(root):
    import distlog

    rng = np.random.default_rng(7)
    vals = rng.normal(size=(40, 2))
    exp = distlog.get_logger(root)
    for run, form in (("kw", "kw"), ("dict", "dict")):
        with exp.run(run):
            m = exp.metrics("train")
            for i, (a, b) in enumerate(vals):
                if form == "kw":
                    m.log(step=i, a=float(a))
                    m.collect(step=i, b=float(b))
                else:
                    m.log({"a": float(a)}, step=i)
                    m.collect({"b": float(b)}, step=i)
                if i % 10 == 9:
                    m.flush()
    for run in ("kw", "dict"):
        a = _series(root, run, "train/a")
        np.testing.assert_array_equal(a[:, 0], np.arange(40))
        np.testing.assert_array_equal(a[:, 2], vals[:, 0])
        b = _series(root, run, "train/b")
        np.testing.assert_array_equal(b[:, 0], [9, 19, 29, 39])
        np.testing.assert_allclose(b[:, 3], vals[:, 1].reshape(4, 10).mean(axis=1), rtol=1e-12)
        assert b[:, 7].tolist() == [10] * 4


def test_numpy_scalars_and_ints_store_their_values_in_every_form(root):
    """NumPy float64 (a float subclass: the hot paths take it as it is), float32, ints and
    Python floats mixed in one call (log, collect, collector): the rows hold their values, the
    flush's result too."""
    import distlog

    rng = np.random.default_rng(3)
    vals = rng.normal(size=(20, 4))
    exp = distlog.get_logger(root)
    with exp.run("np"):
        lg, m = exp.metrics("l"), exp.metrics("c")
        adds = {k: exp.metrics("a").collector(k) for k in ("f64", "f32", "int", "py")}
        for i, (a, b, c, d) in enumerate(vals):
            row = {"f64": np.float64(a), "f32": np.float32(b), "int": int(c * 100), "py": float(d)}
            lg.log(row, step=i) if i % 2 else lg.log(step=i, **row)
            m.collect(row, step=i) if i % 3 else m.collect(step=i, **row)
            for k, v in row.items():
                adds[k](v, i)
            if i % 10 == 9:
                got = m.flush()
                w = slice(i - 9, i + 1)
                assert got["c/f64"]["mean"] == pytest.approx(vals[w, 0].mean(), rel=1e-12)
                assert got["c/int"]["sum"] == sum(int(x * 100) for x in vals[w, 2])
    expect = {"f64": vals[:, 0], "f32": vals[:, 1].astype(np.float32).astype(np.float64),
              "int": np.array([float(int(x * 100)) for x in vals[:, 2]]), "py": vals[:, 3]}
    for key, want in expect.items():
        np.testing.assert_array_equal(_series(root, "np", "l/" + key)[:, 2], want)
        for view in ("c/", "a/"):  # collect() and collector()
            c = _series(root, "np", view + key)
            np.testing.assert_allclose(c[:, 3], want.reshape(2, 10).mean(axis=1), rtol=1e-12)
            np.testing.assert_array_equal(c[:, 4], want.reshape(2, 10).min(axis=1))


def test_the_callers_dict_is_copied(root):
    """A training loop that refills one dict each step logs each step's values, not the last."""
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("reuse"):
        logged, collected = {}, {}
        for i in range(5):
            logged["x"] = float(i)
            exp.metrics.log(logged, step=i)
            collected["y"] = float(10 * i)
            exp.metrics.collect(collected, step=i)
        logged["x"] = collected["y"] = -1.0
        assert exp.metrics.flush()["y"]["mean"] == 20.0
    assert _series(root, "reuse", "x")[:, 2].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    y = _series(root, "reuse", "y")
    assert y[0, 3] == pytest.approx(np.mean([0, 10, 20, 30, 40])) and y[0, 7] == 5


def test_dict_and_keywords_merge_and_bad_calls_say_how_to_fix(root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("calls"):
        m = exp.metrics
        m.log({"a": 1.0}, step=0, b=2.0)
        m.log(1, a=3.0)  # the design document's positional step still works
        with pytest.raises(TypeError, match="got 'a' both in the dict and as a keyword"):
            m.log({"a": 1.0}, step=2, a=2.0)
        with pytest.raises(TypeError, match=r"got the step twice: 3 as the first argument and step=4"):
            m.collect(3, step=4, a=1.0)
        with pytest.raises(TypeError, match=r"metric key must be a str, got int \(7\)"):
            m.log({7: 1.0}, step=5)
        with pytest.raises(TypeError, match=r"metric key must be a str, got int \(7\)"):
            m.collect({7: 1.0}, step=5)
        with pytest.raises(TypeError, match=r"takes a dict of values or the step as its first argument, got str"):
            m.log("loss", 0.5)
        m.log({"a": 4.0, "step": 7})  # as log(**d): the dict's "step" is the step
        with pytest.raises(TypeError, match=r"got the step twice: step=8 in the dict and step=9"):
            m.log({"a": 5.0, "step": 8}, step=9)
        m.collect({"c": 4.0, "step": 9})
        assert m.flush()["c"]["mean"] == 4.0
    assert _series(root, "calls", "a")[:, 0].tolist() == [0.0, 1.0, 7.0]
    assert _series(root, "calls", "a")[:, 2].tolist() == [1.0, 3.0, 4.0]
    assert _series(root, "calls", "c")[:, 0].tolist() == [9.0]  # the flush's row: the collected step
    assert _series(root, "calls", "b")[:, 2].tolist() == [2.0]


def _bad_key_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("badkey"):
        exp.metrics.collect({"loss": float(rank)}, step=1)
        if rank == 1:
            exp.metrics.collect({3: 1.0}, step=1)  # not raised here: decided at flush
        try:
            exp.metrics.flush()
            outcome = "no error"
        except TypeError as e:
            outcome = str(e)
        exp.metrics.collect({"loss": 1.0}, step=2)
        return outcome, exp.metrics.flush()["loss"]["count"]


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_a_key_that_is_no_string_on_one_rank_raises_on_every_rank(tmp_path):
    root = str(tmp_path / "root")
    res = run_ranks(_bad_key_worker, 2, tmp_path, root, timeout=90)
    for outcome, count in res:
        assert "rank 1" in outcome and "metric key must be a str, got int (3)" in outcome
        assert count == 2
    loss = _series(root, "badkey", "loss")
    assert loss[:, 0].tolist() == [1.0, 2.0] and loss[0, 3] == pytest.approx(0.5)
