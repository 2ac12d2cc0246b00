"""Accelerate, one process: a training logged with ``accelerator.log``, values logged after
``end_training``, then a new Accelerator resumed with ``load_state`` (and one that crashed
before it): every stored series against an oracle of the ``accelerator.log`` calls."""

import logging

import numpy as np
import pytest

pytest.importorskip("accelerate")
pytestmark = [pytest.mark.integrations, pytest.mark.timeout(300)]

import torch  # noqa: E402

import distlog  # noqa: E402
from distlog import report  # noqa: E402


class Session:
    """Accelerators logging to one run, with the oracle: per key, ``{step: value}`` of the
    calls a series keeps (``drop_after`` forgets a crashed attempt's calls past a checkpoint)."""

    def __init__(self, tmp_path):
        self.tmp_path, self.calls = tmp_path, []

    def accelerator(self):
        from accelerate import Accelerator

        from distlog.integrations.accelerate import DistlogTracker

        self.tracker = DistlogTracker(root=str(self.tmp_path), experiment="a", run_id="r")
        acc = Accelerator(log_with=self.tracker, cpu=True)
        acc.init_trackers("a", config={"lr": 0.1})
        return acc

    def log(self, acc, values, step, kept=True):
        if kept:
            self.calls.append((step, values))
        acc.log(values, step=step)

    def train(self, acc, start, stop, crash_at=None, offset=0.0):
        torch.manual_seed(0)
        model = torch.nn.Linear(2, 1)
        model, opt = acc.prepare(model, torch.optim.SGD(model.parameters(), lr=0.1))
        if start:
            acc.load_state(str(self.tmp_path / "ckpt"))
        for step in range(start, stop):
            if step == crash_at:
                raise RuntimeError("crashed mid-epoch")
            self.log(acc, {"loss": offset + step}, step)
            if step % 2:
                self.log(acc, {"eval_loss": offset + 10.0 + step}, step)
            if step == 5:
                acc.save_state(str(self.tmp_path / "ckpt"))

    def expected(self):
        out = {}
        for step, values in self.calls:
            for k, v in values.items():
                out.setdefault(k, {}).setdefault(step, float(v))
        return out


def _stored(run):
    return {k: dict(zip(map(int, run.metrics.numpy(k)["step"]), map(float, run.metrics.numpy(k)["value"])))
            for k in run.metrics.keys()}


def _first_training(tmp_path):
    s = Session(tmp_path)
    acc = s.accelerator()
    s.train(acc, 0, 6)
    acc.end_training()
    # after training: a test score, and the best evaluation's value logged again at its step
    # (eval_loss holds a row there): the latter reopened the run as an attempt that rewinds,
    # which dropped eval_loss's rows 3 and 5 and stored this one in their place
    s.log(acc, {"test_acc": 0.9}, 5)
    s.log(acc, {"eval_loss": 99.0}, 3, kept=False)
    s.tracker.close()
    return s


def test_values_logged_after_end_training_append_and_a_resumed_training_keeps_them(tmp_path, caplog):
    report.reset()  # (its rate limit)
    with caplog.at_level(logging.WARNING, logger="distlog"):
        s = _first_training(tmp_path)
    run = distlog.open_run(tmp_path / "a" / "r")
    assert _stored(run) == s.expected()
    said = [r.getMessage() for r in caplog.records if r.name.startswith("distlog")]
    assert any("'eval_loss': refused 1 row(s)" in m and "at step 3" in m for m in said), said
    acc = s.accelerator()
    s.train(acc, 6, 10)
    acc.end_training()
    run = distlog.open_run(tmp_path / "a" / "r")
    assert [(a["status"], a["rewind"]) for a in run.info.attempts] == [
        ("completed", True), ("completed", False), ("completed", True)]
    assert _stored(run) == s.expected()
    assert run.params == {"lr": 0.1}


def test_a_crashed_resumed_training_resumed_again(tmp_path):
    # the crashed attempt logged 6 and 7 (marked +1000): the next one writes every series it
    # wrote again from the checkpoint on, so each is rewound there; test_acc (after training) kept
    s = _first_training(tmp_path)
    acc = s.accelerator()
    with pytest.raises(RuntimeError, match="crashed"):
        s.train(acc, 6, 10, crash_at=8, offset=1000.0)
    s.tracker.session.close(ok=False, reason="crashed")
    s.calls = [(step, v) for step, v in s.calls if step <= 5]
    acc = s.accelerator()
    s.train(acc, 6, 10)
    acc.end_training()
    run = distlog.open_run(tmp_path / "a" / "r")
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed", "failed", "completed"]
    assert _stored(run) == s.expected()
    np.testing.assert_array_equal(run.metrics.numpy("test_acc")["step"], [5])


