"""The object ``get_logger`` returns: experiments, runs, and shortcuts to the active run."""

from __future__ import annotations

import atexit
import contextlib
import difflib
import functools
import math
import os
import sys
import threading
import time
import warnings
from typing import Any, Callable, Iterator, Mapping

from .comm import Comm, dist_state
from .errors import RankLost, RunStateError
from .inputs import exact_step, plain_int
from .names import check_name
from . import run as run_module
from .run import Run
from .storage import open_storage

DEFAULT_EXPERIMENT = "default"

# every Experiment with a run open, held (not weakly): a run whose logger the program dropped
# (a notebook cell run again, a function's local logger) is still closed at exit, its rows
# stored, instead of being collected with its logger and left "running" with rows unwritten
_open: "set[Experiment]" = set()


def _uncaught_exception() -> BaseException | None:
    """The exception that ended the program, if one did. The interpreter stores it in
    ``sys.last_value`` (3.12+: also ``sys.last_exc``) before any exit hook runs, so distlog
    needs no ``sys.excepthook`` of its own: importing it leaves the hook alone. (An interactive
    session, a notebook or IPython, stores there every exception it shows, and goes on: each
    run knows the one stored as it started, ``Experiment._seen_at_start``.)"""
    return getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)


def _shown_now() -> list[BaseException]:
    return [e for e in (getattr(sys, "last_exc", None), getattr(sys, "last_value", None)) if e is not None]


# the status the main thread last passed to ``sys.exit`` while a run was open (see
# ``_watch_exit``); [] when none
_exit_status: list[Any] = []


def _watch_exit() -> None:
    """Wrap ``sys.exit`` (once, when a run starts) so that the exit hook knows the program's
    exit code: a run its script never closed ends ``failed`` after ``sys.exit(2)``, as within
    ``with exp.run()``. The interpreter keeps no trace of a ``SystemExit`` once it ends the
    program (``sys.last_value`` holds other exceptions only). The wrapper only notes the code
    and calls the ``sys.exit`` it replaced; a ``raise SystemExit(2)`` written out is not seen."""
    exit_ = sys.exit
    if getattr(exit_, "_distlog_watch", False):
        return

    @functools.wraps(exit_)
    def exit(status: Any = None) -> None:
        if threading.current_thread() is threading.main_thread():  # (in another thread it
            _exit_status[:] = [status]  # ends that thread only)
        exit_(status)

    exit._distlog_watch = True  # type: ignore[attr-defined]
    sys.exit = exit


def _exit_exception() -> BaseException | None:
    """What ended the program: an uncaught exception, or ``sys.exit`` with a code other than
    0 (as a ``SystemExit``), or SIGTERM (``Terminated``), else None."""
    exc = _uncaught_exception()
    if exc is None and _exit_status and _exit_status[0] not in (None, 0):
        status = _exit_status[0]
        return status if isinstance(status, BaseException) else SystemExit(status)
    return exc


class Terminated(SystemExit):
    """SIGTERM came while a run was open (torchrun stops the other ranks this way when one
    fails; SLURM at the time limit or a requeue; ``kill``): raised in the main thread as
    Ctrl-C raises ``KeyboardInterrupt``, so ``with`` blocks and the exit hook close the run —
    its rows committed, the attempt ``interrupted`` (``failed`` with the first cause when a
    rank recorded one; ``preempted`` after an agreed stop) — and the program then exits with
    status 143."""

    def __init__(self) -> None:
        super().__init__(128 + 15)

    def __str__(self) -> str:
        return ("SIGTERM: the process was told to stop (by torchrun when another rank failed, "
                "by SLURM at the time limit, or by kill)")


_sigterm_pid: list[int] = []  # the process that installed ``_on_sigterm`` (a fork inherits it)
_sigterm_at: list[float] = []  # when the SIGTERM that raised ``Terminated`` came (monotonic)
_deferred: list[BaseException] = []  # a Terminated held until the close it came in is done
#: a SIGTERM this soon after the one that is closing the run is the same stop passed on again:
#: under SLURM, slurmstepd signals every process of the step and torchrun then passes its own
#: on to its ranks, so each rank gets two within milliseconds (the second killed rank 0 in its
#: close, its rows uncommitted). Absorbed; a later one ends the program at once
SIGTERM_REPEAT_SECONDS = 5.0


