"""A run's background writers of row tables on this rank (scalars, histograms, telemetry).

Rank 0 has one writer, of the run's series (reduced rows and its own values). Another rank
has one for the values it logs itself (its per-rank series), opened only if it logs any. The
run says how a writer is opened (which tables, where, rewound to which step); this object
opens each on first use and answers for both: failed, raise the error, commit, close.
"""

from __future__ import annotations

import threading
from typing import Callable

from ..errors import RunStateError, WriterError
from .rowstore import BackgroundWriter


class RunWriters:
    def __init__(self, rank: int, open_writer: Callable[[bool, float | None, bool, float | None], BackgroundWriter],
                 resume_step: float | None = None) -> None:
        """``open_writer(main, resume_step, rewind, since)``: a new writer, of the run's series
        (``main``, rank 0) or of this rank's own values, its stored series rewound to
        ``resume_step`` (``since``: only rows written since that wall time; and, with
        ``rewind``, each again at its first new row)."""
        self.rank = rank
        self._open_writer = open_writer
        #: the step stored series rewind to when a writer opens (a resumed attempt's
        #: checkpoint step); may change until the first writer opens
        self.resume_step = resume_step
        #: with ``resume_step``: the wall time since which rows past it are dropped (rows past
        #: it written before stay: evaluations appended them); None: every row past it
        self.resume_since: float | None = None
        #: False: an attempt that only appends (an evaluation after training); its series are
        #: not rewound at their first new row. May change until the first writer opens
        self.rewind = True
        #: the writers once opened (None before): rank 0's writer of the run's series, and
        #: another rank's writer of its own values
        self.main_writer: BackgroundWriter | None = None
        self.rank_writer: BackgroundWriter | None = None
        self._local: BackgroundWriter | None = None
        # a writer opens once, whichever thread asks first: log() may be called from any
        # thread (a system monitor's) while the training thread flushes; two writers opened
        # at once each took part of the rows, and the commit of one lost the other's
        self._opening = threading.Lock()
        #: closed with the run: no writer opens after that (one opened by a thread's call
        #: racing the close was never closed, and its rows went nowhere, or late into a run
        #: recorded complete)
        self.closed = False

    def main(self) -> BackgroundWriter:
        """Rank 0's writer of the run's series (reduced rows and rank 0's own values)."""
        w = self.main_writer
        if w is None:
            with self._opening:
                self._check_open()
                if self.main_writer is None:
                    self.main_writer = self._open_writer(True, self.resume_step, self.rewind, self.resume_since)
                w = self.main_writer
        return w

    def local(self) -> BackgroundWriter:
        """This rank's writer for values it logs itself (rank 0: the main writer)."""
        w = self._local
        if w is None:
            if self.rank == 0:
                w = self._local = self.main()
            else:
                with self._opening:
                    self._check_open()
                    if self._local is None:
                        self.rank_writer = self._open_writer(False, self.resume_step, self.rewind,
                                                             self.resume_since)
                        self._local = self.rank_writer
                    w = self._local
        return w

    def _check_open(self) -> None:
        if self.closed:
            raise RunStateError("this run has ended (it closed while this call was made): its "
                                "values would be stored nowhere; log inside the run, or in the next one")

    @property
    def opened(self) -> bool:
        """Whether a writer was opened (a row was handed over) in this attempt."""
        return self.main_writer is not None or self.rank_writer is not None

    def _writers(self) -> tuple[BackgroundWriter, ...]:
        return tuple(w for w in (self.main_writer, self.rank_writer) if w is not None)

    def failed(self) -> bool:
        """Whether a writer holds an error not raised yet (checked at every flush: no tuple)."""
        m, r = self.main_writer, self.rank_writer
        return (m is not None and m._error is not None) or (r is not None and r._error is not None)

    def raise_error(self, every_rank: bool = False) -> None:
        """Raise a writer's pending error; with ``every_rank`` (the flush learned that some
        rank's writer failed) raise even when this rank's writers are fine."""
        for w in self._writers():
            w.raise_pending()
        if every_rank:
            raise WriterError("a rank's background writer failed (see that rank's log); "
                              "rows stay buffered and are retried at the next flush")

    def commit(self, timeout: float | None = 300.0) -> None:
        """Wait until this rank's writers have committed everything enqueued so far."""
        for w in self._writers():
            w.flush(wait=True, timeout=timeout)

    def close(self) -> list[WriterError]:
        """Commit and finalize every open writer (this rank's own first); the errors, in order."""
        errors: list[WriterError] = []
        with self._opening:  # (a writer opening now finishes first, and is closed below)
            self.closed = True
        for w in (self.rank_writer, self.main_writer):
            if w is not None:
                try:
                    w.close(finalize=True)
                except WriterError as e:
                    errors.append(e)
        return errors
