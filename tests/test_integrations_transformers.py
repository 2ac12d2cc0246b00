"""Hugging Face Trainer: a tiny model from a config (no downloads), under torchrun with 2 ranks
and in one process through ``report_to="distlog"``; read back with open_run."""

import json

import numpy as np
import pytest

from support.framework_runs import SCRIPTS, run_script

pytest.importorskip("transformers")
pytestmark = [pytest.mark.integrations, pytest.mark.timeout(600)]

import distlog  # noqa: E402


def _check_run(run, seen: list[dict], world: int) -> None:
    assert (run.info.status, run.info.world_size) == ("completed", world)
    assert run.logs.ranks() == list(range(world))
    # per-rank values collected in compute_loss: each row reduces every rank's values of its window
    steps = sorted(int(s) for s in seen[0]["seen"])
    assert steps == [1, 2, 3, 4]
    per_step = [np.concatenate([r["seen"][str(s)] for r in seen]) for s in steps]
    got = run.metrics.numpy("rank_loss")
    np.testing.assert_array_equal(got["step"], steps)
    np.testing.assert_allclose(got["mean"], [v.mean() for v in per_step], rtol=1e-6)
    np.testing.assert_allclose(got["min"], [v.min() for v in per_step], rtol=1e-6)
    np.testing.assert_allclose(got["max"], [v.max() for v in per_step], rtol=1e-6)
    np.testing.assert_array_equal(got["count"], [world] * 4)
    twice = run.metrics.numpy("train/rank_loss_x2")  # collect({"train/...": x}): a dict
    np.testing.assert_allclose(twice["mean"], 2 * got["mean"], rtol=1e-6)
    np.testing.assert_array_equal(twice["step"], steps)
    # the Trainer's own logs (already averaged over ranks by the Trainer) become rows at their steps
    history = seen[0]["history"]
    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    evals = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    for key, expected in (("train/loss", train), ("eval/loss", evals)):
        rows = run.metrics.numpy(key)
        np.testing.assert_array_equal(rows["step"], [s for s, _ in expected])
        np.testing.assert_allclose(rows["mean"], [v for _, v in expected], rtol=1e-6)
        np.testing.assert_array_equal(rows["count"], [world] * len(expected))
    epoch = run.metrics.numpy("train/epoch")
    assert list(epoch["step"]) == [1, 2, 3, 4]  # one row per step (eval logs carry no epoch row)
    assert run.params["args"]["max_steps"] == 4 and run.params["model_config"]["hidden_size"] == 16
    assert [r.message for r in run.logs.query(grep="checkpoint saved", rank=0)] == ["checkpoint saved"] * 2


