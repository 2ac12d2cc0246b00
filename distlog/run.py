"""One run: identity agreed across ranks, metadata lifecycle, and the wiring of its components.

Starting a run is a collective when torch.distributed is initialised: every rank gathers its
host identity, rank 0 picks the run id (unless the launcher gives one every rank derives
alike) and the attempt number, and broadcasts both. Then the run builds its ``RunContext``
(identity and place, ``distlog.context``), its collaborators (the scalar writers, the text
sink) and its components, handing each only what it uses; no component holds the run.
Closing is local unless the run ends normally, in which case a last metrics flush runs on
every rank.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import importlib.util
import itertools
import json
import logging
import math
import os
import pickle
import platform
import re
import subprocess
import sys
import threading
import time
import traceback
import uuid
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np

from . import __version__  # noqa: F401
from . import report
from .comm import Comm, dist_state, make_comm
from .claims import claim_attempt, live_holder, release_claim, restarted
from .processes import process_start
from .context import RunContext
from .errors import RunInUseError, RunStateError
from .launcher import RankInfo, detect, job_run_id, named_run_id, place_by_host, restart_counts
from .logs import TextLogger
from .heartbeat import DEFAULT_INTERVAL as DEFAULT_HEARTBEAT_INTERVAL, lost_ranks
from .metrics import HISTOGRAMS_TABLE, SCALAR_COLUMNS, SCALARS_TABLE, MetricsLogger
from .monitor import RankMonitor
from . import telemetry as T
from .failures import read_failures
from .layout import RUN_FILE, attempt_claim_path, failure_path, rank_dir, rank_log_path, table_zarr
from .names import check_name, check_run_location
from .report import warn
from .inputs import exact_step
from .params import ParameterIndex
from .readme import MarkdownLogger
from .storage.base import StorageBackend
from .writers.manifest import write_files_table
from .writers.rowstore import DEFAULT_CHUNK_ROWS, BackgroundWriter, RowTable, read_commit
from .writers.logtable import write_logs_table
from .writers.runwriters import RunWriters
from .writers.textlog import TextLogSink

#: ``run(id, resume=...)``: "allow" continues an existing run as a new attempt (or creates it),
#: "never" refuses an existing one, "must" refuses a missing one
RESUME_MODES = ("allow", "never", "must")


_UNREAD = object()  # a candidate run id whose run.json was not read yet


def _note_completed_for_launcher() -> None:
    """The sbatch templates' ``DISTLOG_DONE_FILE``, created once the run completed: a USR1
    that reaches the ranks as they exit (after the run completed, before a handler is gone)
    kills them, and the template would requeue a finished job; it does not when this exists."""
    path = os.environ.get("DISTLOG_DONE_FILE")
    if not path:
        return
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        report.warn(f"could not create DISTLOG_DONE_FILE={path!r} (the run completed; a USR1 "
                    f"at exit may requeue the job): {e!r}")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _in_git_checkout(cwd: str) -> bool:
    """Whether ``cwd`` is inside a git working tree as git finds one (a ``.git`` folder or
    file here or in a parent, or ``GIT_DIR`` set): outside one no ``git`` process is started."""
    if os.environ.get("GIT_DIR"):
        return True
    here = os.path.abspath(cwd)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return True
        parent = os.path.dirname(here)
        if parent == here:
            return False
        here = parent


def _git_state_started(cwd: str | None = None) -> Callable[[], dict[str, Any] | None]:
    """Start reading the commit and dirtiness of the working tree (one ``git status``, run
    while the run's start does its other work); the returned function waits for it and
    gives ``{"commit", "dirty"}``, or None outside a checkout or when git fails."""
    where = cwd or os.getcwd()
    if not _in_git_checkout(where):
        return lambda: None
    try:
        proc = subprocess.Popen(["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
                                cwd=where, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return lambda: None

    def result() -> dict[str, Any] | None:
        if proc.returncode is not None:  # (asked again: a start that failed reaps it)
            return None
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.SubprocessError:
            proc.kill()
            proc.communicate()
            return None
        if proc.returncode != 0:
            return None
        lines = out.splitlines()
        commit = next((ln.split()[2] for ln in lines if ln.startswith("# branch.oid ")), None)
        if commit is None or commit == "(initial)":
            return None
        return {"commit": commit, "dirty": any(not ln.startswith("#") for ln in lines)}

    return result


def _picklable(tp: type) -> type:
    """``tp``, or RuntimeError where it cannot be pickled (the rank would leave the gather)."""
    try:
        pickle.dumps(tp)
    except Exception:  # noqa: BLE001
        return RuntimeError
    return tp


def _rebuild(tp: Any, msg: str, rank: int = 0) -> Exception:
    """Rank ``rank``'s exception, raised again on another rank (same type where it can be made)."""
    text = f"starting the run failed on rank {rank}: {msg}"
    try:
        if isinstance(tp, type) and issubclass(tp, Exception):
            return tp(text)
    except Exception:  # noqa: BLE001 - a type that needs other arguments
        pass
    return RuntimeError(text)


def _torch_version() -> str | None:
    """torch's version, without importing torch when the script has not (that costs ~1 s):
    then read from the installed package's ``version.py``."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return getattr(torch, "__version__", None)
    try:
        spec = importlib.util.find_spec("torch")
        if spec is None or not spec.submodule_search_locations:
            return None
        path = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
        with open(path, encoding="utf-8") as f:
            found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
        return found.group(1) if found else None
    except (ImportError, OSError, ValueError):
        return None


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _checked_tags(tags: Any) -> list[str]:
    """``tags`` as a list of strings (one string is one tag); anything else is refused here, on
    every rank alike, before the run starts (a number stored as a tag broke ``distlog ls`` and
    the sweep table of the whole root)."""
    if tags is None:
        return []
    if isinstance(tags, str):
        return [tags]
    try:
        out = list(tags)
    except TypeError:
        raise TypeError(f"tags must be a list of strings, got {tags!r} ({type(tags).__name__}); "
                        "pass e.g. tags=['baseline']") from None
    bad = [t for t in out if not isinstance(t, str)]
    if bad:
        raise TypeError(f"tags must be strings, got {bad[0]!r} ({type(bad[0]).__name__}) in {out!r}; "
                        f"pass e.g. tags={[str(t) for t in out]!r}")
    return out


def _checked_resume_step(step: Any) -> int | float | None:
    """``resume_step`` as a step (None: none), refused here, on every rank alike, before the run
    starts when it is no finite number (a NaN or a str failed the started run with a bare error
    from deep inside the rewind)."""
    if step is None:
        return None
    try:
        return exact_step(step)
    except ValueError:
        raise ValueError(f"resume_step={step!r}: expected the step of the checkpoint the run resumes "
                         "from, a finite number (an int as a rule); pass e.g. resume_step=1000, or "
                         "None to rewind each series at the first step it writes again") from None


#: closes on the main thread past their last collective (writing the logs table and run.json):
#: a SIGTERM then lets them finish with the status they decided (``experiment._on_sigterm``)
FINISHING = [0]


def _check_same_run(experiment: str, asks: list[str | None]) -> None:
    """Rank 0, starting a run: every rank that named a run id named rank 0's (a rank may
    name none and follow rank 0). Otherwise the ranks are in different ``run()`` blocks —
    one skipped a block, or the id is built per rank — and the others' values would go to
    rank 0's run under its id, a count of ranks that never entered it."""
    if all(a is None or a == asks[0] for a in asks[1:]):
        return
    named = ", ".join(f"rank {r}: {'no id' if a is None else repr(a)}" for r, a in enumerate(asks))
    raise ValueError(
        f"the ranks opened different runs of experiment {experiment!r} ({named}): every rank "
        "must enter the same exp.run(...) blocks, in the same order, with the same id (a rank "
        "that skips a block meets the others in their next one). Build the id on rank 0 alone "
        "and pass None on the other ranks, or the same id everywhere")


