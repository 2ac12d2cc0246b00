"""Hugging Face callback: a NaN repeated at a stored step is the same value.

``evaluate()`` right after a training that evaluated at its last step gives that evaluation's
values again and the callback leaves them out quietly. A diverged training's ``eval_loss`` is
NaN, and ``nan != nan``: the repeat was taken for another value and warned (on stderr and in
the run's log) that a second dataset was evaluated and to pass ``metric_key_prefix``.
The hooks are called as the Trainer calls them (no model, no Trainer: a fraction of a second).
"""

from __future__ import annotations

import logging
import types

import pytest

pytest.importorskip("transformers")

import distlog  # noqa: E402
from distlog import report  # noqa: E402
from distlog.integrations.transformers import DistlogCallback  # noqa: E402


def _trained_to_nan(root):
    args = types.SimpleNamespace(to_dict=lambda: {"learning_rate": 1.0}, output_dir=str(root / "o"))
    state = types.SimpleNamespace(global_step=0, is_world_process_zero=True)
    cb = DistlogCallback(root, "hf", "r")
    cb.on_train_begin(args, state, None)
    for step in (1, 2):
        state.global_step = step
        cb.on_log(args, state, None, logs={"loss": float("nan"), "learning_rate": 0.1, "epoch": step / 2})
    cb.on_log(args, state, None, logs={"eval_loss": float("nan"), "eval_acc": 0.5, "eval_runtime": 0.5, "epoch": 1.0})
    cb.on_train_end(args, state, None)
    return cb, args, state


def test_evaluate_repeating_a_nan_loss_after_training_is_quiet(tmp_path, caplog):
    report.reset()
    cb, args, state = _trained_to_nan(tmp_path)
    caplog.clear()
    # trainer.evaluate(): the same values at step 2, timed anew
    cb.on_log(args, state, None, logs={"eval_loss": float("nan"), "eval_acc": 0.5, "eval_runtime": 0.6, "epoch": 1.0})
    cb.close()
    warned = [r.getMessage() for r in caplog.records if r.name.startswith("distlog") and r.levelno >= logging.WARNING]
    assert warned == []
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [r.message for r in run.logs.query(level="WARNING")] == []
    noted = run.logs.query(level="INFO", grep="logged again at step 2")
    assert len(noted) == 1 and "eval/runtime=0.6" in noted[0].message and "eval/loss" not in noted[0].message


def test_another_value_after_a_nan_still_warns(tmp_path, caplog):
    report.reset()
    cb, args, state = _trained_to_nan(tmp_path)
    cb.on_log(args, state, None, logs={"eval_loss": 0.25, "eval_acc": 0.5, "eval_runtime": 0.6, "epoch": 1.0})
    cb.close()
    run = distlog.open_run(tmp_path / "hf" / "r")
    warned = [r.message for r in run.logs.query(level="WARNING")]
    assert len(warned) == 1 and "eval/loss=0.25 (the row holds nan)" in warned[0]
    assert 'metric_key_prefix="eval_other"' in warned[0]
