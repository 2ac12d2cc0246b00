"""A resumed attempt that sets a param to another value than an earlier attempt stored replaces
it in params.json (the newest config is the run's); the run's own log keeps the earlier value,
once per changed param, so the rows the earlier attempts wrote are not read as made with the
new one. Before: params.json was overwritten with no trace."""

from __future__ import annotations

import json

import numpy as np
import pytest

import distlog
from distlog.layout import PARAMS_FILE


def _warnings(run_dir):
    return [(r.attempt, r.message) for r in distlog.open_run(str(run_dir)).logs.query(level="WARNING")]


@pytest.mark.timeout(60)
def test_a_resumed_attempt_that_changes_params_says_so_in_the_run_log(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.params.set(lr=0.1, optim={"name": "adam", "beta": 0.9}, seed=1, w=np.arange(3))
        exp.metrics.log(loss=1.0, step=1)
    with exp.run("r"):  # the same config again (the usual resume): nothing to say
        exp.params.set(lr=0.1, optim={"name": "adam", "beta": 0.9}, seed=1, w=np.arange(3))
        exp.metrics.log(loss=0.9, step=2)
    with exp.run("r"):
        exp.params.update("lr", 0.05)
        exp.params.update("lr", 0.01)  # changed twice in one attempt: said once
        exp.params.extend(optim={"name": "sgd"}, new=1)  # a new param is no change
        exp.metrics.log(loss=0.5, step=3)
    with exp.run("r"):
        exp.params.set(lr=0.01)  # drops the others
    run = tmp_path / "default" / "r"
    stored = json.loads((run / PARAMS_FILE).read_text())
    assert stored == {"lr": 0.01}
    assert _warnings(run) == [
        (2, "params changed in attempt 2 (params.json keeps the newest; the rows of earlier attempts "
            'were written with the earlier values): lr 0.1 -> 0.05'),
        (2, "params changed in attempt 2 (params.json keeps the newest; the rows of earlier attempts "
            "were written with the earlier values): optim.name 'adam' -> 'sgd'"),
        (3, "params changed in attempt 3 (params.json keeps the newest; the rows of earlier attempts "
            "were written with the earlier values): optim.name 'sgd' -> (removed); optim.beta 0.9 -> "
            "(removed); seed 1 -> (removed); w array([0, 1, 2]) -> (removed); new 1 -> (removed)"),
    ]


@pytest.mark.timeout(60)
def test_a_resumed_attempt_setting_its_params_every_step_does_not_compare_them_param_by_param(tmp_path, monkeypatch):
    # params.set each step with the same config (or after every change was said) paid a flat,
    # per-param serialisation of the whole config on every call of a resumed attempt: about
    # twice a fresh run's cost for a config of 3000 params
    from distlog import params as params_module

    calls = []
    flat_json = params_module._flat_json
    monkeypatch.setattr(params_module, "_flat_json", lambda p: calls.append(1) or flat_json(p))
    config = {f"k{i}": {"a": i, "b": [i, i + 1]} for i in range(50)}
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.params.set(config, lr=0.1)
    with exp.run("r"):
        for step in range(20):
            exp.params.set(config, lr=0.1)  # the same config again: nothing to compare
        calls.clear()
        for step in range(20):
            exp.params.set(config, lr=0.1)
        assert len(calls) == 0
        exp.params.set(config, lr=0.2)  # a change: said once
        assert len(calls) == 1
    assert [m for _, m in _warnings(tmp_path / "default" / "r")] == [
        "params changed in attempt 1 (params.json keeps the newest; the rows of earlier attempts "
        "were written with the earlier values): lr 0.1 -> 0.2"]


def test_a_nested_param_replaced_by_a_plain_one_and_the_reverse_are_named_as_such(tmp_path):
    # before: both said "(removed)", the new value nowhere
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        exp.params.set(optim={"lr": 0.1, "name": "adam"}, sched="cosine")
    with exp.run("r"):
        exp.params.set(optim="sgd", sched={"kind": "step", "gamma": 0.5})
    assert [m for _, m in _warnings(tmp_path / "default" / "r")] == [
        "params changed in attempt 1 (params.json keeps the newest; the rows of earlier attempts "
        "were written with the earlier values): optim.lr 0.1 -> (removed: optim is now 'sgd'); "
        "optim.name 'adam' -> (removed: optim is now 'sgd'); "
        "sched 'cosine' -> (now nested: sched.kind, sched.gamma)"]


def test_set_then_update_of_a_param_an_earlier_attempt_stored_is_no_change(tmp_path):
    """The README's quick start run twice: ``set(...)`` drops ``optim.lr`` for a moment and
    ``update("optim.lr", ...)`` puts it back. That said "optim.lr 0.0003 -> (removed)" on the
    second run though params.json ended the same. A param dropped is said at the next flush (or
    at close) if it is still gone; a value changed, at once."""
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0, telemetry=False)
    for attempt in range(2):
        with exp.run("r"):
            exp.params.set(lr=1e-3, optim={"name": "adam"})
            exp.params.update("optim.lr", 3e-4)
            exp.metrics.collect(step=attempt, loss=1.0)
            exp.metrics.flush()
    assert _warnings(tmp_path / "default" / "r") == []
    with exp.run("r"):
        exp.params.set(lr=1e-3, optim={"name": "adam"})
        exp.params.update("optim.lr", 1e-4)
        exp.metrics.collect(step=5, loss=1.0)
        exp.metrics.flush()
        said = _warnings(tmp_path / "default" / "r")  # before the close
    assert said == [(2, "params changed in attempt 2 (params.json keeps the newest; the rows of earlier "
                        "attempts were written with the earlier values): optim.lr 0.0003 -> 0.0001")]
    with exp.run("r"):
        exp.params.set(lr=1e-3, optim={"name": "adam"})  # optim.lr dropped for good
        exp.metrics.collect(step=6, loss=1.0)
        exp.metrics.flush()
        said = _warnings(tmp_path / "default" / "r")[1:]
    assert said == [(3, "params changed in attempt 3 (params.json keeps the newest; the rows of earlier "
                        "attempts were written with the earlier values): optim.lr 0.0001 -> (removed)")]
