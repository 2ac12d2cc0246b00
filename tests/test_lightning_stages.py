"""Lightning: ``validate()`` and ``test()`` on the Trainer that ran ``fit()`` (or on one that ran
none) store their values at the step Lightning logs them at (where the fit ended, as its own
loggers do), with the ``epoch`` entry Lightning adds to each of them stored once, and no
warning telling the user to do what they did. Real Trainers with a tiny model in this process.

Each case is checked against what Lightning handed its loggers (a recording logger beside
distlog's) and what the model logged (its own record)."""

import logging
import warnings

import pytest

pl = pytest.importorskip("lightning.pytorch")
import torch  # noqa: E402

import distlog  # noqa: E402
from distlog import report  # noqa: E402
from distlog.integrations.lightning import DistlogLogger  # noqa: E402
from support.lightning_oracle import Recording  # noqa: E402

pytestmark = [pytest.mark.integrations, pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def distlog_warnings(caplog):
    """Lightning's own info lines and warnings silenced; what distlog reports (Python warnings and
    its ``distlog`` logger, rate limit reset) collected for the test to inspect."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    report.reset()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="distlog"):
        warnings.simplefilter("always")

        def said() -> list[str]:
            return ([str(w.message) for w in caught if "distlog" in str(w.message)]
                    + [r.getMessage() for r in caplog.records if r.name.startswith("distlog")])

        yield said
    report.reset()


class Staged(pl.LightningModule):
    """Logs ``loss`` per training step, ``val`` / ``tst`` per evaluation epoch (a value per call
    of ``validate``/``test``, so two evaluations differ); ``logged`` records each value."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.logged: list[tuple[str, float]] = []
        self.evaluations = 0

    def _log(self, key: str, value: float, **kw) -> None:
        self.logged.append((key, value))
        self.log(key, value, **kw)

    def training_step(self, batch, batch_idx):
        self._log("loss", float(self.global_step))
        return self.layer(batch[0]).pow(2).mean()

    def on_validation_epoch_start(self):
        self.evaluations += 1

    def on_test_epoch_start(self):
        self.evaluations += 1

    def validation_step(self, batch, batch_idx):
        self._log("val", 10.0 * self.evaluations, on_epoch=True)

    def test_step(self, batch, batch_idx):
        self._log("tst", 100.0 * self.evaluations, on_epoch=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def values(self, key: str) -> list[float]:
        return [v for k, v in self.logged if k == key]


def _data(batches: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(2 * batches, 2)), batch_size=2)


def _trainer(loggers, callbacks, **kw) -> "pl.Trainer":
    return pl.Trainer(accelerator="cpu", devices=1, logger=loggers, callbacks=callbacks, log_every_n_steps=1,
                      num_sanity_val_steps=0, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **kw)


def _rows(run, key: str) -> list[tuple[int, float, int]]:
    r = run.metrics.numpy(key)
    return list(zip(map(int, r["step"]), map(float, r["mean"]), map(int, r["count"])))


def _once_per_step(values: list[tuple[int, float]]) -> list[tuple[int, float, int]]:
    """Lightning's ``epoch`` entries, one row per step (each step's entries agree)."""
    by_step: dict[int, set[float]] = {}
    for s, v in values:
        by_step.setdefault(s, set()).add(v)
    assert all(len(vs) == 1 for vs in by_step.values()), by_step
    return [(s, vs.pop(), 1) for s, vs in sorted(by_step.items())]


def test_validate_then_test_after_fit_store_at_the_step_the_fit_ended(tmp_path, distlog_warnings):
    # validate() and test() after fit() on one Trainer both log at the step the fit ended (6),
    # each with Lightning's ``epoch`` entry: test()'s was refused (a row at a stored step), and
    # a warning told the user to call test() on the Trainer that ran fit(), which they did
    logger, rec = DistlogLogger(str(tmp_path), name="e", version="r"), Recording()
    trainer = _trainer([logger, rec], [logger.callback], max_epochs=2)
    model = Staged()
    trainer.fit(model, _data(3), _data(2))
    trainer.validate(model, _data(2))
    trainer.test(model, _data(2))
    assert rec.values("val")[-1][0] == rec.values("tst")[0][0] == 6  # Lightning's step for both

    run = distlog.open_run(tmp_path / "e" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed"] * 3
    assert _rows(run, "loss") == [(s, float(s), 1) for s in range(6)]
    assert [v for _, v, _ in _rows(run, "loss")] == model.values("loss")
    # validation after each epoch (steps 2, 5) and validate() at the step the fit ended
    assert _rows(run, "val") == [(2, 10.0, 1), (5, 20.0, 1), (6, 30.0, 1)]
    assert sorted(set(model.values("val"))) == [10.0, 20.0, 30.0]
    assert _rows(run, "tst") == [(6, 400.0, 1)] and set(model.values("tst")) == {400.0}
    for key in ("loss", "val", "tst"):  # every value Lightning handed its loggers, at its step
        assert [(s, v) for s, v, _ in _rows(run, key)] == rec.values(key)
    epochs = rec.values("epoch")
    assert [e for s, e in epochs if s == 6] == [2.0, 2.0]  # validate's and test's, alike
    assert _rows(run, "epoch") == _once_per_step(epochs)
    # neither the run's log nor distlog's reports (a refused row) say anything
    assert ([r.message for r in run.logs.query(level="WARNING")], distlog_warnings()) == ([], [])


@pytest.mark.parametrize("then", ["finalize", "test"])
def test_values_logged_after_fit_keep_their_steps(tmp_path, distlog_warnings, then):
    """``logger.log_metrics(..., step=)`` after ``fit()`` (one process: the closed run reopens
    as an appending attempt): one row per step. They were one row at the last step (50, 60
    and 70 merged: mean 2 at step 70), or, before a new Trainer's ``test()``, merged into the
    test's row at step 0."""
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    trainer = _trainer(logger, [logger.callback], max_epochs=1)
    trainer.fit(Staged(), _data(3), _data(2))
    logger.log_metrics({"post": 1.0}, step=50)
    logger.log_metrics({"post": 2.0}, step=60)
    logger.log_metrics({"post": 3.0, "other": 9.0}, step=70)
    if then == "finalize":
        logger.finalize("success")
    else:  # a new Trainer (its test logs at step 0): the values before it keep their steps
        _trainer(logger, [logger.callback]).test(Staged(), _data(2))
    run = distlog.open_run(tmp_path / "e" / "r")
    assert _rows(run, "post") == [(50, 1.0, 1), (60, 2.0, 1), (70, 3.0, 1)]
    assert _rows(run, "other") == [(70, 9.0, 1)]
    # no word about a callback missing from the Trainer: it was there
    said = [r.message for r in run.logs.query(level="WARNING")] + distlog_warnings()
    assert not [m for m in said if "callback is not in the Trainer" in m], said


def test_validate_then_test_without_fit_store_at_step_0(tmp_path, distlog_warnings):
    # a Trainer that ran no fit logs both at step 0: the second stage's ``epoch`` was refused
    # and it was told to call test() "on the Trainer that ran fit()"
    logger, rec = DistlogLogger(str(tmp_path), name="e", version="r"), Recording()
    trainer = _trainer([logger, rec], [logger.callback])
    model = Staged()
    trainer.validate(model, _data(2))
    trainer.test(model, _data(3))
    run = distlog.open_run(tmp_path / "e" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed"] * 2
    assert _rows(run, "val") == [(0, 10.0, 1)] and rec.values("val") == [(0, 10.0)]
    assert _rows(run, "tst") == [(0, 200.0, 1)] and rec.values("tst") == [(0, 200.0)]
    assert _rows(run, "epoch") == _once_per_step(rec.values("epoch")) == [(0, 0.0, 1)]
    # neither the run's log nor distlog's reports (a refused row) say anything
    assert ([r.message for r in run.logs.query(level="WARNING")], distlog_warnings()) == ([], [])


def test_testing_twice_after_fit_keeps_the_first_and_names_only_the_key_refused(tmp_path, distlog_warnings):
    # a second test() logs 'tst' at the step the first one stored it at: a series holds one
    # value per step, so that value is refused (said by the writer, naming the key). Neither
    # the ``epoch`` entry nor a warning pointing at the Trainer that ran fit() come with it
    logger, rec = DistlogLogger(str(tmp_path), name="e", version="r"), Recording()
    trainer = _trainer([logger, rec], [logger.callback], max_epochs=1)
    model = Staged()
    trainer.fit(model, _data(3))
    trainer.test(model, _data(2))
    trainer.test(model, _data(2))
    assert rec.values("tst") == [(3, 100.0), (3, 200.0)]
    run = distlog.open_run(tmp_path / "e" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed"] * 3
    assert _rows(run, "tst") == [(3, 100.0, 1)]
    assert _rows(run, "loss") == [(s, float(s), 1) for s in range(3)]
    assert _rows(run, "epoch") == _once_per_step(rec.values("epoch"))
    # the refusal is said in the run's log (echoed on stderr), naming the key and the step
    [warning] = [r.message for r in run.logs.query(level="WARNING")]
    assert "series 'tst': refused 1 row(s)" in warning and "at step 3" in warning, warning
    said = distlog_warnings()
    assert len(said) == 1 and warning in said[0], said


def test_a_new_trainer_evaluating_after_fit_says_what_came_what_was_expected_and_how_to_fix(tmp_path):
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    model = Staged()
    _trainer(logger, [logger.callback], max_epochs=1).fit(model, _data(3))
    _trainer(logger, [logger.callback]).test(model, _data(2))  # a new Trainer: it logs at step 0
    run = distlog.open_run(tmp_path / "e" / "r")
    assert _rows(run, "tst") == [(0, 100.0, 1)]  # a key the run did not hold: stored, at step 0
    assert _rows(run, "loss") == [(s, float(s), 1) for s in range(3)]  # nothing rewound
    warning, refused = [r.message for r in run.logs.query(level="WARNING")]
    assert "trainer.test() logs at step 0, but this run's series already reach step 2" in warning
    assert "series 'epoch': refused 1 row(s) whose step did not increase (first at step 0" in refused
    assert "call test() on the Trainer that ran fit(), which logs at the step where the fit ended" in warning


# ---- a fit resumed after validate() and test() -------------------------------------------------
def _checkpointed(loggers, callbacks, **kw) -> "pl.Trainer":
    """A Trainer saving ``last.ckpt`` at each epoch's end (the usual resume setup)."""
    every_epoch = pl.callbacks.ModelCheckpoint(every_n_epochs=1, save_last=True)
    return pl.Trainer(accelerator="cpu", devices=1, logger=loggers, callbacks=[*callbacks, every_epoch],
                      log_every_n_steps=1, num_sanity_val_steps=0, enable_progress_bar=False,
                      enable_model_summary=False, **kw)


def _fit_validate_test(tmp_path) -> tuple["pl.Trainer", DistlogLogger, Recording, Staged, str]:
    logger, rec = DistlogLogger(str(tmp_path), name="e", version="r"), Recording()
    trainer = _checkpointed([logger, rec], [logger.callback], max_epochs=2)
    model = Staged()
    trainer.fit(model, _data(3), _data(2))  # steps 0..5; last.ckpt after epoch 1: resumes at step 6
    trainer.validate(model, _data(2))  # both at step 6, where the fit ended
    trainer.test(model, _data(2))
    return trainer, logger, rec, model, str(tmp_path / "e" / "r" / "checkpoints" / "last.ckpt")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("trainer_kind", ["same Trainer", "new Trainer"])
def test_a_fit_resumed_after_validate_and_test_keeps_their_rows(tmp_path, distlog_warnings, trainer_kind):
    # the resume's first batch logs at step 6, where validate() and test() stored their rows:
    # no training wrote at step 6 or later, so nothing is rewound (before: every series was
    # rewound to step 5, 'tst' vanished and 'val' lost validate()'s row)
    trainer, logger, rec, model, last = _fit_validate_test(tmp_path)
    if trainer_kind == "same Trainer":
        trainer.fit_loop.max_epochs = 4
        trainer.fit(model, _data(3), _data(2), ckpt_path=last)
    else:  # another process would do this: a new logger with the run's version
        logger = DistlogLogger(str(tmp_path), name="e", version="r")
        _checkpointed([logger, rec], [logger.callback], max_epochs=4).fit(Staged(), _data(3), _data(2),
                                                                          ckpt_path=last)
    run = distlog.open_run(tmp_path / "e" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed"] * 4
    # what Lightning handed its loggers, at its steps, is what the run holds
    assert rec.values("tst") == [(6, 400.0)]  # the 4th evaluation (2 in the fit, validate, test)
    assert _rows(run, "tst") == [(6, 400.0, 1)]
    assert [(s, v) for s, v, _ in _rows(run, "val")] == rec.values("val")
    assert [s for s, _ in rec.values("val")] == [2, 5, 6, 8, 11]  # validate()'s at 6 kept
    assert [(s, v) for s, v, _ in _rows(run, "loss")] == rec.values("loss")
    assert [s for s, _, _ in _rows(run, "loss")] == list(range(12))
    # ``epoch`` at step 6: validate()'s, test()'s and the resumed first batch's (all 2), stored once
    assert [e for s, e in rec.values("epoch") if s == 6] == [2.0, 2.0, 2.0]
    assert _rows(run, "epoch") == _once_per_step(rec.values("epoch"))
    # how each attempt wrote, in run.json: the rule the resume kept the rows by
    assert [a["rewind"] for a in run.info.attempts] == [True, False, False, True]
    infos = [r.message for r in run.logs.query(level="INFO") if "resumed from a checkpoint" in r.message]
    assert len(infos) == 1 and "those are kept, nothing is rewound now" in infos[0], infos
    # nothing refused, nothing warned
    assert ([r.message for r in run.logs.query(level="WARNING")], distlog_warnings()) == ([], [])


class Crash(Exception):
    pass


class CrashingAt(Staged):
    """Raises at training batch ``at`` of its first epoch (after the earlier batches logged)."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def training_step(self, batch, batch_idx):
        if batch_idx == self.at:
            raise Crash("killed mid-epoch")
        self._log("loss", 1000.0 + self.global_step)  # the crashed attempt's own values
        return self.layer(batch[0]).pow(2).mean()


@pytest.mark.timeout(300)
def test_a_fit_that_crashed_past_the_checkpoint_after_evaluations_is_still_rewound(tmp_path):
    # fit, validate, test, then a resumed fit that fails after logging steps 6 and 7 (no
    # checkpoint of its own): resuming again from last.ckpt must drop the crashed attempt's
    # rows. Every series was rewound to step 5, the evaluations' rows at step 6 with them (no
    # row says which attempt wrote it); now the rows past step 5 written since the crashed fit
    # began go (each row's time against the attempt's start), and validate()'s and test()'s
    # rows at step 6, written before it, stay (stop 36)
    _, _, first, _, last = _fit_validate_test(tmp_path)
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    with pytest.raises(Crash):
        _checkpointed(logger, [logger.callback], max_epochs=4).fit(CrashingAt(2), _data(3), _data(2),
                                                                   ckpt_path=last)
    run = distlog.open_run(tmp_path / "e" / "r")
    assert [a["status"] for a in run.info.attempts][-1] == "failed"
    assert [(s, v) for s, v, _ in _rows(run, "loss")][-2:] == [(6, 1006.0), (7, 1007.0)]
    logger, rec = DistlogLogger(str(tmp_path), name="e", version="r"), Recording()
    _checkpointed([logger, rec], [logger.callback], max_epochs=3).fit(Staged(), _data(3), _data(2),
                                                                       ckpt_path=last)
    run = distlog.open_run(tmp_path / "e" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed"] * 3 + ["failed", "completed"]
    assert _rows(run, "loss") == [(s, float(s), 1) for s in range(9)]  # the crashed 1006, 1007 gone
    assert _rows(run, "tst") == [(6, 400.0, 1)] == [(s, v, 1) for s, v in first.values("tst")]
    # the fit's two, validate()'s at step 6 (kept), then the new fit's own (its first)
    assert first.values("val") == [(2, 10.0), (5, 20.0), (6, 30.0)] and rec.values("val") == [(8, 10.0)]
    assert [(s, v) for s, v, _ in _rows(run, "val")] == first.values("val") + rec.values("val")
    assert _rows(run, "epoch") == [(s, float(s // 3), 1) for s in range(9)]
    [rewound] = [r.message for r in run.logs.query(level="INFO") if "series rewound to step 5" in r.message]
    assert "the rows past it written from" in rewound and "any an evaluation appended before then are kept" in rewound


@pytest.mark.timeout(300)
def test_a_fit_resumed_from_an_earlier_checkpoint_after_evaluations_is_rewound(tmp_path):
    # the checkpoint of epoch 0 resumes at step 3: the first fit's rows 3..5 must go, so
    # every series is rewound to step 2 (test()'s row at step 6, after them, with them)
    logger, rec = DistlogLogger(str(tmp_path), name="e", version="r"), Recording()
    every_epoch = pl.callbacks.ModelCheckpoint(every_n_epochs=1, save_top_k=-1)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=[logger, rec], callbacks=[logger.callback, every_epoch],
                         log_every_n_steps=1, num_sanity_val_steps=0, enable_progress_bar=False,
                         enable_model_summary=False, max_epochs=2)
    model = Staged()
    trainer.fit(model, _data(3))
    trainer.test(model, _data(2))
    assert _rows(distlog.open_run(tmp_path / "e" / "r"), "tst") == [(6, 100.0, 1)]
    ckpt = tmp_path / "e" / "r" / "checkpoints" / "epoch=0-step=3.ckpt"
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    _checkpointed(logger, [logger.callback], max_epochs=2).fit(Staged(), _data(3), ckpt_path=str(ckpt))
    run = distlog.open_run(tmp_path / "e" / "r")
    assert _rows(run, "loss") == [(s, float(s), 1) for s in range(6)]
    assert "tst" not in run.metrics.keys()
    assert any("series rewound to step 2" in r.message for r in run.logs.query(level="INFO"))


def test_appended_after_reads_the_attempt_records():
    # the rule a resumed fit keeps rows by: walking back over the attempts that only appended,
    # the last one that could rewind says where the series ended; anything unsaid: unknown
    from distlog.run import _appended_after

    fit = {"rewind": True, "last_step": 5.0, "status": "completed"}
    ev = {"rewind": False, "last_step": 6.0, "status": "completed"}
    assert _appended_after([]) is None
    assert _appended_after([fit]) == 5.0
    assert _appended_after([fit, ev, ev]) == 5.0
    assert _appended_after([ev]) == float("-inf")  # no training ever wrote
    assert _appended_after([fit, ev, {**fit, "last_step": 8.0, "status": "failed"}, ev]) == 8.0
    assert _appended_after([fit, {"status": "interrupted"}, ev]) is None  # killed: how it wrote is unknown
    assert _appended_after([fit, {"status": "completed"}]) is None  # an older distlog's record
    assert _appended_after([{**fit, "last_step": None}, ev]) is None


def test_training_since_reads_the_attempt_records():
    # the time since which rows past a resume step may be a training's (stop 36): the start
    # of the earliest training that began when every row past that step was an evaluation's
    from distlog.run import _training_since

    def at(second, **record):
        return {"started": f"2026-12-04T08:00:{second:02d}.250000+00:00", **record}

    t = lambda second: 1796371200.25 + second  # noqa: E731 (2026-12-04T08:00:00.25Z)
    fit = at(0, rewind=True, last_step=11.0)
    ev = at(10, rewind=False, last_step=12.0)
    crashed = at(20, rewind=True, last_step=15.0)
    assert _training_since([fit, ev, crashed], 11.0) == t(20)  # the evaluation's row at 12 stays
    assert _training_since([fit, ev], 11.0) == t(0)  # (the keep-everything rule comes first)
    assert _training_since([fit, ev, crashed], 5.0) == t(0)  # resumed earlier: the fit's rows go too
    killed = {k: v for k, v in crashed.items() if k != "rewind"}  # killed: how it wrote is unsaid
    assert _training_since([fit, ev, killed], 11.0) == t(20)
    # an attempt before it unsaid: back to the one before which the fit's rows all were at most 11
    assert _training_since([fit, at(5), ev, crashed], 11.0) == t(5)
    assert _training_since([ev, crashed], 11.0) == t(20)  # before it, evaluations only
    assert _training_since([fit], 11.0) == t(0)
    assert _training_since([ev], 11.0) is None and _training_since([], 3.0) is None
    assert _training_since([{"rewind": True}], 3.0) is None  # no start recorded: everything goes


def test_a_logger_pickled_for_spawned_processes_takes_its_run_id_along(tmp_path, monkeypatch):
    """``strategy="ddp_spawn"`` pickles the logger for each stage it spawns: the run id is
    decided at the first pickling, so every stage opens one run and the script's own logger
    knows it (``version``, ``log_dir``). Each spawn's rank 0 chose a new id: fit, validate and
    test wrote three runs, and ``logger.version`` stayed None in the script."""
    import pickle

    for var in ("TORCHELASTIC_RUN_ID", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "DISTLOG_RUN_ID", "DISTLOG_RUN_NAME"):
        monkeypatch.delenv(var, raising=False)
    logger = DistlogLogger(str(tmp_path), name="e")
    assert logger.version is None
    first = pickle.loads(pickle.dumps(logger))  # (fit's spawn)
    again = pickle.loads(pickle.dumps(logger))  # (validate's, then test's)
    assert logger.version is not None and first.version == again.version == logger.version
    assert logger.log_dir == str(tmp_path / "e" / logger.version)
    first.experiment.metrics.log(step=0, loss=1.0)  # a spawned process opens the run
    first.finalize("success")
    assert distlog.open_run(tmp_path / "e" / logger.version).metrics.read("loss")["step"].tolist() == [0]
    named = DistlogLogger(str(tmp_path), name="e", version="mine")  # an id given stays
    assert pickle.loads(pickle.dumps(named)).version == "mine" == named.version


@pytest.mark.timeout(300)
def test_validate_after_a_spawned_fit_says_why_it_logs_at_step_0_and_what_fixes_it(tmp_path):
    """Under ``strategy="ddp_spawn"`` the script's Trainer keeps no step from the fit it
    spawned: ``validate()`` on it logs at step 0, and the warning told the user to call it "on
    the Trainer that ran fit()", which they had. A real spawned fit and validate."""
    from support.framework_runs import SCRIPTS, run_script

    root = tmp_path / "root"
    run_script([str(SCRIPTS / "lightning_spawn_stages.py"), str(root), "1"], tmp_path)
    run = distlog.open_run(root / "e" / "r")
    said = [r.message for r in run.logs.query(level="WARNING")]
    [stage] = [m for m in said if m.startswith("trainer.validate() logs at step 0")]
    assert 'under strategy="ddp_spawn" the script\'s Trainer keeps no step from a fit() it spawned' in stage
    assert 'use strategy="ddp"' in stage and "on the Trainer that ran fit()" not in stage
    # the values refused at step 0 are named in the run's log, not only on stderr
    assert any("series 'val_loss': refused 1 row(s)" in m for m in said), said
    assert _rows(run, "val_loss")[-1][0] == run.metrics.numpy("epoch")["step"][-1]  # the fit's rows kept
