"""Lightning: every value lands in the row of the step Lightning logged it at, whatever hooks
and callbacks surround it, and a fit never ends in an exception of distlog's. Real Trainers
with tiny models in this process (one device) and, for DDP, a real 2-rank gloo fit."""

import json
import warnings

import numpy as np
import pytest

pl = pytest.importorskip("lightning.pytorch")
import torch  # noqa: E402

import distlog  # noqa: E402
from distlog.integrations.lightning import DistlogLogger  # noqa: E402
from support.framework_runs import SCRIPTS, quiet_lightning, run_script  # noqa: E402,F401

pytestmark = [pytest.mark.integrations, pytest.mark.timeout(300)]


class Tiny(pl.LightningModule):
    """``log_train(module)`` runs in ``training_step``, ``log_val(module)`` in ``validation_step``."""

    def __init__(self, log_train=None, log_val=None):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.log_train, self.log_val = log_train, log_val

    def training_step(self, batch, batch_idx):
        if self.log_train:
            self.log_train(self, batch_idx)
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        if self.log_val:
            self.log_val(self, batch_idx)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _data(batches: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(2 * batches, 2)), batch_size=2)


def _trainer(logger: DistlogLogger, callbacks=(), **kw) -> "pl.Trainer":
    kw = {"max_epochs": 1, "enable_checkpointing": False, "num_sanity_val_steps": 0, **kw}
    return pl.Trainer(accelerator="cpu", devices=1, logger=logger, callbacks=[*callbacks, logger.callback],
                      enable_progress_bar=False, enable_model_summary=False, default_root_dir=logger.save_dir, **kw)


def _rows(run, key: str) -> list[tuple[int, float, int]]:
    r = run.metrics.numpy(key)
    return list(zip(map(int, r["step"]), map(float, r["mean"]), map(int, r["count"])))


def _open(tmp_path, version: str = "r"):
    return distlog.open_run(tmp_path / "e" / version)


def test_an_epoch_metric_gets_one_row_per_epoch(tmp_path):
    def log_train(m, i):
        m.log("m", float(m.current_epoch * 10 + 1), on_step=False, on_epoch=True)

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _trainer(logger, max_epochs=3).fit(Tiny(log_train), _data(4))
    run = _open(tmp_path)
    assert _rows(run, "m") == [(3, 1.0, 1), (7, 11.0, 1), (11, 21.0, 1)]
    assert _rows(run, "epoch") == [(3, 0.0, 1), (7, 1.0, 1), (11, 2.0, 1)]


def test_an_epoch_metric_beside_validation_completes_the_fit(tmp_path):
    # validation and the training epoch's end both log at the epoch's last step, each with the
    # ``epoch`` entry Lightning adds; a checkpoint flushes between them
    def log_train(m, i):
        m.log("train_v", float(m.current_epoch + 1), on_step=False, on_epoch=True)

    def log_val(m, i):
        m.log("val_v", float(10 * m.current_epoch))

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _trainer(logger, max_epochs=2, enable_checkpointing=True).fit(Tiny(log_train, log_val), _data(4), _data(2))
    run = _open(tmp_path)
    assert run.info.status == "completed"
    assert _rows(run, "train_v") == [(3, 1.0, 1), (7, 2.0, 1)]
    assert _rows(run, "val_v") == [(3, 0.0, 1), (7, 10.0, 1)]
    assert _rows(run, "epoch") == [(3, 0.0, 1), (7, 1.0, 1)]
    assert [r.message for r in run.logs.query(level="WARNING")] == []


@pytest.mark.timeout(400)
def test_an_epoch_metric_beside_validation_under_ddp(tmp_path):
    from integration_scripts.lightning_epochs import epoch_value

    root, out = tmp_path / "root", tmp_path / "out"
    run_script([str(SCRIPTS / "lightning_epochs.py"), str(root), str(out), "--devices", "2"], tmp_path)
    info = json.loads((out / "epochs.json").read_text())
    assert (info["world"], info["steps_per_epoch"]) == (2, 4)
    run = distlog.open_run(root / "ep" / "ddp")
    assert (run.info.status, run.info.world_size) == ("completed", 2)
    expected = [(4 * e + 3, float(np.mean([epoch_value(r, e) for r in (0, 1)])), 2) for e in (0, 1)]
    assert _rows(run, "train_v") == expected
    assert [(s, c) for s, _, c in _rows(run, "val_v")] == [(3, 2), (7, 2)]
    assert _rows(run, "epoch") == [(3, 0.0, 2), (7, 1.0, 2)]


