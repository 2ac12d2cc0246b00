"""``distlog.open_root(url)``: every experiment and run under a root, and the sweep table.

A root is found by listing: a folder holding ``run.json`` is a run; any other folder is an
experiment (or a part of a nested experiment name such as ``mnist/sweep``). Folders whose
name starts with ``.`` (``.distlog/``) are skipped. There is no index file to go stale or to
contend for (PRIOR_ART A.26): the listing is the index. Each level's ``run.json`` probes
are issued together (``distlog.storage.read_objects``), and on object stores its listings on
a small thread pool, so a scan costs a few round trips per level, not one per run. The sweep
table reads what it needs of every run in three more rounds (``distlog.query.batch``).
"""

from __future__ import annotations

import fnmatch
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from ..names import EXPERIMENT_MAX_PARTS
from ..layout import PARAMS_FILE, RUN_FILE, RUN_MARKERS, RUN_STATUSES, STORE_DIR
from ..storage import open_storage
from ..storage.base import StorageBackend, read_objects
from .batch import DAMAGED, RunData, is_bool, needs_live_step, nonfinite_from, param_key, read_run_data, stored_status
from .errors import KeyNotFound, RunNotFound, did_you_mean, listing
from .run_reader import RunReader, read_meta
from .series import exact_int, ints_and_floats, one_or_many

if TYPE_CHECKING:
    import pandas as pd

MAX_DEPTH = EXPERIMENT_MAX_PARTS + 1  # experiment parts, then the run id
RUN_COLUMNS = ("experiment", "run_id", "status", "started", "ended", "duration", "world_size",
               "last_step", "attempts", "tags")
#: ways to reduce a series to one number in the sweep table
FINALS = ("last", "min", "max", "mean")


def _probe(storage: StorageBackend, path: str) -> dict[str, Any] | None:
    try:
        meta = storage.read_json(f"{path}/{RUN_FILE}" if path else RUN_FILE)
    except (OSError, ValueError):  # not a run folder (or not a folder at all)
        return None
    return meta if isinstance(meta, dict) else None