def test_a_registered_resume_point_rewinds_every_series_at_load_state(tmp_path):
    # stop 33 left: a series the resumed training had not logged again yet (val, logged at
    # steps 3 and 7 only) kept the killed attempt's row 7 past the checkpoint (step 5). With
    # register_for_checkpointing(tracker.resume_point), load_state rewinds every series there
    from accelerate import Accelerator

    from distlog.integrations.accelerate import DistlogTracker

    def accelerator(register=True):
        tracker = DistlogTracker(root=str(tmp_path), experiment="a", run_id="r")
        acc = Accelerator(log_with=tracker, cpu=True)
        acc.init_trackers("a")
        if register:
            acc.register_for_checkpointing(tracker.resume_point)
        return acc, tracker

    def train(acc, start, stop):
        model = acc.prepare(torch.nn.Linear(2, 1))
        if start:
            acc.load_state(str(tmp_path / "ckpt"))
        for step in range(start, stop):
            acc.log({"loss": float(step) + 1000 * bool(start)}, step=step)
            if step in (3, 7):
                acc.log({"val": 10.0 + step}, step=step)
            if step == 5:
                acc.save_state(str(tmp_path / "ckpt"))
        del model

    acc, tracker = accelerator()
    with pytest.raises(RuntimeError):
        train(acc, 0, 9)  # killed at step 8 (after val's row 7)
        raise RuntimeError("node lost")
    tracker.session.close(ok=False, reason="killed")
    acc, tracker = accelerator()
    train(acc, 6, 7)  # resumed: one step, then stopped again before step 7
    acc.end_training()
    run = distlog.open_run(tmp_path / "a" / "r")
    assert _stored(run) == {"loss": {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0, 5: 5.0, 6: 1006.0},
                            "val": {3: 13.0}}
    # and by hand, before the first row; after it, a clear error
    acc, tracker = accelerator(register=False)
    tracker.resume_at(4)
    acc.log({"loss": 2004.0}, step=5)
    with pytest.raises(distlog.RunStateError, match="before the first accelerator.log"):
        tracker.resume_at(3)
    acc.end_training()
    assert _stored(distlog.open_run(tmp_path / "a" / "r")) == {
        "loss": {0: 0.0, 1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0, 5: 2004.0}, "val": {3: 13.0}}


def test_save_state_commits_the_rows_its_checkpoint_covers_before_a_hard_kill(tmp_path):
    """Session 46 review: the rows before save_state stayed in the writer (commit every 10 s);
    a job killed after the checkpoint lost them for good, since its resume starts past them."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os, sys, torch
        from accelerate import Accelerator
        from distlog.integrations.accelerate import DistlogTracker
        root = sys.argv[1]
        tracker = DistlogTracker(root=root, experiment="a", run_id="r")
        acc = Accelerator(log_with=tracker, cpu=True)
        acc.init_trackers("a")
        acc.register_for_checkpointing(tracker.resume_point)
        model = acc.prepare(torch.nn.Linear(2, 1))
        for step in range(8):
            acc.log({"loss": float(step)}, step=step)
            if step == 4:
                acc.save_state(os.path.join(root, "ckpt"))
        os._exit(1)  # (killed: no close, no exit hook)
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr[-2000:]
    run = distlog.open_run(tmp_path / "a" / "r")
    assert run.metrics.numpy("loss")["step"].tolist()[:5] == [0, 1, 2, 3, 4]


def test_a_commit_that_fails_at_save_state_is_said_and_the_checkpoint_goes_on(tmp_path, caplog, monkeypatch):
    """A review: the commit added to save_state raised a store's error out of the
    checkpoint itself: the checkpoint matters more than the rows (the writer keeps them)."""
    from accelerate import Accelerator

    from distlog.errors import WriterError
    from distlog.integrations.accelerate import DistlogTracker

    tracker = DistlogTracker(root=str(tmp_path), experiment="a", run_id="r")
    acc = Accelerator(log_with=tracker, cpu=True)
    acc.init_trackers("a")
    acc.register_for_checkpointing(tracker.resume_point)
    acc.log({"loss": 1.0}, step=0)

    def down(*a, **k):
        raise WriterError("writing to the store failed: the store is down")

    monkeypatch.setattr(tracker.session.run.metrics, "commit", down)
    with caplog.at_level(logging.WARNING, logger="distlog"):
        acc.save_state(str(tmp_path / "ckpt"))
    assert (tmp_path / "ckpt").is_dir()
    assert "accelerate save_state: the run's rows could not be committed before this checkpoint" in caplog.text
    monkeypatch.undo()
    acc.end_training()