@pytest.mark.timeout(400)
def test_a_rank_zero_only_value_under_ddp_is_flushed_by_every_rank(tmp_path):
    # rank 0 alone logs r0_stat at each epoch's end: every rank still flushes at the same points
    root, out = tmp_path / "root", tmp_path / "out"
    run_script([str(SCRIPTS / "lightning_epochs.py"), str(root), str(out), "--devices", "2", "--rank-zero-stat"],
               tmp_path)
    run = distlog.open_run(root / "ep" / "ddp")
    assert (run.info.status, run.info.world_size) == ("completed", 2)
    assert _rows(run, "r0_stat") == [(3, 0.0, 1), (7, 1.0, 1)]
    assert [(s, c) for s, _, c in _rows(run, "val_v")] == [(3, 2), (7, 2)]
    assert "train_v" not in run.metrics.keys()


def test_direct_collects_under_gradient_accumulation_keep_every_value(tmp_path):
    def log_train(m, i):
        m.logger.experiment.metrics("train").collect(x=float(i))

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _trainer(logger, accumulate_grad_batches=2, log_every_n_steps=1).fit(Tiny(log_train), _data(8))
    run = _open(tmp_path)
    assert run.info.status == "completed"
    # the two micro-batches of each optimizer step make its row
    assert _rows(run, "train/x") == [(s, 2 * s + 0.5, 2) for s in range(4)]
    assert [r.message for r in run.logs.query(level="WARNING")] == []


def test_a_callback_logging_before_ours_shifts_no_row(tmp_path):
    def log_train(m, i):
        m.log("v", float(m.global_step))

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    lr = pl.callbacks.LearningRateMonitor(logging_interval="step")  # logs at batch start, before us
    _trainer(logger, callbacks=[lr], log_every_n_steps=1).fit(Tiny(log_train), _data(6))
    run = _open(tmp_path)
    assert run.info.status == "completed"
    assert _rows(run, "v") == [(s, float(s), 1) for s in range(6)]
    assert [s for s, _, _ in _rows(run, "lr-SGD")] == list(range(6))


def test_values_collected_over_a_period_make_one_row_at_its_last_step(tmp_path):
    # flush_every_n_steps merges direct collects; Lightning's own logs keep their steps
    def log_train(m, i):
        m.logger.experiment.metrics("train").collect(x=1.0)
        m.log("v", float(m.global_step))

    logger = DistlogLogger(str(tmp_path), name="e", version="r", flush_every_n_steps=3)
    _trainer(logger, log_every_n_steps=3).fit(Tiny(log_train), _data(6))
    run = _open(tmp_path)
    assert _rows(run, "v") == [(2, 2.0, 1), (5, 5.0, 1)]
    assert _rows(run, "train/x") == [(2, 1.0, 3), (5, 1.0, 3)]


def test_validate_with_a_new_trainer_keeps_the_fits_rows(tmp_path):
    def log_val(m, i):
        m.log("val_v", float(m.current_epoch + 1))

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    model = Tiny(log_val=log_val)
    fit = _trainer(logger, max_epochs=3)
    fit.fit(model, _data(4), _data(2))
    fitted = _rows(_open(tmp_path), "val_v")
    assert [s for s, _, _ in fitted] == [3, 7, 11]
    _trainer(logger).validate(model, _data(2))  # a new Trainer logs at step 0: refused, not rewound
    run = _open(tmp_path)
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed"]
    assert _rows(run, "val_v") == fitted
    assert [s for s, _, _ in _rows(run, "epoch")] == [3, 7, 11]
    assert any("trainer.validate() logs at step 0" in r.message for r in run.logs.query(level="WARNING"))
    fit.validate(model, _data(2))  # the fit's Trainer logs at the step the fit reached: appended
    assert [s for s, _, _ in _rows(_open(tmp_path), "val_v")] == [3, 7, 11, 12]


