import datetime as dt
from pathlib import Path

import numpy as np
import pytest

import distlog
from distlog.names import check_name
from distlog.serdes import deserialize, serialize


@pytest.mark.parametrize("bad", ["", "  ", "/abs", "a/../b", "..", "a\x00b", "a\\b", "a//b", "./x", "a\nb"])
def test_bad_names_are_rejected_with_the_rule(bad):
    with pytest.raises(ValueError) as e:
        check_name(bad, "experiment name", allow_slash=True)
    assert "experiment name" in str(e.value)


def test_slash_only_where_allowed():
    assert check_name("a/b", "namespace", allow_slash=True) == "a/b"
    with pytest.raises(ValueError, match="run id 'a/b' contains '/'"):
        check_name("a/b", "run id")
    with pytest.raises(TypeError, match="must be a str"):
        check_name(3, "run id")


def test_bad_names_write_nothing_outside_the_root(tmp_path):
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root))
    for bad in ["../escape", "/etc", "a/../../b"]:
        with pytest.raises(ValueError):
            with exp.experiment(bad):
                pass
        with pytest.raises(ValueError):
            exp.start_run(bad)
    with pytest.raises(ValueError, match="metrics namespace"):
        exp.metrics("../up")
    exp.close()
    outside = [p for p in tmp_path.rglob("*") if root not in p.parents and p != root]
    assert outside == []


def test_serdes_round_trip():
    value = {
        "arr": np.arange(6, dtype=np.int32).reshape(2, 3),
        "f32": np.float32(0.25),
        "i64": np.int64(7),
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "day": dt.date(2026, 1, 2),
        "path": Path("/tmp/x"),
        "raw": b"\x00\xffbytes",
        "tup": (1, "a", (2.5,)),
        "set": {3, 1, 2},
        "nested": {"list": [1, None, True, "s"], "inf": float("inf")},
    }
    enc = serialize(value)
    assert enc["arr"]["$t"] == "ndarray" and enc["arr"]["$s"] == [2, 3]
    back = deserialize(enc)
    np.testing.assert_array_equal(back["arr"], value["arr"])
    assert back["arr"].dtype == np.int32
    assert type(back["f32"]) is np.float32 and back["f32"] == np.float32(0.25)
    for k in ("i64", "when", "day", "path", "raw", "tup", "set", "nested"):
        assert back[k] == value[k], k


def test_serdes_names_the_bad_key():
    with pytest.raises(TypeError, match=r"param 'params.model.fn' has type function"):
        serialize({"model": {"fn": lambda x: x}}, "params")