def _meta_of(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        meta = json.loads(data)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None




def _why_not_meta(data: bytes) -> str:
    try:
        meta = json.loads(data)
    except ValueError as e:
        return f"{RUN_FILE} is not valid JSON ({e}; {len(data)} bytes)"
    return f"{RUN_FILE} holds a {type(meta).__name__}, not run metadata"


def damaged_meta(path: str, why: str) -> dict[str, Any]:
    """Metadata standing in for the unreadable ``run.json`` of the run folder at ``path`` (its
    experiment and run id from the path), so listings show the run as ``damaged``, with why,
    instead of leaving it out or descending into it as if it were an experiment."""
    experiment, _, run_id = path.rpartition("/")
    return {"experiment": experiment, "run_id": run_id, "status": DAMAGED,
            "error": {"type": "DamagedRun", "message": f"{why}; restore it from a copy of the run"}}


def scan_runs(storage: StorageBackend, progress: bool = False,
              skipped: list[str] | None = None,
              listing: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """``(path below the root, run metadata)`` of every run under ``storage``. Hidden folders
    (other than the root's ``.distlog``) are not scanned; pass ``skipped`` to learn them.
    ``listing``: the root's ``list_dir()`` if the caller has just taken it."""
    names = storage.list_dir() if listing is None else listing
    here = _probe(storage, "") if RUN_FILE in names or not names else None
    if here is not None:
        return [("", here)]
    parallel = not storage.supports_append  # object stores: latency-bound listings
    pool = ThreadPoolExecutor(16) if parallel else None
    found: list[tuple[str, dict[str, Any]]] = []
    level = [""]
    bar = _bar(progress)
    try:
        for depth in range(MAX_DEPTH):
            listings: Iterable = ([names] if depth == 0 else
                                  pool.map(storage.list_dir, level) if pool and len(level) > 1
                                  else map(storage.list_dir, level))
            candidates, parent = [], []
            suspects = set()  # folders holding a name only a run folder holds, but no run.json
            for d, below in zip(level, listings):
                if d and RUN_MARKERS.intersection(below):
                    suspects.add(d)
                for n in below:
                    path = f"{d}/{n}" if d else n
                    if not n.startswith("."):
                        candidates.append(path)
                        parent.append(d)
                    elif skipped is not None and path != STORE_DIR:
                        skipped.append(path)
            if not candidates:
                break
            probes = read_objects([(storage, f"{p}/{RUN_FILE}") for p in candidates])
            metas = []
            for path, data in zip(candidates, probes):
                meta = _meta_of(data)
                if meta is None and data is not None:  # there, but torn or not an object
                    meta = damaged_meta(path, _why_not_meta(data))
                metas.append(meta)
            # a suspect with no run below it is a run folder whose run.json is missing (one
            # holding runs is an experiment whose run is named like such a file: params.json)
            suspects -= {d for d, meta in zip(parent, metas) if meta is not None}
            found.extend((d, damaged_meta(d, f"{RUN_FILE} is missing")) for d in sorted(suspects))
            level = []
            for path, d, meta in zip(candidates, parent, metas):
                if d in suspects:
                    continue  # inside a damaged run: no run below it
                if meta is None:
                    level.append(path)
                else:
                    found.append((path, meta))
                    if bar is not None:
                        bar.update(1)
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()
    _name_damaged(found)
    return sorted(found, key=lambda pm: pm[0])


def hidden_holding_runs(storage: StorageBackend, hidden: Sequence[str]) -> list[str]:
    """The entries of ``hidden`` (hidden paths a scan skipped) that hold a run themselves or
    one folder down (an experiment or run named with a leading ``.``): what a listing should
    point out. A checkpoint or notebook folder (``.checkpoints``, ``.ipynb_checkpoints``) or a
    ``.git`` holds none: one listing and one probe per entry, no deeper."""
    paths, owner = [], []
    for h in hidden:
        for p in [h] + [f"{h}/{n}" for n in storage.list_dir(h) if not n.startswith(".")]:
            paths.append((storage, f"{p}/{RUN_FILE}"))
            owner.append(h)
    found = read_objects(paths) if paths else []
    holding = {h for h, data in zip(owner, found) if data is not None}
    return [h for h in hidden if h in holding]


def _name_damaged(found: list[tuple[str, dict[str, Any]]]) -> None:
    """A damaged run takes the experiment its readable siblings (runs in the same folder)
    record: its path below a root opened at an experiment folder lacks the experiment's name."""
    names = {p.rpartition("/")[0]: m.get("experiment") for p, m in found if m.get("status") != DAMAGED
             and isinstance(m.get("experiment"), str)}
    for path, meta in found:
        if meta.get("status") == DAMAGED and names.get(path.rpartition("/")[0]) is not None:
            meta["experiment"] = names[path.rpartition("/")[0]]


def _bar(enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        import sys

        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(desc="scanning runs", unit="run", leave=False, file=sys.stderr)


def _selects(run: RunReader, key: str, value: Any, want: Any) -> bool:
    """``_matches``; a callable of the caller's that fails on a value (``lambda v: v < 0.01``
    on a run whose lr is the text "1e-3") is re-raised as what it is, naming the run and param."""
    try:
        return _matches(value, want)
    except Exception as e:
        items = want if isinstance(want, (list, tuple, set, frozenset)) else (want,)
        if not any(callable(w) for w in items):
            raise
        msg = (f"params={{{key!r}: ...}}: the function given failed on run {run.url}, whose {key} is "
               f"{value!r} ({type(value).__name__}): {type(e).__name__}: {e}. Make it take every value "
               "the runs hold (e.g. lambda v: isinstance(v, float) and v < 0.01)")
        try:
            err = type(e)(msg)
        except Exception:  # (an exception type that takes other arguments)
            err = ValueError(msg)
        raise err from e


def _matches(value: Any, want: Any) -> bool:
    """Whether a param ``value`` is selected by ``want``: a callable that says so, a value
    equal to it, or a list (tuple, set) the value equals or of which it equals an item."""
    if callable(want):
        return bool(want(value))
    if isinstance(want, (list, tuple, set, frozenset, np.ndarray)):
        items = want.tolist() if isinstance(want, np.ndarray) else list(want)
        return (not isinstance(want, (set, frozenset)) and _equal(value, items)) or any(
            bool(w(value)) if callable(w) else _equal(value, w) for w in items)
    return _equal(value, want)


def _equal(value: Any, want: Any) -> bool:
    """Param equality as ``param_key`` groups: 1 is 1.0, True is not 1, NaN is NaN, floats
    within 1e-12 relative, lists (arrays) item by item."""
    if isinstance(value, np.ndarray):  # an array param: as its values, each at its own
        # precision (a 0-d one, a tensor param's form, as its one value: float32 1e-4 is 1e-4)
        value = value[()] if value.ndim == 0 else list(value)
    if isinstance(want, np.ndarray):
        want = want.tolist()
    if isinstance(value, (list, tuple)) or isinstance(want, (list, tuple)):
        return (isinstance(value, (list, tuple)) and isinstance(want, (list, tuple))
                and len(value) == len(want) and all(_equal(v, w) for v, w in zip(value, want)))
    if is_bool(value) or is_bool(want):  # True is not 1 here, though Python says so
        return is_bool(value) and is_bool(want) and bool(value) == bool(want)
    if isinstance(value, np.floating) and not isinstance(value, float) and isinstance(want, (int, float)):
        if value != value or want != want:  # NaN selects NaN (a float32 one too)
            return value != value and want != want
        try:  # at its own precision: float32 1e-4 is 1e-4 (one past its range is inf: no match)
            with np.errstate(over="ignore"):
                return bool(value == value.dtype.type(float(want)))
        except OverflowError:  # (an int past any float)
            return False
    if isinstance(value, float) and isinstance(want, (int, float)):
        if value != value or want != want:  # NaN selects NaN
            return value != value and want != want
        return bool(np.isclose(value, want, rtol=1e-12, atol=0.0))
    return bool(value == want)


class RootReader:
    """Experiments and runs under a root: ``runs(...)``, ``table(...)``, ``read_metrics(...)``."""

    def __init__(self, storage: StorageBackend, listing: list[str] | None = None) -> None:
        self.storage = storage
        self._listing = listing  # the root's listing taken by open_root, for the first scan

    def _scan(self, progress: bool = False,
              skipped: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
        listing, self._listing = self._listing, None  # used once: later scans list afresh
        return scan_runs(self.storage, progress=progress, skipped=skipped, listing=listing)

    def __repr__(self) -> str:
        return f"<distlog RootReader {self.storage.url!r}>"

    @property
    def url(self) -> str:
        return self.storage.url

    def runs(self, experiment: str | None = None, *, status: Any = None,
             params: dict[str, Any] | None = None, where: Callable[[RunReader], bool] | None = None,
             progress: bool = False, skipped: list[str] | None = None) -> list[RunReader]:
        """Runs, optionally only those of ``experiment`` (a name, its parent, or a glob such as
        ``"mnist/*"``; as ``run.json`` records it, or relative to this root's folder: ``sub``
        below a root opened at ``runs/beta`` selects the runs of ``beta/sub``), with ``status`` (one or several), whose flattened params match
        ``params`` (``{"optim.lr": 0.1, "seed": [1, 2], "wd": lambda v: v > 0}``; a param no
        selected run has warns with the nearest names), and for which ``where(run)`` holds.
        Sorted by experiment, then start time. Names starting with
        ``.`` are never experiments or runs; ``skipped`` (a list) receives those met."""
        return [run for run, _ in self._select(experiment, status, params, where, progress,
                                               skipped)]

    def _select(self, experiment: str | None, status: Any, params: dict[str, Any] | None,
                where: Callable[[RunReader], bool] | None, progress: bool,
                skipped: list[str] | None = None,
                ) -> list[tuple[RunReader, dict[str, Any] | None]]:
        """``runs()`` with each run's flattened params when the ``params`` filter read them."""
        statuses = status_set(status)
        picked = []
        scanned, named = self._scan(progress, skipped), 0
        for path, meta in scanned:
            run = RunReader(self.storage.child(path) if path else self.storage, meta)
            info = run.info
            if experiment is not None and not (_experiment_ok(info.experiment, experiment) or
                                               _experiment_ok(path.rpartition("/")[0], experiment)):
                continue
            named += 1
            if statuses is not None and info.status not in statuses:
                continue
            picked.append(run)
        if experiment is not None and not named and scanned:  # a typo selects nothing: said
            known = sorted(({path.rpartition("/")[0] for path, _ in scanned}
                            | {str(meta.get("experiment") or "") for _, meta in scanned}) - {""})
            warnings.warn(f"experiment={experiment!r}: no experiment of that name under {self.url}"
                          f"{did_you_mean(experiment, known)} (experiments: {listing(known)})",
                          RuntimeWarning, stacklevel=3)
        flats: list[dict[str, Any] | None] = [None] * len(picked)
        unknown: list[str] = []
        if params:  # every run's params.json at once
            data = read_run_data(picked, params=True)
            flats = [d.flat_params for d in data]
            unknown = [run.info.path for run, d in zip(picked, data) if d.damaged]
        if unknown:
            warnings.warn(f"{len(unknown)} run(s) left out: their {PARAMS_FILE} is damaged, so "
                          f"whether they match {params} is unknown: {listing(unknown)}",
                          RuntimeWarning, stacklevel=3)
        known = set().union(*(f for f in flats if f))
        absent = [k for k in (params or ()) if k not in known]
        if absent and known:  # a typo selects nothing; a warning, not an error: a script
            # polling a sweep whose runs have not written that param yet goes on
            warnings.warn("; ".join(f"params={{{k!r}: ...}}: no run selected has the param {k!r}"
                                    f"{did_you_mean(k, sorted(known))}" for k in absent)
                          + f" (params: {listing(sorted(known))})", RuntimeWarning, stacklevel=3)
        out = []
        for run, flat in zip(picked, flats):
            if params and not all(k in flat and _selects(run, k, flat[k], v) for k, v in params.items()):
                continue
            if where is not None and not where(run):
                continue
            out.append((run, flat))
        out.sort(key=lambda rf: (rf[0].info.experiment, rf[0].info.first_start_time or 0.0,
                                 rf[0].info.run_id))
        return out

    def experiments(self, *, relative: bool = False) -> list[str]:
        """The experiments' names as ``run.json`` records them; ``relative``: as the folders
        holding runs below this root are named (below a root opened at an experiment folder,
        ``sub`` for ``beta/sub``). ``runs(experiment=)`` takes either."""
        if relative:
            return sorted({path.rpartition("/")[0] for path, _ in self._scan()})
        return sorted({meta.get("experiment", "") for _, meta in self._scan()})

    def run(self, path: str) -> RunReader:
        """The run at ``path`` below the root (``experiment/run_id``)."""
        return RunReader(self.storage.child(path))

    def table(self, experiment: str | None = None, *, metrics: Sequence[str] | None = None,
              stat: str = "value", final: str = "last", status: Any = None,
              params: dict[str, Any] | None = None, varying_only: bool = False,
              runs: Sequence[RunReader] | None = None, progress: bool = False,
              sort: str | None = None, desc: bool = False) -> "pd.DataFrame":
        """The sweep table: one row per run — experiment, run id, status, times, world size, last
        step — then every flattened param, then each of ``metrics`` reduced to one number
        (``final``: last, min, max or mean of the ``stat`` column). ``varying_only`` keeps only
        params that differ between the runs. ``sort``: a column to order the rows by, as
        ``distlog compare --sort`` does (mixed types too: ``distlog.query.order``); ``desc``
        puts the largest first, NaN and runs without a value still last. Like ml_logger's
        ``get_exps``."""
        return self._table(experiment, metrics=metrics, stat=stat, final=final, status=status, params=params,
                           varying_only=varying_only, runs=runs, progress=progress, sort=sort, desc=desc)[0]

    def _table(self, experiment: str | None = None, *, metrics: Sequence[str] | None = None,
               stat: str = "value", final: str = "last", status: Any = None,
               params: dict[str, Any] | None = None, varying_only: bool = False,
               runs: Sequence[RunReader] | None = None, progress: bool = False,
               sort: str | None = None, desc: bool = False) -> tuple["pd.DataFrame", list[RunReader]]:
        """``table()`` and the run of each of its rows (two runs of one experiment/run id in two
        roots are told apart by it: ``distlog compare``)."""
        import pandas as pd

        if final not in FINALS:
            raise ValueError(f"final must be one of {', '.join(FINALS)}, got {final!r}")
        statuses = status_set(status)
        picked = ([(r, None) for r in runs] if runs is not None else
                  self._select(experiment, listed_statuses(statuses), params, None, progress))
        runs = [r for r, _ in picked]
        keys = one_or_many(metrics) or []
        # every object the table needs, once, in a few rounds of concurrent reads
        data = read_run_data(runs, params=any(f is None for _, f in picked),
                             last_keys=keys if final == "last" else (),
                             full_keys=keys if final != "last" else (), live=True)
        rows, param_rows = [], []
        for (run, flat), d in zip(picked, data):
            rows.append(run_row(run, d))
            param_rows.append(flat if flat is not None else d.flat_params)
        if statuses is not None:  # the status the table shows (damaged: a torn record read here)
            keep = [i for i, row in enumerate(rows) if row["status"] in statuses]
            runs, data = [runs[i] for i in keep], [data[i] for i in keep]
            rows, param_rows = [rows[i] for i in keep], [param_rows[i] for i in keep]
        pkeys = sorted({k for p in param_rows for k in p})
        if varying_only:
            pkeys = [k for k in pkeys
                     if len({param_key(p.get(k, _MISSING)) for p in param_rows}) > 1]
        mcols = [metric_column(k, stat, final) for k in keys]
        pcols = param_columns(pkeys, (*RUN_COLUMNS, *mcols))
        for row, p in zip(rows, param_rows):
            for k in pkeys:
                row[pcols[k]] = p.get(k)
        # a key no run has (a typo): an error, as read_metrics says, not a column of None; not
        # while a selected run is running: its next commit may bring the key (a sweep watched
        # before its first validation would raise)
        live = any(run.info.status == "running" for run in runs)
        absent = [k for k in keys if runs and not live and not any(d.lengths.get(k) for d in data)]
        if absent:
            known = sorted({k for d in data for k, n in d.lengths.items() if n})
            raise KeyNotFound("; ".join(f"no run of the {len(runs)} selected has the metric {k!r}"
                                        f"{did_you_mean(k, known)}" for k in absent)
                              + f" (keys: {listing(known)})")
        for d, row in zip(data, rows):
            for key, col in zip(keys, mcols):
                row[col] = reduce_final(d, key, stat, final) if d.lengths.get(key) else None
        cols = list(RUN_COLUMNS) + [pcols[k] for k in pkeys] + mcols
        df = pd.DataFrame(rows, columns=cols)
        params = {pcols[k] for k in pkeys}
        for c in cols[len(RUN_COLUMNS):]:
            values = [row.get(c) for row in rows]
            # keep "absent" (None) apart from NaN, a param's ints apart from another run's
            # floats (pandas would make 1 a 1.0, and 2**53 + 1 another number), and a NaN
            # param apart from missing beside text params (pandas 3 makes such a column str,
            # its NaN a missing value: an empty cell in CSV)
            texts_and_nan = any(isinstance(v, str) for v in values) and any(
                isinstance(v, float) and v != v for v in values)
            if any(v is None for v in values) or (c in params and (ints_and_floats(values) or texts_and_nan)):
                df[c] = pd.Series(values, dtype=object, index=df.index)
        for c in RUN_COLUMNS:  # 3 beside another run's 0.5 stays 3; None (no step, a damaged
            keep_ints(df, c, [row[c] for row in rows])  # run's start) stays None, not NaN
        if sort is not None:
            from .order import sorted_order

            if sort not in df.columns:
                raise KeyNotFound(f"sort={sort!r} is not a column of the table"
                                  f"{did_you_mean(sort, list(df.columns))}; columns: {listing(list(df.columns))}")
            order = sorted_order(df[sort].tolist(), desc)
            df, runs = df.iloc[order].reset_index(drop=True), [runs[i] for i in order]
        return df, runs

    def read_metrics(self, spec: str, experiment: str | None = None, **kw: Any) -> "pd.DataFrame":
        """Bands across runs of ``spec`` (``"loss@mean"``); see ``distlog.query.sweeps``."""
        from .sweeps import read_metrics

        select = {k: kw.pop(k) for k in ("status", "params") if k in kw}
        return read_metrics(self.runs(experiment, **select), spec, **kw)


_MISSING = object()


def status_set(status: Any) -> set[str] | None:
    """``status`` (one status or several; None: any) as a set, checked: a typo would select
    no run, silently."""
    statuses = None if status is None else ({status} if isinstance(status, str) else set(status))
    for s in statuses or ():
        if s not in RUN_STATUSES:
            raise ValueError(f"status={s!r}: expected one of {', '.join(RUN_STATUSES)}"
                             f"{did_you_mean(str(s), RUN_STATUSES)}")
    return statuses


def listed_statuses(statuses: set[str] | None) -> set[str] | None:
    """The statuses to select from the listing for a table filtered by ``statuses``: a run is
    ``damaged`` in the table when its params or commit record is torn, which only reading them
    tells, so with ``damaged`` asked for every listed run is a candidate."""
    return None if statuses is None or DAMAGED in statuses else statuses


#: run columns of whole numbers, which a run may lack (no step yet; a damaged run.json)
INT_COLUMNS = ("world_size", "last_step")


def keep_ints(df: "pd.DataFrame", column: str, values: Sequence[Any]) -> None:
    """``df[column] = values`` as objects when pandas would make floats of them: ints beside
    floats (``3`` → ``3.0``) or beside None (``3`` → ``3.0``, None → NaN, printed ``nan``
    where ``distlog ls`` prints ``-``)."""
    import pandas as pd

    if ints_and_floats(values) or (any(v is None for v in values) and any(v is not None for v in values)):
        df[column] = pd.Series(list(values), dtype=object, index=df.index)


def _experiment_ok(name: str, pattern: str) -> bool:
    pattern = pattern.strip("/")
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return name == pattern or name.startswith(pattern + "/")


def run_row(run: RunReader, data: RunData | None = None) -> dict[str, Any]:
    """The run columns of the sweep table and of ``distlog ls``. ``data`` (from
    ``read_run_data(..., live=True)``) saves reading a running run's last step again; a run
    whose params or commit record it found damaged has the status ``damaged``."""
    info = run.info
    last = info.last_step
    if last is None and needs_live_step(run):
        last = live_last_step(run) if data is None else data.last_step()
    status = DAMAGED if data is not None and data.damaged else info.status
    experiment, run_id = run.folder_name
    # (a running run's from its commit record, when read; a finished run's from run.json)
    nonfinite = data.nonfinite_from if data is not None and needs_live_step(run) else nonfinite_from(info.raw)
    return {
        "experiment": experiment, "run_id": run_id, "status": status,
        "started": info.first_start_time, "ended": info.end_time, "duration": info.duration(),
        "world_size": info.world_size, "last_step": None if last is None else exact_int(last),
        "attempts": len(info.attempts) or 1, "tags": ",".join(map(str, info.tags)),
        "nonfinite_from": {k: exact_int(v) for k, v in nonfinite.items()},
        "failure": failure_text(info.error),
    }


def failure_text(err: Any) -> str | None:
    """A run's first cause on one line (``RuntimeError on rank 1: CUDA out of memory``), None
    without one: why a run failed, where runs are listed."""
    if not isinstance(err, dict) or not err.get("type"):
        return None
    from .render import one_line

    on = "" if err.get("rank") is None else f" on rank {err['rank']}"
    return one_line(f"{err['type']}{on}: {err.get('message') or ''}".rstrip(": "))


def nonfinite_text(nonfinite: dict[str, Any], most: int | None = 3) -> str:
    """``loss@30, acc@55`` (the first ``most``, then how many more; None: all): the metrics
    whose value went NaN or ±inf and the step of each one's first such row; "" for none."""
    items = sorted(nonfinite.items(), key=lambda kv: (kv[1], kv[0]))
    most = len(items) if most is None else most
    text = ", ".join(f"{k}@{exact_int(v)}" for k, v in items[:most])
    return text + (f" (+{len(items) - most} more)" if len(items) > most else "")


def run_nonfinite(run: RunReader) -> dict[str, Any]:
    """``nonfinite_from`` of one run (metric -> step of its first NaN/±inf value): from
    ``run.json`` once the run ended (its close wrote it), else from its commit record (a run
    still running, or killed: ``run.json`` says nothing yet; one read)."""
    return runs_nonfinite([run])[0]


def runs_nonfinite(runs: Sequence[RunReader]) -> list[dict[str, Any]]:
    """``run_nonfinite`` of each run; the commit records of those still running (or killed)
    read together, in one round of concurrent reads."""
    live = [r for r in runs if stored_status(r.info.raw, r.info.status) == "running"]
    records = dict(zip(map(id, live), read_run_data(live, lengths=True))) if live else {}
    out = []
    for run in runs:  # (a run from before the field, or with a damaged record: none)
        got = records[id(run)].nonfinite_from if id(run) in records else nonfinite_from(run.info.raw)
        out.append({k: exact_int(v) for k, v in got.items()})
    return out


def run_rows(runs: Sequence[RunReader]) -> list[dict[str, Any]]:
    """``run_row`` of every run; the last steps of running runs are read concurrently."""
    data = read_run_data(runs, live=True)
    return [run_row(r, d) for r, d in zip(runs, data)]


def live_last_step(run: RunReader) -> float | None:
    """The largest committed step of a run still being written, of its series or its
    histograms (one chunk read per key: ``run.metrics.last_step()``)."""
    return run.metrics.last_step()


def param_columns(pkeys: Sequence[str], taken: Sequence[str]) -> dict[str, str]:
    """The sweep table's column of each param: its flattened name, or ``params.<name>`` when
    a run column or a metric column has that name (so neither hides the other)."""
    taken, keys, out = set(taken), set(pkeys), {}
    for k in pkeys:
        c = k
        while c in taken or (c != k and c in keys):  # (``params.x`` may be a param too)
            c = f"params.{c}"
        out[k] = c
        taken.add(c)
    return out


def metric_column(key: str, stat: str, final: str) -> str:
    name = key if stat == "value" else f"{key}.{stat}"
    return name if final == "last" else f"{name}@{final}"


def final_value(run: RunReader, key: str, stat: str = "value", final: str = "last") -> float:
    """``key`` of ``run`` reduced to one number (NaN when the run has no such series)."""
    d = read_run_data([run], last_keys=[key] if final == "last" else (),
                      full_keys=[key] if final != "last" else ())[0]
    if not d.lengths.get(key):
        return float("nan")
    return reduce_final(d, key, stat, final)


def reduce_final(d: RunData, key: str, stat: str, final: str) -> float:
    """A series read by ``read_run_data`` reduced to one number (``final_value``): its last
    row's, or the min, max or mean of its rows skipping NaN (a step with no value) but not
    ±inf: a run whose loss diverged to inf has max inf, not the max before it."""
    if final == "last":
        row = d.last[key]
        if stat not in row:
            raise KeyError(f"series {key!r} has no column {stat!r}; columns: {listing(row)}")
        return float(row[stat])
    from .series import Series

    columns, data = d.full[key]
    v = Series(key, columns, data)[stat]
    v = v[~np.isnan(v)]
    if not len(v):
        return float("nan")
    with np.errstate(invalid="ignore", over="ignore"):  # (inf and -inf: a mean of NaN)
        return float({"min": np.min, "max": np.max, "mean": np.mean}[final](v))


def open_root(url: Any, *, allow_empty: bool = False, **storage_options: Any) -> RootReader:
    """Every experiment and run under ``url`` (a path or URL). ``storage_options`` go to the
    backend. Raises ``RunNotFound`` when ``url`` does not exist or holds nothing; with
    ``allow_empty`` (a dashboard started before the first run) a root that holds nothing yet
    is read as one with no runs (on local disk its folder must exist: a mistyped path is
    still refused)."""
    storage = open_storage(str(url), **storage_options)
    listing = storage.list_dir()
    if not listing and _probe(storage, "") is None:
        bucket = storage.missing_bucket()
        if bucket is not None:  # (a dashboard must not wait on a bucket that is not there)
            raise RunNotFound(f"nothing at {storage.url}: the bucket '{bucket}' does not exist; create "
                              "it first or fix the URL")
        local = getattr(storage, "local_path", None)
        if allow_empty and (local is None or os.path.isdir(local())):
            return RootReader(storage, [])
        hint = (f"; create the folder ({local()}) to watch runs that will start there"
                if allow_empty and local is not None else "")
        raise RunNotFound(f"nothing at {storage.url}: no runs or experiments there{hint}")
    return RootReader(storage, listing)


def find_run(url: Any, last: bool = False, **storage_options: Any) -> RunReader:
    """The run at ``url``; with ``last``, the most recently started run below ``url``; else a
    unique run-id prefix in the last path part (``runs/mnist/2026``) is accepted."""
    storage = open_storage(str(url), **storage_options)
    if last:
        runs = RootReader(storage).runs()
        if not runs:
            raise RunNotFound(f"no runs below {storage.url}")
        return max(runs, key=lambda r: (r.info.start_time or 0.0, r.info.run_id))
    try:
        return RunReader(storage)
    except RunNotFound as e:
        parent_url, _, stem = storage.url.rstrip("/").rpartition("/")
        if stem and parent_url:
            parent = open_storage(parent_url, **storage_options)
            hits = [n for n in parent.list_dir() if n.startswith(stem)]
            runs = [n for n in hits if _probe(parent, n) is not None]
            if len(runs) == 1:
                return RunReader(parent.child(runs[0]))
            if len(runs) > 1:
                raise RunNotFound(f"{stem!r} matches several runs in {parent_url}: "
                                  f"{listing(runs)}") from None
        raise e from None


def read_runs(urls: Sequence[Any], **storage_options: Any) -> list[RunReader]:
    """``find_run`` for each of ``urls``; a folder of runs contributes all of them. Each run
    once, in the order first named (``exp exp/r1`` and ``r1 r1`` name r1 once)."""
    out: dict[str, RunReader] = {}  # by folder: a run named twice (itself and its
    for url in urls:                  # experiment folder) is one run, where first named
        try:
            found = [find_run(url, **storage_options)]
        except RunNotFound:
            found = RootReader(open_storage(str(url), **storage_options)).runs()
            if not found:
                raise
        for run in found:
            out.setdefault(run.url.rstrip("/"), run)
    return list(out.values())


__all__ = ["RootReader", "keep_ints", "status_set", "listed_statuses", "INT_COLUMNS", "open_root", "find_run", "read_runs", "scan_runs", "run_row", "run_rows", "nonfinite_text", "run_nonfinite", "runs_nonfinite",
           "read_meta", "needs_live_step", "live_last_step"]