def test_two_loggers_share_a_trainer(tmp_path):
    def log_train(m, i):
        m.log("v", float(i))

    a = DistlogLogger(str(tmp_path / "a"), name="e", version="r")
    b = DistlogLogger(str(tmp_path / "b"), name="e", version="r")
    pl.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=[a, b], callbacks=[a.callback, b.callback],
               log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
               enable_checkpointing=False, default_root_dir=str(tmp_path)).fit(Tiny(log_train), _data(2))
    assert a.callback.state_key != b.callback.state_key
    # one root written relative or absolute is one key (a checkpoint saved with one finds the
    # callback's state with the other; Lightning dropped it with a warning)
    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        rel = DistlogLogger("a", name="e", version="r").callback
        assert rel.state_key == a.callback.state_key
        # (a checkpoint saved before, under the root as written, is found by Lightning's legacy key)
        assert "'root': 'a'" in rel._legacy_state_key
    finally:
        os.chdir(here)
    for where in ("a", "b"):
        assert _rows(distlog.open_run(tmp_path / where / "e" / "r"), "v") == [(0, 0.0, 1), (1, 1.0, 1)]


def test_each_trainer_sets_its_own_flush_period(tmp_path):
    # direct collects merge over the Trainer's log_every_n_steps: the second Trainer's, not the first's
    def log_train(m, i):
        m.logger.experiment.metrics("train").collect(x=float(m.global_step))

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    model = Tiny(log_train)
    _trainer(logger, log_every_n_steps=4).fit(model, _data(4))
    assert _rows(_open(tmp_path), "train/x") == [(3, 1.5, 4)]
    _trainer(logger, log_every_n_steps=1, max_epochs=2).fit(model, _data(4))
    assert _rows(_open(tmp_path), "train/x") == [(s, float(s), 1) for s in range(8)]


def test_fitting_again_after_validate_keeps_its_rows(tmp_path):
    def log_train(m, i):
        m.log("v", float(m.global_step))

    def log_val(m, i):
        m.log("val_v", 7.0 + m.current_epoch)

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    model = Tiny(log_train, log_val)
    trainer = _trainer(logger, log_every_n_steps=1)
    trainer.fit(model, _data(4))
    trainer.validate(model, _data(2))  # appended at the step the fit reached
    assert _rows(_open(tmp_path), "val_v") == [(4, 8.0, 1)]
    trainer.fit_loop.max_epochs = 2
    trainer.fit(model, _data(4))  # continues the same Trainer: no checkpoint, nothing to rewind
    run = _open(tmp_path)
    assert [a["status"] for a in run.info.attempts] == ["completed"] * 3
    assert _rows(run, "val_v") == [(4, 8.0, 1)]
    assert _rows(run, "v") == [(s, float(s), 1) for s in range(8)]


def test_logging_after_fit_reopens_the_run_in_one_process(tmp_path):
    def log_train(m, i):
        m.log("v", float(m.global_step))

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _trainer(logger, log_every_n_steps=1).fit(Tiny(log_train), _data(2))  # closes the run
    logger.log_hyperparams({"best_ckpt": "x.ckpt", "final": {"acc": 0.9}})  # the usual after-fit calls
    logger.log_metrics({"final_acc": 0.9, "v": 0.5}, step=100)
    logger.finalize("success")
    run = _open(tmp_path)
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed"]
    assert run.params == {"best_ckpt": "x.ckpt", "final": {"acc": 0.9}}
    assert _rows(run, "final_acc") == [(100, 0.9, 1)]
    assert _rows(run, "v") == [(0, 0.0, 1), (1, 1.0, 1), (100, 0.5, 1)]  # appended: nothing rewound


def test_a_row_the_writer_refuses_is_said_in_the_runs_log(tmp_path):
    """An attempt that only appends (values logged after fit) refuses a value at a step its
    series already holds: the refusal was said on stderr only, not in the run's log, where
    `distlog logs --level WARNING` looks."""
    def log_train(m, i):
        m.log("v", float(m.global_step))

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _trainer(logger, log_every_n_steps=1).fit(Tiny(log_train), _data(2))  # rows at steps 0, 1
    logger.log_metrics({"v": 9.0}, step=1)  # step 1 is stored already: refused
    logger.finalize("success")
    run = _open(tmp_path)
    assert _rows(run, "v") == [(0, 0.0, 1), (1, 1.0, 1)]
    said = [r.message for r in run.logs.query(level="WARNING")]
    assert any("series 'v': refused 1 row(s) whose step did not increase (first at step 1" in m
               for m in said), said


