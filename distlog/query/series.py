"""A run's metric series as stored: committed rows only, as NumPy columns or pandas frames.

Rank 0's table (``scalars``) holds the reduced series and rank 0's own ``log()`` values; a
rank ``r > 0`` that logged values itself has its own table under ``ranks/rank-RRRRR/``. Every
read takes the table's commit record first and reads only rows ``[0, lengths[key])``, so a run
being written is read safely (see ``distlog.writers.rowstore``). Reading several keys takes
the commit record once and then every key's metadata and chunks concurrently
(``distlog.query.batch``): a few round trips however many keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, TypeVar

import numpy as np

from ..layout import HISTOGRAMS_TABLE, RANKS_DIR, SCALARS_TABLE, rank_dir, table_commit, table_zarr
from ..reduce import SCALAR_COLUMNS
from ..storage.base import StorageBackend
from .batch import (REREADS, Want, check_commit, columns_of, committed_at, last_row, read_commit_record,
                    read_json_objects, read_rows, resolve_metadata, rewritten, torn, use_consolidated)
from .errors import KeyNotFound, RankNotFound, did_you_mean, listing

T = TypeVar("T")

_EXACT = 2.0 ** 53  # float64 holds every integer up to here exactly


def one_or_many(keys: Any) -> list[str] | None:
    """``keys`` as a list: one key given as a str is that key (not its characters); None stays
    None (every key)."""
    if keys is None:
        return None
    return [keys] if isinstance(keys, str) else list(keys)


def exact_ints(a: np.ndarray) -> np.ndarray:
    """``a`` as int64 when every value is an integer float64 holds exactly (steps, counts:
    the usual case), else ``a`` itself: a step of 1.25 or 1e19 is read as it was stored, never
    cut to an integer or wrapped past int64's range."""
    a = np.asarray(a)
    if a.dtype.kind == "f" and np.isfinite(a).all() and (np.abs(a) <= _EXACT).all() and (a == np.trunc(a)).all():
        return a.astype(np.int64)
    return a


def exact_int(v: Any) -> int | float:
    """One step (or count) as ``exact_ints`` reads it: an ``int`` where it is an integer
    float64 holds exactly, else the float as stored (``1.25`` stays ``1.25``); an int stays it."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return int(v)
    return exact_ints(np.array([v], dtype=np.float64))[0].item()


def ints_and_floats(values: Iterable[Any]) -> bool:
    """Whether ``values`` hold both ints and floats: a pandas column of them would make every
    int a float (``3`` → ``3.0``, ``2**53 + 1`` another number); keep such a column ``object``."""
    kinds = {type(v) for v in values}
    return int in kinds and float in kinds


def _untorn(read: Callable[[list[dict[str, Any]]], T],
            rows_of: Callable[[T, str], list[np.ndarray]]) -> T:
    """``read(records)``, again (a fresh commit record) while the rows it returned are ``torn``
    or ``rewritten`` since the commit records it took lengths from (``read`` adds them to
    ``records``); ``rows_of(out, column)``: the rows' steps or times."""
    for _ in range(REREADS):
        records: list[dict[str, Any]] = []
        out = read(records)
        if not torn(rows_of(out, "step")) and not rewritten(rows_of(out, "time"), committed_at(*records)):
            return out
    return read([])

if TYPE_CHECKING:
    import pandas as pd

#: statistics a row holds besides step and time
STATS = SCALAR_COLUMNS[2:]
#: rows a summary reads together (each key's whole series; the next batch once it is summed up)
SUMMARY_BATCH_ROWS = 2_000_000


