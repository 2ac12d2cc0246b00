"""Hugging Face Trainer: what comes after ``train()`` at the step where training ended —
``evaluate()`` again, a user's ``trainer.log()``, an evaluation of another dataset — and
``predict()`` with two gloo ranks. Tiny models from a config (no downloads); the Trainer and
its oracle of calls come from test_integrations_s33_hf_resume.

A series holds one row per step: a repeat of a step's values is left out quietly (the same
value, or only its timings differ), another value is left out with a warning naming the fix."""

import logging

import numpy as np
import pytest

pytest.importorskip("transformers")
pytestmark = [pytest.mark.integrations, pytest.mark.timeout(300)]

import distlog  # noqa: E402
from distlog import report  # noqa: E402
from distlog.integrations.transformers import DistlogCallback  # noqa: E402
from integration_scripts.hf_train import Data  # noqa: E402
from support.ranks import run_ranks  # noqa: E402
from test_integrations_s33_hf_resume import Oracle, _assert_matches, _stored, tiny  # noqa: E402


def _warned(caplog) -> list[str]:
    """What distlog said on its loggers at WARNING and above since the last call (what a user
    sees on stderr): its writer's refusals ('distlog: ...') and the run's echoed warnings."""
    out = [r.getMessage() for r in caplog.records if r.name.startswith("distlog") and r.levelno >= logging.WARNING]
    caplog.clear()
    return out


def _trained(tmp_path):
    """Steps 1..4, evaluated at 3 and at 4 (as training ends); the run closed by training."""
    report.reset()  # a refusal of the same series reported by an earlier test is not held back
    Oracle.calls = []
    cb = DistlogCallback(tmp_path, "hf", "r")
    trainer = tiny(tmp_path / "o", [cb])
    trainer.train()
    assert [s for s, c in Oracle.calls if "eval_loss" in c] == [3, 4]
    return cb, trainer


def test_evaluate_right_after_training_repeats_its_last_evaluation_quietly(tmp_path, caplog):
    # evaluate() at step 4 gives the values training's evaluation at 4 gave (its timings
    # differ): they reached the store and were refused there with a warning on stderr
    cb, trainer = _trained(tmp_path)
    trained = len(Oracle.calls)
    assert _warned(caplog) == []
    trainer.evaluate()
    cb.close()
    again = Oracle.calls[trained][1]
    assert Oracle.calls[trained][0] == 4 and again["eval_runtime"] != Oracle.calls[trained - 2][1]["eval_runtime"]
    assert _warned(caplog) == []
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [r.message for r in run.logs.query(level="WARNING")] == []
    _assert_matches(run, Oracle.calls)  # the first value at each step: training's timings at 4
    assert _stored(run)["eval/loss"][4] == pytest.approx(again["eval_loss"])
    timed = run.logs.query(level="INFO", grep="logged again at step 4")
    assert len(timed) == 1 and "eval/runtime=" in timed[0].message and "eval/loss" not in timed[0].message


def test_a_users_log_after_training_repeats_epoch_quietly(tmp_path, caplog):
    # Trainer.log adds the epoch (1/4 here, as at step 4): train/epoch at 4 was refused with a warning
    cb, trainer = _trained(tmp_path)
    assert _warned(caplog) == []
    trainer.log({"final_acc": 0.75})
    cb.close()
    assert Oracle.calls[-1] == (4, {"final_acc": 0.75, "epoch": 0.25})
    assert _warned(caplog) == []
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [r.message for r in run.logs.query(level="WARNING")] == []
    _assert_matches(run, Oracle.calls)
    assert list(_stored(run)["train/final_acc"]) == [4]


def test_evaluating_another_dataset_at_the_same_step_warns_with_the_fix(tmp_path, caplog):
    # the Trainer hands on_log the same names (eval_loss, ...) for any eval_dataset: the values
    # collided with the first evaluation's at step 4 and were refused without saying why
    cb, trainer = _trained(tmp_path)
    first = next(c for s, c in reversed(Oracle.calls) if "eval_loss" in c)  # training's, at 4
    assert _warned(caplog) == []
    other = trainer.evaluate(eval_dataset=Data(8, 5))
    named = trainer.evaluate(eval_dataset=Data(8, 5), metric_key_prefix="eval_other")
    cb.close()
    assert other["eval_loss"] != first["eval_loss"]
    err = _warned(caplog)
    assert len(err) == 1 and "WARNING" in err[0] and 'metric_key_prefix="eval_other"' in err[0], err
    run = distlog.open_run(tmp_path / "hf" / "r")
    [warning] = run.logs.query(level="WARNING")
    assert f"eval/loss={other['eval_loss']!r}" in warning.message
    assert 'metric_key_prefix="eval_other"' in warning.message and "eval/other_loss" in warning.message
    _assert_matches(run, Oracle.calls)  # eval/loss at 4 is still training's
    assert _stored(run)["eval/other_loss"] == {4: pytest.approx(named["eval_other_loss"])}


def _train_then_predict(rank, world, tmp):
    """One rank of a 2-rank Trainer (the gloo group run_ranks made): train, evaluate() at the
    step training evaluated last (skipped on every rank alike: the decision is per key, not per
    value, so no rank flushes other keys than its peer), then predict."""
    import os

    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world)})
    cb = DistlogCallback(tmp, "hf", "r")
    trainer = tiny(os.path.join(tmp, "o"), [cb])
    trainer.train()
    trainer.evaluate()
    metrics = trainer.predict(Data(8, 3)).metrics  # on_predict on every rank: a collective flush
    cb.close()
    return trainer.args.world_size, trainer.state.global_step, metrics


def test_evaluate_and_predict_with_two_ranks_store_every_ranks_metrics(tmp_path):
    results = run_ranks(_train_then_predict, 2, tmp_path, str(tmp_path), timeout=150)
    assert [(w, s) for w, s, _ in results] == [(2, 4), (2, 4)]
    per_rank = [m for _, _, m in results]
    # (each rank times its own predict: their runtimes are its own, rounded by transformers to
    # 0.1 ms, so two can be equal — a CI run had 0.0099 on both; the rows below check the
    # reduction of whatever each rank reported)
    assert all(m["test_runtime"] > 0 for m in per_rank)
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed"]
    assert run.info.world_size == 2 and list(_stored(run)["eval/loss"]) == [3, 4]
    test_keys = sorted(per_rank[0])
    assert sorted(k for k in run.metrics.keys() if k.startswith("test/")) == [f"test/{k[5:]}" for k in test_keys]
    for key in test_keys:
        values = [m[key] for m in per_rank]
        rows = run.metrics.numpy(f"test/{key[5:]}")
        assert list(rows["step"]) == [4] and list(rows["count"]) == [2], key
        np.testing.assert_allclose([rows["mean"][0], rows["min"][0], rows["max"][0]],
                                   [np.mean(values), min(values), max(values)], rtol=1e-6, err_msg=key)
    assert [r.message for r in run.logs.query(level="WARNING")] == []