def test_logging_after_the_run_closed_with_several_ranks_warns_once_per_kind(tmp_path, monkeypatch):
    """Params and metric values dropped after the run closed are each said, with their names
    (the metric values went unsaid: one warning per session named only the params)."""
    from distlog.integrations import _session

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    logger.experiment  # noqa: B018 - opens the run
    logger.finalize("success")
    monkeypatch.setattr(_session, "world_size", lambda: 2)  # reopening would be a collective
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logger.log_hyperparams({"lr": 0.1})
        logger.log_metrics({"acc": 0.9}, step=3)
        logger.log_hyperparams({"wd": 0.1})
        logger.log_metrics({"acc": 0.8, "f1": 0.7}, step=4)
    msgs = [str(w.message) for w in caught]
    assert len(msgs) == 2, msgs
    assert "params (lr) given after run e/r closed were not stored" in msgs[0]
    assert "metric values (acc) given after run e/r closed were not stored" in msgs[1]
    assert all("logger.experiment" in m for m in msgs)
    assert not logger._session.is_open and logger._session._pending_metrics == []
    assert _open(tmp_path).params == {}


def test_slurm_requeue_finalize_marks_the_run_preempted(tmp_path):
    # Lightning's SLURM auto-requeue handler calls logger.finalize("finished") mid-fit, then the
    # fit goes on until the job is stopped (called here as the handler does, without scontrol)
    at_signal = {}

    def log_train(m, i):
        m.log("v", float(m.global_step))
        if m.global_step == 2 and not at_signal:
            for lg in m.trainer.loggers:
                lg.finalize("finished")
            at_signal.update(json.loads((tmp_path / "e" / "r" / "run.json").read_text()))

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _trainer(logger, log_every_n_steps=1).fit(Tiny(log_train), _data(6))
    assert (at_signal["status"], at_signal.get("error")) == ("preempted", None)
    run = _open(tmp_path)
    assert [a["status"] for a in run.info.attempts] == ["preempted", "completed"]
    assert _rows(run, "v") == [(s, float(s), 1) for s in range(6)]  # nothing logged after it is lost


def test_fast_dev_run_leaves_no_run_running(tmp_path):
    # fast_dev_run swaps every logger for Lightning's DummyLogger (logging is suppressed, and
    # finalize never reaches ours): distlog opens no run then, as Lightning's loggers write none
    def log_train(m, i):
        m.log("v", 1.0)

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    trainer = _trainer(logger, fast_dev_run=True)
    trainer.fit(Tiny(log_train), _data(4), _data(2))
    assert logger not in trainer.loggers  # what this test is about: Lightning replaced it
    assert not (tmp_path / "e" / "r" / "run.json").exists()
    assert not logger._session.is_open
    # the same logger then serves a real fit as usual
    _trainer(logger, log_every_n_steps=1).fit(Tiny(log_train), _data(2))
    run = _open(tmp_path)
    assert run.info.status == "completed" and len(run.info.attempts) == 1
    assert _rows(run, "v") == [(0, 1.0, 1), (1, 1.0, 1)]


def test_fast_dev_run_closes_a_run_opened_before_the_fit(tmp_path):
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    logger.experiment.metrics.collect(before=2.0, step=0)  # opened by the script itself
    _trainer(logger, fast_dev_run=2).fit(Tiny(), _data(4))
    run = _open(tmp_path)
    assert run.info.status == "completed"  # not left "running" with finalize never called
    assert _rows(run, "before") == [(0, 2.0, 1)]


def test_the_callback_without_its_logger_says_so_and_opens_no_run(tmp_path):
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=2, logger=False, callbacks=[logger.callback],
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         default_root_dir=str(tmp_path))
    with pytest.warns(UserWarning, match=r"not among trainer.loggers.*Trainer\(logger=logger"):
        trainer.fit(Tiny(), _data(2))
    assert not (tmp_path / "e" / "r" / "run.json").exists() and not logger._session.is_open