def _no_process_group(info: RankInfo) -> None:
    """A launcher started several ranks (its environment says so) and this one opens a run
    with no ``torch.distributed`` process group: each rank would be rank 0 of a run of its
    own, holding only its own values, under the job's one run id (the second one ``-2``).
    torchrun and env:// launchers run one training: refused (on every rank alike: no
    collective is waited for). SLURM tasks of one ``srun`` step may be independent: said."""
    where = {"torchrun": "torchrun", "env": "the launcher (RANK, WORLD_SIZE)",
             "slurm": "srun (SLURM_PROCID, SLURM_NTASKS)"}.get(info.launcher, info.launcher)
    message = (f"{where} started this process as rank {info.rank} of {info.world_size}, but "
               "torch.distributed is not initialised, so distlog cannot reduce over the ranks")
    if info.launcher == "slurm":
        report.warn(f"{message}: each task is logged as a run of its own. If the tasks are one "
                    "training, call torch.distributed.init_process_group(...) before the run opens",
                    key="no process group")
        return
    raise RunStateError(f"{message}: each rank would write a run of its own with only its own "
                        "values. Call torch.distributed.init_process_group(...) before the run opens "
                        "(before exp.run(), start_run(), or the first exp.params / exp.metrics call, "
                        "which opens one); to log each process as a run of its own on purpose, pass "
                        "get_logger(..., comm=distlog.comm.LocalComm()) and a run id per rank")


