"""One run: identity agreed across ranks, metadata lifecycle, and the per-run writers.

Starting a run is a collective when torch.distributed is initialised: every rank gathers its
host identity, rank 0 picks the run id (unless the launcher gives one every rank derives
alike) and the attempt number, and broadcasts both. Closing is local unless the run ends
normally, in which case a last metrics flush runs on every rank.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
import time
import traceback
import uuid
from typing import Any, Callable

from . import __version__  # noqa: F401
from . import report
from .comm import Comm, dist_state, make_comm
from .errors import WriterError
from .launcher import RankInfo, detect, launcher_run_id, restart_counts
from .logs import TextLogger, rank_log_path
from .metrics import HISTOGRAMS_TABLE, SCALAR_COLUMNS, SCALARS_TABLE, MetricsLogger
from .names import check_name
from .params import ParameterIndex
from .readme import MarkdownLogger
from .storage.base import StorageBackend
from .writers.rowstore import DEFAULT_CHUNK_ROWS, BackgroundWriter, RowTable
from .writers.logtable import write_logs_table
from .writers.textlog import TextLogSink

RUN_FILE = "run.json"


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def rank_dir(rank: int) -> str:
    """Where rank ``rank`` (> 0) keeps the series of values it logged itself."""
    return f"ranks/rank-{rank:05d}"


def _git_state(cwd: str | None = None) -> dict[str, Any] | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def _rebuild(tp: Any, msg: str) -> Exception:
    """Rank 0's exception, raised again on another rank (same type where it can be made)."""
    text = f"starting the run failed on rank 0: {msg}"
    try:
        if isinstance(tp, type) and issubclass(tp, Exception):
            return tp(text)
    except Exception:  # noqa: BLE001 - a type that needs other arguments
        pass
    return RuntimeError(text)


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


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
        window: int = 10_000,
        resume_step: int | None = None,
        segment_max_bytes: int = 8 << 20,
        segment_max_age: float = 30.0,
    ) -> None:
        self.root = root
        self.experiment = check_name(experiment, "experiment name", allow_slash=True)
        if run_id is not None:
            check_name(run_id, "run id")
        self.run_id = run_id
        self.tags = list(tags or [])
        self.flush_timeout = flush_timeout
        self.chunk_rows = chunk_rows
        self.commit_interval = commit_interval
        self.resume_step = resume_step
        self._segment_limits = {"max_bytes": segment_max_bytes, "max_age": segment_max_age}
        self.current_step: int | None = None
        self.stop_requested = False
        self.status = "created"
        self.attempt = 0
        self.comm: Comm
        self.info: RankInfo
        self.storage: StorageBackend
        self.log_sink: TextLogSink
        self._main_writer: BackgroundWriter | None = None
        self._rank_writer: BackgroundWriter | None = None
        self._on_close: list[Callable[[], None]] = []
        self._before_final_flush: list[Callable[[], None]] = []
        self.metrics = MetricsLogger(self, window=window)
        self.logs = TextLogger(self)
        self.params = ParameterIndex(self)
        self.readme = MarkdownLogger(self)
        self._files: Any = None

    @property
    def rank(self) -> int:
        return self.comm.rank

    @property
    def world_size(self) -> int:
        return self.comm.world_size

    @property
    def files(self) -> Any:
        """The artifact logger (imported on first use: it pulls in more modules)."""
        if self._files is None:
            from .files import ArtifactLogger

            self._files = ArtifactLogger(self)
        return self._files

    @property
    def url(self) -> str:
        return self.storage.url

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> "Run":
        """Agree on the run id and attempt with every rank and write the metadata."""
        self.comm = make_comm(self.flush_timeout)
        self.info = detect(dist_state=dist_state())
        me = {"rank": self.info.rank, "host": self.info.host, "local_rank": self.info.local_rank,
              "node": self.info.node_rank, "pid": os.getpid()}
        peers = self.comm.all_gather_object(me)
        decided: tuple[str, Any] = ("ok", None)
        if self.comm.rank == 0:
            # rank 0 decides and writes the metadata; a failure (bad name, missing bucket,
            # denied access) is broadcast so every rank raises the same error, none hangs
            try:
                run_id = self.run_id or launcher_run_id() or new_run_id()
                check_name(run_id, "run id")
                meta = self._read_meta(run_id)
                self.run_id, self.attempt = run_id, len(meta.get("attempts", [])) if meta else 0
                self.storage = self.root.child(f"{self.experiment}/{run_id}")
                self._write_start_meta(peers)
                decided = ("ok", (run_id, self.attempt))
            except Exception as e:  # noqa: BLE001 - re-raised below, on every rank
                decided = ("error", (type(e), str(e)))
                failure = e
        kind, value = self.comm.broadcast_object(decided)
        if kind == "error":
            if self.rank == 0:
                raise failure
            raise _rebuild(*value)
        run_id, attempt = value
        self.run_id, self.attempt = run_id, attempt
        self.storage = self.root.child(f"{self.experiment}/{run_id}")
        self.log_sink = TextLogSink(self.storage, rank_log_path(self.rank, attempt), **self._segment_limits)
        self.params.load_existing()
        self.status = "running"
        self.logs.debug(f"run {self.experiment}/{run_id} attempt {attempt} started on rank "
                        f"{self.rank} of {self.world_size}")
        return self

    def _read_meta(self, run_id: str) -> dict[str, Any] | None:
        try:
            return self.root.child(f"{self.experiment}/{run_id}").read_json(RUN_FILE)
        except FileNotFoundError:
            return None

    def _write_start_meta(self, peers: list[dict[str, Any]]) -> None:
        meta = self._read_meta(self.run_id) or {
            "format": 1, "experiment": self.experiment, "run_id": self.run_id,
            "created": _now_iso(), "attempts": [], "tags": [],
        }
        try:
            import torch

            torch_version = torch.__version__
        except ImportError:  # pragma: no cover
            torch_version = None
        attempt = {
            "attempt": self.attempt, "started": _now_iso(), "ended": None, "status": "running",
            "world_size": self.world_size, "hosts": sorted({p["host"] for p in peers}),
            "ranks": peers, "restart_counts": restart_counts(), "launcher": self.info.launcher,
            "launcher_ids": dict(self.info.ids), "resume_step": self.resume_step,
        }
        earlier = [a for a in meta.get("attempts", []) if a.get("attempt") != self.attempt]
        for a in earlier:
            if a.get("status") == "running":  # killed without closing (kill -9, node loss)
                a["status"] = "interrupted"
        meta["attempts"] = earlier + [attempt]
        meta.update({
            "status": "running", "started": attempt["started"], "ended": None, "error": None,
            "world_size": self.world_size, "hosts": attempt["hosts"], "launcher": self.info.launcher,
            "launcher_ids": dict(self.info.ids), "argv": list(sys.argv), "cwd": os.getcwd(),
            "git": _git_state(), "python": platform.python_version(), "torch": torch_version,
            "distlog": __version__, "tags": sorted(set(meta.get("tags", [])) | set(self.tags)),
            "attempt": self.attempt,
        })
        self.storage.write_json(RUN_FILE, meta)

    def close(self, status: str = "completed", exc: BaseException | None = None, collective: bool = True) -> None:
        """End the run. ``collective`` runs a last flush on every rank (normal exit only)."""
        if self.status not in ("running",):
            return
        self.status = "closing"
        incoming = exc
        errors: list[BaseException] = []
        if exc is not None:
            self.logs.exception("run failed", exc_info=exc)
        for fn in self._before_final_flush:
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        self.log_sink.flush()
        if collective and exc is None:
            # also the barrier after which rank 0 may merge what every rank wrote
            try:
                self.metrics.flush()
            except Exception as e:  # noqa: BLE001 - recorded, then raised below
                errors.append(e)
        if self.rank == 0 and self._files is None:
            # rank 0 merges every rank's artifact records even if it saved nothing itself
            try:
                from .files import write_files_table

                write_files_table(self.storage)
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        for fn in reversed(self._on_close):
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        for w in (self._rank_writer, self._main_writer):
            if w is not None:
                try:
                    w.close(finalize=True)
                except WriterError as e:
                    errors.append(e)
        if errors and incoming is None:
            status, exc = "failed", errors[0]
        self.logs.debug(f"run ended: {status}")
        self.log_sink.close()
        if collective and incoming is None and self.world_size > 1:
            try:  # every rank's log is closed past this point: rank 0 may index them all
                self.comm.barrier()
            except Exception as e:  # noqa: BLE001
                errors.append(e)
        if self.rank == 0:
            try:
                write_logs_table(self.storage)
            except Exception as e:  # noqa: BLE001 - the text logs stay the source of truth
                report.warn(f"could not write the logs table: {e!r}")
            self._write_end_meta(status, exc)
        self.status = status
        if errors and incoming is None:
            raise errors[0]

    def _write_end_meta(self, status: str, exc: BaseException | None) -> None:
        try:
            meta = self.storage.read_json(RUN_FILE)
        except FileNotFoundError:
            meta = {"run_id": self.run_id, "experiment": self.experiment, "attempts": []}
        ended = _now_iso()
        err = None
        if exc is not None:
            err = {"type": type(exc).__name__, "message": str(exc),
                   "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}
        for a in meta.get("attempts", []):
            if a.get("attempt") == self.attempt:
                a.update({"ended": ended, "status": status, "error": err})
        meta.update({"status": status, "ended": ended, "error": err,
                     "last_step": self.metrics._core.max_step})
        try:
            self.storage.write_json(RUN_FILE, meta)
        except Exception as e:  # noqa: BLE001
            report.warn(f"could not write {RUN_FILE}: {e!r}")

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` when the run closes, after the final flush (rank 0 may merge tables)."""
        self._on_close.append(fn)

    def before_final_flush(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on this rank before the closing flush (make per-rank records durable)."""
        self._before_final_flush.append(fn)

    # ---- writers -------------------------------------------------------------------------
    def _make_writer(self, storage: StorageBackend) -> BackgroundWriter:
        tables = {
            SCALARS_TABLE: RowTable(storage, SCALARS_TABLE, SCALAR_COLUMNS, self.chunk_rows),
            HISTOGRAMS_TABLE: RowTable(storage, HISTOGRAMS_TABLE, ("step", "time"), max(64, self.chunk_rows // 16)),
        }
        if self.attempt > 0:
            for t in tables.values():
                t.load(truncate_after_step=self.resume_step)
        return BackgroundWriter(tables, self.commit_interval)

    def main_writer(self) -> BackgroundWriter:
        """Rank 0's writer of the run's series (reduced rows and rank 0's own values)."""
        if self._main_writer is None:
            self._main_writer = self._make_writer(self.storage)
        return self._main_writer

    def local_writer(self) -> BackgroundWriter:
        """This rank's writer for values it logs itself."""
        if self.rank == 0:
            return self.main_writer()
        if self._rank_writer is None:
            self._rank_writer = self._make_writer(self.storage.child(rank_dir(self.rank)))
        return self._rank_writer

    def writer_failed(self) -> bool:
        return any(w is not None and w._error is not None for w in (self._main_writer, self._rank_writer))

    def raise_writer_error(self, every_rank: bool = False) -> None:
        for w in (self._main_writer, self._rank_writer):
            if w is not None:
                w.raise_pending()
        if every_rank:
            raise WriterError("a rank's background writer failed (see that rank's log); "
                              "rows stay buffered and are retried at the next flush")

    def commit(self, timeout: float | None = 300.0) -> None:
        """Wait until this rank's writers have committed everything enqueued so far."""
        for w in (self._main_writer, self._rank_writer):
            if w is not None:
                w.flush(wait=True, timeout=timeout)

    def after_flush(self) -> None:
        """Per-flush housekeeping: make this rank's log lines durable. On object stores only a
        due segment (``segment_max_bytes`` / ``segment_max_age``) is written: one PUT per
        flush would make request cost scale with steps."""
        self.log_sink.flush(due_only=True)
