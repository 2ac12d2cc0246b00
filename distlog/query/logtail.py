"""The last lines of a run's logs without reading them whole, and following a running job.

Tail: every per-rank file is in time order, so the merged last N records are among the last N
(matching) lines of each file. Each file is read backwards — blocks of a plain file through a
seekable reader (ranged GETs on an object store), or segment after segment from the newest —
until it has given N matching lines.

Follow: each file is read from where the last poll stopped (a byte offset, or a segment
count). New lines wait in a buffer and are released in time order once they are older than
``lag`` seconds, so a rank whose lines arrive a little later still lands in order. Local
files are visible as soon as they are written (lag 1 s); object stores publish a rank's lines
when it closes a segment (every 30 s by default), hence a lag of 35 s there.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator

from ..logline import format_time, merge_lines, parse_line, sort_key, time_of_key
from ..storage.base import SEGMENT_SUFFIX, StorageBackend
from ..writers.logtable import LOGS_DIR, log_sources
from .logfilter import LogFilter

BLOCK = 1 << 20
LOCAL_LAG = 1.0
SEGMENT_LAG = 35.0
#: once the run is no longer running, how long (s) follow still waits for a rank of its newest
#: attempt whose log has not said "run ended" and has stopped growing (a killed rank never will)
SETTLE = 10.0
MIN_QUIET_STEP = 0.05  # (a poll of 0 s still settles, after SETTLE / 0.05 reads)
#: the line every rank writes last when its run closes (``Run._close``)
ENDED = "run ended: "


def _ends(line: str) -> bool:
    """Whether ``line`` is a rank's last record, "run ended: <status>"."""
    if ENDED not in line:
        return False
    try:
        return parse_line(line).message.startswith(ENDED)
    except ValueError:
        return False


class _Source:
    """Read position in one per-rank log: a byte offset (plain file) or a segment count."""

    def __init__(self, storage: StorageBackend, name: str, rank: int, attempt: int) -> None:
        self.storage, self.name, self.rank, self.attempt = storage, name, rank, attempt
        self.path = f"{LOGS_DIR}/{name}"
        self.offset = 0
        self.started = False  # at_end ran: ``offset`` is where following starts
        self.segments = 0
        self.carry = b""
        self.ended = False  # its "run ended" line was read (follow: this rank closed)
        self.quiet = 0.0  # follow: seconds without a new line since the run stopped running

    def _segment_names(self) -> list[str]:
        return self.storage.segment_names(self.path)

    def at_end(self) -> None:
        """Start reading at the current end: past the last complete line (a line still being
        written is read whole once it ends)."""
        self.started = True
        names = self._segment_names()
        if names:
            self.segments = len(names)
            return
        try:
            with self.storage.open_read(self.path) as f:
                pos = f.seek(0, 2)
                while pos > 0:
                    size = min(BLOCK, pos)
                    f.seek(pos - size)
                    cut = f.read(size).rfind(b"\n")
                    if cut >= 0:
                        self.offset = pos - size + cut + 1
                        return
                    pos -= size
        except FileNotFoundError:
            pass
        self.offset = 0

    def blocks_backwards(self) -> Iterator[bytes]:
        """The file's bytes up to the current position, newest first."""
        names = self._segment_names()
        if names:
            for n in reversed(names[: self.segments] if self.segments else names):
                yield self.storage.read_bytes(f"{self.path}{SEGMENT_SUFFIX}/{n}")
            return
        try:
            f = self.storage.open_read(self.path)
        except FileNotFoundError:
            return
        with f:
            pos = self.offset if self.started else f.seek(0, 2)
            while pos > 0:
                size = min(BLOCK, pos)
                pos -= size
                f.seek(pos)
                yield f.read(size)

    def read_new(self) -> list[str]:
        """Complete lines written since the last call (a partial last line waits)."""
        data = self.carry
        names = self._segment_names()
        if names:
            for n in names[self.segments:]:
                data += self.storage.read_bytes(f"{self.path}{SEGMENT_SUFFIX}/{n}")
            self.segments = len(names)
        else:
            try:
                with self.storage.open_read(self.path) as f:
                    f.seek(self.offset)
                    new = f.read()
            except FileNotFoundError:
                new = b""
            self.offset += len(new)
            data += new
        cut = data.rfind(b"\n") + 1
        self.carry = data[cut:]
        return data[:cut].decode("utf-8", errors="replace").split("\n")[:-1] if cut else []

    def ended_before(self) -> bool:
        """Whether the last complete line before the read position is "run ended" (a rank
        that closed before follow started)."""
        for block in self.blocks_backwards():
            lines = block.decode("utf-8", errors="replace").rstrip("\n").rsplit("\n", 1)
            return _ends(lines[-1])
        return False