@dataclass(frozen=True)
class Series:
    """The committed rows of one series: ``data`` is ``(rows, len(columns))`` float64."""

    key: str
    columns: tuple[str, ...]
    data: np.ndarray
    rank: int | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, column: str) -> np.ndarray:
        try:
            return self.data[:, self.columns.index(column)]
        except ValueError:
            raise KeyNotFound(f"series {self.key!r} has no column {column!r}; "
                              f"columns: {listing(self.columns)}") from None

    @property
    def step(self) -> np.ndarray:
        """Steps as int64 (as stored, float64, where one is not an integer: ``exact_ints``)."""
        return exact_ints(self["step"])

    def to_dict(self) -> dict[str, np.ndarray]:
        """``{column: array}``: ``step``, ``count`` and ``nonfinite`` as int64 (unless a value
        is not an integer float64 holds exactly: ``exact_ints``), the others float64 views of
        ``data`` (read column-major, so each is contiguous)."""
        cols = {c: self.data[:, i] for i, c in enumerate(self.columns)}
        for c in ("step", "count", "nonfinite"):
            if c in cols:
                cols[c] = exact_ints(cols[c])
        return cols

    def to_frame(self) -> "pd.DataFrame":
        """A DataFrame of ``to_dict``'s columns: ``step`` (int64, unless a step is not an
        integer), ``time`` (float seconds) and every statistic."""
        import pandas as pd

        return pd.DataFrame(self.to_dict(), copy=False)


@dataclass(frozen=True)
class Histograms:
    """Histograms of one key: ``edges`` is ``(rows, bins + 1)``, ``counts`` ``(rows, bins)``."""

    key: str
    step: np.ndarray
    time: np.ndarray
    edges: np.ndarray
    counts: np.ndarray


