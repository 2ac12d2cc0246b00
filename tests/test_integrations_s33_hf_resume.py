"""Hugging Face Trainer: train -> evaluate / predict / log -> a new Trainer with more steps
resumed from the last checkpoint, and resumed trainings that crash (an exception, a killed
process) and are resumed again. Tiny models from a config (no downloads), in this process
except the killed one.

Every stored series is compared with an oracle of the calls: what the Trainer handed its
callbacks (``Trainer.log``, ``predict``'s metrics), the first value at each step (a series
holds one row per step)."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("transformers")
pytestmark = [pytest.mark.integrations, pytest.mark.timeout(300)]

import distlog  # noqa: E402
from distlog.integrations.transformers import DistlogCallback, rewrite_logs  # noqa: E402
from support.framework_runs import REPO, framework_env  # noqa: E402

# the Trainer pieces are built in the killed child process too: one source for both
TRAINER_SRC = textwrap.dedent('''
    import os
    import signal

    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments

    from integration_scripts.hf_train import Data

    class Oracle(Trainer):
        """Records each ``Trainer.log`` call as the callbacks get it (its ``log_history`` entry)."""
        calls = []

        def log(self, logs, start_time=None):
            super().log(logs, start_time)
            entry = dict(self.state.log_history[-1])
            Oracle.calls.append((entry.pop("step"), entry))

    class Crash(TrainerCallback):
        """Before distlog's callback: marks the values of the attempt that will crash (+1000 on
        ``loss``), then raises (or kills the process) as step ``at`` begins."""

        def __init__(self, at, kill=False):
            self.at, self.kill = at, kill

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                logs["loss"] += 1000.0

        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == self.at:
                if self.kill:  # (the child script defines distlog_cb, its DistlogCallback)
                    distlog_cb.session.run.metrics.commit()  # noqa: F821 - its rows on the store
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("crashed mid-epoch")

    def tiny(out, callbacks, **kw):
        cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=16, num_labels=2)
        torch.manual_seed(0)
        kw = {"per_device_train_batch_size": 2, "per_device_eval_batch_size": 4, "max_steps": 4,
              "logging_steps": 1, "save_strategy": "steps", "save_steps": 2, "eval_strategy": "steps",
              "eval_steps": 3, "use_cpu": True, "disable_tqdm": True, "seed": 0, "report_to": "none",
              "dataloader_num_workers": 0, **kw}
        return Oracle(model=BertForSequenceClassification(cfg), args=TrainingArguments(output_dir=str(out), **kw),
                      train_dataset=Data(32, 1), eval_dataset=Data(8, 2), callbacks=callbacks)
''')
exec(TRAINER_SRC)  # noqa: S102 - defines Oracle, Crash, tiny here


def _train_evaluate_predict_log(tmp_path):
    """Steps 1..4 (evaluated at 3 and, as training ends, at 4; checkpoints 2 and 4), then
    evaluate() (its values at 4 after the training's own: not stored), predict() and a log() of
    the user's at step 4, on the Trainer that trained."""
    Oracle.calls = []
    cb = DistlogCallback(tmp_path, "hf", "r")
    trainer = tiny(tmp_path / "o", [cb])
    trainer.train()
    trainer.evaluate()
    predicted = trainer.predict(Data(8, 3)).metrics
    trainer.log({"final_acc": 0.75})
    cb.close()
    return [*Oracle.calls[:-1], (4, predicted), Oracle.calls[-1]]


def _expected(calls):
    """Per stored key, ``{step: first value logged there}`` (eval logs carry no ``epoch``)."""
    out: dict[str, dict[int, float]] = {}
    for step, logs in calls:
        for key, value in rewrite_logs(logs).items():
            out.setdefault(key, {}).setdefault(int(step), float(value))
    return out


def _stored(run):
    out = {}
    for key in run.metrics.keys():
        rows = run.metrics.numpy(key)
        assert list(rows["step"]) == sorted(set(rows["step"])), key
        out[key] = dict(zip(map(int, rows["step"]), map(float, rows["value"])))
    return out


def _assert_matches(run, calls):
    stored, expected = _stored(run), _expected(calls)
    assert sorted(stored) == sorted(expected)
    for key in expected:
        assert stored[key].keys() == expected[key].keys(), key
        np.testing.assert_allclose(list(stored[key].values()), list(expected[key].values()), rtol=1e-6,
                                   err_msg=key)


def test_predict_metrics_are_stored_and_a_resumed_training_keeps_what_came_after_training(tmp_path):
    # predict() hands its metrics to on_predict only: none was stored (no test/* series at all)
    calls = _train_evaluate_predict_log(tmp_path)
    assert {"test_loss", "test_runtime"} <= set(calls[-2][1])
    trainer = tiny(tmp_path / "o", [DistlogCallback(tmp_path, "hf", "r")], max_steps=8)
    trainer.train(resume_from_checkpoint=str(tmp_path / "o" / "checkpoint-4"))
    resumed = [c for c in Oracle.calls[len(calls) - 1:] if c[0] > 4]  # its log_history holds the checkpoint's
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [(a["status"], a["rewind"]) for a in run.info.attempts] == [("completed", True), ("completed", False),
                                                                      ("completed", True)]
    _assert_matches(run, calls + resumed)
    assert _stored(run)["test/loss"] == {4: pytest.approx(calls[-2][1]["test_loss"])}
    assert list(_stored(run)["eval/loss"]) == [3, 4, 6, 8]
    assert list(_stored(run)["train/final_acc"]) == [4]  # the user's log() after training
    assert [r.message for r in run.logs.query(level="WARNING", grep="refused")] == []


def test_train_again_on_the_callback_of_a_training_that_raised_resumes_in_a_new_attempt(tmp_path):
    # train() raised mid-epoch: no hook closed its attempt, so train(resume_from_checkpoint=)
    # on the same Trainer wrote into it, and every step the crashed run had stored (5, 6) was
    # refused as already written: the crashed values stayed, the resumed ones were dropped
    calls = _train_evaluate_predict_log(tmp_path)
    cb = DistlogCallback(tmp_path, "hf", "r")
    trainer = tiny(tmp_path / "o", [Crash(at=6), cb], max_steps=8)
    with pytest.raises(RuntimeError, match="crashed mid-epoch"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "o" / "checkpoint-4"))
    crashed = len(Oracle.calls)
    trainer.callback_handler.remove_callback(Crash)
    trainer.train(resume_from_checkpoint=str(tmp_path / "o" / "checkpoint-4"))
    resumed = [c for c in Oracle.calls[crashed:] if c[0] > 4]
    assert [s for s, c in resumed if "loss" in c] == [5, 6, 7, 8]
    run = distlog.open_run(tmp_path / "hf" / "r")
    loss = _stored(run)["train/loss"]
    assert [s for s in loss if loss[s] > 1000] == []  # the resumed values, not the crashed ones
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed", "failed", "completed"]
    assert "raised before it ended" in run.info.attempts[2]["error"]["message"]
    _assert_matches(run, calls + resumed)  # no 1005 / 1006 of the crashed attempt
    assert list(_stored(run)["eval/loss"]) == [3, 4, 6, 8] and 4 in _stored(run)["test/loss"]
    assert [r.message for r in run.logs.query(level="WARNING", grep="refused")] == []


