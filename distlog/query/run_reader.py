"""``distlog.open_run(url)``: a read-only view of one run, finished or still being written."""

from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass, field
from typing import Any

from ..layout import (HISTOGRAMS_TABLE, PARAMS_FILE, README_FILE, RUN_FILE, SCALARS_TABLE, TELEMETRY_TABLE,
                      table_commit)
from ..serdes import flatten
from ..serdes import deserialize
from ..storage import open_storage
from ..storage.base import StorageBackend
from .batch import committed_at, parse_json, read_json_objects
from .errors import DamagedRunRecord, RunNotFound, damaged, listing
from .files_reader import FilesReader
from .logmerge import LogReader
from .series import MetricsReader


def parse_iso(value: str | None) -> float | None:
    """An ISO-8601 time from run metadata as epoch seconds (None stays None)."""
    if not value:
        return None
    try:
        return _dt.datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class RunInfo:
    """Run metadata (``run.json``) with the fields queries use most; ``raw`` has all of it."""

    experiment: str
    run_id: str
    status: str
    url: str
    created: str | None = None
    started: str | None = None
    ended: str | None = None
    world_size: int | None = None
    hosts: tuple[str, ...] = ()
    # run.json's: None while running or once killed (``run.metrics.last_step()`` reads the series)
    last_step: float | None = None
    attempt: int = 0
    tags: tuple[str, ...] = ()
    error: dict | None = None
    launcher: str | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_meta(cls, meta: dict[str, Any], url: str) -> "RunInfo":
        return cls(
            experiment=str(meta.get("experiment", "")), run_id=str(meta.get("run_id", "")),
            status=str(meta.get("status", "unknown")), url=url, created=meta.get("created"),
            started=meta.get("started"), ended=meta.get("ended"), world_size=meta.get("world_size"),
            hosts=tuple(meta.get("hosts") or ()), last_step=meta.get("last_step"),
            attempt=int(meta.get("attempt") or 0), tags=tuple(meta.get("tags") or ()),
            error=meta.get("error"), launcher=meta.get("launcher"), raw=meta,
        )

    @property
    def start_time(self) -> float | None:
        """When the latest attempt started (epoch seconds)."""
        return parse_iso(self.started)

    @property
    def end_time(self) -> float | None:
        return parse_iso(self.ended)

    @property
    def first_start_time(self) -> float | None:
        """When the first attempt started."""
        return parse_iso(self.created) or self.start_time

    def duration(self, now: float | None = None) -> float | None:
        """Seconds from the first start to the end (to now while running)."""
        t0 = self.first_start_time
        if t0 is None:
            return None
        t1 = self.end_time
        if t1 is None:
            t1 = time.time() if now is None else now
        return max(0.0, t1 - t0)

    def running_time(self, now: float | None = None) -> float | None:
        """Seconds the attempts ran, each from its start to its end: ``duration()`` less the
        time between attempts (a requeued job waiting in the queue). The latest attempt ends
        when the run does (now, while running); None when an earlier attempt's end is unknown
        (it was killed: only the next attempt's start bounds it)."""
        attempts = self.attempts
        total = 0.0
        for i, a in enumerate(attempts):
            t0 = parse_iso(a.get("started"))
            last = i == len(attempts) - 1
            t1 = parse_iso(a.get("ended")) if not last else self.end_time
            if last and t1 is None and self.status == "running":
                t1 = time.time() if now is None else now
            if t0 is None or t1 is None:
                return None
            total += max(0.0, t1 - t0)
        return total if attempts else self.duration(now)

    @property
    def attempts(self) -> list[dict[str, Any]]:
        return list(self.raw.get("attempts", []))

    @property
    def path(self) -> str:
        """``experiment/run_id``."""
        return f"{self.experiment}/{self.run_id}" if self.experiment else self.run_id