def _on_sigterm(signum: int, frame: Any) -> None:
    import signal

    if not _sigterm_pid or os.getpid() != _sigterm_pid[0]:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # a forked child (a DataLoader worker): as before
        return
    now = time.monotonic()
    if _sigterm_at:  # the run is closing after a first SIGTERM
        if now - _sigterm_at[0] <= SIGTERM_REPEAT_SECONDS:
            return  # (a launcher passing the same stop on: the close goes on)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # asked again later: the program ends at once
        return
    _sigterm_at[:] = [now]
    exc = Terminated()
    _exit_status[:] = [exc]
    if run_module.FINISHING[0]:
        # a close past its last collective (writing its last rows, logs table and run.json):
        # it finishes, with the status it decided, and Terminated is raised after it (raised
        # here, it recorded a completed run as interrupted, and its warning found the log closed)
        _deferred[:] = [exc]
        return
    raise exc


def _watch_sigterm() -> None:
    """While a run is open, SIGTERM closes it (``Terminated``) instead of killing the process
    with its buffered rows: only in the main thread, and only where SIGTERM has its default
    action (a handler the script or a framework set is theirs; Lightning's calls this one
    after its own, as it calls any handler it found)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
            _sigterm_pid[:] = [os.getpid()]
            _sigterm_at.clear()
    except (ValueError, OSError):  # (no signals here: an embedded interpreter)
        pass


def _unwatch_sigterm() -> None:
    """The default action again once no run of this process is open (if still ours)."""
    import signal

    if _open or threading.current_thread() is not threading.main_thread():
        return
    with contextlib.suppress(ValueError, OSError):
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _warn_in_worker(run: Run) -> None:
    """A run started on first use in a multiprocessing worker outside torch.distributed (a
    spawned DataLoader worker, a Pool's) is a run of its own, one per worker: rarely what a
    module-level logger's calls there meant. Said once per such run (a forked worker's calls
    go to its parent's run)."""
    import multiprocessing

    if multiprocessing.parent_process() is None:
        return
    warnings.warn(
        f"this process is a multiprocessing worker (pid {os.getpid()}, started by pid "
        f"{multiprocessing.parent_process().pid}): its first log/collect/params/files call started a run "
        f"of its own, {run.experiment}/{run.run_id}, one per worker. Log from the main process "
        "(return the values to it), or open a run in the worker on purpose with `with exp.run(...)`",
        UserWarning, stacklevel=4)


def _close_forgotten_runs() -> None:
    # no collectives here: peers may already be gone (PRIOR_ART A.28)
    exc = _exit_exception()
    for exp in list(_open):
        # as ``with exp.run()`` would: the exit after a stop every rank agreed on is preempted
        stopped = isinstance(exc, SystemExit) and exp.stop_requested
        seen = any(exc is e for e in exp._seen_at_start)  # (shown before this run started)
        exp._close_run(exc=None if stopped or seen else exc, collective=False, quiet=True)


def close_open_runs() -> list[str]:
    """Close every run this process has open (``experiment/run_id`` of each), as exit would:
    rows flushed and stored, status ``completed``. For a run whose logger is gone (a notebook
    cell that called ``get_logger`` again while its run was open: starting that run again
    raises ``RunInUseError``). Not a collective: under torch.distributed close runs with
    ``exp.close()`` on every rank, which also reduces what was collected since the last flush."""
    closed, errors = [], []
    for exp in list(_open):
        run = exp._run
        if run is not None:
            try:  # every run is closed; the first failure is raised once all are
                exp._close_run(collective=False)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            closed.append(f"{run.experiment}/{run.run_id}")
    if errors:
        raise errors[0]
    return closed


# zarr does its I/O through asyncio's default thread pool, which concurrent.futures shuts down
# in a threading-atexit hook that runs *before* plain atexit handlers. Threading-atexit hooks
# run in reverse order of registration, so registering after importing concurrent.futures
# closes forgotten runs while the pool still works. atexit stays as a fallback (idempotent).
import concurrent.futures.thread  # noqa: E402,F401  (registers its hook first)

try:
    threading._register_atexit(_close_forgotten_runs)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):  # pragma: no cover - other Pythons
    pass
atexit.register(_close_forgotten_runs)


class _Scope:
    """A scope of ``exp.experiment(...)`` or ``exp.run(...)``: it does its work when entered
    (``with``). Until then it is one of the experiment's ``_unentered`` scopes: a run started
    on first use while one is pending warns that the scope was ignored (``exp.run("a")``
    written without ``with`` started nothing, and the values went to an auto-named run)."""

    call = ""  # how the program made it, e.g. exp.run('a')

    def __init__(self, exp: "Experiment") -> None:
        self._exp = exp
        exp._unentered.append(self)

    def _entered(self) -> None:
        pending = self._exp._unentered
        if self in pending:
            pending.remove(self)

    def __repr__(self) -> str:
        return f"<{self.call}: enter it with `with {self.call}:` (nothing happens until then)>"


