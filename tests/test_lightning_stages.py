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
    assert [r.message for r in run.logs.query(level="WARNING")] == []
    said = distlog_warnings()
    assert len(said) == 1 and "series 'tst': refused 1 row(s)" in said[0] and "at step 3" in said[0], said


def test_a_new_trainer_evaluating_after_fit_says_what_came_what_was_expected_and_how_to_fix(tmp_path):
    logger = DistlogLogger(str(tmp_path), name="e", version="r")
    model = Staged()
    _trainer(logger, [logger.callback], max_epochs=1).fit(model, _data(3))
    _trainer(logger, [logger.callback]).test(model, _data(2))  # a new Trainer: it logs at step 0
    run = distlog.open_run(tmp_path / "e" / "r")
    assert _rows(run, "tst") == [(0, 100.0, 1)]  # a key the run did not hold: stored, at step 0
    assert _rows(run, "loss") == [(s, float(s), 1) for s in range(3)]  # nothing rewound
    [warning] = [r.message for r in run.logs.query(level="WARNING")]
    assert "trainer.test() logs at step 0, but this run's series already reach step 2" in warning
    assert "call test() on the Trainer that ran fit(), which logs at the step where the fit ended" in warning
