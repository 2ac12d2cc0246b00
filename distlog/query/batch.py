"""Reading many runs (or many series of one run) at once: a few rounds of concurrent GETs.

On an object store a read costs a round trip (tens of ms), so what matters is how many reads
wait on each other, not how many there are. Every multi-object read of the query layer goes
through here and is issued in *rounds*, each round one batch of concurrent requests
(``distlog.storage.read_objects`` and zarr's async API, on one event loop):

1. the small JSON records of every run: ``params.json``, the table's ``commit.json``;
2. array metadata: the table's consolidated ``zarr.json`` (one object for all keys, written at
   close) when the commit record is final and most keys are wanted, else each wanted key's own
   ``zarr.json`` (``zarr_format=3``: no probes for v2 files);
3. the chunks holding the wanted rows.

Each object is read once per query. Consolidated metadata is used only when its shape covers
the committed rows (a resumed run grows its arrays after the close that consolidated them);
otherwise the key's own metadata is read, so a stale copy can never cut a series short.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..layout import HISTOGRAMS_TABLE, PARAMS_FILE, SCALARS_TABLE, table_commit, table_zarr
from ..reduce import SCALAR_COLUMNS
from ..serdes import flatten
from ..serdes import deserialize
from ..storage.aio import gather
from ..storage.base import StorageBackend, read_objects
from .errors import DamagedRecord, damaged

# a ``query.run_reader.RunReader``; not imported (``query.run_reader`` builds on this module)
RunReader = Any


commit_path = table_commit


def parse_json(data: bytes, backend: StorageBackend, path: str) -> Any:
    """``data`` (read from ``path``) parsed; a ``DamagedRecord`` naming the file when it does
    not parse (a bare JSON error names no file, and a sweep reads hundreds)."""
    try:
        return json.loads(data)
    except ValueError as e:
        raise damaged(backend, path, f"not valid JSON: {e}") from None


def read_json_objects(items: Sequence[tuple[StorageBackend, str]], *,
                      keep_damaged: bool = False) -> list[Any]:
    """``(backend, path)`` → the parsed JSON, or None when absent; concurrently. A record that
    does not parse raises ``DamagedRecord``, or with ``keep_damaged`` is returned as one."""
    out = []
    for (backend, path), b in zip(items, read_objects(items)):
        try:
            out.append(None if b is None else parse_json(b, backend, path))
        except DamagedRecord as e:
            if not keep_damaged:
                raise
            out.append(e)
    return out


def check_commit(commit: Any, backend: StorageBackend, table: str) -> dict[str, Any]:
    """``commit`` (table ``table``'s parsed commit record, None when absent) as a dict, or a
    ``DamagedRecord`` raised when it is not one distlog writes."""
    if commit is None:
        return {}
    if not isinstance(commit, dict) or not isinstance(commit.get("lengths"), dict):  # (every record
        # distlog writes has its lengths: a JSON object without them is no commit record)
        raise damaged(backend, commit_path(table), "not a commit record")
    return commit


def read_commit_record(backend: StorageBackend, table: str) -> dict[str, Any]:
    """Table ``table``'s commit record (``{}`` before the first commit); ``DamagedRecord``,
    naming the file and what it makes unreadable, when it is torn or foreign (a bare JSON
    error would name neither)."""
    path = commit_path(table)
    try:
        data = backend.read_bytes(path)
    except FileNotFoundError:
        return {}
    return check_commit(parse_json(data, backend, path), backend, table)


# ---- one table's series ------------------------------------------------------------------
@dataclass
class Want:
    """Rows ``[lo, hi)`` of ``key`` in table ``table`` under ``storage`` (``n`` committed)."""

    storage: StorageBackend
    table: str
    key: str
    n: int
    lo: int
    hi: int
    order: str = "C"
    meta: dict[str, Any] | None = None  # the array's zarr.json, once known


def _consolidated(root: Any, key: str) -> dict[str, Any] | None:
    if not isinstance(root, dict):
        return None
    meta = ((root.get("consolidated_metadata") or {}).get("metadata") or {}).get(key)
    return meta if isinstance(meta, dict) and meta.get("node_type") == "array" else None


def use_consolidated(commit: dict[str, Any], wanted: int) -> bool:
    """Whether one consolidated ``zarr.json`` is worth reading instead of ``wanted`` array
    metadata objects: the table was closed (its commit record is final) and at least two
    and a quarter of its series are wanted (it holds the metadata of every series)."""
    keys = sum(1 for n in (commit.get("lengths") or {}).values() if n)
    return bool(commit.get("final")) and wanted >= max(2, keys / 4)


def resolve_metadata(wants: Sequence[Want], from_root: Sequence[bool] | None = None) -> None:
    """Fill ``want.meta`` of every want, in one round of concurrent reads: the table's
    consolidated ``zarr.json`` (read once per table) where ``from_root[i]``, else the key's own
    ``zarr.json``. A key the consolidated copy lacks or does not cover (fewer rows than
    committed) has its own metadata read in a second round."""
    from_root = from_root or [False] * len(wants)
    tables: dict[tuple[int, str], int] = {}  # (backend, table) -> index into items
    items: list[tuple[StorageBackend, str]] = []
    slots: list[int | None] = []
    for w, r in zip(wants, from_root):
        if w.meta is not None:
            slots.append(None)
            continue
        if r:
            t = (id(w.storage), w.table)
            if t not in tables:
                tables[t] = len(items)
                items.append((w.storage, f"{w.table}.zarr/zarr.json"))
            slots.append(tables[t])
        else:
            slots.append(len(items))
            items.append((w.storage, f"{w.table}.zarr/{w.key}/zarr.json"))
    docs = read_json_objects(items)
    again = []
    for w, r, slot in zip(wants, from_root, slots):
        if slot is None:
            continue
        doc = docs[slot]
        if r:
            doc = _consolidated(doc, w.key)
            if doc is None or ((doc.get("shape") or [0])[0] < w.n):
                again.append(w)
                continue
        w.meta = doc
    if again:
        resolve_metadata(again)
    for w in wants:
        if not isinstance(w.meta, dict):
            raise FileNotFoundError(
                f"{w.storage.url}/{w.table}.zarr/{w.key}/zarr.json is missing although "
                f"{commit_path(w.table)} commits {w.n} rows of {w.key!r}: the table is damaged; "
                "re-copy the run or drop the key from the commit record")


def read_rows(wants: Sequence[Want]) -> list[np.ndarray]:
    """The rows of every want (metadata resolved), read concurrently: one chunk GET each per
    chunk the rows span."""
    from zarr.core.array import AsyncArray
    from zarr.storage import StorePath

    stores: dict[tuple[int, str], Any] = {}
    coros = []
    for w in wants:
        assert w.meta is not None, "resolve_metadata() first"
        store = stores.get((id(w.storage), w.table))
        if store is None:
            store = stores[(id(w.storage), w.table)] = w.storage.zarr_store(
                table_zarr(w.table), read_only=True)
        arr = AsyncArray.from_dict(StorePath(store, w.key), w.meta)
        if w.order != "C":
            arr = arr.with_config({"order": w.order})
        coros.append(arr.getitem(slice(w.lo, w.hi)))
    return [np.asarray(a) for a in gather(coros)]


def nonfinite_from(record: dict[str, Any]) -> dict[str, float]:
    """``nonfinite_from`` of a commit record or ``run.json`` (docs/FORMAT.md): each metric whose
    value went NaN or ±inf, the step of its first such row; {} when none (or unreadable)."""
    got = record.get("nonfinite_from")
    if not isinstance(got, dict):
        return {}
    return {str(k): v for k, v in got.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def columns_of(meta: dict[str, Any] | None) -> tuple[str, ...]:
    return tuple(((meta or {}).get("attributes") or {}).get("columns", SCALAR_COLUMNS))


def last_row(w: Want, rows: np.ndarray) -> dict[str, float]:
    """``{column: value}`` of the last row read for ``w`` (``rows`` end at row ``n``)."""
    return dict(zip(columns_of(w.meta), rows[-1].tolist()))


# ---- many runs -------------------------------------------------------------------------
@dataclass
class RunData:
    """What one query read of one run."""

    flat_params: dict[str, Any] | None = None
    lengths: dict[str, int] = field(default_factory=dict)
    #: why a record the query needed is unreadable (its params or commit record read as empty)
    damaged: list[str] = field(default_factory=list)
    last: dict[str, dict[str, float]] = field(default_factory=dict)
    full: dict[str, tuple[tuple[str, ...], np.ndarray]] = field(default_factory=dict)
    #: with ``live``, the last row of each histogram key of a run that ``needs_live_step``
    hist_last: dict[str, dict[str, float]] = field(default_factory=dict)
    #: ``committed_at`` of the commit records the rows were read by (``rewritten`` checks them)
    committed: float | None = None
    #: the commit record's ``nonfinite_from``: each metric whose value went NaN or ±inf, the
    #: step of its first such row (a run still being written: ``run.json`` says it at the end)
    nonfinite_from: dict[str, float] = field(default_factory=dict)

    def last_step(self) -> float | None:
        """The largest step of the last rows read (series and histograms), or None."""
        steps = [row["step"] for rows in (self.last, self.hist_last) for row in rows.values()]
        return max(steps) if steps else None


#: the status listings give a run folder whose ``run.json`` is missing or unreadable
DAMAGED = "damaged"


def needs_live_step(run: RunReader) -> bool:
    """A run's last step must be read from its series: ``run.json`` has none and says the
    run is running, whatever readers judge it to be now (a killed run, judged ``stale`` or
    ``failed`` from its heartbeats, never wrote its last step). The single place that decides
    it, for ``ls``, the sweep table and ``show``. A ``damaged`` run (its ``run.json``
    unreadable) has its last step read from its series too."""
    info = run.info
    return info.last_step is None and stored_status(info.raw, info.status) in ("running", DAMAGED)


def stored_status(meta: dict[str, Any], judged: str) -> str:
    """The status ``run.json`` holds (``recorded_status`` once a reader judged it otherwise)."""
    return str(meta.get("recorded_status", meta.get("status", judged)))


#: reads again (from a fresh commit record) this many times at most when rows came back torn
REREADS = 5


def torn(steps: Sequence[np.ndarray]) -> bool:
    """Whether rows read as committed include one with no step. A committed row always has
    one; a reader that took its commit record just before a resumed attempt rewound a series
    (publishing the shorter length, then rewriting the tail chunk, NaN past the new end)
    reads that chunk's fill values as rows: read again from a fresh commit record."""
    return any(np.isnan(st).any() for st in steps)


def rewritten(times: Sequence[np.ndarray], committed: float | None) -> bool:
    """Whether rows read as committed by a record written at ``committed`` (its ``time``)
    include one logged after it. A record commits rows logged before it was written, on the
    host that writes both; a reader that took its record just before a resumed attempt cut
    series back and rewrote their chunks (publishing the shorter lengths first) reads that
    attempt's rows there, every step still increasing and no NaN for ``torn`` to see: read
    again. (A false alarm, a clock stepped back, only costs the rereads.)"""
    return committed is not None and any(bool((t > committed).any()) for t in times)


def committed_at(*records: dict[str, Any]) -> float | None:
    """The latest ``time`` of the commit records a read took lengths from (None: none has one)."""
    times = [r.get("time") for r in records if isinstance(r.get("time"), (int, float))]
    return float(max(times)) if times else None


def _steps(d: RunData, column: str = "step") -> list[np.ndarray]:
    out = [rows[:, cols.index(column)] for cols, rows in d.full.values() if column in cols]
    return out + [np.array([r.get(column, 0.0) for r in (*d.last.values(), *d.hist_last.values())])]


def read_run_data(runs: Sequence[RunReader], *, params: bool = False,
                  last_keys: Sequence[str] = (), full_keys: Sequence[str] = (),
                  live: bool = False, lengths: bool = False) -> list[RunData]:
    """For each run: flattened params (``params``), the last row of ``last_keys``, the whole
    series of ``full_keys`` (``(columns, rows)``, column-major), and with ``live`` the last
    row of every key and histogram key of a run that ``needs_live_step`` (its last step:
    ``RunData.last_step``); ``lengths`` reads every run's commit
    record (``RunData.lengths``) even when no rows are wanted. Three rounds of concurrent
    reads; a run whose rows came back ``torn`` or ``rewritten`` is read again."""
    what = dict(params=params, last_keys=last_keys, full_keys=full_keys, live=live, lengths=lengths)
    out = _read_run_data(runs, **what)
    for _ in range(REREADS):
        again = [i for i, d in enumerate(out) if torn(_steps(d)) or rewritten(_steps(d, "time"), d.committed)]
        if not again:
            break
        for i, d in zip(again, _read_run_data([runs[i] for i in again], **what)):
            out[i] = d
    return out


def _read_run_data(runs: Sequence[RunReader], *, params: bool, last_keys: Sequence[str],
                   full_keys: Sequence[str], live: bool, lengths: bool) -> list[RunData]:
    live_runs = [live and needs_live_step(r) for r in runs]
    need_commit = [bool(lengths or last_keys or full_keys or lv) for lv in live_runs]
    items: list[tuple[StorageBackend, str]] = []
    for run, nc, lv in zip(runs, need_commit, live_runs):
        if params:
            items.append((run.storage, PARAMS_FILE))
        if nc:
            items.append((run.storage, commit_path(SCALARS_TABLE)))
        if lv:  # a running run's last step may be a histogram's
            items.append((run.storage, commit_path(HISTOGRAMS_TABLE)))
    # one run's torn record must not fail the query of every run: it is kept as damaged
    docs = iter(read_json_objects(items, keep_damaged=True))
    out: list[RunData] = []
    commits: list[dict[str, Any]] = []
    hist_lengths: list[dict[str, int]] = []
    for run, nc, lv in zip(runs, need_commit, live_runs):
        d = RunData()
        if params:
            p = next(docs)
            if p is not None and not isinstance(p, DamagedRecord):
                p = deserialize(p)
                if not isinstance(p, dict):
                    p = damaged(run.storage, PARAMS_FILE, f"a {type(p).__name__}, not the JSON "
                                "object of a run's params")
            if isinstance(p, DamagedRecord):
                d.damaged.append(str(p))
                p = None
            d.flat_params = flatten(p) if p is not None else {}
        commit = _commit_or_damaged(next(docs) if nc else None, run.storage, SCALARS_TABLE, d)
        hist = _commit_or_damaged(next(docs) if lv else None, run.storage, HISTOGRAMS_TABLE, d)
        d.lengths = dict(commit.get("lengths", {}))
        d.nonfinite_from = nonfinite_from(commit)
        d.committed = committed_at(commit, hist)
        out.append(d)
        commits.append(commit)
        hist_lengths.append(dict(hist.get("lengths", {})))
    # which rows of which keys
    wants: list[Want] = []
    owners: list[tuple[int, str, str]] = []  # (run index, key, "full", "last" or "hist")
    for i, (run, d, lv) in enumerate(zip(runs, out, live_runs)):
        full = [k for k in dict.fromkeys(full_keys) if d.lengths.get(k)]
        lasts = sorted(k for k, n in d.lengths.items() if n) if lv else list(last_keys)
        lasts = [k for k in dict.fromkeys(lasts) if d.lengths.get(k) and k not in full]
        for k in full:
            n = d.lengths[k]
            wants.append(Want(run.storage, SCALARS_TABLE, k, n, 0, n, "F"))
            owners.append((i, k, "full"))
        for k in lasts:
            n = d.lengths[k]
            wants.append(Want(run.storage, SCALARS_TABLE, k, n, n - 1, n))
            owners.append((i, k, "last"))
        for k, n in sorted(hist_lengths[i].items()):
            if n:
                wants.append(Want(run.storage, HISTOGRAMS_TABLE, k, n, n - 1, n))
                owners.append((i, k, "hist"))
    per_run: dict[int, int] = {}
    for i, _, what in owners:
        if what != "hist":
            per_run[i] = per_run.get(i, 0) + 1
    root = {i: use_consolidated(commits[i], c) for i, c in per_run.items()}
    resolve_metadata(wants, [what != "hist" and root[i] for i, _, what in owners])
    for (i, k, what), w, rows in zip(owners, wants, read_rows(wants)):
        d = out[i]
        if what == "full":
            d.full[k] = (columns_of(w.meta), rows)
            if live_runs[i] or k in last_keys:
                d.last[k] = last_row(w, rows)
        elif what == "last":
            d.last[k] = last_row(w, rows)
        else:
            d.hist_last[k] = last_row(w, rows)
    return out


def _commit_or_damaged(doc: Any, backend: StorageBackend, table: str, d: RunData) -> dict[str, Any]:
    """``doc`` (a commit record as read, None when absent or not read) checked; a damaged one
    is noted in ``d.damaged`` and read as ``{}``."""
    if not isinstance(doc, DamagedRecord):
        try:
            return check_commit(doc, backend, table)
        except DamagedRecord as e:
            doc = e
    d.damaged.append(str(doc))
    return {}


def is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def param_key(value: Any) -> Any:
    """A hashable key under which equal param values meet: every NaN is one value, and a bool
    stays apart from the int it equals (``True`` is not ``1``); ints and floats that are equal
    meet (``1`` and ``1.0``), inside lists, dicts and arrays too (``[1, 2]`` and ``[1.0, 2.0]``,
    as ``runs(params=...)`` selects them). Arrays meet by shape and every element, never by
    their printed text (NumPy cuts a long one's with ``...``)."""
    if value is None:
        return None
    if is_bool(value):
        return ("bool", bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = value.item() if isinstance(value, np.generic) else value
        return ("number", "nan") if v != v else ("number", v)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biufc":
            return ("array", value.shape, param_key(value.ravel().tolist()))
        return ("array", value.shape, str(value.dtype), param_key(value.ravel().tolist()))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(param_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((str(k), param_key(v)) for k, v in value.items()),
                                     key=lambda kv: kv[0])))
    try:
        hash(value)
    except TypeError:
        return ("json", json.dumps(value, sort_keys=True, default=repr))
    return (type(value).__name__, value)