class _StepScope:
    """``with exp.step(n)``: a class, not a generator, so that setting the step is the last
    thing ``__enter__`` does and ``__exit__`` always puts the one before back (a Ctrl-C
    between a generator's yield and its ``with`` left the step stuck at ``n``)."""

    def __init__(self, exp: "Experiment", n: int | float) -> None:
        self._exp, self._n = exp, n

    def __enter__(self) -> "Experiment":
        run = self._exp.current_run
        self._run, self._prev = run, run.current_step
        run.current_step = self._n
        return self._exp

    def __exit__(self, *exc: Any) -> None:
        self._run.current_step = self._prev


class _RunScope(_Scope):
    """``with exp.run(...)``."""

    def __init__(self, exp: "Experiment", run_id: str | None, kw: dict[str, Any]) -> None:
        super().__init__(exp)
        self._run_id, self._kw = run_id, kw
        self.call = f"exp.run({'' if run_id is None else repr(run_id)})"

    def __enter__(self) -> "Experiment":
        self._entered()
        self._exp.start_run(self._run_id, **self._kw)
        return self._exp

    def __exit__(self, tp, exc, tb) -> None:
        if isinstance(exc, SystemExit) and (exc.code in (None, 0) or self._exp.stop_requested):
            # sys.exit(0) ends the program normally, and so does the exit (code 3 in the
            # preemption protocol) after every rank agreed to stop at a flush: the run closes
            # as exp.close() would (completed / preempted), not "failed: SystemExit"
            exc = None
        self._exp._close_run(exc=exc, collective=exc is None)


class _ExperimentScope(_Scope, contextlib.ContextDecorator):
    """``with exp.experiment(name)`` and ``@exp.experiment(name)``."""

    def __init__(self, exp: "Experiment", name: str) -> None:
        super().__init__(exp)
        self._name = name
        self.call = f"exp.experiment({name!r})"

    def __enter__(self) -> "Experiment":
        self._entered()
        exp, name = self._exp, self._name
        run = exp._run
        if run is not None:
            raise RunStateError(
                f"exp.experiment({name!r}): run {run.run_id!r} of experiment {run.experiment!r} is "
                "open, and a run's experiment cannot change, so nothing inside would go to "
                f"{name!r}; close the run first (leave its `with exp.run(...)` block or call "
                f"exp.close()), or enter `with exp.experiment({name!r}):` before starting the run")
        exp._experiments.append(name)
        return exp

    def __exit__(self, *exc: Any) -> None:
        self._exp._experiments.pop()

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        self._entered()  # a decorator: entered at each call, not pending until then
        return super().__call__(func)


_NO_MESSAGE = object()  # exp.log(...) given no message


