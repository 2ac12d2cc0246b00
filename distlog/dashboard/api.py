"""The JSON API: runs, one run, its series (downsampled), histograms, compare and bands.

Every handler is a thin layer over ``distlog.query``; nothing here writes to the store.
Logs and files live in ``logs_api.py`` and ``files_api.py``. Run paths come in the ``run``
query parameter and are resolved by ``RunIndex`` (see ``paths.py``).
"""

from __future__ import annotations

import math

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from starlette.requests import Request

from ..layout import RUN_FILE
from ..query.batch import DAMAGED, param_key, read_run_data
from ..query.errors import DamagedRecord, KeyNotFound, did_you_mean
from ..query.root import RootReader, reduce_final, run_nonfinite, run_row
from ..query.run_reader import RunInfo, RunReader
from ..serdes import flatten
from ..query.sweeps import read_metrics
from .downsample import downsample, window
from .encode import column, columns, jsonable, nonfinite_marks, nonfinite_params
from .paths import BadPath, RunIndex, UnknownRun
from .seriescache import SeriesCache

MAX_WIDTH = 8192
DEFAULT_WIDTH = 1200
MAX_COMPARE = 64
MAX_METRIC_COLUMNS = 8  # metric columns of the runs table (each a last-row read per run)
#: the run columns ``/api/runs?sort=`` takes (any other name is a param)
SORT_COLUMNS = ("experiment", "run_id", "path", "status", "started", "ended", "duration",
                "world_size", "last_step", "attempts", "tags")