class RunReader:
    """One run, read-only: ``info``, ``params``, ``metrics``, ``logs``, ``files``.

    Metadata is read when the reader is made (``refresh()`` re-reads it); metrics, logs and
    files are read from the store on every call, so a live run shows its latest commit.
    """

    def __init__(self, storage: StorageBackend, meta: dict[str, Any] | None = None) -> None:
        self.storage = storage
        if meta is None:
            meta = read_meta(storage)
        self._meta = meta
        self._live: dict[str, Any] | None = None
        self.metrics = MetricsReader(storage)
        self.logs = LogReader(storage, is_running=self._is_running)
        self.files = FilesReader(storage, self.root_storage)

    def __repr__(self) -> str:
        return f"<distlog RunReader {self.info.path!r} status={self.info.status!r}>"

    @property
    def url(self) -> str:
        return self.storage.url

    @property
    def folder_name(self) -> tuple[str, str]:
        """``(experiment, run id)`` as the folder read names the run: ``run.json``'s, unless
        the folder is a copy or was renamed (``a-copy`` beside ``a``, which records ``a``):
        then the folder's own name, in the recorded experiment where the folder sits in one
        of that name, else in the folder it sits in. Listings and tables name runs so."""
        info = self.info
        url = self.storage.url.rstrip("/")
        if url.endswith("/" + info.path) or url == info.path:
            return info.experiment, info.run_id
        parent, _, name = url.rpartition("/")
        if info.experiment and parent.endswith("/" + info.experiment):
            return info.experiment, name
        return parent.rpartition("/")[2], name

    @property
    def info(self) -> RunInfo:
        """Metadata, with the status judged from evidence: a ``running`` run whose heartbeats
        stopped is ``stale`` (or ``failed`` when its ranks left failure records); ``raw`` keeps
        what ``run.json`` says."""
        if self._live is None:
            self._live = live_meta(self.storage, self._meta)
        return RunInfo.from_meta(self._live, self.storage.url)

    def refresh(self) -> "RunReader":
        self._meta = read_meta(self.storage)
        self._live = None
        return self

    @property
    def telemetry(self) -> Any:
        """The rank x flush telemetry table and the straggler report (``query.telemetry``)."""
        from .telemetry import TelemetryReader

        return TelemetryReader(self.storage)

    def heartbeats(self) -> dict[int, dict[str, Any]]:
        """Each rank's last heartbeat record of the current attempt, by rank."""
        from ..heartbeat import read_heartbeats

        return read_heartbeats(self.storage, int(self._meta.get("attempt") or 0))

    def _is_running(self) -> bool:
        """Whether the run still runs as far as anyone can tell: recorded running, and its
        heartbeats not stopped (a killed job never records that it ended)."""
        try:
            return live_meta(self.storage, read_meta(self.storage)).get("status") == "running"
        except RunNotFound:
            return False

    @property
    def readme(self) -> str:
        """The run's notes (``exp.readme``'s ``README.md``; ``""`` when it has none)."""
        try:
            return self.storage.read_bytes(README_FILE).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def params(self) -> dict[str, Any]:
        """The run's params (``{}`` if none were set). ``DamagedRecord`` (a ``ValueError``)
        naming the file when ``params.json`` is torn or not a run's params."""
        try:
            data = self.storage.read_bytes(PARAMS_FILE)
        except FileNotFoundError:
            return {}
        params = deserialize(parse_json(data, self.storage, PARAMS_FILE))
        if not isinstance(params, dict):
            raise damaged(self.storage, PARAMS_FILE, f"a {type(params).__name__}, not the JSON "
                          "object of a run's params")
        return params

    @property
    def flat_params(self) -> dict[str, Any]:
        """Params with dotted keys: ``{"optim.lr": 0.1}``."""
        return flatten(self.params)

    def root_storage(self) -> StorageBackend:
        """The root the run lives under (where ``.distlog/`` keeps shared blobs)."""
        info = self.info
        url = self.storage.url.rstrip("/")
        parent = url.rpartition("/")[0]  # (a copied or renamed run folder: not its run id)
        if url.endswith("/" + info.path):
            url = url[: -len(info.path) - 1]
        elif info.experiment and parent.endswith("/" + info.experiment):
            url = parent[: -len(info.experiment) - 1]
        else:  # metadata without an experiment: assume <root>/<experiment>/<run>
            url = url.rsplit("/", 2)[0]
        return open_storage(url, **self.storage.storage_options)


