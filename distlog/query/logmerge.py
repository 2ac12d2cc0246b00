"""Every rank's text log (and every restart attempt), merged by time and filtered.

Each per-rank file is already in time order, so the merge is one stable sort keyed by
``(timestamp, rank, attempt)``; filters run on raw lines first (``LogFilter``) and records are
only built for what is returned. When rank 0 wrote the Zarr logs table at close and the text
files are unchanged since, the table answers instead (vectorised filters; last-N rows without
reading everything). The text files stay the source of truth: a run that is still going, was
resumed, or died before closing is read from them.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from ..logline import LEVELS, LogRecord, complete_text, merge_lines, parse_line, unescape
from ..storage.aio import run_all
from ..storage.base import StorageBackend
from ..writers.logtable import (
    LOGS_DIR, LogColumns, LogTable, complete_lines, log_sources, logs_table_and_sources,
    parse_columns,
)
from .errors import RankNotFound, listing
from .logfilter import LogFilter

if TYPE_CHECKING:
    import pandas as pd


class MergedLogs(Sequence[LogRecord]):
    """Records in global time order; built lazily from raw lines or from table columns."""

    def __init__(self, lines: list[str] | None = None, columns: LogColumns | None = None,
                 source: str = "text") -> None:
        self._lines = lines
        self._cols = columns
        self.source = source  # "text" or "table": where the answer came from

    def __len__(self) -> int:
        return len(self._lines) if self._lines is not None else len(self._cols)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if self._lines is not None:
            return parse_line(self._lines[i])
        return self._cols.record(range(len(self._cols))[i])

    def __iter__(self) -> Iterator[LogRecord]:
        for i in range(len(self)):
            yield self[i]

    @property
    def lines(self) -> list[str]:
        """The records as text-log lines (the stored format)."""
        if self._lines is not None:
            return self._lines
        from ..logline import format_line

        return [format_line(r).rstrip("\n") for r in self]

    def columns(self) -> LogColumns:
        if self._cols is None:
            self._cols = parse_columns("".join(line + "\n" for line in self._lines))
        return self._cols

    def to_frame(self) -> "pd.DataFrame":
        """time (UTC datetimes), host, rank, attempt, node, local_rank, step, level, message."""
        import pandas as pd

        c = self.columns()
        hosts = np.array(c.hosts or [""], dtype=object)
        names = {no: name for name, no in LEVELS.items()}
        return pd.DataFrame({
            "time": pd.to_datetime(c.time, unit="s", utc=True), "host": hosts[c.host] if len(c) else [],
            "rank": c.rank, "attempt": c.attempt, "node": c.node, "local_rank": c.local_rank,
            "step": _step_series(pd, c.step),
            "level": [names.get(int(v), f"LEVEL{v}") for v in c.level],
            "message": list(map(unescape, c.messages)),
        })


def _step_series(pd: Any, step: np.ndarray) -> "pd.Series":
    """Steps as a nullable Int64 column when every step is an integer, else as float64 (a
    fractional step such as 2.5 is kept, not cut)."""
    s = pd.Series(step, dtype="float64")
    known = step[~np.isnan(step)]
    if np.all(known == np.floor(known)) and (len(known) == 0 or np.abs(known).max() < 2.0**63):
        return s.astype("Int64")
    return s


def _progress(items: list, enabled: bool, what: str) -> Iterable:
    if not enabled or len(items) < 2:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # the cli extra is not installed: no bar
        return items
    return tqdm(items, desc=what, unit="file", leave=False, file=sys.stderr)


class LogReader:
    """``run.logs``: ``query(rank=, level=, grep=, since=, until=, steps=, attempt=, tail=)``,
    ``follow(...)``, and iteration over every record in time order."""

    def __init__(self, storage: StorageBackend, is_running: Any = None) -> None:
        self._storage = storage
        self._is_running = is_running or (lambda: False)

    def sources(self) -> list[tuple[str, int, int]]:
        """``(file name, rank, attempt)`` of every per-rank text log."""
        return log_sources(self._storage)

    def ranks(self) -> list[int]:
        return sorted({r for _, r, _ in self.sources()})

    def attempts(self) -> list[int]:
        return sorted({a for _, _, a in self.sources()})

    def _selected(self, flt: LogFilter, sources: list[tuple[str, int, int]] | None = None,
                  ) -> list[tuple[str, int, int]]:
        sources = self.sources() if sources is None else sources
        if flt.ranks is not None:
            missing = sorted(flt.ranks - {r for _, r, _ in sources})
            if missing:
                raise RankNotFound(f"no log of rank {listing(missing)} in {self._storage.url}; "
                                   f"ranks with logs: {listing(sorted({r for _, r, _ in sources}))}")
        if flt.attempts is not None:
            missing = sorted(flt.attempts - {a for _, _, a in sources})
            if missing:
                raise RankNotFound(f"no log of attempt {listing(missing)} in {self._storage.url}; "
                                   f"attempts: {listing(sorted({a for _, _, a in sources}))}")
        return [s for s in sources if flt.source_ok(s[1], s[2])]

    def query(self, *, rank: Any = None, level: Any = None, grep: Any = None, since: Any = None,
              until: Any = None, steps: Any = None, attempt: Any = None, host: Any = None,
              tail: int | None = None, ignore_case: bool = False, source: str = "auto",
              progress: bool = False, time_limit: float | None = None) -> MergedLogs:
        """Merged records that pass every filter (the last ``tail`` of them if given).

        ``source``: ``"auto"`` (the logs table when it is current, else the text), ``"text"``
        or ``"table"`` (``FileNotFoundError`` if there is no current table).
        ``time_limit``: seconds ``grep`` may take (``LogFilter.make``).
        """
        flt = LogFilter.make(rank=rank, level=level, grep=grep, since=since, until=until,
                             steps=steps, attempt=attempt, host=host, ignore_case=ignore_case,
                             time_limit=time_limit)
        return self.select(flt, tail=tail, source=source, progress=progress)

    __call__ = query

    def select(self, flt: LogFilter, tail: int | None = None, source: str = "auto",
               progress: bool = False) -> MergedLogs:
        if source not in ("auto", "text", "table"):
            raise ValueError(f"source must be 'auto', 'text' or 'table', got {source!r}")
        if source == "text":
            chosen = self._selected(flt)
        else:  # the listing, the table's commit record and the signatures: together
            sources, table = logs_table_and_sources(self._storage)
            chosen = self._selected(flt, sources)
            if table is not None:
                try:
                    return _from_table(table, flt, tail)
                except (OSError, KeyError):
                    # a newer generation replaced this one while we read (a resumed run
                    # closing again; its chunks then read as fill values, which the table
                    # refuses): the text is always there, listed again since that attempt
                    # may have added a log
                    if source == "table":
                        raise
                    chosen = self._selected(flt)
            if source == "table":
                raise FileNotFoundError(f"{self._storage.url} has no current logs table; "
                                        "read the text logs (source='text')")
        if tail is not None:
            from .logtail import tail_lines

            return MergedLogs(tail_lines(self._storage, chosen, flt, tail))
        def read(name: str) -> str | None:
            try:
                return complete_text(self._storage.read_bytes(f"{LOGS_DIR}/{name}"))
            except FileNotFoundError:  # removed meanwhile
                return None

        texts = run_all([lambda n=n: read(n) for n, _, _ in chosen])  # every rank's at once
        per_source = []
        for (_, r, a), text in zip(_progress(chosen, progress, "reading logs"), texts):
            if text is not None:
                per_source.append((r, a, flt.lines(complete_lines(text))))
        return MergedLogs(merge_lines(per_source))

    def __iter__(self) -> Iterator[LogRecord]:
        return iter(self.query())

    def __len__(self) -> int:
        return len(self.query())

    def follow(self, *, tail: int = 10, poll: float = 0.5, lag: float | None = None,
               timeout: float | None = None, **filters: Any) -> Iterator[LogRecord]:
        """Records as they are written, from every rank, in time order (see ``logtail.follow``).

        Ends when the run is no longer running and everything written was returned, or after
        ``timeout`` seconds.
        """
        from .logtail import follow_lines

        flt = LogFilter.make(**filters)
        if not self._is_running():  # (a running run's rank may not have written its log yet)
            self._selected(flt)  # unknown ranks are an error here too
        for line in follow_lines(self._storage, flt, self._is_running, tail=tail, poll=poll,
                                 lag=lag, timeout=timeout):
            yield parse_line(line)

    def to_frame(self, **filters: Any) -> "pd.DataFrame":
        return self.query(**filters).to_frame()


def _from_table(table: LogTable, flt: LogFilter, tail: int | None) -> MergedLogs:
    """Answer a query from the Zarr logs table: numeric filters vectorised, regex on messages."""
    n = table.rows
    if tail is not None and flt.ranks is None and flt.attempts is None and flt.hosts is None \
            and flt.level == 0 and flt.since is None and flt.until is None and not flt.needs_fields:
        idx = np.arange(max(0, n - tail), n)  # read only the last rows
        return MergedLogs(columns=table.columns(idx), source="table")
    mask = np.ones(n, dtype=bool)
    if flt.ranks is not None:
        mask &= np.isin(table.column("rank"), list(flt.ranks))
    if flt.attempts is not None:
        mask &= np.isin(table.column("attempt"), list(flt.attempts))
    if flt.level > 0:
        mask &= table.column("level") >= flt.level
    if flt.since is not None or flt.until is not None:
        t = table.column("time")
        if flt.since is not None:
            mask &= t >= flt.since - 5e-7  # the text holds microseconds
        if flt.until is not None:
            mask &= t <= flt.until + 5e-7
    if flt.step_min is not None or flt.step_max is not None:
        s = table.column("step")
        mask &= ~np.isnan(s)
        if flt.step_min is not None:
            mask &= s >= flt.step_min
        if flt.step_max is not None:
            mask &= s <= flt.step_max
    if flt.hosts is not None:
        wanted = [i for i, h in enumerate(table.hosts) if h in flt.hosts]
        mask &= np.isin(table.column("host"), wanted)
    idx = np.flatnonzero(mask)
    if flt.pattern is not None:
        idx = _grep_rows(table, idx, flt, tail)
    if tail is not None:
        idx = idx[max(0, len(idx) - tail):]
    return MergedLogs(columns=table.columns(idx), source="table")


def _grep_rows(table: LogTable, idx: np.ndarray, flt: LogFilter, tail: int | None) -> np.ndarray:
    search = flt.search
    if tail is None:
        msgs = map(unescape, table.texts("message", idx))
        return idx[np.fromiter(map(search, msgs), bool, len(idx))]
    found: list[np.ndarray] = []
    hi, batch, total = len(idx), max(4 * tail, 4096), 0
    while hi > 0 and total < tail:  # from the end, in growing batches
        lo = max(0, hi - batch)
        part = idx[lo:hi]
        msgs = map(unescape, table.texts("message", part))
        keep = part[np.fromiter(map(search, msgs), bool, len(part))]
        found.insert(0, keep)
        total += len(keep)
        hi, batch = lo, batch * 4
    return np.concatenate(found) if found else idx[:0]