def test_a_killed_resumed_training_resumed_again_keeps_the_evaluations_rows(tmp_path):
    # the resumed training is killed (SIGKILL) after its rows of steps 5 and 6 were committed;
    # resuming from checkpoint-4 again drops them and keeps what evaluate/predict/log stored at 4
    calls = _train_evaluate_predict_log(tmp_path)
    child = TRAINER_SRC + textwrap.dedent(f'''
        from distlog.integrations.transformers import DistlogCallback
        distlog_cb = DistlogCallback({str(tmp_path)!r}, "hf", "r")
        tiny({str(tmp_path / "o")!r}, [Crash(at=6, kill=True), distlog_cb], max_steps=8).train(
            resume_from_checkpoint={str(tmp_path / "o" / "checkpoint-4")!r})
    ''')
    env = framework_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), env["PYTHONPATH"]])
    proc = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:] + proc.stderr[-3000:]
    killed = distlog.open_run(tmp_path / "hf" / "r")
    rows = killed.metrics.numpy("train/loss")  # the killed attempt's rows (marked +1000) were stored
    assert list(rows["step"][-2:]) == [5, 6] and all(v > 1000 for v in rows["value"][-2:])
    Oracle.calls = []
    tiny(tmp_path / "o", [DistlogCallback(tmp_path, "hf", "r")], max_steps=8).train(
        resume_from_checkpoint=str(tmp_path / "o" / "checkpoint-4"))
    resumed = [c for c in Oracle.calls if c[0] > 4]
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed", "interrupted", "completed"]
    _assert_matches(run, calls + resumed)
    assert list(_stored(run)["eval/loss"]) == [3, 4, 6, 8] and 4 in _stored(run)["test/loss"]
    assert list(_stored(run)["train/final_acc"]) == [4]
