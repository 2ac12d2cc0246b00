"""Accelerate: ``Accelerator(log_with=DistlogTracker(...))``.

``Accelerator.init_trackers``, ``log`` and ``end_training`` reach trackers on the main process
only, so on their own they cannot open a run on every rank (a collective) nor reduce other
ranks' values. What works:

* one process: nothing more; ``init_trackers`` opens the run, ``accelerator.log`` writes rows,
  ``end_training`` closes it (``log_with="distlog"`` works too: the class is registered).
  ``accelerator.log`` after ``end_training`` reopens the run as an attempt that only appends
  (a value at a step its series already holds is refused by the writer, with a warning on
  stderr, ``distlog: scalars series 'KEY': refused 1 row(s) whose step did not increase``;
  the run's own log does not record it).
* several ranks: call ``tracker.open()`` on every rank after ``init_trackers`` (one run folder,
  every rank's text log), ``tracker.collect(...)`` / ``tracker.flush()`` on every rank for rows
  reduced over every rank's values, and ``tracker.close()`` on every rank before
  ``accelerator.end_training()`` (which destroys the process group). ``accelerator.log``
  keeps its meaning: rank 0's values, written at once without communication.

Resuming from a checkpoint: ``accelerator.register_for_checkpointing(tracker.resume_point)``
once, and ``save_state`` stores the run's last step with the checkpoint; ``load_state`` then
drops every stored row after it from every series at once (without it, a series the resumed
training has not logged again yet keeps the killed attempt's rows past the checkpoint until it
does). ``tracker.resume_at(step)`` does the same by hand, before the attempt's first row.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import RunStateError
from ._session import RunSession, commit_for_checkpoint, require, world_size

_acc = require("accelerate", "accelerate")
from accelerate.tracking import GeneralTracker  # noqa: E402


class DistlogTracker(GeneralTracker):
    """A ``GeneralTracker`` writing one distlog run (``<root>/<experiment>/<run_id>/``).

    ``run_name`` is the project name ``init_trackers`` passes when the tracker is created by
    name; it becomes the experiment unless ``experiment`` is given. ``root`` defaults to
    ``DISTLOG_ROOT`` or ``./runs``; other options go to ``distlog.get_logger``.
    """

    name = "distlog"
    requires_logging_directory = False
    main_process_only = False  # accelerate then calls us wherever it calls trackers at all

    def __init__(self, run_name: str | None = None, root: Any = None, experiment: str | None = None,
                 run_id: str | None = None, *, tags: list[str] | None = None, **options: Any) -> None:
        super().__init__()
        root = root if root is not None else os.environ.get("DISTLOG_ROOT", "./runs")
        self.session = RunSession(root, experiment or run_name, run_id, tags, **options)
        self.last_reduced: Any = None
        self._resume_step: int | float | None = None  # for the run's opening (``resume_at`` before it)
        #: ``accelerator.register_for_checkpointing(tracker.resume_point)``: checkpoints carry
        #: the run's last step, and ``load_state`` rewinds the stored series to it
        self.resume_point = _ResumePoint(self)

    @property
    def tracker(self) -> Any:
        """The distlog ``Experiment``."""
        return self.session.exp

    def _need_open(self, what: str) -> None:
        if self.session.is_open:
            return
        if world_size() == 1:
            # after ``end_training`` (values logged once training is over: a test score, the
            # best step's metrics) an attempt that only appends, as ``RunSession`` reopens for
            # params: one that rewinds would drop every stored row of a key from the step logged on
            self.session.open(append=self.session.opened > 0)
            return
        raise RunStateError(
            f"DistlogTracker.{what}() needs the run open on every rank; with several ranks call "
            "tracker.open() on every rank (after accelerator.init_trackers(...)) first. "
            "Accelerator(log_with=\"distlog\") makes the tracker on the main process only: make it "
            "on every rank instead, tracker = DistlogTracker(root=..., experiment=...), and pass "
            "Accelerator(log_with=tracker)")

    def resume_at(self, step: int | float) -> None:
        """This attempt resumes from a checkpoint taken at ``step``: stored rows after it are
        dropped from every series (on every rank: call it on every rank, as ``load_state``
        runs). Before the attempt's first row: after it, the rows are already rewound where
        they were written again, and this raises."""
        if not self.session.is_open:
            self._resume_step = step
        elif not self.session.set_resume_step(step):
            raise RunStateError(
                f"DistlogTracker.resume_at({step}) after this attempt already wrote rows: call "
                "accelerator.load_state(...) (or resume_at) before the first accelerator.log / "
                "tracker.flush of the resumed training")

    # ---- every rank --------------------------------------------------------------------------
    def open(self) -> Any:
        """Open the run: a collective, every rank calls it. Returns the ``Experiment``."""
        self.session.open(resume_step=self._resume_step)
        return self.session.exp

    def collect(self, step: int | None = None, **values: Any) -> None:
        """Collect this rank's values (local); reduced over every rank at the next ``flush``."""
        self._need_open("collect")
        self.session.collect(step, values, tolerant=False)

    def flush(self) -> Any:
        """Reduce what every rank collected (a collective) and write the rows; returns the
        reduced statistics (``distlog.integrations.tqdm_postfix(bar, reduced)`` shows them)."""
        self._need_open("flush")
        self.last_reduced = self.session.flush(tolerant=False)  # called by the script: raise
        return self.last_reduced

    def close(self) -> None:
        """Close the run with a final flush (every rank, before ``accelerator.end_training()``)."""
        self.session.close(ok=True)

    # ---- GeneralTracker (main process only, as Accelerate calls it) --------------------------
    def start(self) -> None:
        if world_size() == 1:
            self.session.open(resume_step=self._resume_step)

    def store_init_configuration(self, values: dict) -> None:
        self.session.add_params(values)  # kept until the run opens

    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        """``accelerator.log``: this process's values, written now (no reduction). Values
        distlog refuses (a repeated step for a key) are dropped with a record in the log."""
        self._need_open("log")
        self.session.log(step, values)

    def finish(self) -> None:
        """``accelerator.end_training``: closes the run in one process; with several ranks
        ``close()`` must already have run on every rank (this rank alone cannot flush)."""
        if world_size() == 1:
            self.session.close(ok=True)
        elif self.session.is_open:
            self.session.run.logs.warning(
                "accelerator.end_training() with the run still open: call tracker.close() on every "
                "rank before it; the run is closed without a final flush")
            self.session.close(ok=False, reason="end_training() before tracker.close()")


class _ResumePoint:
    """The tracker's part of an Accelerate checkpoint (``register_for_checkpointing``): at
    ``save_state`` the run's rows are committed and its last step kept; ``load_state`` resumes
    the run there (``resume_at``)."""

    def __init__(self, tracker: DistlogTracker) -> None:
        self._tracker = tracker

    def state_dict(self) -> dict[str, Any]:
        session = self._tracker.session
        if session.is_open:  # (save_state asks every process: this rank's rows, no collective)
            commit_for_checkpoint(session.run, "accelerate save_state")
        step = session.run.metrics.latest_step if session.is_open else None
        if step is not None and float(step).is_integer():
            step = int(step)  # (as logged: a fractional step stays one)
        return {"distlog_step": step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        step = state.get("distlog_step")
        if step is not None:
            self._tracker.resume_at(step)


def register() -> None:
    """Make ``Accelerator(log_with="distlog")`` create a ``DistlogTracker`` (one process)."""
    reg = getattr(_acc.tracking, "register_tracker_class", None)
    if reg is not None and "distlog" not in getattr(_acc.tracking, "LOGGER_TYPE_TO_CLASS", {}):
        reg(DistlogTracker)


register()
