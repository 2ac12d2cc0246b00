"""Lightning: ``Trainer(logger=DistlogLogger(...), callbacks=[logger.callback])``.

How the run reaches every rank: Lightning touches ``logger.experiment`` on every rank in its
setup hook, after the process group exists; that access opens the distlog run (a collective).
``log_metrics`` is called by Lightning on every rank with that rank's own values (the built-in
loggers throw away all but rank 0's): here they are *collected*, and flushed at symmetric
points so each row is reduced over every rank's values with distlog's two collectives instead
of one ``sync_dist`` collective per metric. ``log_metrics`` only collects (a rank may log what
the others do not: ``rank_zero_only=True``); ``logger.callback`` flushes at points decided from
what every rank knows alike, so a flush window never holds values Lightning logged at two
steps: when the step Lightning logged at moves on, every ``flush_every_n_steps`` optimizer
steps, after validation and testing, before a checkpoint and when training ends. The ``epoch``
entry Lightning adds to each call is kept once per step.

``self.logger.experiment`` inside a ``LightningModule`` is the distlog ``Experiment``:
``self.logger.experiment.metrics("train").collect(loss=loss.detach())`` in ``training_step``
collects at the step Lightning logs the batch at (``trainer.global_step`` with one optimizer;
with several, in manual optimization, the batches that stepped), with no host synchronisation
for CUDA tensors.

Attempts: every ``fit`` / ``validate`` / ``test`` call is one attempt of the same run. A fit
rewinds what it writes again: resuming with ``version=<run id>`` (Lightning's convention for
continuing a logger's version) and ``trainer.fit(..., ckpt_path=...)`` rewinds the series to
the checkpoint's step, so no step appears twice, unless only evaluations wrote at that step
or later (``validate()`` / ``test()`` after the fit that saved the checkpoint, at the step
where it ended): their rows are kept (see ``DistlogCallback._rewind``); a fit from scratch
into an existing run replaces each series from its first step. ``validate`` / ``test`` /
``predict`` only append: nothing stored is dropped, and a value at a step its series already has is refused with a
warning (a new ``Trainer`` logs them at step 0; the ``Trainer`` that ran ``fit`` logs them at
the step the fit reached, every evaluation after it at that one step: their ``epoch`` is kept
once there, and a key a second evaluation logs there again is refused).

``Trainer(fast_dev_run=...)`` suppresses logging: Lightning swaps every logger for its
``DummyLogger`` and never finalizes ours, so no distlog run is opened (a run the script opened
itself is closed when the fit ends).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from typing import Any, Mapping

from ..launcher import launcher_run_id
from ..names import check_name
from ..run import new_run_id
from ._session import RunSession, commit_for_checkpoint, require


def _pick_package() -> tuple[str, ...]:
    """``lightning.pytorch`` and ``pytorch_lightning`` are separate class hierarchies: subclass
    the one the program already imported (``lightning.pytorch`` when neither or both are)."""
    if "pytorch_lightning" in sys.modules and "lightning.pytorch" not in sys.modules:
        return ("pytorch_lightning", "lightning.pytorch")
    return ("lightning.pytorch", "pytorch_lightning")


_pl = require("lightning", *_pick_package())
Logger = _pl.loggers.Logger
Callback = _pl.Callback

_LOG_CHECKPOINTS = (False, True, "all")


class DistlogLogger(Logger):
    """A Lightning ``Logger`` writing one distlog run (``<root>/<name>/<version>/``).

    * ``root``: a path or URL (``s3://...``), or a ``distlog.Experiment``; storage options as
      for ``distlog.get_logger``. ``name`` is the experiment, ``version`` the run id
      (None: the launcher's id or a new one, agreed by every rank).
    * ``log_checkpoints``: ``True`` or ``"all"`` stores each checkpoint file that
      ``ModelCheckpoint`` saves as an artifact under ``checkpoints/`` (content-addressed:
      identical bytes are stored once); ``False`` (default) stores none.
    * ``flush_every_n_steps``: how often ``callback`` reduces (default: the Trainer's
      ``log_every_n_steps``).
    * ``prefix``: a namespace for every key this logger stores (``prefix="train"``: ``loss``
      → ``train/loss``), as Lightning's loggers prefix theirs (``train-loss`` there).
    """

    def __init__(self, root: Any = "./runs", name: str | None = None, version: str | int | None = None, *,
                 tags: list[str] | None = None, log_checkpoints: bool | str = False,
                 flush_every_n_steps: int | None = None, prefix: str = "", **options: Any) -> None:
        super().__init__()
        if log_checkpoints not in _LOG_CHECKPOINTS:
            raise ValueError(f"log_checkpoints must be one of {_LOG_CHECKPOINTS}; got {log_checkpoints!r}")
        if flush_every_n_steps is not None and (not isinstance(flush_every_n_steps, int) or flush_every_n_steps < 1):
            raise ValueError(f"flush_every_n_steps must be a positive int or None; got {flush_every_n_steps!r}")
        self._root = root
        version = None if version is None else str(version)  # Lightning allows int versions
        self._session_args = (root, name, version, tags, options)
        self._session_obj: RunSession | None = None
        self._log_checkpoints = log_checkpoints
        self._logged_ckpts: dict[str, tuple[float, int]] = {}
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str (a namespace such as 'train'), got {type(prefix).__name__}")
        namespace = prefix.strip("/")
        if namespace:  # a name no key can take (' train', '.x') would drop every value, warned per call
            check_name(namespace, "metrics namespace", allow_slash=True)
        self._prefix = prefix  # as given (the callback's state key holds it)
        self._key_prefix = f"{namespace}/" if namespace else ""  # a namespace, not glued on
        self._warned = False
        self.callback = DistlogCallback(self, flush_every_n_steps)

    @property
    def _session(self) -> RunSession:
        if self._session_obj is None:  # made on first use: a fresh logger pickles (ddp_spawn)
            root, name, version, tags, options = self._session_args
            self._session_obj = RunSession(root, name, version, tags, **options)
        return self._session_obj

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        session = state.pop("_session_obj")
        if session is not None and session.is_open:
            raise TypeError("a DistlogLogger with an open run cannot be pickled; pass it to the "
                            "Trainer before the run starts (ddp_spawn pickles it then)")
        state["_session_obj"] = None
        root, name, version, tags, options = self._session_args
        if session is not None:  # keep what was decided (run id) without the live objects
            version = session.run_id
        if version is None:
            # decided here, once (ddp_spawn pickles the logger for each stage it spawns): every
            # stage's processes open this one run, and this process knows it (``version``,
            # ``log_dir``). Each spawn's rank 0 chose a new id, never sent back: fit, validate
            # and test wrote three runs, and the script's logger knew none of them
            version = launcher_run_id() or new_run_id()
            self._session_args = (root, name, version, tags, options)
            if session is not None:
                session.run_id = version
        state["_session_args"] = (root, name, version, tags, options)
        return state

    # ---- Lightning's Logger interface ------------------------------------------------------
    @property
    def name(self) -> str:
        return self._session.experiment_name

    @property
    def version(self) -> str | None:
        """The run id (None until the run is opened, unless given)."""
        return self._session.run_id

    @property
    def save_dir(self) -> str | None:
        """The root, as given (Lightning places checkpoints in ``save_dir/name/version``)."""
        root = self._root
        if not isinstance(root, str):
            url = self._session.exp.storage.url
            return url[len("file://"):] if url.startswith("file://") else url
        return root

    @property
    def root_dir(self) -> str | None:
        return None if self.save_dir is None else os.path.join(self.save_dir, self.name)

    @property
    def log_dir(self) -> str | None:
        """The run folder ``save_dir/name/version`` (``ModelCheckpoint`` saves under it)."""
        if self.save_dir is None or self.version is None:
            return None
        return os.path.join(self.save_dir, self.name, str(self.version))

    @property
    def experiment(self) -> Any:
        """The distlog ``Experiment`` with the run open. The first access opens the run: a
        collective, which Lightning makes on every rank in its setup hook."""
        self._session.open()
        return self._session.exp

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Merge into the run's params (``Namespace``, ``AttributeDict`` and dicts)."""
        if not isinstance(params, Mapping):
            params = vars(params) if hasattr(params, "__dict__") else {"hparams": params}
        self._session.add_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Collect this rank's values at ``step``; they are reduced over every rank at the next
        flush of ``logger.callback``, which flushes at points every rank reaches together (a
        rank may log what the others do not: ``self.log(..., rank_zero_only=True)``).

        Without the callback in the Trainer, values already collected are flushed when
        ``step`` moves off their step (a collective), so every rank must log the same steps."""
        session = self._session
        cb = self.callback
        if cb._trainer is None and not session.opened:
            # no Trainer runs to open the run (its setup hook does): this call opens it (a
            # collective, as the flushes at step changes below are). Values kept for a run that
            # never opened were lost at finalize, and steps kept until it opened shared a row
            session.open()
        if step is not None and cb._trainer is None:
            # no Trainer running (none in use, or after its fit): a row per step. A value after
            # the run closed reopens it (``_collect``): a step change then has nothing to flush
            step = int(step)
            if session.is_open and cb._log_step is not None and step != cb._log_step:
                cb._flush(None)
            cb._log_step = step
        elif step is not None and session.is_open:
            step = int(step)
            if getattr(cb._trainer, "evaluating", False):
                # a validation/test batch's ``on_step`` values come at Lightning's count of
                # evaluation batches, not at a training step: as that step they would share a
                # window with the training step's values (a row at the wrong step, or refused).
                # They join the evaluation's row at the step its epoch values are logged at
                step = cb.trainer_step()
            elif cb._batch_step is not None and step > cb._batch_step:
                # logged at the next batch's step before the callback's on_train_batch_start
                # (another callback's hook): held until that flush, which writes this step's row
                cb._held.append((step, metrics))
                return
        self._collect(step, metrics)
        if cb._trainer is None and not cb._served and not self._warned and session.is_open:
            self._warned = True
            session.run.logs.warning(
                "DistlogLogger's callback is not in the Trainer: rows are written when Lightning "
                "logs at a new step and when the fit ends; checkpoints do not commit them and a "
                "resumed fit does not rewind the series. Pass Trainer(..., callbacks=[logger.callback])")

    def _collect(self, step: int | None, metrics: Mapping[str, float]) -> None:
        cb = self.callback
        if step is not None and "epoch" in metrics:
            if cb._epoch_step == step:
                # Lightning adds the epoch to each call: validation's and the training epoch's
                # end at one step would give that step's ``epoch`` row twice; so would a second
                # evaluation on the Trainer that ran fit (each logs at the step the fit ended)
                metrics = {k: v for k, v in metrics.items() if k != "epoch"}
            else:
                cb._epoch_step = step
        self._session.collect(step, metrics, self._key_prefix)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Not supported (distlog stores no model graphs); a no-op."""

    def save(self) -> None:
        """Nothing to do: rows reach the store from distlog's background writer."""

    def finalize(self, status: str) -> None:
        """Close the run: ``"success"`` → ``completed`` (a final flush on every rank, as
        Lightning calls this on every rank); ``"finished"`` (Lightning's SLURM auto-requeue
        handler, on every rank) → ``preempted``, with the final flush; anything else →
        ``failed`` without collectives. Values logged after it reopen the run (see
        ``RunSession.collect``)."""
        if status in ("success", "finished"):
            self._session.close(ok=True, preempted=status == "finished")
        else:
            self._session.close(ok=False, reason=f"Lightning finalized the run with status {status!r}",
                                exc=self.callback._exception)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Store the checkpoints ``ModelCheckpoint`` just wrote (rank 0, when asked)."""
        if not self._log_checkpoints or not self._session.is_open:
            return
        paths = [getattr(checkpoint_callback, "last_model_path", ""),
                 getattr(checkpoint_callback, "best_model_path", "")]
        paths += list(getattr(checkpoint_callback, "best_k_models", {}) or {})
        files = self._session.run.files("checkpoints")
        for path in dict.fromkeys(p for p in paths if p):
            try:
                st = os.stat(path)
            except OSError:
                continue  # removed by top-k, or not on a local filesystem
            if self._logged_ckpts.get(path) == (st.st_mtime, st.st_size):
                continue
            files.log_file(os.path.basename(path), path, step=self.callback.trainer_step())
            self._logged_ckpts[path] = (st.st_mtime, st.st_size)

    # ---- distlog extras ---------------------------------------------------------------------
    def collect(self, step: int | None = None, **values: Any) -> None:
        """Collect values on this rank (the pattern for ``training_step``); reduced at the next flush."""
        self._session.collect(step, values, self._key_prefix, tolerant=False)

    def flush(self) -> Any:
        """Reduce now (a collective: every rank must call it); returns the reduced statistics."""
        self.callback._log_step = None
        return self._session.flush(tolerant=False)


class DistlogCallback(Callback):
    """Flushes a ``DistlogLogger`` at points every rank reaches together, and keeps the run
    id and step in Lightning checkpoints so a resumed fit rewinds the series.

    Every flush decision depends on Lightning's steps, logging schedule and hooks only (never
    on which values a rank holds), so every rank flushes at the same points: when the step
    Lightning logged at moves on, every ``flush_every_n_steps`` optimizer steps (for values collected directly
    in ``training_step``, whose rows merge those steps), after validation and testing, before
    a checkpoint and when training ends."""

    def __init__(self, logger: DistlogLogger, flush_every_n_steps: int | None = None) -> None:
        self._logger = logger
        self._every_n_steps = flush_every_n_steps  # as given (None: each Trainer's log_every_n_steps)
        self._every = 1  # the period of the Trainer being served (set in setup)
        self._trainer: Any = None  # the Trainer whose stage is under way (None between stages)
        self._served = False  # a Trainer logged to this logger (values after it: no warning)
        self._exception: BaseException | None = None
        self._log_step: int | None = None  # without a Trainer: the step of log_metrics values
        self._batch_step: int | None = None  # the logging step of the training batch under way
        self._logs_due = False  # Lightning logs at _batch_step before the next batch (every rank)
        self._held: list[tuple[int, Mapping[str, Any]]] = []  # values logged at the next batch's step
        self._epoch_step: int | None = None  # the step of the last ``epoch`` value collected
        self._ended_at: int | None = None  # the logging step where this logger's last stage ended
        self._period_start: int | None = None  # the logging step of the last periodic flush
        self._serving = True  # the logger is one of the Trainer's (not swapped out: fast_dev_run)
        self._resuming = False  # a fit from a checkpoint whose first batch has not started
        self._sanity_mark: Any = None  # where the collected values ended when the sanity check began
        self.last_reduced: Any = None
        #: ``fn(reduced)`` called on rank 0 after each flush (e.g. a tqdm postfix feed)
        self.on_flush: Any = None

    @property
    def state_key(self) -> str:
        # one per logger (Lightning refuses two stateful callbacks with one key): where its
        # runs go. Not the run id, which a resumed fit may pass while the checkpoint was saved
        # with none: the key must be the same to find the state again
        root = self._root_as_given()
        if "://" not in root:  # one folder, however it was written (relative, absolute, ~)
            root = os.path.abspath(os.path.expanduser(root))
        return self._generate_state_key(root=root, name=self._logger._session_args[1], prefix=self._logger._prefix)

    @property
    def _legacy_state_key(self) -> str:  # type: ignore[override]
        # the key of checkpoints saved before ``state_key`` made the root absolute (the root
        # as given): Lightning looks the state up under it when ``state_key`` finds none
        return self._generate_state_key(root=self._root_as_given(), name=self._logger._session_args[1],
                                        prefix=self._logger._prefix)

    def _root_as_given(self) -> str:
        root = self._logger._root
        return os.fspath(root) if isinstance(root, (str, os.PathLike)) else type(root).__name__

    def trainer_step(self) -> int | None:
        """The step Lightning logs at now (see ``_logging_step``); None without a Trainer."""
        return None if self._trainer is None else self._logging_step(self._trainer)

    def _flush(self, trainer: Any) -> None:
        session = self._logger._session
        if not self._serving or not session.is_open or (trainer is not None and trainer.sanity_checking):
            return
        self._log_step = None
        self.last_reduced = reduced = session.flush()
        if reduced is not None and self.on_flush is not None and (trainer is None or trainer.is_global_zero):
            self.on_flush(reduced)

    @staticmethod
    def _logging_step(trainer: Any) -> int:
        """The step Lightning logs the coming batch's values at: the batches that stepped an
        optimizer. ``trainer.global_step`` counts optimizer steps instead, which is more than
        that with several optimizers (manual optimization): the rows' steps are Lightning's."""
        loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
        return int(getattr(loop, "_batches_that_stepped", trainer.global_step))

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if self._trainer is None and self._log_step is not None:
            # values logged between stages (after a fit, with no Trainer running) make their
            # own row before this stage's values come (every rank logged them, as documented)
            self._flush(None)
        self._trainer = trainer
        self._every = self._every_n_steps or max(1, int(trainer.log_every_n_steps or 1))
        self._log_step = self._period_start = self._batch_step = None
        if stage == "fit":  # a fit may rewind the series: it writes its ``epoch`` rows again. An
            # evaluation keeps the step of the last one: validate() then test() on the Trainer
            # that ran fit() both log at the step the fit ended, whose ``epoch`` is stored once
            self._epoch_step = None
        self._logs_due, self._held = False, []
        self._serving = any(lg is self._logger for lg in trainer.loggers)
        if not self._serving:
            self._not_serving(trainer)
            return
        self._logger.experiment  # noqa: B018 - opens the run if Lightning has not yet
        if stage != "fit":  # validate / test / predict add rows: nothing stored is rewound
            self._append_only(trainer, str(getattr(stage, "value", stage)))

    def _not_serving(self, trainer: Any) -> None:
        """The Trainer does not log to this logger: ``fast_dev_run`` (and the tuner) swap every
        logger for Lightning's ``DummyLogger``, which suppresses logging, and Lightning never
        finalizes ours. No run is opened then (as Lightning's own loggers write nothing); one the
        script opened itself is closed at teardown, where Lightning would have finalized it."""
        if trainer.fast_dev_run:
            return  # Lightning says itself that fast_dev_run suppresses logging
        import warnings

        warnings.warn(
            "distlog: DistlogLogger's callback is in the Trainer but the logger is not among "
            f"trainer.loggers ({[type(lg).__name__ for lg in trainer.loggers]}): nothing is logged to "
            "it. Pass Trainer(logger=logger, callbacks=[logger.callback])", stacklevel=2)

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        # Lightning finalizes the loggers it logs to right after this hook: one it swapped out
        # is never finalized, so a run the script opened is closed here (on every rank)
        if self._serving:
            self._ended_at = self._logging_step(trainer)
            self._served = True
            self._trainer = None  # what is logged from now on is logged between stages
        else:
            self._serving = True
            self._logger._session.close(ok=True)

    def _append_only(self, trainer: Any, stage: str) -> None:
        session = self._logger._session
        if not session.set_append() or not trainer.is_global_zero:
            return
        step, last = self._logging_step(trainer), session.run._stored_last_step
        # the Trainer that ran fit() logs every evaluation after it at the step the fit ended,
        # where the first one stored its rows: at that step (this logger's last stage ended
        # there) only a key logged there already is refused, and the writer says which
        if last is None or step > last or (step == last and self._ended_at == step):
            return
        start = getattr(trainer.strategy, "_start_method", None)
        if start in ("spawn", "fork", "forkserver"):
            # (this Trainer may have run fit(): in processes it started, which kept its step)
            why = (f"under strategy=\"ddp_{'spawn' if start == 'spawn' else 'fork'}\" the script's Trainer keeps "
                   "no step from a fit() it spawned")
            fix = ('use strategy="ddp" (one process per rank for every stage: an evaluation then '
                   "logs where the fit ended), or log them into another run (DistlogLogger(version=...))")
        else:
            why = "Lightning logs an evaluation at the step its own Trainer's fit reached (0 for a Trainer that ran none)"
            fix = (f"call {stage}() on the Trainer that ran fit(), which logs at the step where the fit "
                   "ended; or log them into another run (DistlogLogger(version=...))")
        session.run.logs.warning(
            f"trainer.{stage}() logs at step {step}, but this run's series already reach step "
            f"{last:g}: {why}. An evaluation only appends (nothing stored is replaced): a value "
            f"of a key whose series reaches step {step} is refused, a key the run does not hold "
            f"yet is stored at step {step}. To store them after the training rows, {fix}")

    def on_sanity_check_start(self, trainer: Any, pl_module: Any) -> None:
        run = self._logger._session.run
        self._sanity_mark = run.metrics._pending_mark() if self._serving and run is not None else None

    def on_sanity_check_end(self, trainer: Any, pl_module: Any) -> None:
        # Lightning logs nothing of its sanity check: what was collected directly in it is
        # dropped too, or it would merge into the first rows (every rank drops its own)
        mark, self._sanity_mark = self._sanity_mark, None
        run = self._logger._session.run
        if mark is not None and run is not None:
            run.metrics._drop_pending(mark)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not self._serving:
            return
        self._period_start = self._logging_step(trainer)
        self._resuming = bool(trainer.ckpt_path)  # rewound at the first batch (``_rewind``)

    def _rewind(self, trainer: Any, step: int) -> None:
        """After a checkpoint is restored, the first batch logs at ``step``: drop stored rows
        from it on (a crashed attempt may have written them) so no step repeats.

        Not at ``on_train_start``: Lightning sets its logging step right after that hook for a
        checkpoint saved mid-epoch, and ``global_step`` counts each optimizer's steps (two per
        batch with two optimizers). A Trainer that fits again without a checkpoint (after
        validate(), say) rewinds no row at once: each series is rewound at its first new row,
        keeping what validate() appended.

        Rows from ``step`` on that no training wrote are kept: ``validate()`` / ``test()`` after
        the fit that saved the checkpoint log at the step where it ended, which is the step a
        resume from its last checkpoint logs its first batch at. The run's attempt records say
        so (``Run.appended_after``: every attempt since the last training only appended, and
        that training's rows ended before ``step``), read by rank 0 as the attempt started and
        held alike by every rank. Otherwise (a training ran past the checkpoint, was killed,
        or the records do not say) every series is rewound: a crashed attempt's rows past the
        checkpoint must go, and so do all others but the ones evaluations appended before the
        trainings since (``Run.training_since``: a fit that kept them, crashed, and is resumed
        from the same checkpoint again keeps them again; its own rows, written since it
        began, go). Kept rows are then treated as a fit without a checkpoint treats
        stored rows: a series this fit writes at a step it holds is rewound there (Lightning's
        ``epoch``, logged by the evaluations and by this fit's first batch alike)."""
        self._resuming = False
        session = self._logger._session
        if step <= 0 or not session.is_open:
            return
        run = session.run
        kept = run.appended_after
        if kept is not None and kept <= step - 1 and not run.writers.opened:
            if kept > float("-inf"):  # (else the run holds no training's rows at all)
                run.logs.info(
                    f"resumed from a checkpoint at global step {trainer.global_step} (logging step "
                    f"{step}); the stored series end at step {kept:g} but for rows that evaluations "
                    f"(validate/test after a fit) appended: those are kept, nothing is rewound now. "
                    f"A key this fit logs at a step such a row holds replaces that row")
            return
        # rows past the checkpoint that evaluations appended before the trainings since: kept
        # (this fit's crashed predecessor kept them too; its own rows go)
        since = run.training_since(step - 1)
        if session.set_resume_step(step - 1, since):
            older = "" if since is None else (
                " (the rows past it written from "
                f"{_dt.datetime.fromtimestamp(since, _dt.timezone.utc).isoformat(timespec='seconds')} on; "
                "any an evaluation appended before then are kept)")
            run.logs.info(f"resumed from a checkpoint at global step {trainer.global_step} "
                          f"(logging step {step}); series rewound to step {step - 1}{older}")

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        # Lightning logs a batch's values after ``on_train_batch_end``: flushing here, before the
        # next batch collects, writes them without waiting a whole period. Micro-batches of one
        # optimizer step share its logging step: no flush between them. The decision uses what
        # every rank knows alike (steps, Lightning's logging schedule), never which values a
        # rank holds: a rank_zero_only value is collected on rank 0 alone
        if not self._serving:
            return
        step = self._logging_step(trainer)
        if self._resuming:
            self._rewind(trainer, step)
        moved = step != self._batch_step
        due = step % self._every == 0 and step != self._period_start
        if (moved and self._logs_due) or due:
            self._flush(trainer)
        if due:
            self._period_start = step
        if moved:
            self._batch_step, self._logs_due = step, False
        self._release_held()
        run = self._logger._session.run
        if run is not None:
            run.current_step = step  # what a plain ``collect()`` is stamped with: Lightning's step

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Lightning logs this step's values next if its schedule says so (alike on every rank)
        connector = getattr(trainer, "_logger_connector", None)
        if getattr(connector, "should_update_logs", True) or trainer.fast_dev_run:
            self._logs_due = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._logs_due = True  # the epoch's values are logged at its last step after this hook

    def _release_held(self) -> None:
        held, self._held = self._held, []
        for step, metrics in held:
            self._logger._collect(step, metrics)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._batch_step = None
        self._release_held()
        self._flush(trainer)  # the last epoch's values (logged after on_train_epoch_end)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        self._flush(trainer)

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        self._flush(trainer)

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict) -> None:
        # Lightning dumps checkpoints on every rank: flush and commit, so the rows the checkpoint
        # covers are on the store even if the job dies right after
        self._flush(trainer)
        run = self._logger._session.run
        if run is not None:
            commit_for_checkpoint(run, "Lightning checkpoint")

    def state_dict(self) -> dict[str, Any]:
        s = self._logger._session
        return {"run_id": s.run_id, "experiment": s.experiment_name}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        s = self._logger._session
        theirs = state_dict.get("run_id")
        if theirs and s.is_open and theirs != s.run_id:
            s.run.logs.warning(
                f"this checkpoint belongs to run {state_dict.get('experiment')}/{theirs}; the fit "
                f"continues in run {s.run_id}. Pass DistlogLogger(..., version={theirs!r}) to "
                "continue the checkpoint's run instead")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._exception = exception  # finalize("failed") follows on this rank
