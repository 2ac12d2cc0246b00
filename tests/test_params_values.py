"""Param values that JSON cannot hold as they are: every one is either stored as docs/FORMAT.md
says (plain JSON, non-finite floats as ``{"$t": "float"}`` at any depth) and read back as it
was, or refused on every rank with a ``TypeError`` naming the key before anything is written.
Also: a dotted ``update`` of a key stored with its dots, and params set on a rank > 0 only."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import distlog
from distlog import report
from distlog.context import RunContext
from distlog.launcher import RankInfo
from distlog.layout import PARAMS_FILE
from distlog.params import ParameterIndex, set_dotted
from distlog.serdes import deserialize, serialize
from distlog.storage.registry import open_storage

NAN, INF = float("nan"), float("inf")


def _strict_json(value):
    """``value`` serialized, written as strict JSON (no NaN/Infinity tokens) and read back."""
    return deserialize(json.loads(json.dumps(serialize(value, "params"), allow_nan=False)))


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN, numpy types and dtypes alike."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray) and a.dtype.kind in "Mm":  # NaT as NaT
        return a.dtype == b.dtype and np.array_equal(a.view(np.int64), b.view(np.int64))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, (float, np.floating)) and np.isnan(a):
        return bool(np.isnan(b))
    if isinstance(a, (np.datetime64, np.timedelta64)):
        return a.dtype == b.dtype and (a == b or (np.isnat(a) and np.isnat(b)))
    return bool(a == b)


def _run_params(tmp_path, **params):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.experiment("e"), exp.run("r"):
        exp.params.set(**params)
    return tmp_path / "e" / "r"


# 1. np.float64 NaN/inf: stored as the plain float; files with "np.float64(nan)" read again

@pytest.mark.parametrize("value", [np.float64(NAN), np.float64(INF), np.float64(-INF)])
def test_np_float64_non_finite_is_stored_as_the_plain_float(value):
    enc = serialize(value)
    assert enc == {"$t": "float", "data": repr(float(value))}
    back = deserialize(enc)
    assert type(back) is float and _same(back, float(value))


def test_np_float64_nan_param_reads_back_in_a_run_and_the_sweep_table(tmp_path):
    run = _run_params(tmp_path, lr=0.1, best=np.float64(NAN))
    assert json.loads((run / PARAMS_FILE).read_text())["best"] == {"$t": "float", "data": "nan"}
    params = distlog.open_run(str(run)).params
    assert params["lr"] == 0.1 and np.isnan(params["best"])
    assert np.isnan(distlog.open_root(str(tmp_path)).table()["best"].iloc[0])


def _old_root(tmp_path):
    """A root whose run has params.json as distlog wrote np.float64 non-finite floats before."""
    run = _run_params(tmp_path, lr=0.1)
    (run / PARAMS_FILE).write_text(json.dumps({
        "lr": 0.1, "best": {"$t": "float", "data": "np.float64(nan)"},
        "hi": {"$t": "float", "data": "np.float64(inf)"},
        "lo": {"$t": "float", "data": "np.float32(-inf)"}}))
    return run


def test_files_written_with_the_numpy_repr_read_again(tmp_path):
    run = _old_root(tmp_path)
    params = distlog.open_run(str(run)).params
    assert np.isnan(params["best"]) and params["hi"] == INF and params["lo"] == -INF
    table = distlog.open_root(str(tmp_path)).table()
    assert table["hi"].iloc[0] == INF and table["lo"].iloc[0] == -INF


def test_dashboard_runs_table_serves_a_root_with_such_a_file(tmp_path):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from distlog.dashboard.app import make_app

    _old_root(tmp_path)
    client = TestClient(make_app(distlog.open_root(str(tmp_path))), base_url="http://127.0.0.1:8765")
    r = client.get("/api/runs")
    assert r.status_code == 200, r.text
    assert r.json()["runs"][0]["params"]["lr"] == 0.1


# 2. every non-finite value, at any depth, is {"$t": "float"}: params.json is strict JSON

NON_FINITE = {
    "f32": np.float32(NAN), "f16": np.float16(-INF), "f64": np.float64(INF),
    "arr": np.array([1.0, NAN, INF, -INF]), "arr32": np.array([[NAN, 1]], dtype=np.float32),
    "zero_d": np.array(NAN), "nested": [{"t": (np.float32(INF), [np.array([NAN])])}],
}


@pytest.mark.parametrize("key", sorted(NON_FINITE))
def test_non_finite_numpy_values_are_strict_json_and_read_back(key):
    value = NON_FINITE[key]
    back = _strict_json(value)
    if key == "nested":
        t = back[0]["t"]
        assert type(t) is tuple and _same(t[0], np.float32(INF)) and _same(t[1][0], np.array([NAN]))
    else:  # an np.float64 is stored, and read, as the plain float (as a finite one always was)
        assert _same(back, float(value) if type(value) is np.float64 else value), (back, value)


def test_params_file_holds_no_bare_nan_or_infinity(tmp_path):
    run = _run_params(tmp_path, **NON_FINITE)

    def refuse(token):
        raise AssertionError(f"params.json holds the non-JSON token {token}")

    json.loads((run / PARAMS_FILE).read_text(), parse_constant=refuse)
    params = distlog.open_run(str(run)).params
    assert _same(params["arr32"], NON_FINITE["arr32"]) and _same(params["f16"], np.float16(-INF))


# 3. numpy values whose .item()/.tolist() JSON cannot hold: stored as their own type, or refused

ROUND_TRIPS = {
    "bytes_": np.bytes_(b"ab\x00\xff"),
    "dt64_D": np.datetime64("2024-01-01"),
    "dt64_s": np.datetime64("2024-01-01T01:02:03"),
    "dt64_ms": np.datetime64("2024-01-01T01:02:03.004"),
    "dt64_us": np.datetime64("2024-01-01T01:02:03.000004"),
    "dt64_ns": np.datetime64("2024-01-01T00:00:00.000000001"),
    "dt64_W": np.datetime64("2024-01-04", "W"),
    "dt64_Y": np.datetime64("2024", "Y"),
    "nat_ns": np.datetime64("NaT", "ns"),
    "td64_s": np.timedelta64(5, "s"),
    "td64_ns": np.timedelta64(7, "ns"),
    "bytes_arr": np.array([b"ab", b"\xff"]),
    "dt64_arr_D": np.array(["2024-01-01", "NaT"], dtype="datetime64[D]"),
    "dt64_arr_ns": np.array([[1, 2]], dtype="datetime64[ns]"),
    "td64_arr": np.array([1, -3], dtype="timedelta64[ms]"),
}


@pytest.mark.parametrize("key", sorted(ROUND_TRIPS))
def test_numpy_values_round_trip_with_their_type_and_unit(key):
    value = ROUND_TRIPS[key]
    assert _same(_strict_json(value), value)


def test_such_values_are_written_and_read_in_a_run(tmp_path):
    run = _run_params(tmp_path, **ROUND_TRIPS)
    params = distlog.open_run(str(run)).params
    for key, value in ROUND_TRIPS.items():
        assert _same(params[key], value), key


REFUSED = {
    "np.complex128(1+2j)": (np.complex128(1 + 2j), "complex128 value"),
    "np.complex64 array": (np.array([1j], dtype=np.complex64), "complex64 array"),
    "np.longdouble(1)": (np.longdouble(1), "float64"),
    "np.longdouble array": (np.zeros(2, dtype=np.longdouble), "float64"),
    "np.void": (np.zeros(1, dtype=[("a", "i4")])[0], "void"),
    "structured array": (np.zeros(1, dtype=[("a", "i4")]), "void"),
}


@pytest.mark.parametrize("label", sorted(REFUSED))
def test_what_json_cannot_hold_is_refused_naming_the_key(label):
    value, says = REFUSED[label]
    if np.dtype(np.longdouble).itemsize <= 8 and "longdouble" in label:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match=rf"param 'params\.model\.my_key' is a numpy .*{says}"):
        serialize({"model": {"my_key": value}}, "params")


def _index(tmp_path, rank: int, run: str = "r", note=None) -> ParameterIndex:
    storage = open_storage(str(tmp_path / "e" / run))
    return ParameterIndex(RunContext(rank=rank, world_size=2, attempt=0,
                                     info=RankInfo(rank, 2), storage=storage,
                                     root=open_storage(str(tmp_path))), note=note)


@pytest.mark.parametrize("rank", [0, 1])
@pytest.mark.parametrize("value", [np.bytes_(b"x"), np.complex128(1j), np.datetime64("2024-01-01")])
def test_every_rank_checks_alike_before_anything_is_written(tmp_path, rank, value):
    index = _index(tmp_path, rank)
    if isinstance(value, np.complexfloating):
        with pytest.raises(TypeError, match="param 'my_key' is a numpy complex128"):
            index.set(my_key=value)
        assert not (tmp_path / "e" / "r" / PARAMS_FILE).exists()
    else:
        index.set(my_key=value)  # accepted alike on every rank; rank 0 writes it
        assert (tmp_path / "e" / "r" / PARAMS_FILE).exists() == (rank == 0)


# 4. a set of frozensets

def test_frozensets_inside_a_set_read_back_as_frozensets(tmp_path):
    value = {frozenset({"a", "b"}), frozenset({"c"}), (1, frozenset({2}))}
    assert _strict_json(value) == value
    run = _run_params(tmp_path, groups=value, top=frozenset({1}))
    params = distlog.open_run(str(run)).params
    assert params["groups"] == value and params["top"] == {1}


# 5. update() of a key stored with its dots

def test_dotted_update_of_a_key_set_with_its_dots(tmp_path):
    assert set_dotted({"optim.lr": 0.1, "seed": 1}, "optim.lr", 0.2) == {"optim.lr": 0.2, "seed": 1}
    assert set_dotted({"a.b": {"c": 1}}, "a.b.c", 2) == {"a.b": {"c": 2}}
    assert set_dotted({"a": {"b.c": 1}}, "a.b.c", 2) == {"a": {"b.c": 2}}
    mixed = {"optim": {"wd": 1}, "optim.lr": 2}
    assert set_dotted(mixed, "optim.wd", 3) == {"optim": {"wd": 3}, "optim.lr": 2}
    assert set_dotted(mixed, "optim.lr", 4) == {"optim": {"wd": 1}, "optim.lr": 4}
    # a new key nests, as documented; a param that is no group in the way is refused (it was
    # replaced by one: update("lr.warmup", 100) dropped lr=1e-3 with no word)
    assert set_dotted({}, "sched.warmup.steps", 100) == {"sched": {"warmup": {"steps": 100}}}
    assert set_dotted({"optim": {"lr": 1}}, "optim.lr", 2) == {"optim": {"lr": 2}}
    with pytest.raises(ValueError, match=r"param 'optim' is 3, not a group of params.*update\('optim', \{'lr': \.\.\.\}\)"):
        set_dotted({"optim": 3}, "optim.lr", 2)
    with pytest.raises(ValueError, match=r"param 'a.b' is None, not a group"):
        set_dotted({"a": {"b": None}}, "a.b.c.d", 2)
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.experiment("e"), exp.run("r"):
        exp.params.set({"optim.lr": 0.1, "seed": 1})
        exp.params.update("optim.lr", 0.2)
        exp.params.update("sched.warmup", 5)
        with pytest.raises(ValueError, match="param 'seed' is 1, not a group"):
            exp.params.update("seed.base", 7)  # refused: nothing stored changes
    assert distlog.open_run(str(tmp_path / "e" / "r")).params == {
        "optim.lr": 0.2, "seed": 1, "sched": {"warmup": 5}}


# 6. params set on a rank > 0: not stored (no collective); at close that rank says so when its
# params are not the stored ones (nothing when every rank set the same, the usual way)

@pytest.fixture
def _fresh_limiter():
    report.reset()
    yield
    report.reset()


def test_a_rank_other_than_0_warns_at_close_when_its_params_were_not_stored(
        tmp_path, caplog, _fresh_limiter):
    with caplog.at_level(logging.WARNING, logger="distlog"):
        _index(tmp_path, 0).set(lr=0.5, seed=1)  # rank 0 writes, and says nothing
        same = _index(tmp_path, 1)
        same.set(seed=1)
        same.update("lr", 0.5)  # the same params, set another way
        same.check_stored()
        assert caplog.records == []
        other = _index(tmp_path, 1)
        other.set(lr=0.6, seed=1)
        other.check_stored()
        warned = [r.getMessage() for r in caplog.records]
        assert len(warned) == 1, warned
        assert "rank 1 set params that are not the ones rank 0 stored" in warned[0]
        assert "set the same params on every rank, or on rank 0" in warned[0]
        assert ": lr: rank 0 0.5, here 0.6. Only" in warned[0], warned[0]  # which, and how
        caplog.clear()
        noted = []  # in a run, the warning goes to the rank's own log (it was on stderr only)
        logged = _index(tmp_path, 1, note=noted.append)
        logged.set(lr=0.5, seed=2, extra={"a": 1})
        logged.check_stored()
        assert caplog.records == [] and len(noted) == 1, noted
        assert "extra.a: rank 0 (none), here 1; seed: rank 0 1, here 2. Only" in noted[0], noted[0]
        _index(tmp_path, 1, "r2").check_stored()  # a rank that set none: no read, no word
        more = _index(tmp_path, 0, "r4")  # rank 0 only adds params (a result, at the end):
        more.set(lr=0.5, seed=1)  # nothing of rank 1's was dropped, no word (it said
        more.update("result.best", 0.93)  # "result.best: rank 0 0.93, here (none) ... dropped")
        fewer = _index(tmp_path, 1, "r4", note=noted.append)
        fewer.set(lr=0.5, seed=1)
        fewer.check_stored()
        assert len(noted) == 1 and caplog.records == []
        alone = _index(tmp_path, 1, "r3")
        alone.set(lr=0.7)  # only rank 1 set params: none stored
        alone.check_stored()
        assert len(caplog.records) == 1
    assert json.loads((tmp_path / "e" / "r" / PARAMS_FILE).read_text()) == {"lr": 0.5, "seed": 1}
    assert not (tmp_path / "e" / "r3" / PARAMS_FILE).exists()
