"""Campaign 31: framework integrations used as an ML engineer would, each case checked
against what the framework itself handed its loggers (a recording logger beside distlog's)."""

import numpy as np
import pytest

pl = pytest.importorskip("lightning.pytorch")
import torch  # noqa: E402

import distlog  # noqa: E402
from distlog.integrations.lightning import DistlogLogger  # noqa: E402
from support.lightning_oracle import Recording  # noqa: E402
from support.framework_runs import quiet_lightning  # noqa: E402,F401 (autouse)

pytestmark = [pytest.mark.integrations, pytest.mark.timeout(300)]


def _data(batches: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(2 * batches, 2)), batch_size=2)


def _rows(run, key: str) -> list[tuple[int, float, int]]:
    r = run.metrics.numpy(key)
    return list(zip(map(int, r["step"]), map(float, r["mean"]), map(int, r["count"])))


class EvalOnStep(pl.LightningModule):
    """Training logs its step; validation and test log per batch (``on_step=True``)."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        self.log("t", float(self.global_step))
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("vs", 100.0 + batch_idx, on_step=True, on_epoch=False)

    def test_step(self, batch, batch_idx):
        self.log("ts", 200.0 + batch_idx, on_step=True, on_epoch=False)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize("val_batches", [1, 5])
def test_eval_on_step_values_neither_shift_nor_drop_training_rows(tmp_path, val_batches):
    # Lightning logs a validation batch's on_step values at its own count of evaluation batches
    # (0, 1, 2... across validations). Collected at that step, they shared a flush window with the
    # training step's values: 't' was refused at every validation (val_batches=1) and 'vs' rows
    # mixed two validations at steps no validation ran at (val_batches=5)
    logger, rec = DistlogLogger(str(tmp_path), name="e", version="r"), Recording()
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=[logger, rec], callbacks=[logger.callback],
                         max_epochs=2, log_every_n_steps=1, val_check_interval=0.5, num_sanity_val_steps=0,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    model = EvalOnStep()
    trainer.fit(model, _data(6), _data(val_batches))
    trainer.test(model, _data(3))
    run = distlog.open_run(tmp_path / "e" / "r")
    assert run.info.status == "completed"
    assert _rows(run, "t") == [(s, v, 1) for s, v in rec.values("t")]  # every training row, as logged
    assert [s for s, _ in rec.values("t")] == list(range(12))
    # one row per validation, at the training step it ran after, over its batches
    mean = 100.0 + (val_batches - 1) / 2
    assert _rows(run, "vs") == [(s, mean, val_batches) for s in (2, 5, 8, 11)]
    assert len(rec.values("vs")) == 4 * val_batches
    assert _rows(run, "ts") == [(12, 201.0, 3)]  # test() after fit: where Lightning logs its epoch values
    assert not run.logs.query(level="WARNING")


class LogsLoss(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        self.log("loss", 1.0 + self.global_step)
        self.logger.collect(direct=2.0)  # DistlogLogger.collect: the same prefix
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.parametrize("prefix", ["train", "train/"])
def test_a_prefix_is_a_namespace_not_glued_onto_the_key(tmp_path, prefix):
    # Lightning's loggers join a prefix with '-' (CSVLogger: 'train-loss'); distlog's namespaces
    # join with '/'. The prefix was glued on: 'trainloss', 'trainepoch', 'traindirect'
    logger = DistlogLogger(str(tmp_path), name="e", version="r", prefix=prefix)
    pl.Trainer(accelerator="cpu", devices=1, logger=logger, callbacks=[logger.callback], max_steps=2,
               log_every_n_steps=1, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(LogsLoss(), _data(2))
    run = distlog.open_run(tmp_path / "e" / "r")
    assert run.metrics.keys() == ["train/direct", "train/epoch", "train/loss"]
    assert _rows(run, "train/loss") == [(0, 1.0, 1), (1, 2.0, 1)]


def test_accelerate_by_name_with_several_ranks_says_how_to_make_the_tracker(tmp_path, monkeypatch):
    # log_with="distlog" makes the tracker on the main process only (init_trackers runs there):
    # the advice "call tracker.open() on every rank" cannot be followed on the other ranks
    pytest.importorskip("accelerate")
    from distlog.errors import RunStateError
    from distlog.integrations import accelerate as integration

    monkeypatch.setattr(integration, "world_size", lambda: 2)
    tracker = integration.DistlogTracker("proj", root=str(tmp_path))
    with pytest.raises(RunStateError, match=r"tracker.open\(\) on every rank.*main process only.*"
                                            r"DistlogTracker\(root=\.\.\., experiment=\.\.\.\).*log_with=tracker"):
        tracker.log({"loss": 1.0}, step=0)


def test_accelerate_log_keeps_the_valid_values_of_a_call_with_a_refused_one(tmp_path):
    # accelerator.log({"a": ..., "b": ...}, step=5) with 'a' already at step 5: 'a' is refused
    # with a warning, but 'b' (a new series) was dropped along with it, unsaid
    pytest.importorskip("accelerate")
    from accelerate import Accelerator

    import distlog.integrations.accelerate  # noqa: F401 - registers log_with="distlog"

    accelerator = Accelerator(cpu=True, log_with="distlog")
    accelerator.init_trackers("acc", init_kwargs={"distlog": {"root": str(tmp_path), "run_id": "r"}})
    accelerator.log({"a": 1.0}, step=5)
    accelerator.log({"a": 2.0, "b": 3.0}, step=5)  # 'a' repeats step 5
    accelerator.log({"a/x": 4.0, "c": 5.0, "d": 6.0})  # 'a/x' clashes with the series 'a'; no step
    accelerator.end_training()
    run = distlog.open_run(tmp_path / "acc" / "r")
    assert run.info.status == "completed"
    assert _rows(run, "a") == [(5, 1.0, 1)]
    assert _rows(run, "b") == [(5, 3.0, 1)]
    assert _rows(run, "c") == [(6, 5.0, 1)] and _rows(run, "d") == [(6, 6.0, 1)]  # one step, as in one call
    assert "a/x" not in run.metrics.keys()
    assert "refused values" in run.logs.query(level="WARNING")[0].message


def test_accelerate_log_keeps_every_valid_value_of_a_call_at_its_one_step(tmp_path):
    # a call without step= under exp.step(5) after rows at step 10: 'a' is refused at 5, 'c'
    # went to step 5 and 'e' (the same call) to step 10, the largest step so far
    pytest.importorskip("accelerate")
    from distlog.integrations.accelerate import DistlogTracker

    tracker = DistlogTracker(root=str(tmp_path), experiment="acc", run_id="r")
    tracker.open()
    tracker.log({"a": 1.0}, step=10)
    with tracker.session.exp.step(5):
        tracker.log({"a": 2.0, "c": 3.0, "e": 4.0})
    tracker.finish()
    run = distlog.open_run(tmp_path / "acc" / "r")
    assert _rows(run, "a") == [(10, 1.0, 1)]
    assert _rows(run, "c") == [(5, 3.0, 1)] and _rows(run, "e") == [(5, 4.0, 1)]


def test_hf_run_name_is_kept_in_params_and_two_trainings_under_it_stay_two_runs(tmp_path, monkeypatch):
    """``TrainingArguments.run_name`` is a display name for the Trainer's other trackers: two
    trainings under one name are two runs. As a distlog run id (briefly, in this stop) the
    second training resumed the first's run and overwrote its rows."""
    pytest.importorskip("transformers")
    from test_integrations_transformers import _tiny_trainer

    from distlog.integrations.transformers import DistlogCallback

    monkeypatch.delenv("DISTLOG_RUN_ID", raising=False)
    monkeypatch.delenv("DISTLOG_RUN_NAME", raising=False)
    for lr in (1e-3, 1e-2):
        _tiny_trainer(tmp_path / "o", DistlogCallback(tmp_path, "hf"), run_name="bert-small",
                      learning_rate=lr, max_steps=2).train()
    runs = distlog.open_root(tmp_path).runs("hf")
    assert len(runs) == 2 and all(len(r.info.attempts) == 1 for r in runs)
    assert sorted(r.params["args"]["learning_rate"] for r in runs) == [1e-3, 1e-2]
    assert {r.params["args"]["run_name"] for r in runs} == {"bert-small"}


@pytest.mark.parametrize("prefix", [".x", " train", "a//b", 3])
def test_a_prefix_no_key_can_take_is_refused_when_the_logger_is_made(tmp_path, prefix):
    # the prefix became a namespace, but was checked only inside each key: DistlogLogger(
    # prefix=".x") warned "refused values ... dropped them" at every log call of the fit and
    # stored nothing (an int prefix: AttributeError on .strip)
    with pytest.raises((ValueError, TypeError), match="namespace"):
        DistlogLogger(str(tmp_path), name="e", version="r", prefix=prefix)
    assert not (tmp_path / "e").exists()