def test_trainer_under_torchrun_two_ranks(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    run_script([str(SCRIPTS / "hf_train.py"), str(root), str(out)], tmp_path, torchrun=2)
    seen = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [s["world"] for s in seen] == [2, 2]
    run = distlog.open_run(root / "hf" / "hf-run")
    _check_run(run, seen, 2)
    saved = out / "hf" / "checkpoint-4" / "model.safetensors"
    assert run.files.read_bytes("checkpoints/checkpoint-4/model.safetensors") == saved.read_bytes()


def test_trainer_single_process_report_to_distlog(tmp_path, monkeypatch):
    root, out = tmp_path / "root", tmp_path / "out"
    monkeypatch.setenv("DISTLOG_ROOT", str(root))
    monkeypatch.setenv("DISTLOG_EXPERIMENT", "hf1")
    run_script([str(SCRIPTS / "hf_train.py"), str(root), str(out), "--report-to"], tmp_path)
    seen = [json.loads((out / "rank0.json").read_text())]
    run = distlog.open_run(root / "hf1" / seen[0]["run_id"])
    _check_run(run, seen, 1)
    assert run.files.paths() == []  # log_checkpoints is off by default


def test_resume_from_checkpoint_rewinds_the_series(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    script = str(SCRIPTS / "hf_train.py")
    run_script([script, str(root), str(out)], tmp_path)
    # the first run logged steps 1..4; resuming from step 2 logs 3 and 4 again
    run_script([script, str(root), str(out), "--resume", str(out / "hf" / "checkpoint-2")], tmp_path)
    first = json.loads((out / "rank0.json").read_text())["history"]
    second = json.loads((out / "rank0-resumed.json").read_text())["history"]
    run = distlog.open_run(root / "hf" / "hf-run")
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed"]
    rows = run.metrics.numpy("train/loss")
    np.testing.assert_array_equal(rows["step"], [1, 2, 3, 4])  # each step once
    expected = {h["step"]: h["loss"] for h in first if "loss" in h and h["step"] <= 2}
    expected |= {h["step"]: h["loss"] for h in second if "loss" in h}
    np.testing.assert_allclose(rows["mean"], [expected[s] for s in (1, 2, 3, 4)], rtol=1e-6)


def _tiny_trainer(out, callback, **kw):
    """A tiny in-process Trainer (model from a config, no downloads) logging every step."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    from integration_scripts.hf_train import Data

    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    kw = {"per_device_train_batch_size": 2, "per_device_eval_batch_size": 4, "max_steps": 4, "logging_steps": 1,
          "save_strategy": "no", "eval_strategy": "no", "use_cpu": True, "disable_tqdm": True, "seed": 0,
          "report_to": "none", "dataloader_num_workers": 0, **kw}
    return Trainer(model=BertForSequenceClassification(cfg), args=TrainingArguments(output_dir=str(out), **kw),
                   train_dataset=Data(32, 1), eval_dataset=Data(8, 2), callbacks=[callback])


def _losses(trainer) -> list[tuple[int, float]]:
    return [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]


def test_an_evaluation_keeps_the_trainings_args(tmp_path):
    from distlog.integrations.transformers import DistlogCallback

    _tiny_trainer(tmp_path / "o", DistlogCallback(tmp_path, "hf", "r"), learning_rate=1e-3).train()
    evaluating = DistlogCallback(tmp_path, "hf", "r")  # later: an evaluation script, same run id
    _tiny_trainer(tmp_path / "o", evaluating, max_steps=-1).evaluate()
    evaluating.close()
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed"]
    assert (run.params["args"]["learning_rate"], run.params["args"]["max_steps"]) == (1e-3, 4)
    assert run.params["eval_args"]["max_steps"] == -1
    assert list(run.metrics.numpy("eval/loss")["step"]) == [0]  # a new Trainer evaluates at step 0


def test_training_after_an_evaluation_gets_its_own_attempt(tmp_path):
    from distlog.integrations.transformers import DistlogCallback

    def baseline_then_train(lr):
        trainer = _tiny_trainer(tmp_path / "o", DistlogCallback(tmp_path, "hf", "r"), learning_rate=lr)
        trainer.evaluate()  # a baseline before training
        trainer.train()
        return _losses(trainer)

    baseline_then_train(5e-5)
    second = baseline_then_train(5e-1)  # the script run again into the same run: replaces the rows
    run = distlog.open_run(tmp_path / "hf" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed"] * 4  # eval, train, eval, train
    rows = run.metrics.numpy("train/loss")
    assert list(rows["step"]) == [s for s, _ in second]
    np.testing.assert_allclose(rows["mean"], [v for _, v in second], rtol=1e-6)
    assert run.params["args"]["learning_rate"] == 5e-1
    # the second baseline evaluate() (an attempt that only appends) logs eval/* at step 0,
    # which the first one stored: refused, as documented, and said in the run's log (it was
    # said on stderr only; this assertion, which expected no record, could not fail then)
    refused = [r.message for r in run.logs.query(level="WARNING", grep="refused")]
    assert refused and all(m.startswith("scalars series 'eval/") and "(first at step 0, last stored step 0)" in m
                           for m in refused), refused
    assert any("'eval/loss'" in m for m in refused)


def test_tokens_seen_logs_keep_every_series_and_warn_of_nothing(tmp_path):
    # include_num_input_tokens_seen adds train_* speed metrics to every training log, and the
    # end-of-training summary repeats epoch, num_input_tokens_seen and train_runtime at step 4
    from distlog.integrations.transformers import DistlogCallback

    trainer = _tiny_trainer(tmp_path / "o", DistlogCallback(tmp_path, "hf", "r"), include_num_input_tokens_seen=True)
    trainer.train()
    history = trainer.state.log_history
    run = distlog.open_run(tmp_path / "hf" / "r")
    for name in ("epoch", "num_input_tokens_seen", "train_runtime", "loss"):
        first = {}  # the oracle: the first value the Trainer logged at each step
        for h in history:
            if name in h:
                first.setdefault(h["step"], h[name])
        rows = run.metrics.numpy(f"train/{name}")
        assert list(rows["step"]) == sorted(first) == [1, 2, 3, 4], name
        np.testing.assert_allclose(rows["mean"], [first[s] for s in sorted(first)], rtol=1e-6, err_msg=name)
    summary = history[-1]
    assert "total_flos" in summary and _steps(run, "train/train_loss") == [4]
    assert [r.message for r in run.logs.query(level="WARNING")] == []
    assert any("train_runtime=" in r.message for r in run.logs.query(level="INFO", grep="logged again at step 4"))


def _steps(run, key):
    return list(run.metrics.numpy(key)["step"])
