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
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import RunStateError
from ._session import RunSession, require, world_size

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

    # ---- every rank --------------------------------------------------------------------------
    def open(self) -> Any:
        """Open the run: a collective, every rank calls it. Returns the ``Experiment``."""
        self.session.open()
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
            self.session.open()

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


def register() -> None:
    """Make ``Accelerator(log_with="distlog")`` create a ``DistlogTracker`` (one process)."""
    reg = getattr(_acc.tracking, "register_tracker_class", None)
    if reg is not None and "distlog" not in getattr(_acc.tracking, "LOGGER_TYPE_TO_CLASS", {}):
        reg(DistlogTracker)


register()
