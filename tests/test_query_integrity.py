"""What a query reads back is what was written: params with a ``$t`` key of their own, params
that look alike (NaN, True vs 1, "42" vs 42), param names that clash with metric columns, and
runs whose series were rewound, killed, or lack a rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import distlog
from distlog.layout import PARAMS_FILE
from distlog.serdes import deserialize, serialize


def _runs(root: Path, params: dict[str, dict], loss=lambda rid: 1.0) -> None:
    exp = distlog.get_logger(str(root))
    with exp.experiment("e"):
        for rid, p in params.items():
            with exp.run(rid, params=p):
                exp.metrics.log(step=0, loss=loss(rid))
    exp.close()


# ---- 1. a user dict with a "$t" key -------------------------------------------------------
def test_user_dict_with_a_type_key_round_trips(tmp_path):
    value = {"fmt": {"$t": "Path", "data": "/etc"}, "other": {"$t": "templ"},
             "deep": [{"$t": "tuple", "data": [1]}]}
    assert deserialize(json.loads(json.dumps(serialize(value)))) == value
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"), exp.run("r"):
        exp.params.set(value)
        exp.metrics.log(step=0, loss=1.0)
    exp.close()
    assert distlog.open_run(tmp_path / "e" / "r").params == value
    row = distlog.open_root(tmp_path).table().to_dict("records")[0]
    assert row["fmt.$t"] == "Path" and row["other.$t"] == "templ"


def test_params_written_before_the_dict_wrapper_read_as_before(tmp_path):
    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"), exp.run("r"):
        exp.metrics.log(step=0, loss=1.0)
    exp.close()
    old = {"p": {"$t": "Path", "data": "/x"}, "plain": {"a": 1}, "nan": {"$t": "float", "data": "nan"}}
    (tmp_path / "e" / "r" / PARAMS_FILE).write_text(json.dumps(old))
    p = distlog.open_run(tmp_path / "e" / "r").params
    assert p["p"] == Path("/x") and p["plain"] == {"a": 1} and p["nan"] != p["nan"]