class MetricsReader:
    """``run.metrics``: ``keys()``, ``run.metrics["train/loss"]`` (a DataFrame), ``read`` (NumPy),
    per-rank series with ``rank=``, ``summary()``, ``histogram(key)``."""

    def __init__(self, storage: StorageBackend) -> None:
        self._storage = storage

    # ---- where things are ---------------------------------------------------------------
    def ranks(self) -> list[int]:
        """Ranks with series of their own: 0 (the run's table) and every ``ranks/rank-R``."""
        out = [0]
        for name in self._storage.list_dir(RANKS_DIR):
            if name.startswith("rank-") and name[5:].isdigit():
                out.append(int(name[5:]))
        return sorted(set(out))

    def _table_storage(self, rank: int | None) -> StorageBackend:
        if not rank:
            return self._storage
        if rank not in self.ranks():
            raise RankNotFound(f"rank {rank} logged no series of its own; ranks with series: "
                               f"{listing(self.ranks())} (rank 0's table also holds the "
                               "reduced series)")
        return self._storage.child(rank_dir(rank))

    def _commit(self, rank: int | None, table: str = SCALARS_TABLE,
                records: list[dict[str, Any]] | None = None) -> tuple[StorageBackend, dict[str, Any]]:
        """The table's storage and commit record (added to ``records``: rows are read by it)."""
        st = self._table_storage(rank)
        commit = read_commit_record(st, table)  # a torn record: DamagedRecord naming it
        if records is not None:
            records.append(commit)
        return st, commit

    def _lengths(self, rank: int | None, table: str = SCALARS_TABLE,
                 records: list[dict[str, Any]] | None = None) -> tuple[StorageBackend, dict[str, int]]:
        st, commit = self._commit(rank, table, records)
        return st, dict(commit.get("lengths", {}))

    def keys(self, rank: int | None = None) -> list[str]:
        """Keys with committed rows (rank 0's table, or rank ``rank``'s own)."""
        return sorted(k for k, n in self._lengths(rank)[1].items() if n)

    def histogram_keys(self, rank: int | None = None) -> list[str]:
        return sorted(self.histogram_lengths(rank))

    def histogram_lengths(self, rank: int | None = None) -> dict[str, int]:
        """Committed histograms (rows: steps) per key that has any (``log_histogram``)."""
        return {k: n for k, n in sorted(self._lengths(rank, HISTOGRAMS_TABLE)[1].items()) if n}

    def lengths(self, rank: int | None = None, *, missing_ok: bool = False) -> dict[str, int]:
        """Committed rows per key (0 for a series rewound to no rows). ``missing_ok``: ``{}``
        for a rank that logged no series of its own, instead of ``RankNotFound`` (a query
        over many runs skips such a run)."""
        try:
            return self._lengths(rank)[1]
        except RankNotFound:
            if missing_ok:
                return {}
            raise

    def commit_record(self, rank: int | None = None) -> dict[str, Any]:
        """The scalars table's commit record as stored (``lengths``, ``time``, ``final``; ``{}``
        before the first commit): its ``time`` changes with every commit."""
        return self._commit(rank)[1]

    def __contains__(self, key: str) -> bool:
        return key in self.keys()

    def __iter__(self):
        return iter(self.keys())

    # ---- reading ------------------------------------------------------------------------
    def _missing(self, key: str, known: Iterable[str], rank: int | None, table: str) -> KeyNotFound:
        known = sorted(known)
        hint = did_you_mean(key, known)
        where = f"rank {rank}'s {table}" if rank else table
        other = HISTOGRAMS_TABLE if table == SCALARS_TABLE else SCALARS_TABLE
        try:  # (the error path only: one more read) the key logged the other way
            elsewhere = bool(self._lengths(rank, other)[1].get(key))
        except Exception:  # noqa: BLE001 - only a hint
            elsewhere = False
        if elsewhere:
            args = f"{key!r}, rank={rank}" if rank else repr(key)
            flag = f" --rank {rank}" if rank else ""
            hint = (f"; {key!r} is a histogram (log_histogram): read it with run.metrics.histogram({args}) "
                    f"(CLI: distlog histogram RUN KEY{flag})" if other == HISTOGRAMS_TABLE else
                    f"; {key!r} is a metric series: read it with run.metrics.read({args}) "
                    f"(CLI: distlog metrics RUN KEY{flag})")
        what = "metric" if table == SCALARS_TABLE else "histogram"
        return KeyNotFound(f"no {what} {key!r} in {where} of {self._storage.url}{hint} "
                           f"(keys: {listing(known)})")

    def _open(self, st: StorageBackend, table: str, key: str) -> Any:
        import zarr

        return zarr.open_array(store=st.zarr_store(table_zarr(table), read_only=True), path=key,
                               mode="r", zarr_format=3)

    def read(self, key: str, rank: int | None = None, *, start: int = 0, stop: int | None = None) -> Series:
        """Committed rows ``[start, stop)`` of ``key`` as NumPy (no pandas needed)."""
        if not isinstance(key, str):  # (a list of keys: frame(["acc", "loss"]))
            raise TypeError(f"one metric key, a str, is read here; got {type(key).__name__} {key!r:.60}: "
                            "read_many(keys) reads several at once")
        return _untorn(lambda records: self._read(key, rank, start, stop, records), lambda s, c: [s[c]])

    def _read(self, key: str, rank: int | None, start: int, stop: int | None,
              records: list[dict[str, Any]]) -> Series:
        st, lengths = self._lengths(rank, SCALARS_TABLE, records)
        n = lengths.get(key)
        if not n:
            raise self._missing(key, [k for k, v in lengths.items() if v], rank, SCALARS_TABLE)
        lo, hi, _ = slice(start, stop).indices(n)
        return self._series([Want(st, SCALARS_TABLE, key, n, lo, hi, "F")], rank)[0]

    def _read_in_batches(self, keys: Sequence[str] | None, rank: int | None) -> Iterator[tuple[str, Series]]:
        """``read_many``'s series one batch of keys at a time (up to ``SUMMARY_BATCH_ROWS`` rows
        together; each batch from a commit record of its own, the first one's also naming the
        keys): a summary of a wide run (2,000 keys × 20,000 rows) held every row at once, 4 GB,
        to keep a few numbers of each."""
        rest = None if keys is None else one_or_many(keys)
        while True:
            got, rest = _untorn(lambda records, want=rest: self._read_batch(want, rank, records, SUMMARY_BATCH_ROWS),
                                lambda d, c: [s[c] for s in d[0].values()])
            yield from got.items()
            if not rest:
                return

    def read_many(self, keys: Sequence[str] | None = None, rank: int | None = None) -> dict[str, Series]:
        """Every committed row of each of ``keys`` (all keys by default), read together: one
        commit record, then every key's metadata and chunks concurrently."""
        keys = one_or_many(keys)
        return _untorn(lambda records: self._read_many(keys, rank, records), lambda d, c: [s[c] for s in d.values()])

    def _read_many(self, keys: Sequence[str] | None, rank: int | None,
                   records: list[dict[str, Any]]) -> dict[str, Series]:
        return self._read_batch(keys, rank, records)[0]

    def _read_batch(self, keys: Sequence[str] | None, rank: int | None, records: list[dict[str, Any]],
                    budget: int | None = None) -> tuple[dict[str, Series], list[str]]:
        """The series of ``keys`` (all by default), and the keys left: those past the first
        ``budget`` rows (the first key always read)."""
        st, commit = self._commit(rank, SCALARS_TABLE, records)
        lengths = dict(commit.get("lengths", {}))
        keys = sorted(k for k, n in lengths.items() if n) if keys is None else list(keys)
        for key in keys:
            if not lengths.get(key):
                raise self._missing(key, [k for k, v in lengths.items() if v], rank, SCALARS_TABLE)
        n = len(keys)
        if budget is not None:
            held = np.cumsum([lengths[k] for k in keys])
            n = max(1, int(np.searchsorted(held, budget, side="right")))
        keys, rest = keys[:n], keys[n:]
        wants = [Want(st, SCALARS_TABLE, k, lengths[k], 0, lengths[k], "F") for k in keys]
        return dict(zip(keys, self._series(wants, rank, use_consolidated(commit, len(keys))))), rest

    def _series(self, wants: list[Want], rank: int | None, root: bool = False) -> list[Series]:
        """Column-major rows of every want (``root``: metadata from the consolidated copy)."""
        resolve_metadata(wants, [root] * len(wants))
        reading = [w for w in wants if w.hi > w.lo]
        rows = dict(zip(map(id, reading), read_rows(reading)))
        out = []
        for w in wants:
            assert w.meta is not None
            # column-major, as stored (transpose codec): decoding is a copy per chunk
            data = rows[id(w)] if w.hi > w.lo else np.zeros((0, w.meta["shape"][1]), order="F")
            out.append(Series(w.key, columns_of(w.meta), data, rank))
        return out

    def frame(self, key: str, rank: int | None = None) -> "pd.DataFrame":
        """``key`` as a DataFrame: step, time and every stored statistic."""
        return self.read(key, rank).to_frame()

    __getitem__ = frame

    def numpy(self, key: str, rank: int | None = None) -> dict[str, np.ndarray]:
        """``{column: array}`` of ``key``."""
        return self.read(key, rank).to_dict()

    def last(self, keys: Sequence[str] | None = None, rank: int | None = None) -> dict[str, dict[str, float]]:
        """The last committed row of each key (reads one chunk per key, all at once)."""
        keys = one_or_many(keys)
        return _untorn(lambda records: self._last(keys, rank, records),
                       lambda d, c: [np.array([r[c] for r in d.values()])])

    def _last(self, keys: Sequence[str] | None, rank: int | None,
              records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        st, commit = self._commit(rank, SCALARS_TABLE, records)
        lengths = dict(commit.get("lengths", {}))
        keys = sorted(k for k, n in lengths.items() if n) if keys is None else list(keys)
        wants = [Want(st, SCALARS_TABLE, k, lengths[k], lengths[k] - 1, lengths[k])
                 for k in keys if lengths.get(k)]
        resolve_metadata(wants, [use_consolidated(commit, len(wants))] * len(wants))
        return {w.key: last_row(w, rows) for w, rows in zip(wants, read_rows(wants))}

    def last_step(self, rank: int | None = None) -> float | None:
        """The largest committed step of any series or histogram (rank 0's tables, or rank
        ``rank``'s own), None before the first commit: both commit records at once, then the
        last chunk of every key."""
        rows = _untorn(lambda records: self._last_steps(rank, records),
                       lambda rows, c: [np.array([r[c] for r in rows], dtype=float)])
        return max(r["step"] for r in rows) if rows else None

    def _last_steps(self, rank: int | None, records: list[dict[str, Any]]) -> list[dict[str, float]]:
        st = self._table_storage(rank)
        tables = (SCALARS_TABLE, HISTOGRAMS_TABLE)
        docs = read_json_objects([(st, table_commit(t)) for t in tables])  # torn: DamagedRecord
        wants: list[Want] = []
        roots: list[bool] = []
        for table, doc in zip(tables, docs):
            commit = check_commit(doc, st, table)
            records.append(commit)
            lengths = dict(commit.get("lengths", {}))
            ws = [Want(st, table, k, n, n - 1, n) for k, n in sorted(lengths.items()) if n]
            wants += ws
            roots += [table == SCALARS_TABLE and use_consolidated(commit, len(ws))] * len(ws)
        resolve_metadata(wants, roots)
        return [last_row(w, rows) for w, rows in zip(wants, read_rows(wants))]

    def summary(self, keys: Sequence[str] | None = None, rank: int | None = None,
                stat: str = "value") -> "pd.DataFrame":
        """One row per key: rows, first and last step, the last ``stat``, and ``min``/``max``.

        For ``stat`` ``value`` or ``mean`` of reduced rows, ``min`` and ``max`` are those of the
        raw values (the lowest ``min`` column, the highest ``max`` column), ``mean`` is
        Σsum/Σcount and ``count`` the number of finite values; for another ``stat`` they are
        the min, max and mean of that column and ``count`` the rows that have it. ``nonfinite``:
        the NaN and ±inf values left out (of every rank, for reduced rows).
        """
        import pandas as pd

        rows = []
        for key, s in self._read_in_batches(keys, rank):
            v = s[stat]
            raw = stat in ("value", "mean") and all(c in s.columns for c in ("min", "max", "sum", "count"))
            lo, hi = (s["min"], s["max"]) if raw else (v, v)
            lo, hi = lo[np.isfinite(lo)], hi[np.isfinite(hi)]
            if raw:
                n = float(np.nansum(s["count"]))
                mean = float(np.nansum(s["sum"]) / n) if n else np.nan
            else:
                finite = v[np.isfinite(v)]
                n, mean = float(len(finite)), float(finite.mean()) if len(finite) else np.nan
            # values that were NaN or ±inf (left out of the statistics): a reduced row counts
            # them over every rank, a logged row is one
            bad = np.nansum(s["nonfinite"]) if raw and "nonfinite" in s.columns else np.count_nonzero(~np.isfinite(v))
            rows.append({
                "key": key, "rows": len(s), "first_step": exact_int(s["step"][0]),
                "last_step": exact_int(s["step"][-1]),
                "last": float(v[-1]), "min": float(lo.min()) if len(lo) else np.nan,
                "max": float(hi.max()) if len(hi) else np.nan, "mean": mean, "count": int(n),
                "nonfinite": int(bad),
            })
        df = pd.DataFrame(rows, columns=["key", "rows", "first_step", "last_step", "last", "min", "max",
                                         "mean", "count", "nonfinite"])
        for c in ("first_step", "last_step"):  # a key's integer steps beside another's 0.5
            if ints_and_floats(r[c] for r in rows):
                df[c] = pd.Series([r[c] for r in rows], dtype=object, index=df.index)
        return df

    def to_frame(self, keys: Sequence[str] | None = None, rank: int | None = None) -> "pd.DataFrame":
        """Every series in one long DataFrame with a ``key`` column (the export format)."""
        import pandas as pd

        frames = []
        for key, s in self.read_many(keys, rank).items():
            df = s.to_frame()
            df.insert(0, "key", key)
            frames.append(df)
        if not frames:
            return pd.DataFrame(columns=["key", *SCALAR_COLUMNS])
        return pd.concat(frames, ignore_index=True)

    def histogram(self, key: str, rank: int | None = None) -> Histograms:
        """The histograms logged under ``key`` (``log_histogram``)."""
        return _untorn(lambda records: self._histogram(key, rank, records),
                       lambda h, c: [np.asarray(getattr(h, c), dtype=float)])

    def _histogram(self, key: str, rank: int | None, records: list[dict[str, Any]]) -> Histograms:
        st, lengths = self._lengths(rank, HISTOGRAMS_TABLE, records)
        n = lengths.get(key)
        if not n:
            raise self._missing(key, [k for k, v in lengths.items() if v], rank, HISTOGRAMS_TABLE)
        data = np.asarray(self._open(st, HISTOGRAMS_TABLE, key)[:n])
        bins = (data.shape[1] - 3) // 2
        return Histograms(key, exact_ints(data[:, 0]), data[:, 1], data[:, 2 : 3 + bins],
                          data[:, 3 + bins :])
