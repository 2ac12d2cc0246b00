"""``exp.run("id")`` / ``exp.experiment("name")`` written without ``with`` (a notebook
habit from ``wandb.init``): they start nothing. The values then went to an auto-named run of
experiment ``default`` with no word said; now the run started on first use warns, naming the
scopes and the ``with`` that was meant."""

from __future__ import annotations

import warnings

import pytest

import distlog


@pytest.mark.timeout(60)
def test_a_run_started_on_first_use_names_the_scopes_that_were_never_entered(root):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    exp.experiment("mnist")
    exp.run("baseline")
    with pytest.warns(UserWarning) as seen:
        exp.metrics("train").log(step=0, loss=1.0)
    msg = str(seen[0].message)
    assert "exp.experiment('mnist'), exp.run('baseline') started nothing" in msg
    assert "with exp.experiment('mnist'), exp.run('baseline'):" in msg
    assert seen[0].filename == __file__  # points at the call that started the run
    assert exp.experiment_name == "default"  # (what happened, as the warning says)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exp.metrics("train").log(step=1, loss=0.5)  # once
        exp.close()
        with exp.experiment("mnist"), exp.run("baseline"):  # the scopes entered: no warning
            exp.metrics("train").log(step=0, loss=1.0)
    assert distlog.open_run(f"{root}/mnist/baseline").metrics.frame("train/loss")["value"].tolist() == [1.0]


@pytest.mark.timeout(60)
def test_scopes_entered_or_used_as_decorators_warn_nothing(root):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)

    @exp.experiment("deco")
    def train() -> str:
        with exp.run("r"):
            exp.metrics.log(step=0, a=1.0)
            return exp.experiment_name

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exp.metrics.log(step=0, b=2.0)  # a run started on first use, no scope pending
        exp.close()
        assert train() == "deco"
        scope = exp.run("later")
        assert "with exp.run('later'):" in repr(scope)  # what a notebook shows for it
        with scope:
            exp.metrics.log(step=0, c=3.0)
    assert distlog.open_run(f"{root}/deco/r").metrics.frame("a")["value"].tolist() == [1.0]


@pytest.mark.timeout(60)
def test_a_bad_experiment_name_is_refused_at_the_call(root):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with pytest.raises(ValueError, match="experiment name"):
        exp.experiment("../up")