class Run:
    def __init__(
        self,
        root: StorageBackend,
        experiment: str,
        run_id: str | None = None,
        *,
        tags: list[str] | None = None,
        flush_timeout: float = 600.0,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        commit_interval: float = 10.0,
        window: int = 1_000,
        resume_step: int | None = None,
        resume: str = "allow",
        segment_max_bytes: int = 8 << 20,
        segment_max_age: float = 30.0,
        capture_output: bool = False,
        telemetry: bool = True,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
        comm: Comm | None = None,
    ) -> None:
        self.root = root
        self.experiment = check_name(experiment, "experiment name", allow_slash=True)
        if run_id is not None:
            check_name(run_id, "run id")
        self.run_id = run_id
        self.tags = _checked_tags(tags)
        self.flush_timeout = flush_timeout
        self.chunk_rows = chunk_rows
        self.commit_interval = commit_interval
        self._resume_step = _checked_resume_step(resume_step)
        self._rewind = True
        self._comm = comm
        if resume not in RESUME_MODES:
            raise ValueError(f"resume must be one of {', '.join(map(repr, RESUME_MODES))}; got {resume!r}")
        self.resume = resume
        self._segment_limits = {"max_bytes": segment_max_bytes, "max_age": segment_max_age}
        self.capture_output = capture_output
        self._window = window
        # per-rank telemetry at each flush and the heartbeat (heartbeat_interval None/0: off)
        self._telemetry, self._heartbeat_interval = telemetry, heartbeat_interval
        # what the training loop sets before the run started; the context holds them after
        self._current_step: int | None = None
        self._stop_requested = False
        self.status = "created"
        self.attempt = 0
        self._stored_last_step: float | None = None  # run.json's, as the attempt began
        self._start_meta: str | None = None  # rank 0: run.json as this attempt wrote it (JSON)
        #: what later decisions need of the earlier attempts' records (oldest first: their
        #: ``rewind``, ``last_step`` and ``started``), read by rank 0 at start, agreed by all
        self._earlier: list[dict[str, Any]] = []
        self._resume_since: float | None = None
        self.ctx: RunContext | None = None  # identity and place, built by start()
        self.comm: Comm
        self.info: RankInfo
        self.storage: StorageBackend
        # collaborators and components, built by start() once identity is agreed
        self.writers: RunWriters | None = None
        self.log_sink: TextLogSink
        self.monitor: RankMonitor
        self.metrics: MetricsLogger
        self.logs: TextLogger
        self.params: ParameterIndex
        self.readme: MarkdownLogger
        self._files: Any = None
        self._files_lock = threading.Lock()
        self._pid = os.getpid()  # the process that started the run (set again by start())
        self._interrupted: tuple[str, BaseException | None] | None = None  # a close Ctrl-C stopped

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def world_size(self) -> int:
        return self.comm.world_size

    @property
    def current_step(self) -> int | None:
        """The step ``exp.step(n)`` (or an integration) set; stamps a plain collect/log."""
        return self._current_step if self.ctx is None else self.ctx.current_step

    @current_step.setter
    def current_step(self, step: int | None) -> None:
        self._current_step = step
        if self.ctx is not None:
            self.ctx.current_step = step

    @property
    def stop_requested(self) -> bool:
        """Set by ``exp.request_stop()`` or the preemption handler; agreed at the next flush."""
        return self._stop_requested if self.ctx is None else self.ctx.stop_requested

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self._stop_requested = value
        if self.ctx is not None:
            self.ctx.stop_requested = value

    @property
    def resume_step(self) -> int | None:
        """The checkpoint step the stored series rewind to (``run(..., resume_step=)``)."""
        return self._resume_step if self.writers is None else self.writers.resume_step

    @resume_step.setter
    def resume_step(self, step: int | None) -> None:
        step = self._resume_step = _checked_resume_step(step)
        if self.writers is not None:
            self.writers.resume_step = step
            self.metrics.resume_at(step)

    @property
    def resume_since(self) -> float | None:
        """With ``resume_step``: the wall time (seconds since the epoch) since which stored rows
        past that step are dropped; rows past it written before stay (``training_since``).
        None: every row past it. Set it with ``resume_step``, before the attempt's first row."""
        return self._resume_since if self.writers is None else self.writers.resume_since

    @resume_since.setter
    def resume_since(self, since: float | None) -> None:
        if since is not None and (isinstance(since, bool) or not isinstance(since, (int, float))
                                  or not math.isfinite(since)):
            raise ValueError(f"resume_since={since!r}: expected a wall time in seconds since the epoch "
                             "(a finite number, as time.time() gives), or None for every row past resume_step")
        self._resume_since = None if since is None else float(since)
        if self.writers is not None:
            self.writers.resume_since = self._resume_since

    @property
    def rewind(self) -> bool:
        """Whether this attempt rewinds each stored series at its first new row (the default
        of ``resume="allow"``: a restarted script replaces the steps it writes again). False:
        the attempt only appends (an evaluation after training): no stored row is dropped,
        and a row at or before a series' last stored step is refused, with a warning. Set it
        before the attempt's first row (as ``resume_step``)."""
        return self._rewind if self.writers is None else self.writers.rewind

    @rewind.setter
    def rewind(self, value: bool) -> None:
        self._rewind = bool(value)
        if self.writers is not None:
            self.writers.rewind = bool(value)

    @property
    def appended_after(self) -> float | None:
        """The step after which every row the run stored was written by attempts that only
        appended (``rewind`` False: evaluations after training), from the earlier attempts'
        records in ``run.json``: the run's last step when the last attempt that could rewind
        (a training) closed, every attempt after it one that only appended. ``-inf`` when every
        earlier attempt only appended; None when that is not known (a first attempt, an attempt
        killed before it closed, records of an older distlog). Rank 0 reads it as the attempt
        starts; every rank holds the same value.

        A training resumed at a checkpoint whose step is past it need not drop the rows after
        the checkpoint: no training wrote them (the Lightning integration keeps them)."""
        return _appended_after(self._earlier)

    def training_since(self, step: float) -> float | None:
        """The wall time (seconds since the epoch) since which the rows stored past ``step``
        may be a training's, from the earlier attempts' records: the start of the earliest
        training attempt in the latest ones such that, when it began, every stored row past
        ``step`` had been appended by evaluations (``appended_after`` of the attempts before
        it at most ``step``), or of the first attempt. Rows past ``step`` stored before it were
        appended by evaluations: a training resumed at ``step`` drops each series from its
        first row past ``step`` written since then (``resume_since``), keeping those. (A fit
        resumed at a checkpoint keeps the rows validate()/test() appended after the fit that
        saved it; if that fit then crashes and is resumed from the same checkpoint again, its
        rows go and theirs still stay.) None: no record says when (every row past ``step``
        goes)."""
        return _training_since(self._earlier, step)

    @property
    def files(self) -> Any:
        """The artifact logger (imported on first use: it pulls in more modules)."""
        if self._files is None:
            from .files import ArtifactLogger

            with self._files_lock:  # (threads saving their first files at once: one logger)
                if self._files is None:
                    self._files = ArtifactLogger(self._context())
        return self._files

    def _context(self) -> RunContext:
        if self.ctx is None:
            raise RuntimeError(f"run {self.experiment}/{self.run_id or '?'} is not started; "
                               "call start() (or open it with exp.run()/exp.start_run()) first")
        return self.ctx

    @property
    def url(self) -> str:
        return self.storage.url

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> "Run":
        """Agree on the run id and attempt with every rank and write the metadata."""
        self._pid = os.getpid()
        # injected (tests, or a caller's own collective layer), else from torch.distributed
        self.comm = self._comm or make_comm(self.flush_timeout)
        self.info = detect(dist_state=dist_state())
        if self._comm is None and self.comm.world_size == 1 and self.info.world_size > 1:
            _no_process_group(self.info)
        me = {"rank": self.info.rank, "host": self.info.host, "local_rank": self.info.local_rank,
              "node": self.info.node_rank, "pid": os.getpid(),
              "pid_start": process_start(os.getpid())}
        asked = self.run_id  # (rank 0 checks every rank asked for its run: below)
        peers = self.comm.all_gather_object({**me, "asked": asked})
        asks = [p.get("asked") for p in peers]
        peers = [{k: v for k, v in p.items() if k != "asked"} for p in peers]  # (a comm may hand one dict twice)
        if not self.info.placed and len(peers) > 1:  # no launcher said where each rank runs
            placed = place_by_host([p["host"] for p in peers])
            for p, (local, node) in zip(peers, placed):
                p["local_rank"], p["node"] = local, node
            local, node = placed[self.comm.rank]
            self.info = dataclasses.replace(self.info, local_rank=local, node_rank=node)
        self._claiming: str | None = None  # (rank 0: the run id a start cut short may have claimed)
        try:
            self._start(peers, asks)
            self._claiming = None
            return self
        except BaseException as e:
            if self.status == "running":  # started, then cut short (a Ctrl-C on the way out)
                with contextlib.suppress(Exception):
                    self.close("failed", exc=e, collective=False)
                    self._claiming = None
            if self._claiming is not None:  # (None: nothing claimed, or the run was closed failed)
                self._abandon_start(e)
            raise

    def _start(self, peers: list[dict[str, Any]], asks: list[Any]) -> "Run":
        decided: tuple[str, Any] = ("ok", None)
        if self.comm.rank == 0:
            # rank 0 decides and writes the metadata; a failure (bad name, missing bucket,
            # denied access) is broadcast so every rank raises the same error, none hangs
            git = _git_state_started()
            try:
                _check_same_run(self.experiment, asks)
                run_id, self.attempt = self._choose_run()
                self.run_id = run_id
                self.storage = self.root.child(f"{self.experiment}/{run_id}")
                try:
                    self._write_start_meta(peers, git())
                except Exception:  # the attempt this start claimed was never recorded
                    self._claiming = None
                    release_claim(self.storage, self.attempt, self.info.host)
                    raise
                decided = ("ok", (run_id, self.attempt, self.experiment, self._earlier))
            except Exception as e:  # noqa: BLE001 - re-raised below, on every rank
                git()  # (the git process ends here, not in the garbage collector)
                decided = ("error", (type(e), str(e)))
                failure = e
        kind, value = self.comm.broadcast_object(decided)
        if kind == "error":
            if self.rank == 0:
                raise failure
            raise _rebuild(*value)
        run_id, attempt, experiment, self._earlier = value
        if experiment != self.experiment:  # (a name built per rank: a timestamp, a hostname)
            warn(f"rank {self.rank} named the experiment {self.experiment!r}, rank 0 "
                 f"{experiment!r}: this rank's logs, files and series go to rank 0's run "
                 f"{experiment}/{run_id}; give every rank the same experiment name")
            self.experiment = experiment
        self.run_id, self.attempt = run_id, attempt
        self.storage = self.root.child(f"{self.experiment}/{run_id}")
        self._build_components()
        try:
            self.metrics.resume_at(self._resume_step)
            if attempt > 0:  # what earlier attempts stored, read on every rank, then agreed
                self._agreed(self._read_earlier)
            else:
                self.params.load_existing()
            if self.capture_output:  # tee stdout/stderr into this rank's log until the run closes
                from .capture import tee_output

                self.on_close(tee_output(self.logs))
            logs = self.logs
            self.monitor.start(progress=self.metrics.progress, last_log=lambda: logs.last_record)
            if self._resume_step is not None and self.attempt > 0:
                # a checkpoint resume drops the rows after the checkpoint now, published at
                # once, from every rank's series (rank 0's and each rank's own): a killed
                # attempt must not leave the dead attempt's rows standing (after
                # monitor.start: rank 0's writer takes the telemetry table if it is on)
                self.writers.local().flush(wait=True)
            # last: another thread takes the run once it is running (``Experiment.current_run``
            # holds it while it starts), not before its keys and params are in place
            self.status = "running"
        except BaseException as e:
            # the attempt ends failed with its cause (not "running" forever, with no heartbeat
            # for readers to judge it by); the ranks may be out of step: no collective
            self.status = "running"  # (close() ends a running run: a Ctrl-C may come before this was set)
            with contextlib.suppress(Exception):
                self.close("failed", exc=e, collective=False)
                self._claiming = None  # (closed: run.json says failed; start() has no more to do)
            raise
        self.logs.debug(f"run {self.experiment}/{run_id} attempt {attempt} started on rank "
                        f"{self.rank} of {self.world_size}")
        return self

    def _agreed(self, step: Callable[[], None]) -> None:
        """``step()`` on every rank, its outcome then agreed: where one rank fails (it cannot
        read a record of its own, such as a torn commit record), every rank raises, the others
        naming that rank and its error — none goes on to wait for it in a collective."""
        failed = None
        try:
            step()
        except Exception as e:  # noqa: BLE001 - raised below, after the ranks compare
            failed = e
        if self.comm.world_size > 1:
            said = self.comm.all_gather_object(None if failed is None else (_picklable(type(failed)), str(failed)))
            other = next(((r, s) for r, s in enumerate(said) if s is not None), None)
            if failed is None and other is not None:
                raise _rebuild(*other[1], rank=other[0])
        if failed is not None:
            raise failed

    def _abandon_start(self, exc: BaseException) -> None:
        """Rank 0, a start cut short (a Ctrl-C while the run opens) before its run could be
        closed: the attempt this process recorded running is recorded failed with that cause,
        and its claims are given up, so a retry of the run id in this process starts a new
        attempt (it read "running" for good, the id "in use by this process"). From the store,
        not from flags: the cut may fall between any two steps of the start."""
        storage = self.root.child(f"{self.experiment}/{self._claiming}")
        self._claiming = None
        host, pid = self.info.host, os.getpid()
        ended: set[Any] = set()  # attempts recorded as ended: their claims stay as they are
        with contextlib.suppress(Exception):
            meta = storage.read_json(RUN_FILE)
            ended = {a.get("attempt") for a in meta.get("attempts", []) if a.get("status") != "running"}
            mine = [a for a in meta.get("attempts", []) if a.get("status") == "running"
                    and any(r.get("host") == host and r.get("pid") == pid for r in a.get("ranks") or ())]
            if mine:
                err, when = self._failure_record(exc), _now_iso()
                for a in mine:
                    a.update({"ended": when, "status": "failed", "error": err})
                meta.update({"status": "failed", "ended": when, "error": err})
                storage.write_json(RUN_FILE, meta)
        folder, _, _ = attempt_claim_path(0).rpartition("/")
        with contextlib.suppress(Exception):
            for name in storage.list_dir(folder):
                number = re.fullmatch(r"attempt-(\d+)\.json", name)
                if number and int(number.group(1)) not in ended:  # (ours only: release_claim
                    release_claim(storage, int(number.group(1)), host)  # checks the host and pid)

    def _build_components(self) -> None:
        """The context, the collaborators, and the components, each given what it uses."""
        ctx = self.ctx = RunContext(
            rank=self.comm.rank, world_size=self.comm.world_size, attempt=self.attempt,
            info=self.info, storage=self.storage, root=self.root,
            current_step=self._current_step, stop_requested=self._stop_requested)
        comm = self.comm
        sink = self.log_sink = TextLogSink(self.storage, rank_log_path(ctx.rank, ctx.attempt),
                                           **self._segment_limits)
        chunk_rows, commit_interval = self.chunk_rows, self.commit_interval
        # writers open on first use; ``monitor`` and ``logs`` below exist by then
        writers = self.writers = RunWriters(ctx.rank, lambda main, resume_step, rewind, since: open_writer(
            ctx, main, resume_step, rewind, since, chunk_rows=chunk_rows, commit_interval=commit_interval,
            telemetry=monitor.telemetry is not None, warn=logs.warning), self._resume_step)
        writers.rewind, writers.resume_since = self._rewind, self._resume_since
        beat = self._heartbeat_interval
        if beat and beat > 0:
            # at least three beats within a flush timeout: a FlushTimeout's report tells a rank
            # inside the flush from one that never came (heartbeats older than the flush prove
            # nothing, and a hung rank's last log line would be missing)
            beat = min(beat, max(self.flush_timeout / 3, 1.0))  # (not below 1 s: a PUT each)
        monitor = self.monitor = RankMonitor(ctx, comm, writers, telemetry=self._telemetry,
                                             heartbeat_interval=beat)
        # after each flush: a param change an earlier attempt's rows should know of is said,
        # and this rank's log lines made durable. On object stores only a due segment
        # (``segment_max_bytes`` / ``segment_max_age``) is written: one PUT per flush would
        # make request cost scale with steps
        flush_sink = partial(sink.flush, due_only=True)
        # (its notes go to the run's log, made below: no component holds the run)
        params = self.params = ParameterIndex(ctx, note=lambda message: logs.warning(message))

        def after_flush() -> None:
            params.settle()
            flush_sink()

        metrics = self.metrics = MetricsLogger(ctx, comm, writers, monitor, after_flush=after_flush,
                                               window=self._window)
        logs = self.logs = TextLogger(ctx, sink, latest_step=lambda: metrics.latest_step)
        metrics._core.note = logs.warning  # (a flush's warnings: in the run's log, read afterwards)
        self.readme = MarkdownLogger(ctx)

    def _choose_run(self) -> tuple[str, int]:
        """Rank 0: the run id and the attempt number this start claimed — the id the program
        gave, else the job's (``_job_run_ids``), else a new one — checked, and not written by
        another live process (``claims``): a given id that is raises ``RunInUseError``; a
        job's id moves on to the next of its ids."""
        given = self.run_id or named_run_id()
        base = None if given else job_run_id()
        if given is not None:
            candidates: Any = [(given, _UNREAD)]
        elif base is not None:
            candidates = self._job_run_ids(base)
        else:
            candidates = [(new_run_id(), _UNREAD)]
        passed: list[str] = []  # the job's ids other processes write, and by whom
        for run_id, meta in candidates:
            check_name(run_id, "run id")
            check_run_location(self.root, self.experiment, run_id)
            if meta is _UNREAD:
                meta = self._read_meta(run_id)
            self._check_resume(run_id, meta)
            attempt, holder = self._claim_attempt(run_id, meta)
            if holder is None:
                if passed:
                    warn(f"this process logs to run {self.experiment}/{run_id}: "
                         f"{'; '.join(passed)}. Concurrent srun steps of one allocation each get a run "
                         "of their own; name them (run(id), DISTLOG_RUN_ID) to find each again after "
                         "a requeue", key=f"run-in-use:{self.experiment}/{run_id}")
                return run_id, attempt
            if given is not None or self.resume == "must":
                raise RunInUseError(
                    f"run {self.experiment}/{run_id} under {self.root.url} is being written by a live "
                    f"process: {holder}. Two processes writing one run would mix their rows in its "
                    "series. Give this run another id (run(id=...), DISTLOG_RUN_ID), or start it once "
                    "the other process has ended (one killed on another host counts as live until its "
                    "heartbeat is two heartbeat intervals + 30 s old)")
            passed.append(f"run {self.experiment}/{run_id} is being written by another process ({holder})")
        raise AssertionError("unreachable: a job's ids never run out")

    def _job_run_ids(self, base: str) -> Iterator[tuple[str, Any]]:
        """The launched job's run ids (``launcher.job_run_id``) a start may take, in order, with
        their ``run.json`` as read (None: no such run): the job's id for the job's first start
        or a restart of it (a requeue, an elastic restart: other restart counts than the run's
        last attempt recorded; or a retry of a run that did not complete), which continues the
        job's run. Another start in the same job with the same counts after that run completed
        (a second run in the process, a second script in one allocation) is a run of its own:
        the first of ``<id>-2``, ``<id>-3``, ... that does not exist, was last written under
        other counts (so a requeued job's runs find theirs again) or did not complete (later
        ones when another process writes it: ``_choose_run``). ``resume="must"``: the job's id
        only."""
        if self.resume == "must":
            yield base, _UNREAD
            return
        counts = restart_counts()
        for n in itertools.count(1):
            run_id = base if n == 1 else f"{base}-{n}"
            meta = self._read_meta(run_id)
            attempts = (meta or {}).get("attempts") or [{}]
            if (meta is None or attempts[-1].get("restart_counts") != counts
                    or meta.get("status") != "completed"):
                yield run_id, meta

    def _claim_attempt(self, run_id: str, meta: dict[str, Any] | None) -> tuple[int | None, str | None]:
        """``(attempt, None)``: the number this start claimed for ``run_id``; ``(None, holder)``
        when another live process writes the run, or is starting it now (``claims``)."""
        storage = self.root.child(f"{self.experiment}/{run_id}")
        attempts = [a for a in (meta or {}).get("attempts") or () if isinstance(a, dict)]
        counts = restart_counts()
        if (attempts and attempts[-1].get("status") == "running"
                and not restarted(attempts[-1], counts, self.info.ids)):
            holder = live_holder(storage, attempts[-1], self.info.host)
            if holder is not None:
                return None, holder
        numbers = [a.get("attempt") for a in attempts]
        first = 1 + max((n for n in numbers if type(n) is int), default=len(attempts) - 1)
        self._claiming = run_id  # (before the claim: a start cut short gives up what it claimed)
        return claim_attempt(storage, first, {"host": self.info.host, "restart_counts": counts})

    def _check_resume(self, run_id: str, meta: dict[str, Any] | None) -> None:
        name = f"{self.experiment}/{run_id}"
        if meta is not None and self.resume == "never":
            n = len(meta.get("attempts", []))
            raise ValueError(
                f"run {name!r} already exists ({n} attempt(s), status {meta.get('status')!r}) and "
                "resume='never' was given; pass resume='allow' (or 'must') to continue it as a new "
                "attempt, whose series rewind to the first step it writes, or choose another run id"
            )
        if meta is None and self.resume == "must":
            raise ValueError(
                f"run {name!r} does not exist under {self.root.url} and resume='must' was given; "
                "check the root, experiment and run id, or pass resume='allow' to create it"
            )

    def _read_meta(self, run_id: str) -> dict[str, Any] | None:
        try:
            return self.root.child(f"{self.experiment}/{run_id}").read_json(RUN_FILE)
        except FileNotFoundError:
            return None

    def _write_start_meta(self, peers: list[dict[str, Any]], git: dict[str, Any] | None) -> None:
        meta = self._read_meta(self.run_id) or {
            "format": 1, "experiment": self.experiment, "run_id": self.run_id,
            "created": _now_iso(), "attempts": [], "tags": [],
        }
        torch_version = _torch_version()
        attempt = {
            "attempt": self.attempt, "started": _now_iso(), "ended": None, "status": "running",
            "world_size": self.world_size, "hosts": sorted({p["host"] for p in peers}),
            "ranks": peers, "restart_counts": restart_counts(), "launcher": self.info.launcher,
            "launcher_ids": dict(self.info.ids), "resume_step": self.resume_step,
            "resume": self.resume,
        }
        earlier = [a for a in meta.get("attempts", []) if a.get("attempt") != self.attempt]
        self._earlier = [{k: a.get(k) for k in ("rewind", "last_step", "started")} for a in earlier]
        for a in earlier:
            if a.get("status") == "running":  # killed without closing (kill -9, node loss)
                a["status"] = "interrupted"
        meta["attempts"] = earlier + [attempt]
        # a resumed attempt may rewind its series (resume_step): the last step is read live
        # from them while it runs (``needs_live_step``) and stored again at close
        self._stored_last_step = meta.get("last_step")
        meta.update({
            "last_step": None, "status": "running", "rank_errors": [], "started": attempt["started"],
            "ended": None, "error": None,
            "world_size": self.world_size, "hosts": attempt["hosts"], "launcher": self.info.launcher,
            "launcher_ids": dict(self.info.ids), "argv": list(sys.argv), "cwd": os.getcwd(),
            "git": git, "python": platform.python_version(), "torch": torch_version,
            "distlog": __version__, "tags": sorted(set(meta.get("tags", [])) | set(self.tags)),
            "attempt": self.attempt,
        })
        self.storage.write_json(RUN_FILE, meta)
        self._start_meta = json.dumps(meta)

    def _log_close_errors(self, errors: list[BaseException]) -> None:
        """What failed while closing, in this rank's own log (an ERROR with its traceback):
        it went only to the failure record and ``run.json``, and the rank's log said "run
        ended: failed" with no cause."""
        if self.log_sink.closed:
            return
        for e in errors:
            try:
                self.logs.exception("closing the run failed on this rank", exc_info=e)
            except Exception:  # noqa: BLE001 - the log itself may be what failed
                pass

    def lost_peers(self) -> str | None:
        """The other ranks of this host whose process ended without closing this attempt,
        described from their heartbeats (``heartbeat.lost_ranks``); None if none, with
        heartbeats off, or when they cannot be read."""
        ctx = self.ctx
        if ctx is None or ctx.world_size < 2 or not self._heartbeat_interval:
            return None
        try:
            return lost_ranks(self.storage, ctx.attempt, ctx.world_size, ctx.rank)
        except Exception:  # noqa: BLE001 - only a cause to name: the close goes on without it
            return None

    def close(self, status: str = "completed", exc: BaseException | None = None, collective: bool = True) -> None:
        """End the run. ``collective`` runs a last flush on every rank (normal exit only).

        A close that a ``KeyboardInterrupt`` stopped (Ctrl-C again while it waited for the
        writer or a peer) leaves the run ``closing``: calling ``close`` again (``exp.close()``,
        or the exit hook) finishes it on this rank alone, with the first close's error if it
        had one. Every step of a close may run twice."""
        interrupted, self._interrupted = self._interrupted, None
        if self.status == "closing" and interrupted is not None:
            if interrupted[1] is not None:
                status, exc = "failed", interrupted[1]
            collective = False  # (the peers went on, or are gone)
        elif self.status != "running":
            return
        elif os.getpid() != self._pid:
            # a child forked while the run was open (os.fork(), a fork-started worker) that ends
            # its copy of the `with` block or exits normally: the run is the parent's, which
            # still writes it; the child has no writer thread, and closing here ended the
            # parent's run (run.json "failed: SystemExit", "run ended" in its log)
            self.status = "forked"
            return
        self.status = "closing"
        try:
            self._close(status, exc, collective, again=interrupted is not None)
        except BaseException as e:
            if self.status == "closing" and not isinstance(e, Exception):
                # stopped part-way (Ctrl-C): rows still buffered, run.json "running"; kept
                # for a later close (the exit hook's) to finish, with the first close's cause
                self._interrupted = (status, exc)
            raise

    def _close(self, status: str, exc: BaseException | None, collective: bool, again: bool) -> None:
        incoming = exc
        errors: list[BaseException] = []
        if exc is not None and not again:
            self.logs.exception("run failed", exc_info=exc)
        ctx = self._context()
        self.params.settle()
        for fn in ctx.final_flush_hooks:
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        self.log_sink.flush()
        if (collective and exc is None) or self.world_size == 1:
            # also the barrier after which rank 0 may merge what every rank wrote. One process
            # needs no peer for it: what it collected is kept even when the run failed or was
            # never closed (the window before a crash often shows its cause)
            try:
                self.metrics._flush("mean", None, closing=True)
            except Exception as e:  # noqa: BLE001 - recorded, then raised below
                errors.append(e)
                # the ranks are out of step (or one is gone): no further collective
                collective = False
        if self.rank != 0 and collective and exc is None:
            self.params.check_stored()  # (after the closing flush: rank 0 set its params)
        if self.rank == 0 and self._files is None:
            # rank 0 merges every rank's artifact records even if it saved nothing itself
            try:  # (from the writers' module: the files package is not imported for this)
                write_files_table(self.storage)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        for fn in reversed(ctx.close_hooks):
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        if self.writers.resume_step is not None and not self.writers.opened:
            # an attempt resumed at a checkpoint that handed over no row: its writer (which
            # drops the stored rows past the checkpoint) opens now, or they would stay
            try:
                self.writers.local()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        try:
            self.monitor.hand_off()  # telemetry not handed over yet (no closing flush on failure)
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        # past the last flush and the close hooks: a log() from another thread (a system-monitor
        # thread) is refused from here on, as after the close; taken now, it would go to a
        # closing writer and be dropped without a word while close waited for that writer
        self.metrics.end(self.run_id)
        errors.extend(self.writers.close())
        if errors and incoming is None:
            status, exc = "failed", errors[0]
        self._log_close_errors(errors)
        if exc is not None:
            self._write_failure(exc)
        if collective and incoming is None and self.world_size > 1:
            # every rank learns whether another one failed while closing, before it logs how
            # the run ended
            try:
                failed = self.comm.all_reduce(np.array([float(status == "failed")]), "max")[0]
                if failed and status != "failed":
                    status = "failed"
                    self.logs.error("another rank failed while closing the run; see run.json")
            except Exception as e:  # noqa: BLE001
                errors.append(e)
                self._log_close_errors([e])
                if exc is None:
                    self._write_failure(e)
                status, exc = "failed", exc or e
        if not self.log_sink.closed:  # (a close finished after Ctrl-C stopped it past here)
            self.logs.record("DEBUG", f"run ended: {status}", {}, always=True)  # (follow waits for it)
        self.monitor.close(status)
        self.log_sink.close()
        if collective and incoming is None and self.world_size > 1 and status != "failed":
            try:  # every rank's log is closed past this point: rank 0 may index them all
                self.comm.barrier()
            except Exception as e:  # noqa: BLE001 - a peer lost at the very end: the run did
                errors.append(e)  # not complete on every rank (its log already said it ended)
                self._write_failure(e)
                status, exc = "failed", e
        # past the last collective: a SIGTERM now waits for the end (experiment). Only a close on
        # the main thread, where the signal lands: one on another thread must not hold back a
        # SIGTERM meant for the main thread's training
        main = threading.current_thread() is threading.main_thread()
        FINISHING[0] += main
        try:
            if self.rank == 0:
                # how the run ended first: the logs table is an index of the text logs (a
                # reader falls back to them until it is written), so a kill while it is
                # merged leaves a finished run finished, not "running"
                self._write_end_meta(status, exc)
                try:
                    write_logs_table(self.storage)
                except Exception as e:  # noqa: BLE001 - the text logs stay the source of truth
                    warn(f"could not write the logs table: {e!r}")
        finally:
            FINISHING[0] -= main
        self.monitor.detach()
        if self._comm is None:  # a comm the run made (not one handed in): past its last use
            self.comm.close()
        self.status = status
        if errors and incoming is None:
            raise errors[0]

    def _failure_record(self, exc: BaseException) -> dict[str, Any]:
        return {"rank": self.rank, "attempt": self.attempt, "host": self.info.host, "pid": os.getpid(),
                "time": time.time(), "type": type(exc).__name__, "message": str(exc),
                "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}

    def _write_failure(self, exc: BaseException) -> None:
        """Every failing rank leaves its own cause on the store, so the run's status can name
        the first one (a peer's ``FlushError`` is usually only the echo of it)."""
        try:
            self.storage.write_json(failure_path(self.attempt, self.rank), self._failure_record(exc))
        except Exception as e:  # noqa: BLE001 - the text log still has the traceback
            warn(f"could not record this rank's failure on the store: {e!r}")

    def _write_end_meta(self, status: str, exc: BaseException | None) -> None:
        gone = False
        try:
            meta = self.storage.read_json(RUN_FILE)
        except FileNotFoundError:  # written at the start: the run's folder was deleted meanwhile
            gone = self._start_meta is not None
            meta = (json.loads(self._start_meta) if gone else
                    {"run_id": self.run_id, "experiment": self.experiment, "attempts": []})
        ended = _now_iso()
        causes = read_failures(self.storage, self.attempt)
        err = causes[0] if causes else (self._failure_record(exc) if exc is not None else None)
        if gone:
            # what was stored before the deletion (logs, params, files, notes, earlier
            # attempts) is lost, and what came after went partly nowhere: not "completed"
            said = (f"{RUN_FILE} of run {self.experiment}/{self.run_id} was gone at its end: its folder "
                    f"{self.storage.url} (or {RUN_FILE}) was deleted while the run was open. The logs, "
                    "params, files and notes stored before that are lost (metrics not committed yet "
                    "were written from memory); the run is recorded failed")
            report.warn(said, level=logging.ERROR)
            err = err or {"rank": self.rank, "attempt": self.attempt, "host": self.info.host,
                          "pid": os.getpid(), "time": time.time(), "type": "RunFolderDeleted",
                          "message": said, "traceback": ""}
        if err is not None and status != "failed":
            status = "failed"  # another rank failed: the run did not complete
        last_step = self._last_step(meta)
        for a in meta.get("attempts", []):
            if a.get("attempt") == self.attempt:
                # how it wrote and where the series ended: a later attempt learns from these
                # which stored rows only appending attempts wrote (``appended_after``)
                a.update({"ended": ended, "status": status, "error": err, "rewind": self.rewind,
                          "last_step": last_step})
                changes = getattr(getattr(self, "params", None), "changes", None)
                if changes:  # (the rows of earlier attempts were written with the earlier values)
                    a["params_changed"] = changes
        meta.update({"status": status, "ended": ended, "error": err,
                     "rank_errors": [{k: c[k] for k in ("rank", "type", "message", "time")} for c in causes],
                     "last_step": last_step})
        nonfinite = self._nonfinite_from()
        if nonfinite is not None:
            meta["nonfinite_from"] = nonfinite
        try:
            self.storage.write_json(RUN_FILE, meta)
        except Exception as e:  # noqa: BLE001
            report.warn(f"could not write {RUN_FILE}: {e!r}")
        if status == "completed":
            _note_completed_for_launcher()

    def _read_earlier(self) -> None:
        """A resumed attempt reads what earlier attempts stored before any collective: the
        params, every commit record its writers will load (a torn one raises ``DamagedRecord``
        here, agreed by ``_agreed``, not later on one rank inside a flush), the keys."""
        self.params.load_existing()
        if self.rank == 0 and self.monitor.telemetry_on:  # (its table: in rank 0's writer)
            read_commit(self.storage, T.TABLE, resuming=True)
        self._adopt_stored_keys()

    def _adopt_stored_keys(self) -> None:
        """A resumed attempt learns the keys earlier attempts stored (their commit records;
        on every rank, so every rank refuses a clashing key alike)."""
        own = self.storage if self.rank == 0 else self.storage.child(rank_dir(self.rank))
        keys = set(read_commit(self.storage, SCALARS_TABLE, resuming=True).get("lengths", {}))
        if self.rank:
            keys |= set(read_commit(own, SCALARS_TABLE, resuming=True).get("lengths", {}))
        histograms = read_commit(own, HISTOGRAMS_TABLE, resuming=True).get("lengths", {})

        def bins(key: str) -> int | None:
            try:
                width = own.read_json(f"{table_zarr(HISTOGRAMS_TABLE)}/{key}/zarr.json")["shape"][1]
            except (FileNotFoundError, KeyError, IndexError, TypeError):
                return None
            return (int(width) - 3) // 2  # step, time, bins + 1 edges, bins counts

        self.metrics.adopt_stored(keys, histograms, bins)

    def _stored_series_last_step(self) -> float | None:
        """The largest committed step of the stored series (read from the store)."""
        from .query.root import live_last_step
        from .query.run_reader import RunReader

        try:
            return live_last_step(RunReader(self.storage))
        except Exception as e:  # noqa: BLE001 - run.json says null: readers look live
            warn(f"could not read the run's last step from its series: {e!r}")
            return None

    def _last_step(self, meta: dict[str, Any]) -> float | None:
        """The largest step of a stored metric row (rank 0, closing): from the series of its
        writer, which loaded what earlier attempts stored (a series this attempt did not touch
        keeps its rows); with no writer opened, nothing stored changed since the last attempt."""
        w = self.writers.main_writer
        if w is None:
            if not self.attempt:
                return self.metrics._core.max_step
            if self._stored_last_step is None:  # an earlier attempt was killed before saying
                return self._stored_series_last_step()
            return self._stored_last_step
        steps = [s.last_step for name in (SCALARS_TABLE, HISTOGRAMS_TABLE) if name in w.tables
                 for s in w.tables[name].series.values() if s.n]
        return max(steps) if steps else None

    def _nonfinite_from(self) -> dict[str, float] | None:
        """Each metric whose value went NaN or ±inf: the step of its first such row (rank 0,
        closing: from its writer, which loaded what earlier attempts stored). None: no writer
        opened, nothing stored changed since the last attempt said it."""
        w = self.writers.main_writer
        if w is None or SCALARS_TABLE not in w.tables:
            return None
        return w.tables[SCALARS_TABLE].nonfinite_from()

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` when the run closes, after the final flush (rank 0 may merge tables)."""
        self._context().on_close(fn)

    def before_final_flush(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on this rank before the closing flush (make per-rank records durable)."""
        self._context().before_final_flush(fn)


def _started(record: dict[str, Any]) -> float | None:
    """An attempt record's start as seconds since the epoch (None: not recorded)."""
    try:
        return _dt.datetime.fromisoformat(record["started"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return None


def _training_since(attempts: list[dict[str, Any]], step: float) -> float | None:
    """``Run.training_since(step)`` from the earlier attempts' records (oldest first): walking
    back past the attempts that only appended (``rewind`` False), the first training attempt
    (or one that says neither: killed, an older record) before which every row past ``step``
    was appended (``_appended_after`` of the attempts before it at most ``step``; the first
    attempt: before it no row at all) gives its start."""
    for i in range(len(attempts) - 1, -1, -1):
        a = attempts[i]
        if a.get("rewind") is False:
            continue  # an evaluation after training: the rows it appended are not a training's
        before = _appended_after(attempts[:i])
        if i == 0 or (before is not None and before <= step):
            return _started(a)
    return None


def _appended_after(attempts: list[dict[str, Any]]) -> float | None:
    """``Run.appended_after`` from the earlier attempts' records (oldest first): walking back,
    attempts that only appended (``rewind`` False) are passed over; the first one that could
    rewind gives the run's last step when it closed. An attempt that says neither (killed
    before it closed, an older distlog's record) or no last step (none stored, or it could
    not be read) leaves it unknown: None."""
    for a in reversed(attempts):
        rewind = a.get("rewind")
        if rewind is False:
            continue
        last = a.get("last_step")
        return float(last) if rewind is True and isinstance(last, (int, float)) else None
    return float("-inf") if attempts else None


def open_writer(ctx: RunContext, main: bool, resume_step: float | None, rewind: bool = True,
                since: float | None = None, *, chunk_rows: int, commit_interval: float, telemetry: bool,
                warn: Callable[[str], None]) -> BackgroundWriter:
    """A background writer of a run's row tables: rank 0's of the run's series (``main``: with
    the telemetry table when ``telemetry``), else this rank's own in its rank folder. On a
    resumed attempt the stored series are loaded and rewound to ``resume_step`` (``since``:
    each from its first row past it written since that wall time; and with ``rewind`` each
    again at its first new row; without, the attempt only appends)."""
    storage = ctx.storage if main else ctx.storage.child(rank_dir(ctx.rank))
    tables = {
        SCALARS_TABLE: RowTable(storage, SCALARS_TABLE, SCALAR_COLUMNS, chunk_rows),
        HISTOGRAMS_TABLE: RowTable(storage, HISTOGRAMS_TABLE, ("step", "time"), max(64, chunk_rows // 16)),
    }
    if main and telemetry:
        tables[T.TABLE] = RowTable(storage, T.TABLE, T.columns(ctx.world_size), T.chunk_rows(ctx.world_size),
                                  attrs=T.ATTRS)
    for t in tables.values():
        t.refusal_note = warn
    if ctx.attempt > 0:
        for t in tables.values():
            t.load(truncate_after_step=resume_step, rewind=rewind, truncate_since=since)
        if not rewind and T.TABLE in tables:
            tables[T.TABLE].quiet_refusals = True
        _check_telemetry_width(tables, ctx, warn)
    return BackgroundWriter(tables, commit_interval)


def _check_telemetry_width(tables: dict[str, RowTable], ctx: RunContext, warn: Callable[[str], None]) -> None:
    """An attempt at another world size cannot extend the stored telemetry (one column per
    rank): it keeps what is stored (cut back to ``resume_step`` like every series: the table
    stays with the writer, which publishes that) and writes none (said in the log)."""
    t = tables.get(T.TABLE)
    if t is not None and any(s.width != len(t.columns) for s in t.series.values()):
        t.read_only = True
        warn(f"telemetry is not stored for attempt {ctx.attempt}: the stored "
             f"table has another world size than {ctx.world_size}")