def test_values_collected_in_the_sanity_check_are_dropped(tmp_path):
    # Lightning logs nothing of its sanity check; values collected directly then must not merge
    # into the first rows either (the oracle: each step's values from real batches only)
    seen: dict[str, dict[int, list[float]]] = {"x": {}, "val/x": {}}

    def log_train(m, i):
        v = float(m.global_step)
        m.logger.experiment.metrics.collect(x=v)
        seen["x"].setdefault(m.global_step, []).append(v)

    def log_val(m, i):
        v = 1000.0 if m.trainer.sanity_checking else 1.0 + i
        m.logger.experiment.metrics.collect(x=v)  # the same key as training's, and its own
        m.logger.experiment.metrics("val").collect(x=v)
        m.log("val_v", v)
        if not m.trainer.sanity_checking:  # Lightning logs a validation at the last batch's step
            for key in ("x", "val/x"):
                seen[key].setdefault(m.global_step - 1, []).append(v)

    class Before(pl.Callback):  # collected before the sanity check: kept
        def on_fit_start(self, trainer, pl_module):
            pl_module.logger.experiment.metrics.collect(early=5.0, step=0)

    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _trainer(logger, callbacks=[Before()], num_sanity_val_steps=2,
             log_every_n_steps=1).fit(Tiny(log_train, log_val), _data(3), _data(2))
    run = _open(tmp_path)
    assert _rows(run, "early") == [(0, 5.0, 1)]
    for key, per_step in seen.items():
        expected = [(s, float(np.mean(v)), len(v)) for s, v in sorted(per_step.items())]
        assert _rows(run, key) == expected, key
    assert _rows(run, "val_v") == [(2, 1.5, 1)]  # Lightning's own: no sanity-check row


class TwoOptimizers(pl.LightningModule):
    """Manual optimization with two optimizers: ``trainer.global_step`` counts both optimizers'
    steps (2 per batch); Lightning logs each batch at its own step (batches that stepped)."""

    def __init__(self, attempt=0, log_v=False, late=False):
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
        self.attempt, self.log_v, self.late = attempt, log_v, late

    def training_step(self, batch, batch_idx):
        for opt, layer in zip(self.optimizers(), (self.a, self.b)):
            opt.zero_grad()
            self.manual_backward(layer(batch[0]).pow(2).mean())
            opt.step()
        x = float(100 * self.attempt + 10 * self.current_epoch + batch_idx)
        self.logger.experiment.metrics("train").collect(x=x)
        if self.log_v:
            self.log("v", x)
        if self.late and self.current_epoch == 1:  # a series only this attempt writes, past epoch 0
            self.log("late", x, on_step=False, on_epoch=True)

    def configure_optimizers(self):
        return [torch.optim.SGD(self.a.parameters(), lr=0.01), torch.optim.SGD(self.b.parameters(), lr=0.01)]


def test_two_optimizers_collect_at_the_step_lightning_logs_at(tmp_path):
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    trainer = _trainer(logger, log_every_n_steps=1, max_epochs=2)
    trainer.fit(TwoOptimizers(), _data(3))
    assert trainer.global_step == 12  # two optimizer steps per batch
    expected = [(s, float(10 * (s // 3) + s % 3), 1) for s in range(6)]  # one row per batch: 0..5
    assert _rows(_open(tmp_path), "train/x") == expected


def test_two_optimizers_resume_rewinds_to_the_checkpoints_logging_step(tmp_path):
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    every_epoch = pl.callbacks.ModelCheckpoint(every_n_epochs=1, save_top_k=-1)
    _trainer(logger, callbacks=[every_epoch], log_every_n_steps=1, max_epochs=2,
             enable_checkpointing=True).fit(TwoOptimizers(log_v=True, late=True), _data(3))
    assert _rows(_open(tmp_path), "late") == [(5, 11.0, 1)]  # the epoch mean at its last step
    ckpt = tmp_path / "e" / "r" / "checkpoints" / "epoch=0-step=6.ckpt"  # after batch 3 (logged 0..2)
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _trainer(logger, log_every_n_steps=1, max_epochs=2).fit(TwoOptimizers(attempt=1, log_v=True), _data(3),
                                                             ckpt_path=str(ckpt))
    run = _open(tmp_path)
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed"]
    first, second = [0.0, 1.0, 2.0], [110.0, 111.0, 112.0]  # epoch 0 kept, epoch 1 written again
    for key in ("v", "train/x"):
        assert _rows(run, key) == [(s, x, 1) for s, x in enumerate(first + second)], key
    assert "late" not in run.metrics.keys()  # its row past the checkpoint was rewound
    assert any("series rewound to step 2" in r.message for r in run.logs.query(level="INFO"))
