"""Hugging Face ``Trainer``: ``Trainer(..., callbacks=[DistlogCallback("./runs")])``.

The ``Trainer`` calls callbacks on every rank at the same points, so the run opens on every
rank in ``on_train_begin`` and every ``on_log`` ends with a distlog flush (a collective) on
every rank. The values ``Trainer.log`` passes are already averaged over ranks by the
``Trainer`` itself; what distlog adds is the reduction of values each rank collects on its own
(``callback.collect(...)`` from a ``compute_loss`` override, for example: reduced at the next
logging step with mean/min/max/count), every rank's text log, and one run folder.

Importing this module also registers ``report_to="distlog"``: transformers 5 has no public
registry for reporting integrations, so the name is added to its table
``transformers.integrations.integration_utils.INTEGRATION_TO_CALLBACK``; the callback then
takes its settings from ``DISTLOG_ROOT`` (default ``./runs``) and ``DISTLOG_EXPERIMENT``.
The run id: ``DistlogCallback(run_id=...)``, else ``DISTLOG_RUN_ID``, else the launcher's job
id or a new one. ``TrainingArguments.run_name`` is not it: other trackers take it as a display
name (two trainings under one name stay two runs), while a distlog run id names one run, which a
second training would resume and overwrite; it is kept with the args (params ``args.run_name``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from ._session import RunSession, commit_for_checkpoint, require

_tf = require("transformers", "transformers")
TrainerCallback = _tf.TrainerCallback

#: ends of the names of timings (``eval_runtime``, ``train_samples_per_second``, ...): a repeat
#: at a stored step is timed anew, so its other value is no conflict
_TIMINGS = ("runtime", "_per_second", "preparation_time")


def _same(a: Any, b: Any) -> bool:
    """Whether a value given again at a stored step is the one stored: NaN is the same NaN (a
    diverged training's ``eval_loss`` repeated by ``evaluate()``; ``nan != nan``)."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _is_train_frame(frame: Any) -> bool:
    """Whether ``frame`` runs a ``Trainer``'s ``train`` or ``_inner_training_loop`` (matched by
    name, so that subclasses and libraries that replace the loop count too)."""
    return frame.f_code.co_name in ("train", "_inner_training_loop") and isinstance(
        frame.f_locals.get("self"), _tf.Trainer)


def _in_train() -> bool:
    """Whether a ``Trainer.train()`` runs in this thread now (the hook being called comes from
    inside it: ``_is_train_frame`` on the stack).

    The Trainer has no hook for a ``train()`` that raised (an exception, Ctrl-C): an attempt
    that a ``Trainer.train()`` opened and no ``on_train_end`` closed belongs to a training still
    running (its own evaluations and logs) or to one that raised, and only the stack tells them
    apart. (Hooks called otherwise than from a Trainer, by tests or other loops, tell nothing.)"""
    frame = sys._getframe(1)
    while frame is not None:
        if _is_train_frame(frame):
            return True
        frame = frame.f_back
    return False


def _train_exception() -> BaseException | None:
    """What a ``Trainer.train()`` raised, where it can still be seen when the callback's next
    hook comes: the exception being handled (``evaluate()`` called in an ``except`` block) or
    the last uncaught one (a notebook: the cell that trained failed, the next one evaluates;
    IPython keeps it in ``sys.last_value``). Only one whose traceback passes through a
    ``Trainer``'s training (``_is_train_frame``; an older, unrelated error is not it)."""
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    for exc in (sys.exc_info()[1], last):
        tb = getattr(exc, "__traceback__", None)
        while tb is not None:
            if _is_train_frame(tb.tb_frame):
                return exc
            tb = tb.tb_next
    return None


def rewrite_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """``eval_loss`` → ``eval/loss``, ``test_x`` → ``test/x``, anything else → ``train/...``
    (the names the Trainer's other reporting integrations use). ``epoch`` is left out of
    evaluation logs (it belongs to training's series)."""
    if any(k.startswith(("eval_", "test_")) for k in logs):
        logs = {k: v for k, v in logs.items() if k != "epoch"}
    out = {}
    for k, v in logs.items():
        for prefix in ("eval", "test"):
            if k.startswith(prefix + "_"):
                out[f"{prefix}/{k[len(prefix) + 1:]}"] = v
                break
        else:
            out[f"train/{k}"] = v
    return out


class DistlogCallback(TrainerCallback):
    """Logs a ``Trainer`` run to distlog: args and model config become params, ``on_log``
    values and ``trainer.predict()``'s metrics (``test/...``) become reduced rows, evaluations
    and checkpoints become log records (checkpoint folders also artifacts with
    ``log_checkpoints=True``), ``on_train_end`` closes the run.

    A later ``trainer.evaluate()`` / ``predict()`` reopens the same run as a new attempt that
    only appends rows: nothing stored is rewound, a value at a step its series already has is
    refused. One before ``trainer.train()`` is closed when training begins, which opens its own
    attempt. A ``train()`` that raised (an exception, Ctrl-C) leaves its attempt open (the
    Trainer has no hook for it): the next ``train()``, ``evaluate()``, ``predict()``, ``log()``
    or ``close()`` on this callback ends it ``failed``, then opens its own attempt (as after a
    training that ended; ``close()`` opens none). The failure recorded is what ``train()``
    raised where it is still at hand (that call made in an ``except`` block, or a notebook
    cell after the one that raised); otherwise a ``RuntimeError`` that says so. Training resumed
    from a checkpoint drops the rows after the checkpoint's step only: rows an evaluation
    stored at that step (``evaluate()`` after the training that saved it) are kept.

    A series has one row per step, and the first value given at a step is the one kept. The
    callback remembers what it gave per key and step across its attempts (until a training
    rewinds past that step), so a key given again at its step is left out before distlog sees
    it: quietly when the value is the same (``evaluate()`` right after a training that
    evaluated at its last step, a ``trainer.log()`` after training repeating ``epoch``); with
    a record in the run's log (INFO) when only timings differ (keys ending in ``runtime``,
    ``_per_second`` or ``preparation_time``: a repeat is timed anew, the row keeps the first
    timing); with a warning naming the values when another value comes: an evaluation of
    another dataset at the same step (``evaluate(eval_dataset=other)``; the Trainer tells the
    callback nothing else about it) needs its own ``metric_key_prefix`` (``"eval_other"``:
    series ``eval/other_loss``, ...), and the warning says so.
    """

    def __init__(self, root: Any = None, experiment: str | None = None, run_id: str | None = None, *,
                 tags: list[str] | None = None, log_checkpoints: bool = False, **options: Any) -> None:
        root = root if root is not None else os.environ.get("DISTLOG_ROOT", "./runs")
        experiment = experiment or os.environ.get("DISTLOG_EXPERIMENT")
        self.session = RunSession(root, experiment, run_id, tags, **options)
        self.log_checkpoints = bool(log_checkpoints)
        self._training = False  # the open attempt was opened by training (not an evaluation)
        self._in_trainer = False  # ... from inside a ``Trainer.train()`` (see ``_in_train``)
        self._given: dict[str, tuple[int, Any]] = {}  # per key: the step and value of its last row
        #: the reduced statistics of the latest flush (every rank)
        self.last_reduced: Any = None
        #: ``fn(reduced)`` called on rank 0 after each flush (e.g. a tqdm postfix feed)
        self.on_flush: Any = None

    # ---- distlog extras ---------------------------------------------------------------------
    @property
    def experiment(self) -> Any:
        """The distlog ``Experiment`` (its run is open between train begin and end)."""
        return self.session.exp

    def collect(self, values: Any = None, /, step: int | None = None, **kw: Any) -> None:
        """Collect this rank's values; reduced over every rank at the next logging step:
        ``collect(aux_loss=x)``, or with a dict ``collect({"train/aux_loss": x})`` (a name
        with a namespace). ``collect(step, aux_loss=x)`` also works, as before."""
        if isinstance(values, Mapping):
            values = {**values, **kw}
        elif values is not None and step is None:  # collect(step, name=value)
            values, step = kw, values
        elif values is None:
            values = kw
        else:
            raise TypeError(f"collect() got step twice ({values!r} and step={step!r}); pass the "
                            "values as keywords or a dict, and the step once")
        self.session.collect(step, values, tolerant=False)

    def close(self) -> None:
        """Close a run left open by a ``trainer.evaluate()`` outside training (every rank); a
        training attempt left open by a ``train()`` that raised ends ``failed``."""
        if not self._end_raised_training("close()"):
            self.session.close(ok=True)

    def _end_raised_training(self, then: str) -> bool:
        """End the open attempt ``failed`` when training opened it and its ``train()`` is no
        longer running (it raised: ``on_train_end`` never came). A local close, on every rank
        alike (every rank calls the hook that comes next): peers may be gone. Whether it did."""
        if not (self.session.is_open and self._training and self._in_trainer) or _in_train():
            return False
        exc = _train_exception()  # its own type, message and traceback where still at hand
        if exc is not None:
            self.session.run.logs.info(f"trainer.train() raised {type(exc).__name__}: {exc} "
                                       f"(seen when {then} was called on its DistlogCallback)")
        self.session.close(ok=False, exc=exc, reason=f"trainer.train() raised before it ended (then "
                           f"{then} was called on its DistlogCallback; its exception was no longer "
                           "at hand)")
        self._training = False
        return True

    # ---- TrainerCallback ----------------------------------------------------------------------
    def _open(self, args: Any, state: Any, model: Any = None, training: bool = False) -> None:
        if not training:  # an evaluation after a train() that raised: not into its attempt
            self._end_raised_training("trainer.evaluate(), predict() or log()")
        if self.session.is_open:
            return
        # training from a checkpoint rewinds the series to its step; an evaluation alone
        # (``trainer.evaluate()``, after training or in a new process) only appends rows
        resume = int(state.global_step) if training and state.global_step else None
        run = self.session.open(resume_step=resume, append=not training)
        if training:  # its rows replace every stored row after its checkpoint (all without one)
            self._given = {k: g for k, g in self._given.items() if resume is not None and g[0] <= resume}
        self._training = training
        if training:
            params: dict[str, Any] = {"args": args.to_dict()}
            config = getattr(model, "config", None)
            if config is not None and hasattr(config, "to_dict"):
                params["model_config"] = config.to_dict()
        else:  # the training's own ``args`` stay as they were
            params = {"eval_args": args.to_dict()}
        self.session.add_params(params)
        if resume:
            run.logs.info(f"resumed at global step {resume}; series rewound to step {resume}")

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.session.is_open and not self._training:
            # a ``trainer.evaluate()`` before training opened an attempt that only appends:
            # training gets its own, which rewinds (every rank calls this hook: a collective is safe)
            self.session.close(ok=True)
        elif self.session.is_open:
            # the last ``train()`` never reached ``on_train_end``: it raised (the Trainer has no
            # hook for that). Its attempt ends failed (a local close, on every rank alike), and
            # this training gets its own, rewound to its checkpoint: kept open, the steps written
            # again after the checkpoint were refused as already written
            self.session.close(ok=False, reason="trainer.train() raised before it ended (then train() was "
                               "called on its DistlogCallback, which started a new attempt)")
        self._open(args, state, model, training=True)
        self._in_trainer = _in_train()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self.session.run
        if run is not None:
            run.current_step = state.global_step  # stamps a plain ``collect()``

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, model: Any = None,
               **kwargs: Any) -> None:
        self._open(args, state, model)  # a no-op while training; ``evaluate()`` alone opens here
        step = state.global_step
        self.session.collect(step, self._new_values(step, rewrite_logs(logs or {}), "total_flos" in (logs or {})))
        self.last_reduced = reduced = self.session.flush()  # every rank logs at the same steps
        if reduced is not None and self.on_flush is not None and state.is_world_process_zero:
            self.on_flush(reduced)

    def on_predict(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        """``trainer.predict()`` hands its metrics (``test_loss``, ...) to this hook only, never to
        ``on_log``: they are stored as ``on_log`` stores values, at the Trainer's step (every
        rank calls it: the flush is a collective)."""
        self.on_log(args, state, control, logs=dict(metrics or {}), **kwargs)

    def _new_values(self, step: int, values: dict[str, Any], summary: bool) -> dict[str, Any]:
        """``values`` less those of keys already given a row at ``step`` (in this attempt or an
        earlier one): a series has one row per step. The same value is left out quietly, a
        timing with a record in the run's log, another value with a warning (see the class
        docstring). The end-of-training summary (and ``include_num_input_tokens_seen`` logs)
        repeat ``epoch``, ``num_input_tokens_seen`` and ``train_runtime`` at the last logging
        step: a record, never a warning, for them."""
        out, timings, differ = {}, [], []
        for key, value in values.items():
            given = self._given.get(key)
            if given is not None and given[0] == step:
                if not _same(given[1], value):
                    text = f"{key}={value!r} (the row holds {given[1]!r})"
                    (timings if key.endswith(_TIMINGS) else differ).append(text)
                continue
            out[key] = value
            self._given[key] = (step, value)
        run = self.session.run
        if (differ or timings) and run is not None:
            msg = (f"values the Trainer logged again at step {step} were not stored (a series has one row "
                   f"per step; the first value logged at a step is kept): {', '.join(differ + timings)}")
            evals = sorted({k.split("/")[0] for k in values if k.startswith(("eval/", "test/"))})
            if differ and evals:
                msg += (f"; a second evaluation at one step (another dataset: evaluate(eval_dataset=...), "
                        f"predict(...)) logs under the same names: pass it metric_key_prefix=\"{evals[0]}_other\" "
                        f"(or another name) to store its values as series {evals[0]}/other_loss, ...")
            run.logs.log("WARNING" if differ and not summary else "INFO", msg)
        return out

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict | None = None, **kwargs: Any) -> None:
        run = self.session.run
        if run is not None:  # the values themselves arrive through on_log
            run.logs.info("evaluation", step=state.global_step,
                          **{k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))})

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        run = self.session.run
        if run is None:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        commit_for_checkpoint(run, "Trainer checkpoint")  # the rows it covers: on the store first
        run.logs.info("checkpoint saved", step=state.global_step, path=folder)
        if self.log_checkpoints and state.is_world_process_zero and os.path.isdir(folder):
            files = run.files(f"checkpoints/checkpoint-{state.global_step}")
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if os.path.isfile(path):
                    files.log_file(name, path, step=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.session.close(ok=True)  # every rank: the final flush is a collective


def register() -> None:
    """Make ``TrainingArguments(report_to="distlog")`` create a ``DistlogCallback``."""
    table = getattr(_tf.integrations.integration_utils, "INTEGRATION_TO_CALLBACK", None)
    if isinstance(table, dict):
        table.setdefault("distlog", DistlogCallback)


register()