def arg_int(request: Request, name: str, default: int | None = None, lo: int | None = None,
            hi: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadPath(f"query parameter {name}={raw!r} is not an integer") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise BadPath(f"query parameter {name}={v} is out of range [{lo}, {hi}]")
    return v


def arg_float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        v = float(raw)
    except ValueError:
        raise BadPath(f"query parameter {name}={raw!r} is not a number") from None
    if not math.isfinite(v):
        raise BadPath(f"query parameter {name}={raw!r} must be a finite number (a step or a time)")
    return v


def arg_smooth(request: Request) -> float:
    """The ``smooth`` weight (0: none): the chart's EMA, ``downsample.ema``."""
    smooth = arg_float(request, "smooth") or 0.0
    if not 0.0 <= smooth < 1.0:
        raise BadPath(f"query parameter smooth={smooth} must be a weight in [0, 1)")
    return smooth


def arg_str(request: Request, name: str, required: bool = True) -> str | None:
    v = request.query_params.get(name)
    if v is None and required:
        raise BadPath(f"missing query parameter {name!r}")
    return v


class Api:
    """State shared by the handlers: the root, its run index and the series cache."""

    def __init__(self, root: RootReader, ttl: float = 3.0) -> None:
        self.root = root
        self.index = RunIndex(root, ttl=ttl)
        self.cache = SeriesCache()
        self._rows: dict[str, tuple[dict, dict]] = {}  # path -> (run.json, table row)
        self._flat: dict[str, dict[str, Any]] = {}  # path -> flat params, as stored
        self._keys: dict[str, frozenset[str]] = {}  # path -> its metric keys with rows
        # path -> (run.json, {metric: its last value}): a finished run's metric columns are
        # read once (the runs page asks for them at every poll)
        self._last: dict[str, tuple[dict, dict[str, float | None]]] = {}
        self._prefetch = ThreadPoolExecutor(2, thread_name_prefix="distlog-prefetch")

    def run(self, request: Request, name: str = "run") -> RunReader:
        return self.index.reader(arg_str(request, name))

    # ---- the root ---------------------------------------------------------------------
    def meta(self, request: Request) -> dict[str, Any]:
        from .. import __version__

        return {"root": self.root.url, "version": __version__,
                "live_lag": 1.0 if self.root.storage.supports_append else 35.0}

    def runs(self, request: Request) -> dict[str, Any]:
        """The sweep table: one row per run with its flattened params; ``sort=COLUMN`` (a run
        column, else a param) orders the rows as ``distlog compare --sort`` does
        (``distlog.query.order``), ``desc=1`` largest first. ``fresh=1`` (a page's first
        read): the runs are listed again now unless listed within the last second (a live
        page's polls take the listing kept, renewed in the background)."""
        rows = self.rows(relist=bool(arg_int(request, "fresh", 0, 0, 1)))
        keys = sorted({k for r in rows for k in r["params"]})
        metrics = [m for m in dict.fromkeys(request.query_params.getlist("metric")) if m]
        if len(metrics) > MAX_METRIC_COLUMNS:
            raise BadPath(f"at most {MAX_METRIC_COLUMNS} metric columns, got {len(metrics)}")
        last = self._last_values(rows, metrics) if metrics else []
        sort = arg_str(request, "sort", required=False)
        if sort:
            order = self._order(rows, last, sort, bool(arg_int(request, "desc", 0, 0, 1)), keys, metrics)
            rows, last = [rows[i] for i in order], [last[i] for i in order] if last else last
        if metrics:  # (copies: the rows are kept between requests; NaN and ±inf as the runs
            # table sends a param's: text)
            rows = [{**r, "metrics": {k: None if v is None else jsonable(v) for k, v in vals.items()}}
                    for r, vals in zip(rows, last)]
        known = sorted(set().union(*(self._keys.get(r["path"], ()) for r in rows)))
        # a metric column no run has (a typo in a shared link; not while a run runs: its next
        # commit may bring it): said beside the table, with the nearest keys
        live = any(r["status"] == "running" for r in rows)
        unknown = {} if live else {m: did_you_mean(m, known) for m in metrics if m not in known}
        return {"root": self.root.url, "runs": rows, "param_keys": keys, "now": time.time(),
                "metric_keys": known, "unknown_metrics": unknown}

    def _last_values(self, rows: list[dict[str, Any]], metrics: list[str]) -> list[dict[str, float | None]]:
        """Each run's last ``value`` of each of ``metrics`` (None where it has no row). A
        finished run's are kept while its ``run.json`` stays as it was (a column added to the
        page reads it for that column alone); the others' last rows are read together."""
        todo: dict[tuple[str, ...], list[tuple[str, dict, RunReader]]] = {}  # keys to read -> runs
        for r in rows:
            path = r["path"]
            meta = self._rows[path][0]
            kept = self._last.get(path)
            if kept is None or kept[0] != meta or meta.get("status") == "running":
                need = tuple(metrics)
            else:
                need = tuple(key for key in metrics if key not in kept[1])
            if need:
                todo.setdefault(need, []).append((path, meta, RunReader(
                    self.root.storage.child(path) if path else self.root.storage, meta)))
        for need, runs in todo.items():
            for (path, meta, _), d in zip(runs, read_run_data([run for *_, run in runs], last_keys=list(need))):
                vals: dict[str, float | None] = {}
                for key in need:
                    v = reduce_final(d, key, "value", "last") if d.lengths.get(key) else None
                    vals[key] = None if v is None else float(v)
                kept = self._last.get(path)
                if kept is not None and kept[0] == meta:  # (the columns read before, too)
                    vals = {**kept[1], **vals}
                self._last[path] = (meta, vals)
        return [{key: self._last[r["path"]][1][key] for key in metrics} for r in rows]

    def _order(self, rows: list[dict[str, Any]], last: list[dict[str, float | None]], column: str,
               desc: bool, param_keys: list[str], metrics: list[str]) -> list[int]:
        """The order of ``rows`` by a run column, a param (its stored value: NaN is NaN here,
        not the ``"nan"`` text the rows carry) or a metric column asked for (``metric=``: its
        last value), as ``distlog compare --sort`` orders them."""
        from ..query.order import sorted_order

        if column in SORT_COLUMNS:
            values = [r.get(column) for r in rows]
        elif column in param_keys:
            values = [self._flat.get(r["path"], {}).get(column) for r in rows]
        elif column in metrics:
            values = [vals[column] for vals in last]
        else:
            raise BadPath(f"sort={column!r} is neither a run column ({', '.join(SORT_COLUMNS)}), a "
                          f"param of these runs nor a metric column asked for (metric=)"
                          f"{did_you_mean(column, param_keys + metrics)}")
        return sorted_order(values, desc)

    def warm(self) -> None:
        """List the root and read every run's params once (the server calls this in a thread
        at start, so the first page does not wait for a large root's listing)."""
        try:
            self.rows()
        except Exception:  # noqa: BLE001 - the first request reports any error
            pass

    def rows(self, relist: bool = False) -> list[dict[str, Any]]:
        """One row per run (``run_row``, with tags, path and flat params). The runs not cached
        (new, running, or whose ``run.json`` changed) are read together: params, commit record
        and a running run's last rows. A run whose ``params.json`` or commit record is torn or
        foreign is a row with status ``damaged`` and an ``error`` naming the file: one run's
        damage must not take the whole table down. ``relist``: the runs listed again now
        (unless within the last second), not the listing kept."""
        rows: list[dict[str, Any] | None] = []
        fresh: list[tuple[int, str, dict, RunReader]] = []
        for path, meta in sorted(self.index.listing(fresh=relist).items()):
            cached = self._rows.get(path)
            if cached is not None and cached[0] == meta and meta.get("status") != "running":
                rows.append(cached[1])  # a finished run whose run.json did not change
                continue
            run = RunReader(self.root.storage.child(path) if path else self.root.storage, meta)
            fresh.append((len(rows), path, meta, run))
            rows.append(None)
        data = read_run_data([run for *_, run in fresh], params=True, live=True, lengths=True)
        for (i, path, meta, run), d in zip(fresh, data):
            row = run_row(run, d)
            row["tags"] = list(run.info.tags)
            row["path"] = path
            row["params"] = {k: jsonable(v) for k, v in (d.flat_params or {}).items()}
            odd = nonfinite_params(d.flat_params or {})
            if odd:  # (their text in "params" reads as a text param's would)
                row["nonfinite"] = odd
            self._flat[path] = d.flat_params or {}  # (as stored, for sorting)
            self._keys[path] = frozenset(k for k, n in d.lengths.items() if n)  # (metric columns to offer)
            if d.damaged:
                row["error"] = "; ".join(d.damaged)
            self._rows[path] = (meta, row)
            rows[i] = row
        return rows  # type: ignore[return-value]

    # ---- one run ----------------------------------------------------------------------
    def run_detail(self, request: Request) -> dict[str, Any]:
        """A run's page. A damaged record (a torn ``run.json``, ``params.json`` or commit
        record) does not take the page down: ``damaged`` names each such file and why, and
        what it does not make unreadable is sent as usual (logs, files, the params, the series
        of the tables whose record is intact, the histograms)."""
        path = arg_str(request, "run")
        run = self.index.reader(path)
        info = run.info
        damage = meta_damage(run)
        params = readable(run, lambda: run.params, {}, damage)
        keys = readable(run, run.metrics.keys, [], damage)
        hists = readable(run, run.metrics.histogram_keys, [], damage)
        rank_keys = {}
        for r in run.metrics.ranks():
            if r:
                rank_keys[str(r)] = readable(run, lambda r=r: run.metrics.keys(r), [], damage)
        readme = run.readme
        if not damage:
            self.prefetch(run)
        sources = run.logs.sources()
        try:
            row = run_row(run)
        except DamagedRecord:  # a running run's last step, read from its series: unknown
            row = run_row(run, read_run_data([run], live=True)[0])
        if damage:
            row["status"] = DAMAGED
        else:  # (a running or killed run's from its commit record: run.json has none yet)
            row["nonfinite_from"] = run_nonfinite(run)
        # path: the folder the request named (the page asks for its series, logs and files by
        # it), never run.json's experiment/run id: a copied or renamed run folder keeps those
        return {
            "path": path, "url": run.url, "info": info.raw, "row": row,
            "params": jsonable(params), "flat_params": {k: jsonable(v) for k, v in flatten(params).items()},
            "readme": readme, "keys": keys, "rank_keys": rank_keys,
            "histograms": hists,
            "log_ranks": sorted({r for _, r, _ in sources}),
            "log_attempts": sorted({a for _, _, a in sources}),
            "attempts": attempts(info), "damaged": damage,
        }

    def prefetch(self, run: RunReader, limit: int = 16) -> None:
        """Start reading the first charts' series while the page is still loading: the
        browser asks for them right after this answer (the cache makes them one read)."""
        commit = run.metrics.commit_record()
        lengths = commit.get("lengths") or {}
        for key in sorted(k for k, n in lengths.items() if n)[:limit]:
            self._prefetch.submit(self._quiet_get, run, key, lengths[key], commit.get("time"))

    def _quiet_get(self, run: RunReader, key: str, n: int, stamp: Any) -> None:
        try:
            self.cache.get(run, key, None, n, stamp)
        except Exception:  # noqa: BLE001 - the real request reports any error
            pass

    def status(self, request: Request) -> dict[str, Any]:
        """What a live page polls: status and committed rows per key (rank 0 and each rank)
        and per histogram key (rank 0's); a table whose commit record is damaged has none,
        and the status is ``damaged``."""
        run = self.run(request)
        damage = meta_damage(run)
        lengths = {"0": readable(run, run.metrics.lengths, {}, damage)}
        for r in run.metrics.ranks():
            if r:
                lengths[str(r)] = readable(run, lambda r=r: run.metrics.lengths(r), {}, damage)
        histograms = readable(run, run.metrics.histogram_lengths, {}, damage)
        readable(run, lambda: run.params, {}, damage)
        return {"status": DAMAGED if damage else run.info.status, "lengths": lengths,
                "histograms": histograms, "time": time.time(),
                "last_step": run.info.last_step, "damaged": damage,
                "nonfinite_from": {} if damage else run_nonfinite(run)}

    def series(self, request: Request) -> dict[str, Any]:
        run = self.run(request)
        return self._series(run, request)

    def _series(self, run: RunReader, request: Request, key: str | None = None) -> dict[str, Any]:
        key = key or arg_str(request, "key")
        rank = arg_int(request, "rank", 0, 0)
        width = arg_int(request, "width", DEFAULT_WIDTH, 1, MAX_WIDTH)
        xname = request.query_params.get("x", "step")
        if xname not in ("step", "time"):
            raise BadPath(f"x must be 'step' or 'time', got {xname!r}")
        smooth = arg_smooth(request)
        commit = run.metrics.commit_record(rank or None)
        n = (commit.get("lengths") or {}).get(key, 0)
        if not n:
            run.metrics.read(key, rank or None)  # raises KeyNotFound naming the keys
        cached = self.cache.entry(run, key, rank or None, n, commit.get("time"))
        cols, n = cached.cols, cached.rows  # fewer when a rewind came after the commit record
        start = arg_int(request, "start", None, 0)
        if start is not None:  # a live poll: only rows after what the page holds
            lo, hi = min(start, n), n
        else:
            lo, hi = window(cols[xname], arg_float(request, "x0"), arg_float(request, "x1"))
        part = {c: v[lo:hi] for c, v in cols.items() if c in ("step", "value", xname)}
        if "min" in cols and not (_same(cols["min"], cols["value"]) and _same(cols["max"], cols["value"])):
            part["min"], part["max"] = cols["min"][lo:hi], cols["max"][lo:hi]  # a band to draw
        if smooth:  # over the whole series, before downsampling: the kept rows' own EMA
            part["smooth"] = cached.smoothed(smooth)[lo:hi]
        skipped = cached.skipped()  # (a column of every reply of the series, or of none)
        if skipped is not None:  # NaN/inf a row's statistics left out (its value looks healthy)
            part["skipped"] = skipped[lo:hi]
        out = downsample(part, width, x=xname) if hi - lo > 4 * width else part
        body = columns(out)  # (a value that is no number is null there: a gap in the line)
        marks = nonfinite_marks(out["value"])
        if marks is not None:  # which one, for the legend: "NaN", "inf" or "-inf"
            body["nonfinite"] = marks
        # rows whose value is NaN or ±inf (gaps in the line; downsampled, some are not sent)
        bad = int(np.count_nonzero(~np.isfinite(cols["value"][lo:hi])))
        # generation: rows of another generation (a page's earlier reply) may have been rewound
        return {"key": key, "rank": rank, "rows": n, "lo": lo, "hi": hi, "generation": cached.generation,
                "downsampled": len(out["step"]) < hi - lo, "columns": body,
                "skipped": 0 if skipped is None else int(skipped[lo:hi].sum()), "nonfinite_rows": bad}

    def histogram(self, request: Request) -> dict[str, Any]:
        run = self.run(request)
        h = run.metrics.histogram(arg_str(request, "key"), arg_int(request, "rank", 0, 0) or None)
        limit = arg_int(request, "limit", 200, 1, 10000)
        pick = np.unique(np.linspace(0, len(h.step) - 1, min(limit, len(h.step))).astype(int))
        return {"key": h.key, "rows": len(h.step), "step": column(h.step[pick]),
                "time": column(h.time[pick], 3), "edges": [column(e) for e in h.edges[pick]],
                "counts": [column(c) for c in h.counts[pick]]}

    # ---- several runs -----------------------------------------------------------------
    def _named_runs(self, request: Request, unknown: list[str] | None = None) -> list[tuple[str, RunReader]]:
        """``(path, reader)`` of each ``run`` the request names. Answers are keyed by that
        path (the runs table's ``path``), never by ``run.json``'s experiment and run id: they
        differ below a root opened at an experiment folder, and a copied run folder has the
        same ones as its original. A run named twice is one entry, where first named (a
        band would count it twice), as ``distlog compare`` lists it once. With ``unknown``, a
        name that is no run (deleted or renamed since a link was copied) is added there
        instead of raising ``UnknownRun`` (raised only when no name is a run)."""
        names = list(dict.fromkeys(request.query_params.getlist("run")))
        if not names:
            raise BadPath("name the runs to compare: ?run=exp/a&run=exp/b")
        if len(names) > MAX_COMPARE:
            raise BadPath(f"at most {MAX_COMPARE} runs at once, got {len(names)}")
        found = []
        for n in names:
            try:
                found.append((n, self.index.reader(n)))
            except UnknownRun:
                if unknown is None:
                    raise
                unknown.append(n)
        if not found:
            raise UnknownRun(f"none of these is a run under {self.root.url}: {', '.join(map(repr, names))}")
        return found

    def keys(self, request: Request) -> dict[str, Any]:
        """The compare page's runs: their keys, flat params and status; a run whose params
        (or run.json) cannot be read has ``{}`` params, status ``damaged`` and its reasons in
        ``damaged`` (one torn run must not refuse the whole page); a name that is no run is in
        ``unknown`` (the page draws the others and says which)."""
        unknown: list[str] = []
        runs = self._named_runs(request, unknown)
        params, status, damaged = {}, {}, {}
        for n, r in runs:
            damage = meta_damage(r)
            params[n] = {k: jsonable(v) for k, v in readable(r, lambda r=r: r.flat_params, {}, damage).items()}
            status[n] = DAMAGED if damage else r.info.status
            if damage:
                damaged[n] = damage
        return {"keys": sorted({k for _, r in runs for k in r.metrics.keys()}),
                "params": params, "status": status, "damaged": damaged, "unknown": unknown}

    def compare(self, request: Request) -> dict[str, Any]:
        key = arg_str(request, "key")
        rank = arg_int(request, "rank", 0, 0)
        out = []
        for name, run in self._named_runs(request):  # a run without the key (or the rank) is missing
            if not run.metrics.lengths(rank or None, missing_ok=True).get(key):
                out.append({"run": name, "missing": True})
                continue
            s = self._series(run, request, key)
            s["run"] = name
            out.append(s)
        if all(s.get("missing") for s in out):
            raise KeyNotFound(f"none of these runs has the metric {key!r}")
        return {"key": key, "series": out}

    def bands(self, request: Request) -> dict[str, Any]:
        """Mean ± std (and min/max) across the runs of each group of ``group_by`` params.
        ``smooth=w``: of each run's smoothed series, smoothed as ``/api/series?smooth=w``
        smooths one run (the EMA over every stored row) before it is binned, so a group of one
        run draws that run's own smoothed line. ``x0``/``x1``: a chart's zoomed range of steps:
        each run's rows inside it are binned, ``bins`` bins over them (one per step when there
        are no more steps); a run with no row inside is in no group."""
        key = arg_str(request, "key")
        group_by = [g for g in request.query_params.getlist("group_by") if g]
        bins = arg_int(request, "bins", 300, 1, MAX_WIDTH)
        smooth = arg_smooth(request)
        x0, x1 = arg_float(request, "x0"), arg_float(request, "x1")
        named = self._named_runs(request)
        runs = [run for _, run in named]
        left_out: list[tuple[int, str]] = []  # (position in runs, why): a damaged run, in no group
        try:
            if smooth or x0 is not None or x1 is not None:
                df = self._smoothed_bands(runs, key, group_by, bins, smooth, x0, x1, left_out)
            else:
                df = read_metrics(runs, f"{key}@mean", group_by=group_by, bins=bins, quiet=True, nonfinite=True)
                left_out = df.attrs.get("left_out", [])
        except KeyError as e:
            raise KeyNotFound(str(e).strip("'\"")) from None
        out = {"key": key, "group_by": group_by,
               "left_out": [{"run": named[i][0], "why": why} for i, why in left_out]}
        if df is None:  # no run has a row in the range
            return {**out, "groups": []}
        groups = []
        for label, g in group_rows(df, group_by):
            missing = [k for k, v in zip(group_by, label) if _is_na(v)]  # runs without the param
            groups.append({"group": {k: None if k in missing else jsonable(v) for k, v in zip(group_by, label)},
                           "missing": missing,
                           **{c: column(g[c].to_numpy(dtype=float)) for c in
                              ("step", "runs", "nonfinite", "mean", "std", "min", "max")}})
        return {**out, "groups": groups}

    def _smoothed_bands(self, runs: list[RunReader], key: str, group_by: list[str], bins: int,
                        weight: float, x0: float | None, x1: float | None, left_out: list[tuple[int, str]]) -> Any:
        """``read_metrics(runs, key@mean, group_by, bins)`` of the runs' smoothed series (the
        cached rows' ``smoothed(weight)``; weight 0: their values): the same bins, groups, group
        order and columns; a damaged run is added to ``left_out`` as read_metrics names it.
        ``x0``/``x1``: of each run's rows in that range of steps (the EMA is still of the whole
        series); None when no run has one there."""
        from ..query.sweeps import bin_grid, group_bands

        series, flat = [], []
        for i, run in enumerate(runs):  # (a run without the key is left out, as read_metrics leaves it)
            try:  # and so is a damaged one (its series or its group unknown)
                commit = run.metrics.commit_record()
                n = (commit.get("lengths") or {}).get(key, 0)
                p = run.flat_params if n else {}
            except DamagedRecord as e:
                left_out.append((i, str(e)))
                continue
            if not n:
                continue
            cached = self.cache.entry(run, key, None, n, commit.get("time"))
            values = cached.smoothed(weight) if weight else cached.cols["value"]
            st = cached.cols["step"]
            # only the rows inside the range (not the one either side that a line of
            # /api/series runs to the edge with: far out, it widened the bins of the grid)
            inside = (st >= (-np.inf if x0 is None else x0)) & (st <= (np.inf if x1 is None else x1))
            series.append((st[inside], values[inside]))
            flat.append(p)
        if not series:
            raise KeyNotFound(f"no run has the metric {key!r}"
                              + (f"; left out as damaged: {len(left_out)} run(s)" if left_out else ""))
        keep = [i for i, (st, _) in enumerate(series) if len(st)]  # (a run with no row there: in no bin)
        if not keep:
            return None
        series, flat = [series[i] for i in keep], [flat[i] for i in keep]
        lo, size = bin_grid([st for st, _ in series], None, bins)
        return group_bands(series, flat, group_by, lo, size, "mean", (), nonfinite=True)


def readable(run: RunReader, read: Any, default: Any, damage: list[str]) -> Any:
    """``read()``, or ``default`` when a record it needs is damaged (``DamagedRecord``), whose
    message (the file, why, what can still be read) is added to ``damage`` once."""
    try:
        return read()
    except DamagedRecord as e:
        if str(e) not in damage:
            damage.append(str(e))
        return default


def meta_damage(run: RunReader) -> list[str]:
    """The damage of a run whose ``run.json`` is torn or missing (the listing stands in for it,
    ``damaged_meta``): its message, or none."""
    error = run.info.raw.get("error") or {}
    if not isinstance(error, dict) or error.get("type") != "DamagedRun":
        return []
    why = str(error.get("message") or f"{RUN_FILE} is damaged").split("; restore it", 1)[0]
    return [f"{run.url}/{why}: the run's metadata (status, times, attempts) is unreadable; its "
            f"params, series, logs and files still can be read. Restore {RUN_FILE} from a copy of the run"]


def group_rows(df: Any, group_by: list[str]) -> list[tuple[tuple, Any]]:
    """``(group_by values, rows)`` of each group of ``read_metrics`` rows, in order of first
    appearance, grouped as ``read_metrics`` groups (``param_key``: list values, NaN, bools)."""
    if not group_by:
        return [((), df)]
    members: dict[tuple, list[int]] = {}
    for i, vals in enumerate(zip(*(df[g].tolist() for g in group_by))):
        members.setdefault(tuple(param_key(v) for v in vals), []).append(i)
    return [(tuple(df[g].iloc[rows[0]] for g in group_by), df.iloc[rows]) for rows in members.values()]


def _is_na(v: Any) -> bool:
    """Whether ``v`` is ``pd.NA``: ``read_metrics``' label of a group whose runs lack a param."""
    return type(v).__name__ == "NAType"


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal, NaN included (a series one process logged has min == max == value, and NaN
    min/max where the value is NaN or infinite)."""
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & ~np.isfinite(b))))


def attempts(info: RunInfo) -> list[dict[str, Any]]:
    """The attempts of a (restarted) run for the timeline: start, end, status, world size."""
    from ..query.run_reader import parse_iso

    out = []
    for a in info.attempts or [{"attempt": 0, "started": info.started, "ended": info.ended,
                                "status": info.status, "world_size": info.world_size}]:
        out.append({"attempt": a.get("attempt"), "started": parse_iso(a.get("started")),
                    "ended": parse_iso(a.get("ended")), "status": a.get("status"),
                    "world_size": a.get("world_size"), "hosts": a.get("hosts") or [],
                    "resume_step": a.get("resume_step"), "error": a.get("error"),
                    "params_changed": a.get("params_changed") or None})
    return out