def _tail_one(src: _Source, flt: LogFilter, n: int) -> list[str]:
    """The last ``n`` lines of one source that pass ``flt``."""
    kept: list[list[str]] = []
    count = 0
    carry = b""
    torn = True  # bytes after the last newline belong to a line still being written
    for block in src.blocks_backwards():
        data = block + carry
        if torn:
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = b""
                continue
            data, torn = data[: cut + 1], False
        first = data.find(b"\n")
        if first < 0:  # a line longer than a block: keep collecting
            carry = data
            continue
        # data[:first + 1] ends a line that begins in an earlier block: kept for the next round
        carry, body = data[: first + 1], data[first + 1 :]
        lines = flt.lines(body.decode("utf-8", errors="replace").split("\n")[:-1])
        kept.insert(0, lines)
        count += len(lines)
        if count >= n:
            break
    else:
        if carry and not torn:  # the file's first line
            lines = flt.lines([carry.decode("utf-8", errors="replace").rstrip("\n")])
            kept.insert(0, lines)
    out = [line for part in kept for line in part]
    return out[max(0, len(out) - n):]


def tail_lines(storage: StorageBackend, sources: list[tuple[str, int, int]], flt: LogFilter,
               n: int, _states: list[_Source] | None = None) -> list[str]:
    """The merged last ``n`` lines (passing ``flt``) of ``sources``."""
    if n <= 0:
        return []
    states = _states or [_Source(storage, *s) for s in sources]
    merged = merge_lines((s.rank, s.attempt, _tail_one(s, flt, n)) for s in states)
    return merged[max(0, len(merged) - n):]


def follow_lines(storage: StorageBackend, flt: LogFilter, is_running: Callable[[], bool], *,
                 tail: int = 10, poll: float = 0.5, lag: float | None = None,
                 timeout: float | None = None, sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """The last ``tail`` lines, then new lines from every rank in time order while the run runs.

    Once it no longer runs, follow goes on until every rank of the newest attempt has written
    its "run ended" line (rank 0 marks a failed run ended while its peers may still log, or
    write a checkpoint, for seconds), or has written nothing for ``SETTLE`` seconds (a killed
    rank), then returns what is left."""
    if lag is None:
        lag = LOCAL_LAG if storage.supports_append else SEGMENT_LAG
    deadline = None if timeout is None else time.monotonic() + timeout
    states: dict[str, _Source] = {}
    for name, r, a in log_sources(storage):
        if flt.source_ok(r, a):
            states[name] = s = _Source(storage, name, r, a)
            s.at_end()
    yield from tail_lines(storage, [], flt, tail, _states=list(states.values()))
    pending: list[tuple[str, str]] = []  # (sort key, line)
    finishing = seen_running = False
    while True:
        for name, r, a in log_sources(storage):  # a restart or a late rank adds files
            if name not in states and flt.source_ok(r, a):
                states[name] = _Source(storage, name, r, a)
        for s in states.values():
            new = s.read_new()
            if new:
                s.quiet = 0.0
                s.ended = s.ended or any(_ends(line) for line in new)
            elif finishing:
                s.quiet += max(poll, MIN_QUIET_STEP)
            pending.extend((sort_key(line, s.rank, s.attempt), line) for line in flt.lines(new))
        # by key only, stably: lines of one rank with the same time keep their written order
        pending.sort(key=lambda p: p[0])
        if (finishing and _settled(states.values())) or (deadline is not None and time.monotonic() >= deadline):
            yield from (line for _, line in pending)
            return
        mark = format_time(time.time() - lag)
        cut = 0
        while cut < len(pending) and time_of_key(pending[cut][0]) <= mark:
            cut += 1
        yield from (line for _, line in pending[:cut])
        del pending[:cut]
        if not finishing:
            if is_running():
                seen_running = True
            else:  # more reads: ranks may write their last lines after rank 0
                finishing = True
                for s in states.values():  # (a run over before follow began: one more read)
                    s.ended = s.ended or not seen_running or s.ended_before()
        sleep(poll)


def _settled(sources: Iterable[_Source]) -> bool:
    """Whether every rank of the newest attempt said its run ended, or stopped writing
    ``SETTLE`` seconds ago."""
    sources = list(sources)
    newest = max((s.attempt for s in sources), default=0)
    return all(s.ended or s.quiet >= SETTLE for s in sources if s.attempt == newest)