class Experiment:
    """Logs to ``root``: ``params``, ``metrics`` (alias ``scalars``), ``logs``, ``files``,
    ``readme`` of the active run; ``experiment(name)`` and ``run(id)`` scope them.

    Using a component with no run open starts one (experiment ``default`` unless scoped)
    that closes at exit, so a laptop script needs no ceremony.
    """

    def __init__(self, root: str, **options: Any) -> None:
        self._run_options = {k: _checked_run_option(k, options.pop(k)) for k in _RUN_OPTIONS
                             if k in options}
        for k in options:  # the rest go to the storage backend, which may ignore them quietly
            near = difflib.get_close_matches(k, _RUN_OPTIONS, n=1, cutoff=0.8)
            if near:
                raise TypeError(f"get_logger() got {k}={options[k]!r}, which is no run setting: did "
                                f"you mean {near[0]}=? (other options go to the storage backend)")
            # wandb.init's and SummaryWriter's arguments (a port's first guess), on the schemes
            # distlog knows (gcsfs takes project=; a backend registered for another scheme may
            # take any of them)
            scheme = root.split("://", 1)[0].lower() if isinstance(root, str) and "://" in root else "file"
            if (k in _OTHER_LOGGERS and scheme in ("file", "local", "memory", "s3", "gs", "gcs")
                    and not (scheme in ("gs", "gcs") and k == "project")):
                raise TypeError(f"get_logger({k}={options[k]!r}): {k}= is another logger's "
                                f"argument, not distlog's; here {_OTHER_LOGGERS[k]}")
        if isinstance(root, str) and root.strip() in ("", "file://"):
            raise ValueError(
                f"get_logger({root!r}): the root is empty (an unset environment variable?), which "
                "would write the runs into the current directory; pass a folder or URL, e.g. "
                "get_logger('./runs') (what get_logger() with no root uses), or get_logger('.') "
                "for the current directory on purpose")
        self.storage = open_storage(root, **options)  # a path, a URL or a StorageBackend
        self._experiments: list[str] = []
        self._run: Run | None = None
        self._stop_pending = False  # a preemption signal with no run open: for the next one
        self._ended: str | None = None  # the id of the last run this experiment closed
        self._lock = threading.RLock()
        self._unentered: list[_Scope] = []  # experiment()/run() scopes made, not yet entered
        self._opener: int | None = None  # the thread that started the last run
        self._seen_at_start: list[BaseException] = []  # sys.last_value as its run started

    def __repr__(self) -> str:
        run = f" run={self._run.run_id!r}" if self._run else ""
        return f"<distlog.Experiment {self.storage.url!r} experiment={self.experiment_name!r}{run}>"

    # ---- scopes --------------------------------------------------------------------------
    @property
    def experiment_name(self) -> str:
        """The open run's experiment; with no run open, the one a run started now joins."""
        run = self._run
        if run is not None:
            return run.experiment
        return self._experiments[-1] if self._experiments else DEFAULT_EXPERIMENT

    def experiment(self, name: str) -> "_ExperimentScope":
        """Runs started inside belong to experiment ``name`` (names nest with ``/``): ``with
        exp.experiment(name):`` or ``@exp.experiment(name)``.

        Entered while a run is open it raises ``RunStateError``: a run's experiment cannot
        change (the scope was ignored: every value still went to the open run)."""
        check_name(name, "experiment name", allow_slash=True)
        return _ExperimentScope(self, name)

    def run(self, run_id: Any = None, *, tags: list[str] | None = None, params: dict | None = None,
            resume_step: int | None = None, resume: str = "allow") -> Any:
        """A run as a context manager (``with exp.run("id"):``) or a decorator (``@exp.run``).

        ``resume`` says what to do when run ``run_id`` already exists under the experiment:

        * ``"allow"`` (default): continue it as a new attempt (a launcher restart, a requeue, or
          running the same script again). Every series the new attempt writes is rewound to
          before the first step it writes, so steps stay strictly increasing; with
          ``resume_step`` (the checkpoint's step) rows after it are dropped from every series
          at once. ``run.json`` keeps every attempt.
        * ``"never"``: raise ``ValueError`` if it exists (a fresh run or nothing).
        * ``"must"``: raise ``ValueError`` if it does not exist (a resume script).

        The decorated function accepts ``_run_name``, ``_hyperparams`` and ``_tags`` at call time.
        """
        if callable(run_id):
            return self._decorate(run_id)
        return _RunScope(self, run_id, {"tags": tags, "params": params, "resume_step": resume_step,
                                        "resume": resume})

    def _decorate(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, _run_name: str | None = None, _hyperparams: dict | None = None,
                    _tags: list[str] | None = None, **kw: Any) -> Any:
            with self.run(_run_name, tags=_tags, params=_hyperparams):
                return fn(*args, **kw)

        return wrapper

    def start_run(self, run_id: str | None = None, *, tags: list[str] | None = None,
                  params: dict | None = None, resume_step: int | None = None,
                  resume: str = "allow") -> Run:
        """Start a run (a collective under torch.distributed: every rank calls it)."""
        with self._lock:
            self._forget_closed_run()
            if self._run is not None:
                raise RunStateError(
                    f"run {self._run.run_id!r} is still open; close it (leave its `with` block or "
                    "call exp.close()) before starting another"
                )
            run = Run(self.storage, self.experiment_name, run_id, tags=tags,
                      resume_step=resume_step, resume=resume, **self._run_options)
            # held before it starts: a Ctrl-C right after start() returned left a run open
            # that nothing could close (close_open_runs() did not know it)
            self._run, self._opener = run, threading.get_ident()
            _open.add(self)
            # an exception an earlier notebook cell showed ended no run started after it
            self._seen_at_start = _shown_now()
            try:
                run.start()
            except BaseException:  # (start() ended what it began)
                self._run = None
                _open.discard(self)
                raise
            if self._stop_pending:  # a preemption signal came while the run was opening
                self._stop_pending = False
                run.stop_requested = True
            _exit_status.clear()  # (a sys.exit() some code caught before this run is no exit)
            _watch_exit()
            _watch_sigterm()
        if params:
            try:
                run.params.set(params)
            except BaseException as e:  # refused params: the run ends failed, with the reason,
                # instead of staying open (recorded "running") and blocking the next run
                self._close_run(exc=e, collective=False, quiet=True)
                raise
        return run

    def _close_run(self, exc: BaseException | None = None, collective: bool = True, quiet: bool = False) -> None:
        run = None
        try:  # (a Ctrl-C from here on leaves the run this experiment's to close again)
            with self._lock:
                run, self._run = self._run, None
                if run is not None:  # (with it: a thread's call now finds the run ended, not none)
                    self._ended = run.run_id
            if run is None:
                return
            _open.discard(self)
            if isinstance(exc, Terminated):
                # told to stop from outside: no failure of this rank's (a peer's that made torchrun
                # stop this one is recorded by that peer, and names the run's cause) — unless a peer
                # of this host is gone without closing: a SIGKILLed rank (the OOM killer) records
                # nothing, and torchrun then stops the others, whose run read "interrupted", no cause
                lost = run.lost_peers()
                ending = "failed: " + lost if lost else "interrupted"
                if not run.log_sink.closed:  # (a close it stopped after its log closed: said there)
                    with contextlib.suppress(Exception):
                        run.logs.warning(f"{exc}; the run closes {ending} (rows flushed so far are kept)")
                if lost:
                    status, exc = "failed", RankLost(f"{lost}; then this rank was told to stop (SIGTERM: "
                                                     "the launcher stops the other ranks when one dies)")
                else:
                    status, exc = ("preempted" if run.metrics.stop_requested else "interrupted"), None
                collective = False  # (the peers are being stopped too, or are gone)
            else:
                status = "failed" if exc is not None else "preempted" if run.metrics.stop_requested else "completed"
            run.close(status, exc=exc, collective=collective)
            _unwatch_sigterm()
            if _deferred:  # SIGTERM came while the close finished: the program stops now
                stop = _deferred.pop()
                if not quiet:
                    raise stop
        except Exception:
            _unwatch_sigterm()
            if not quiet:
                raise
        except BaseException:
            if run is not None and run.status in ("running", "closing"):  # a close a Ctrl-C stopped (or came before
                with self._lock:  # it began): still this experiment's open run, which
                    # exp.close() or the exit hook finishes
                    if self._run is None:
                        self._run = run
                _open.add(self)
            raise

    def close(self) -> None:
        """Close the active run (a collective: flushes metrics on every rank)."""
        self._close_run()

    @property
    def current_run(self) -> Run:
        """The active run, started on first use if none is open."""
        run = self._run
        if run is not None and run.status in ("running", "closing"):
            return run
        with self._lock:  # (threads whose first call comes together: one run, started once)
            self._forget_closed_run()
            run = self._run
            if run is not None:
                return run
            state = dist_state()
            if self._ended is not None and state is not None and state[1] > 1:
                # starting a run is a collective: started here by a call on one rank alone
                # (the usual way: `if rank == 0: exp.metrics.log(...)` after the run), it would
                # wait for the other ranks until the process group's timeout
                raise RunStateError(
                    f"no run is open (run {self._ended!r} ended), and under torch.distributed "
                    "starting one is a collective that every rank must call: open the next run "
                    "on every rank (`with exp.run(...)` or exp.start_run()) before using "
                    "exp.metrics/params/logs/files")
            thread = threading.current_thread()
            if (self._ended is not None and thread is not threading.main_thread()
                    and threading.get_ident() != self._opener):  # (a worker thread's own runs: go on)
                # (a monitor thread's call between the runs of a loop started a stray run, which
                # the loop's next `with exp.run(...)` then refused as still open)
                raise RunStateError(
                    f"no run is open (run {self._ended!r} ended), and a call from thread "
                    f"{thread.name!r} does not start one: open the next run before the thread logs "
                    "again, or stop its logging when a run ends (what it logs between runs would "
                    "go to a run of its own)")
            self._warn_unentered()
            run = self.start_run()
            if state is None:  # (ranks that torch.multiprocessing.spawn started are workers too)
                _warn_in_worker(run)
        return run

    def _forget_closed_run(self) -> None:
        """The run ``start_run`` returned, closed with its own ``close()`` (as wandb's
        ``run.finish()``), is over for this logger too: the next call starts the next run
        instead of one part saying it ended and another that it is still open."""
        run = self._run
        if run is not None and run.status not in ("running", "closing"):
            self._run, self._ended = None, run.run_id
            _open.discard(self)
            _unwatch_sigterm()

    def _warn_unentered(self) -> None:
        """A run starts on first use while ``exp.run(...)``/``exp.experiment(...)`` scopes
        were made and never entered: they did nothing, so say so, once."""
        pending, self._unentered = self._unentered, []
        if pending:
            calls = list(dict.fromkeys(s.call for s in pending))
            last = {type(s): s.call for s in pending}  # the last of each kind, experiment first
            fix = ", ".join(last[k] for k in (_ExperimentScope, _RunScope) if k in last)
            warnings.warn(
                f"{', '.join(calls)} started nothing: {'it was' if len(calls) == 1 else 'they were'} "
                f"never entered, so the values go to a run named automatically in experiment "
                f"{self.experiment_name!r}. Write `with {fix}:` around the code that logs (or call "
                "exp.start_run(run_id) and exp.close())", UserWarning, stacklevel=4)

    # ---- components of the active run ----------------------------------------------------
    @property
    def params(self):
        return self.current_run.params

    @property
    def metrics(self):
        return self.current_run.metrics

    scalars = metrics

    @property
    def logs(self):
        return self.current_run.logs

    @property
    def files(self):
        return self.current_run.files

    @property
    def readme(self):
        return self.current_run.readme

    @property
    def charts(self):
        """Line, scatter and bar charts of the active run's metrics (or any query result), and
        image-grid and video views of its saved media (``distlog.charts.RunCharts``)."""
        from .charts import RunCharts

        return RunCharts(self.current_run)

    @property
    def rank(self) -> int:
        return self.current_run.rank

    @property
    def run_id(self) -> str:
        return self.current_run.run_id

    @property
    def run_url(self) -> str:
        return self.current_run.url

    # ---- the design document's conveniences ----------------------------------------------
    def log(self, level: str | int | dict, message: Any = _NO_MESSAGE, /, **fields: Any) -> None:
        """A text log record at ``level`` (``exp.log("INFO", "text")``); metrics are
        ``exp.metrics.log({...}, step=)`` (or ``exp.log_metrics``)."""
        if isinstance(level, dict) or message is _NO_MESSAGE:
            # (wandb.log({"loss": 0.5}, step=3): a port's first guess)
            raise TypeError(
                f"exp.log({level!r:.60}{'' if message is _NO_MESSAGE else ', ...'}): exp.log writes a "
                "text log record, exp.log(level, message, **fields); metrics go to "
                "exp.metrics.log({...}, step=N) (or exp.log_metrics({...}, step=N))")
        self.logs.log(level, message, **fields)

    def debug(self, message: Any, /, **fields: Any) -> None:
        self.logs.debug(message, **fields)

    def info(self, message: Any, /, **fields: Any) -> None:
        self.logs.info(message, **fields)

    def warning(self, message: Any, /, **fields: Any) -> None:
        self.logs.warning(message, **fields)

    def error(self, message: Any, /, **fields: Any) -> None:
        self.logs.error(message, **fields)

    def exception(self, message: Any, /, exc_info: Any = True, **fields: Any) -> None:
        self.logs.exception(message, exc_info=exc_info, **fields)

    def get_logs(self, level: str | int = "DEBUG", limit: int | None = 50, rank: int | None = None):
        return self.logs.get_logs(level=level, limit=limit, rank=rank)

    def step(self, n: int | float) -> "_StepScope":
        """Values logged or collected inside take step ``n`` (a fractional step such as 2.5
        too, as ``metrics.log(step=2.5)`` takes it: not cut to 2)."""
        return _StepScope(self, _step_value(n))

    def log_metric(self, name: str, value: Any, step: int | None = None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"log_metric({name!r:.40}, ...): the metric name must be a str, got "
                            f"{type(name).__name__}; e.g. log_metric('loss', 0.5)")
        self.metrics.log(step=step, **{name: value})

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if not isinstance(metrics, Mapping):
            raise TypeError(f"log_metrics() takes a dict of values, got {type(metrics).__name__} "
                            f"({metrics!r:.40}); e.g. log_metrics({{'loss': 0.5}}, step=10)")
        if "step" in metrics and step is not None:
            raise TypeError(f"log_metrics() got the step twice: step={metrics['step']!r:.40} in the "
                            f"dict and step={step!r:.40}; pass it once")
        self.metrics.log(dict(metrics), step=step)  # (a "step" key is the step, as in log(**d))

    def log_histogram(self, name: str, values: Any, *more: Any, bins: int = 64, step: int | None = None,
                      range: tuple[float, float] | None = None) -> None:
        """``metrics.log_histogram``: ``bins``, ``step`` and ``range`` by keyword."""
        self.metrics.log_histogram(name, values, *more, bins=bins, step=step, range=range)

    def flush(self, _aggregation: str = "mean", step: int | None = None):
        """``metrics.flush``: a collective, every rank calls it."""
        return self.metrics.flush(_aggregation=_aggregation, step=step)

    def log_image(self, name: str, image: Any, **kw: Any):
        return self.files.save_image(name, image, **kw)

    def log_model(self, name: str, model_or_state: Any, **kw: Any):
        if not isinstance(name, str):
            raise TypeError(f"log_model({name!r:.40}): the name must be a str, got "
                            f"{type(name).__name__}; e.g. log_model('model', model)")
        state = model_or_state.state_dict() if hasattr(model_or_state, "state_dict") else model_or_state
        filename = name if "." in name.rsplit("/", 1)[-1] else f"{name}.pt"
        return self.files.save_torch(state, filename, **kw)

    def log_file(self, name: str, local_path: str):
        return self.files.log_file(name, local_path)

    # ---- preemption ------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask every rank to stop at the next flush (safe from a signal handler: sets a flag).

        This is the preemption protocol: once every rank agreed (``exp.stop_requested``), the
        run ends ``preempted`` however the program then exits, and the SLURM templates requeue
        the job. To end training early for good (early stopping), break out of the loop on
        every rank instead (agree with a collective of your own, or a flushed metric) and close
        the run: it ends ``completed``."""
        self.current_run.stop_requested = True

    def install_preemption_handler(self, signals: tuple[str, ...] = ("SIGUSR1",)) -> None:
        """On these signals, only set the stop flag (no I/O, no collective in the handler).

        The training loop checks ``exp.stop_requested`` after each ``flush()``: it turns true on
        every rank at the same flush, so all ranks checkpoint and exit together. Under SLURM,
        ``--signal=B:USR1@<seconds>`` plus the templates' trap deliver the signal.
        """
        import signal as _signal

        if isinstance(signals, (str, bytes)) or not isinstance(signals, (tuple, list)):
            raise TypeError(f"install_preemption_handler({signals!r:.40}): signals must be a tuple of "
                            "signal names; e.g. signals=('SIGUSR1',)")
        found = []  # every name checked before any handler is installed
        for name in signals:
            sig = getattr(_signal, name, None) if isinstance(name, str) and name.startswith("SIG") else None
            if isinstance(name, int) and not isinstance(name, bool):  # signal.SIGUSR1 or its number
                with contextlib.suppress(ValueError):
                    sig = _signal.Signals(name)
            if not isinstance(sig, _signal.Signals):
                raise ValueError(f"install_preemption_handler(): no signal {name!r} here; e.g. "
                                 "signals=('SIGUSR1',) (names as in the signal module, or signal.SIGUSR1)")
            found.append(sig)
        for sig in found:
            _signal.signal(sig, lambda signum, frame: self._flag_stop())

    def _flag_stop(self) -> None:
        # (a signal before the run is open — a checkpoint loading, the ranks meeting — is kept
        # for it: dropped, the job ran into its time limit and was never requeued)
        run = self._run
        if run is None:
            self._stop_pending = True
        else:
            run.stop_requested = True

    @property
    def stop_requested(self) -> bool:
        """True once every rank agreed through a flush that the job should stop."""
        return self._run is not None and self._run.metrics.stop_requested


def get_logger(root: Any = "./runs", **options: Any) -> Experiment:
    """An experiment logger writing under ``root`` (a path or URL).

    ``options`` go to the storage backend (``endpoint_url``, ``key``, ``token``, ...), except
    the run settings ``flush_timeout``, ``chunk_rows``, ``commit_interval``, ``window``,
    ``segment_max_bytes``, ``segment_max_age``, ``capture_output`` (tee each rank's
    stdout/stderr into its text log; off by default), ``telemetry`` (per-rank telemetry at each
    flush, default True), ``heartbeat_interval`` (seconds between heartbeats, default 30;
    0 or None: none) and ``comm`` (a ``distlog.comm.Comm`` to run the collectives on instead of
    the one made from torch.distributed: tests, or a framework's own process group).
    """
    return Experiment(root, **options)


#: arguments of wandb.init / TensorBoard's SummaryWriter a port passes to get_logger, and
#: distlog's way to say each
_OTHER_LOGGERS = {
    "config": "params are set in the run: `with exp.run(...): exp.params.set(config)` (or "
              "exp.run(id, params=config))",
    "project": "the experiment is a scope: `with exp.experiment(project), exp.run(...):`",
    "name": "a run is named when opened: `with exp.run(name):`",
    "id": "a run is named when opened: `with exp.run(run_id):`",
    "tags": "tags are the run's: `with exp.run(id, tags=[...]):`",
    "group": "group runs by an experiment (`exp.experiment(group)`) or a param",
    "entity": "there is no account or server: the root (a folder or bucket URL) is where runs go",
    "dir": "the root is get_logger's first argument: get_logger(dir)",
    "log_dir": "the root is get_logger's first argument: get_logger(log_dir)",
    "logdir": "the root is get_logger's first argument: get_logger(logdir)",
    "mode": "there is nothing to turn off or sync: runs are written where the root says",
    "resume": "resuming is the run's: `with exp.run(run_id, resume='allow'|'must'|'never'):`",
}

#: get_logger's run settings and what each takes: "int" a positive int, "seconds" a finite
#: number (> 0 for flush_timeout, >= 0 for the others; heartbeat_interval also None), "bool"
_RUN_OPTIONS = {"flush_timeout": "seconds", "chunk_rows": "int", "commit_interval": "seconds",
                "window": "int", "segment_max_bytes": "int", "segment_max_age": "seconds",
                "capture_output": "bool", "telemetry": "bool", "heartbeat_interval": "seconds",
                "comm": "comm"}


def _checked_run_option(name: str, value: Any) -> Any:
    """``value`` if it is what the run setting ``name`` takes, else a ``TypeError`` or
    ``ValueError`` naming it, here (on every rank alike), not later in a writer thread or a
    collective (``chunk_rows=0`` lost every row at close; ``chunk_rows="64"`` failed the run)."""
    kind = _RUN_OPTIONS[name]
    if kind == "bool":
        if value is True or value is False or type(value).__name__ == "bool_":
            return bool(value)
        raise TypeError(f"get_logger({name}={value!r}): expected True or False, got "
                        f"{type(value).__name__}; pass {name}=True or {name}=False")
    if kind == "comm":
        if value is None or isinstance(value, Comm):
            return value
        raise TypeError(f"get_logger(comm={value!r}): expected a distlog.comm.Comm (or None: the "
                        f"collectives of torch.distributed), got {type(value).__name__}")
    if kind == "int":
        n = plain_int(value)
        if n is None:
            raise TypeError(f"get_logger({name}={value!r}): expected a positive int, got "
                            f"{type(value).__name__}; pass e.g. {name}={_DEFAULTS[name]}")
        if n < 1:
            raise ValueError(f"get_logger({name}={value!r}): expected a positive int; pass e.g. "
                             f"{name}={_DEFAULTS[name]}")
        return n
    if value is None and name == "heartbeat_interval":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) and type(value).__module__ != "numpy":
        raise TypeError(f"get_logger({name}={value!r}): expected a number of seconds, got "
                        f"{type(value).__name__}; pass e.g. {name}={_DEFAULTS[name]}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"get_logger({name}={value!r}): expected a number of seconds, got "
                        f"{type(value).__name__}; pass e.g. {name}={_DEFAULTS[name]}") from None
    if not math.isfinite(f) or f < 0 or (f == 0 and name == "flush_timeout"):
        limit = "more than 0" if name == "flush_timeout" else "0 or more"
        raise ValueError(f"get_logger({name}={value!r}): expected a finite number of seconds, "
                         f"{limit}; pass e.g. {name}={_DEFAULTS[name]}")
    return value


_DEFAULTS = {"flush_timeout": 600, "chunk_rows": 8192, "commit_interval": 10.0, "window": 1_000,
             "segment_max_bytes": 8 << 20, "segment_max_age": 30.0, "heartbeat_interval": 30}


def _step_value(n: Any) -> int | float:
    """``exp.step(n)``'s step: an int (exact however large), or the float of a fractional one."""
    try:
        return exact_step(n)
    except ValueError:
        raise ValueError(f"exp.step({n!r}): a step must be a finite number") from None
