"""Hugging Face Trainer: ``trainer.train()`` raised (an exception, Ctrl-C), then the user goes on
with the same callback: ``trainer.evaluate()`` and ``callback.close()``, or ``close()`` alone.

The Trainer has no hook for a ``train()`` that raised: its attempt stayed open, the evaluation
wrote into it and ``close()`` ended it ``completed``, so run.json, ``distlog ls``/``show`` said
the failed training completed. Its attempt ends ``failed`` (with the reason) and the evaluation
gets an attempt of its own that only appends, as after a training that ended. Tiny models from a
config (no downloads); the Trainer and its oracle of calls come from
test_integrations_s33_hf_resume."""

import pytest

pytest.importorskip("transformers")
pytestmark = [pytest.mark.integrations, pytest.mark.timeout(300)]

import distlog  # noqa: E402
from distlog.integrations.transformers import DistlogCallback  # noqa: E402
from support.cli_tree import cli  # noqa: E402
from test_integrations_s33_hf_resume import Oracle, _assert_matches, _stored, tiny  # noqa: E402
from transformers import TrainerCallback  # noqa: E402


class Raise(TrainerCallback):
    """Raises ``exc`` as the step after global step ``at`` begins (steps 1..at were logged)."""

    def __init__(self, exc: BaseException, at: int = 2):
        self.exc, self.at = exc, at

    seen: BaseException | None = None  # the exception train() raised, as the caller got it

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step == self.at:
            raise self.exc


def _raised(tmp_path, exc):
    """A train() of 4 steps that raises after step 2 (checkpoint 2 saved, no evaluation yet)."""
    Oracle.calls = []
    cb = DistlogCallback(tmp_path, "hf", "r")
    trainer = tiny(tmp_path / "o", [Raise(exc), cb])
    with pytest.raises(type(exc)) as got:
        trainer.train()
    Raise.seen = got.value
    assert [s for s, c in Oracle.calls if "loss" in c] == [1, 2] and trainer.state.global_step == 2
    return cb, trainer


def _show(capsys, path) -> dict[str, str]:
    code, out, err = cli(capsys, "show", path)
    assert code == 0, err
    head = out.split("\n\n")[0].splitlines()
    return {line[:12].strip(): line[12:] for line in head}


@pytest.mark.parametrize("exc", [RuntimeError("crashed mid-epoch"), KeyboardInterrupt()],
                         ids=["exception", "ctrl-c"])
def test_evaluate_after_a_train_that_raised_gets_its_own_attempt(tmp_path, capsys, exc):
    # the evaluation was written into the failed training's attempt, which close() then ended
    # `completed`: one attempt, no failure anywhere
    cb, trainer = _raised(tmp_path, exc)
    metrics = trainer.evaluate()
    cb.close()
    assert Oracle.calls[-1][0] == 2 and "eval_loss" in Oracle.calls[-1][1]
    run = distlog.open_run(tmp_path / "hf" / "r")
    attempts = run.info.attempts
    assert [(a["status"], a.get("rewind")) for a in attempts] == [("failed", True), ("completed", False)]
    assert "trainer.train() raised before it ended" in attempts[0]["error"]["message"]
    assert attempts[1]["error"] is None
    assert run.info.status == "completed" and run.info.error is None  # the latest attempt's: the evaluation's
    _assert_matches(run, Oracle.calls)  # steps 1, 2 of training, and the evaluation at 2
    assert _stored(run)["eval/loss"] == {2: pytest.approx(metrics["eval_loss"])}
    params = run.params
    assert params["args"]["max_steps"] == 4 and params["eval_args"]["max_steps"] == 4
    [listed] = distlog.open_root(tmp_path).runs()
    assert listed.info.status == "completed" and [a["status"] for a in listed.info.attempts] == ["failed", "completed"]
    shown = _show(capsys, tmp_path / "hf" / "r")
    # (the run's status is its latest attempt's; show names how each attempt ended)
    assert shown["status"] == "completed" and "error" not in shown
    assert shown["attempts"].startswith("2: #0 failed (RuntimeError: trainer.train() raised before it ended")
    assert shown["attempts"].endswith(", #1 completed"), shown["attempts"]
    [failure] = run.logs.query(level="WARNING")  # the training's end, in the run's log
    assert failure.level == "ERROR" and failure.message.startswith("run failed: RuntimeError: trainer.train() raised")


def test_close_after_a_train_that_raised_ends_it_failed(tmp_path, capsys):
    # close() alone ended the failed training's attempt `completed`
    cb, _ = _raised(tmp_path, RuntimeError("crashed mid-epoch"))
    cb.close()
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [a["status"] for a in run.info.attempts] == ["failed"]
    assert run.info.status == "failed" and "trainer.train() raised before it ended" in run.info.error["message"]
    _assert_matches(run, Oracle.calls)
    [listed] = distlog.open_root(tmp_path).runs()
    assert listed.info.status == "failed"
    shown = _show(capsys, tmp_path / "hf" / "r")
    assert shown["status"] == "failed" and shown["attempts"] == "1"
    assert "trainer.train() raised before it ended" in shown["error"]


def test_predict_and_log_after_a_train_that_raised_get_their_own_attempt(tmp_path):
    # predict() (its metrics reach on_predict only) and a user's log() after the failure
    from integration_scripts.hf_train import Data

    cb, trainer = _raised(tmp_path, RuntimeError("crashed mid-epoch"))
    trained = list(Oracle.calls)
    predicted = trainer.predict(Data(8, 3)).metrics
    trainer.log({"final_acc": 0.75})
    cb.close()
    assert Oracle.calls[len(trained):] == [(2, {"final_acc": 0.75, "epoch": 0.125})]
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [(a["status"], a.get("rewind")) for a in run.info.attempts] == [("failed", True), ("completed", False)]
    assert "then trainer.evaluate(), predict() or log()" in run.info.attempts[0]["error"]["message"]
    _assert_matches(run, [*trained, (2, predicted), Oracle.calls[-1]])
    assert _stored(run)["test/loss"] == {2: pytest.approx(predicted["test_loss"])}
    assert list(_stored(run)["train/final_acc"]) == [2]