def live_meta(storage: StorageBackend, meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with ``status``/``error`` from ``heartbeat.liveness`` (unchanged unless a
    running run's heartbeats stopped)."""
    from ..heartbeat import liveness

    if meta.get("status") == "interrupted" and not meta.get("error"):
        # rank 0 closed on a SIGTERM, alone, before a peer recorded why the run ended (a
        # launcher on another node stopping its ranks later): that record is the cause
        from ..failures import ECHOES, read_failures

        try:
            causes = read_failures(storage, int(meta.get("attempt") or 0))
        except Exception:  # noqa: BLE001 - evidence we cannot read changes nothing
            return meta
        # (a peer's FlushError alone is the stop itself seen from that peer: a job stopped on
        # several nodes at once, a preemption, stays interrupted)
        if causes and causes[0].get("type") not in ECHOES:
            return {**meta, "status": "failed", "error": causes[0], "recorded_status": "interrupted"}
        return meta
    if meta.get("status") != "running":
        return meta
    try:
        status, error, last_seen = liveness(storage, meta)
    except Exception:  # noqa: BLE001 - evidence we cannot read changes nothing
        return meta
    if status == "running" or last_seen is None:
        return meta
    # it ended, as far as anyone can tell, at its last sign of life (so its duration stops
    # growing): its last heartbeat, or a commit of rows after it (ranks beat every 30 s)
    ended = _dt.datetime.fromtimestamp(_last_written(storage, last_seen), _dt.timezone.utc
                                       ).isoformat(timespec="microseconds")
    return {**meta, "status": status, "error": error, "ended": ended, "recorded_status": meta.get("status")}


def _last_written(storage: StorageBackend, since: float) -> float:
    """The latest time the commit records of the run's row tables give, ``since`` where none
    is later (read at once; one that cannot be read changes nothing)."""
    tables = (SCALARS_TABLE, HISTOGRAMS_TABLE, TELEMETRY_TABLE)
    try:
        records = read_json_objects([(storage, table_commit(t)) for t in tables], keep_damaged=True)
    except Exception:  # noqa: BLE001 - only a better end time
        return since
    last = committed_at(*(r for r in records if isinstance(r, dict)))
    return since if last is None or not math.isfinite(last) else max(since, last)


def read_meta(storage: StorageBackend) -> dict[str, Any]:
    try:
        meta = storage.read_json(RUN_FILE)
    except (FileNotFoundError, NotADirectoryError):
        raise RunNotFound(_not_a_run(storage)) from None
    except ValueError as e:  # torn or foreign: say which file, not only the JSON error
        raise DamagedRunRecord(f"{storage.url}/{RUN_FILE} is damaged (not valid JSON: {e}); the "
                               "run's metadata is unreadable: restore it from a copy of the run") from None
    if not isinstance(meta, dict):
        raise DamagedRunRecord(f"{storage.url}/{RUN_FILE} is not run metadata (a JSON "
                               f"{type(meta).__name__}, not an object): restore it from a copy of the run")
    return meta


def _not_a_run(storage: StorageBackend) -> str:
    below = [n for n in storage.list_dir() if not n.startswith(".")]  # (.distlog: no choice)
    msg = f"no run at {storage.url} (no {RUN_FILE})"
    if below:
        return msg + f"; it holds: {listing(below)}. Pass a run folder, or use `distlog ls` to find one"
    parent, _, name = storage.url.rstrip("/").rpartition("/")
    try:
        siblings = [n for n in open_storage(parent, **storage.storage_options).list_dir() if not n.startswith(".")]
    except Exception:  # noqa: BLE001 - only a hint
        siblings = []
    if siblings:
        return msg + f"; {parent} holds: {listing(siblings)}"
    return msg


def open_run(url: Any, **storage_options: Any) -> RunReader:
    """A read-only view of the run at ``url`` (a path or URL of a run folder).

    ``storage_options`` go to the storage backend (``endpoint_url``, ``key``, ...).
    Raises ``RunNotFound`` (a ``FileNotFoundError``) naming what the folder holds instead.
    """
    if isinstance(url, RunReader):
        return url
    return RunReader(open_storage(str(url), **storage_options))