def test_evaluate_during_training_stays_in_the_training_attempt(tmp_path):
    # the training's own evaluations (steps 3 and 4) and evaluate() after it: unchanged
    Oracle.calls = []
    cb = DistlogCallback(tmp_path, "hf", "r")
    trainer = tiny(tmp_path / "o", [cb])
    trainer.train()
    trainer.evaluate()
    cb.close()
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [(a["status"], a["rewind"]) for a in run.info.attempts] == [("completed", True), ("completed", False)]
    assert list(_stored(run)["eval/loss"]) == [3, 4]
    _assert_matches(run, Oracle.calls)


def _raise_then_evaluate(rank, world, tmp):
    """One rank of a 2-rank Trainer whose train() raises after step 2 on every rank; then
    evaluate() and close() on every rank (the failed attempt's close is local, the evaluation's
    open and flushes are collectives)."""
    import os

    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world)})
    Oracle.calls = []
    cb = DistlogCallback(tmp, "hf", "r")
    trainer = tiny(os.path.join(tmp, "o"), [Raise(RuntimeError("crashed mid-epoch")), cb])
    try:
        trainer.train()
    except RuntimeError:
        pass
    metrics = trainer.evaluate()
    cb.close()
    return trainer.args.world_size, metrics["eval_loss"], Oracle.calls


def test_evaluate_after_a_train_that_raised_with_two_ranks(tmp_path):
    from support.ranks import run_ranks

    results = run_ranks(_raise_then_evaluate, 2, tmp_path, str(tmp_path), timeout=150)
    assert [w for w, _, _ in results] == [2, 2]
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [(a["status"], a.get("rewind")) for a in run.info.attempts] == [("failed", True), ("completed", False)]
    assert "trainer.train() raised before it ended" in run.info.attempts[0]["error"]["message"]
    assert run.info.status == "completed" and run.info.world_size == 2
    # the Trainer averages the losses over ranks, not the timings: the rows are the ranks' mean
    (_, _, calls0), (_, _, calls1) = results
    assert [(s, sorted(c)) for s, c in calls0] == [(s, sorted(c)) for s, c in calls1]
    _assert_matches(run, [(s, {k: (c[k] + c1[k]) / 2 for k in c}) for (s, c), (_, c1) in zip(calls0, calls1)])
    rows = run.metrics.numpy("eval/loss")
    assert list(rows["step"]) == [2] and list(rows["count"]) == [2]
    assert rows["mean"][0] == pytest.approx(results[0][1]) == pytest.approx(results[1][1])


class BadBatch(ValueError):
    pass


def test_evaluate_in_the_except_block_records_what_train_raised(tmp_path, capsys):
    # the failure was always "RuntimeError: trainer.train() raised before it ended", while the
    # training's own exception was at hand (handled right there) with its type and traceback
    Oracle.calls = []
    cb = DistlogCallback(tmp_path, "hf", "r")
    trainer = tiny(tmp_path / "o", [Raise(BadBatch("batch 3 has no labels")), cb])
    try:
        trainer.train()
    except BadBatch:
        trainer.evaluate()
    cb.close()
    run = distlog.open_run(tmp_path / "hf" / "r")
    first = run.info.attempts[0]
    assert [a["status"] for a in run.info.attempts] == ["failed", "completed"]
    assert (first["error"]["type"], first["error"]["message"]) == ("BadBatch", "batch 3 has no labels")
    assert "on_step_begin" in first["error"]["traceback"]  # where the training raised it
    shown = _show(capsys, tmp_path / "hf" / "r")
    assert shown["attempts"].startswith("2: #0 failed (BadBatch: batch 3 has no labels)")
    seen = [r.message for r in run.logs.query(level="INFO") if "trainer.train() raised" in r.message]
    assert seen == ["trainer.train() raised BadBatch: batch 3 has no labels (seen when trainer.evaluate(), "
                    "predict() or log() was called on its DistlogCallback)"]


def test_a_notebook_cell_after_the_one_that_raised_records_it(tmp_path, monkeypatch):
    # IPython keeps a cell's uncaught exception in sys.last_value (3.12: sys.last_exc too)
    import sys

    cb, _ = _raised(tmp_path, BadBatch("batch 3 has no labels"))
    # what the failed cell left behind: the exception, with the train() frames
    monkeypatch.setattr(sys, "last_value", Raise.seen, raising=False)
    monkeypatch.setattr(sys, "last_exc", Raise.seen, raising=False)
    cb.close()
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert run.info.status == "failed"
    assert (run.info.error["type"], run.info.error["message"]) == ("BadBatch", "batch 3 has no labels")


def test_an_older_unrelated_error_is_not_taken_for_the_training_s(tmp_path, monkeypatch):
    import sys

    cb, _ = _raised(tmp_path, BadBatch("batch 3 has no labels"))
    try:
        {}["missing"]
    except KeyError as e:
        older = e
    monkeypatch.setattr(sys, "last_value", older, raising=False)
    monkeypatch.setattr(sys, "last_exc", older, raising=False)
    try:
        raise OSError("disk full")  # handled while close() runs, and not the training's either
    except OSError:
        cb.close()
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert run.info.error["type"] == "RuntimeError"
    assert run.info.error["message"].startswith("trainer.train() raised before it ended (then close() was called")
    assert "its exception was no longer at hand" in run.info.error["message"]
