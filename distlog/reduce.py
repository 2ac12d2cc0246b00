"""Pure reduction maths for a flush: no process group, no I/O, testable with NumPy alone.

Per key a rank holds ``(sum, count, min, max, nonfinite)`` over its finite values since the
last flush (``LocalStats``). A flush reduces them across ranks over the *agreed union* of
keys (sorted; never dict or set order) with two element-wise collectives:

* SUM bucket: ``[header..., sum_0..sum_K, count_0..count_K, nonfinite_0..nonfinite_K, extra...]``
* MAX bucket: ``[identity..., max_0..max_K, -min_0..-min_K]``

``extra`` is per-rank telemetry (``distlog.telemetry``): ``world_size x F`` slots of which each
rank fills only its own row, so their sum is a gather of every rank's row.

The header counts, over ranks, those with keys outside the union, with bad input, with a
failed writer, and asking to stop; so every rank learns all of it from the same collective.
The MAX bucket starts with the flush's identity on each rank (``FlushIdentity``: sequence
number, whether it is the closing flush and with which aggregation, the step passed to
``flush(step=)``), each as its
value and its negation, so the maxima give both ends of the range over ranks: the ranks agree
on which flush they are in exactly when every range is a single point.
Keys new to the union travel once in one ``all_gather_object`` of each rank's
``LocalStats`` for them, reduced here by ``reduce_gathered``.

The rank that held each key's minimum and maximum (``argmin_rank``, ``argmax_rank``; the
lowest such rank on ties, NaN when no rank had a finite value) comes from the MAX bucket's
gathered rows, or on the all_reduce transport from one more ``MAX`` of ``-rank`` where a
rank's value equals the reduced one (see ``Comm.reduce_buckets_ranked``).

A rank without a key contributes the identities (0, 0, +inf, -inf, 0); the mean is
``Σsum / Σcount`` — never a mean of per-rank means. Values are float64 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

AGGREGATIONS = ("mean", "min", "max", "sum")
AGGREGATION_CODE = {a: i for i, a in enumerate(AGGREGATIONS)}
#: columns of a stored row, in order (``value`` is the headline picked by ``_aggregation``)
STAT_COLUMNS = ("value", "mean", "min", "max", "sum", "count", "nonfinite", "argmin_rank", "argmax_rank")
#: columns of every row of a scalars table on the store (docs/FORMAT.md)
SCALAR_COLUMNS = ("step", "time") + STAT_COLUMNS

# header slots at the front of the SUM bucket (each a count of ranks)
# (H_LOGGED: rank 0 log()s keys the ranks also collect: the flush checks their logged steps)
H_NEW_KEYS, H_ERROR, H_WRITER, H_STOP, H_LOGGED, HEADER_LEN = 0, 1, 2, 3, 4, 5
NO_STEP = -np.inf  # (any finite step is a real one, negative ones too)
# identity slots at the front of the MAX bucket: the step (max over ranks), then each agreed
# field and its negation (max of -x is -min x)
M_STEP, M_SEQ, M_NSEQ, M_CLOSE, M_NCLOSE, M_XSTEP, M_NXSTEP, M_NSTEP, MAX_HEADER_LEN = range(9)


@dataclass(frozen=True)
class FlushIdentity:
    """Which flush a rank is in: every rank must be in the same one.

    ``seq`` counts this rank's flushes in the run, ``closing`` marks the flush that
    ``close()`` runs, ``explicit_step`` is the step passed to ``flush(step=)`` (None if none);
    ``step`` is the largest collected step (or the explicit one), max-reduced for the row;
    ``aggregation`` indexes ``AGGREGATIONS`` (ranks asking for another headline of one window
    are not in the same flush: it rides in the closing slots, ``closing + 2 * aggregation``).
    """

    seq: int
    closing: bool = False
    step: float | None = None
    explicit_step: float | None = None
    aggregation: int = 0


@dataclass(frozen=True)
class Agreement:
    """What the MAX bucket's identity slots say after the collective."""

    step: float  # the largest step over ranks (NO_STEP when no rank had one)
    seq: tuple[float, float]  # (min, max) over ranks
    closing: tuple[float, float]  # (with the aggregation: ``FlushIdentity``)
    explicit_step: tuple[float, float]  # (inf, -inf) when no rank passed one
    step_range: tuple[float, float] = (np.inf, -np.inf)  # of the ranks that had a step

    @property
    def matched(self) -> bool:
        lo, hi = self.explicit_step
        return self.seq[0] == self.seq[1] and self.closing[0] == self.closing[1] and lo >= hi  # a single step, or none passed


@dataclass(frozen=True)
class LocalStats:
    """One rank's statistics since the last flush, one entry per key."""

    keys: tuple[str, ...]
    sum: np.ndarray
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray
    nonfinite: np.ndarray

    @property
    def present(self) -> np.ndarray:
        """Which keys had any value (finite or not) in this window."""
        return (self.count + self.nonfinite) > 0

    @staticmethod
    def identity(keys: Sequence[str]) -> "LocalStats":
        k = len(keys)
        return LocalStats(tuple(keys), np.zeros(k), np.zeros(k), np.full(k, np.inf),
                          np.full(k, -np.inf), np.zeros(k))

    def subset(self, keys: Sequence[str]) -> "LocalStats":
        """These statistics for ``keys`` in that order (identity where absent)."""
        out = LocalStats.identity(keys)
        pos = {k: i for i, k in enumerate(self.keys)}
        src = np.array([pos.get(k, -1) for k in keys], dtype=np.intp)
        have = src >= 0
        for col in ("sum", "count", "min", "max", "nonfinite"):
            getattr(out, col)[have] = getattr(self, col)[src[have]]
        return out

    def merged(self, other: "LocalStats") -> "LocalStats":
        """Combine two summaries of disjoint value sets (e.g. CPU numbers and CUDA tensors)."""
        keys = sorted(set(self.keys) | set(other.keys))
        a, b = self.subset(keys), other.subset(keys)
        return LocalStats(tuple(keys), a.sum + b.sum, a.count + b.count, np.minimum(a.min, b.min),
                          np.maximum(a.max, b.max), a.nonfinite + b.nonfinite)


def summarize_ids(keys: Sequence[str], ids: np.ndarray, values: np.ndarray) -> LocalStats:
    """Per-key statistics of ``values``, where ``values[j]`` belongs to ``keys[ids[j]]``.

    Vectorised (bincount, ufunc.at): a flush does no Python work per value or per key.
    """
    n = len(keys)
    fin = np.isfinite(values)
    fid, fv = ids[fin], values[fin]
    mins, maxs = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(mins, fid, fv)
    np.maximum.at(maxs, fid, fv)
    return LocalStats(
        keys=tuple(keys),
        sum=np.bincount(fid, weights=fv, minlength=n).astype(np.float64),
        count=np.bincount(fid, minlength=n).astype(np.float64),
        min=mins,
        max=maxs,
        nonfinite=np.bincount(ids[~fin], minlength=n).astype(np.float64),
    )


def block_stats(v: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """``(sum, count, min, max, nonfinite)`` of a dense block of values along ``axis`` (one
    call site's ``collect()`` dicts as a matrix): non-finite values are counted apart, never
    summed; a column with none finite has count 0, min +inf, max -inf."""
    if axis:  # along the first axis of a contiguous copy: NumPy then runs one long inner loop
        # per step along it, not a short one per output (5x faster for (windows, 10, keys))
        v, axis = np.ascontiguousarray(np.moveaxis(v, axis, 0)), 0
    with np.errstate(over="ignore", invalid="ignore"):  # (a sum that overflows: counted below)
        total = v.sum(axis=axis)
    if np.isfinite(total).all():  # so is every value (no NaN or inf sums to a finite number):
        return total, np.full(total.shape, float(v.shape[axis])), v.min(axis=axis), v.max(axis=axis), \
            np.zeros(total.shape)  # the steady state, four reductions and no mask
    fin = np.isfinite(v)
    count = fin.sum(axis=axis).astype(np.float64)
    return (np.where(fin, v, 0.0).sum(axis=axis), count, np.where(fin, v, np.inf).min(axis=axis),
            np.where(fin, v, -np.inf).max(axis=axis), v.shape[axis] - count)


def pack(union: Sequence[str], local: LocalStats, header: Sequence[float], ident: FlushIdentity,
         pos: np.ndarray | None = None, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The SUM and MAX buckets over the agreed ``union`` (local keys outside it are left out).

    ``pos[i]`` is the union position of ``local.keys[i]`` (-1 if absent); computed if not given.
    ``extra`` (summed slots, e.g. telemetry) goes at the end of the SUM bucket.
    """
    k = len(union)
    if pos is None:
        index = {key: i for i, key in enumerate(union)}
        pos = np.fromiter((index.get(key, -1) for key in local.keys), dtype=np.intp, count=len(local.keys))
    keep = pos >= 0
    idx = pos[keep]
    s = np.zeros(HEADER_LEN + 3 * k + (0 if extra is None else len(extra)))
    s[:HEADER_LEN] = header
    if extra is not None:
        s[HEADER_LEN + 3 * k :] = extra
    body = s[HEADER_LEN:]
    body[idx], body[k + idx], body[2 * k + idx] = local.sum[keep], local.count[keep], local.nonfinite[keep]
    h = MAX_HEADER_LEN
    m = np.full(h + 2 * k, -np.inf)
    m[:h] = identity_slots(ident)
    m[h + idx], m[h + k + idx] = local.max[keep], -local.min[keep]
    return s, m


def identity_slots(ident: FlushIdentity) -> list[float]:
    """The ``MAX_HEADER_LEN`` identity slots at the front of the MAX bucket (-inf: not set)."""
    slots = [-np.inf] * MAX_HEADER_LEN
    slots[M_STEP] = NO_STEP if ident.step is None else float(ident.step)
    if ident.step is not None:
        slots[M_NSTEP] = -float(ident.step)
    slots[M_SEQ], slots[M_NSEQ] = float(ident.seq), -float(ident.seq)
    code = float(ident.closing) + 2.0 * ident.aggregation
    slots[M_CLOSE], slots[M_NCLOSE] = code, -code
    if ident.explicit_step is not None:
        slots[M_XSTEP], slots[M_NXSTEP] = float(ident.explicit_step), -float(ident.explicit_step)
    return slots


def pack_block(v: np.ndarray, cols: np.ndarray | None, k: int, header: Sequence[float],
               ident: FlushIdentity, extra: np.ndarray | None = None) -> tuple[np.ndarray, int] | None:
    """``pack``'s buckets side by side (``s`` then ``m``, as ``gather_rows`` sends them) and
    ``len(s)``, built straight from a dense block ``v`` (``(n, c)``: one call site's
    ``collect()`` dicts) whose columns sit at union positions ``cols`` of a union of ``k``
    keys (None: they are the union, in order; keys of the union without a column have no
    value in this window): the steady flush's local work in a few NumPy calls into one
    buffer. None when a value is not finite (or a column's sum overflows): ``block_stats``
    and ``pack`` count those apart."""
    n = v.shape[0]
    s_size = HEADER_LEN + 3 * k + (0 if extra is None else len(extra))
    row = np.empty(s_size + MAX_HEADER_LEN + 2 * k)
    h = s_size + MAX_HEADER_LEN
    sums, count, mx, neg_min = (row[HEADER_LEN : HEADER_LEN + k], row[HEADER_LEN + k : HEADER_LEN + 2 * k],
                                row[h : h + k], row[h + k :])
    if cols is None:
        at_sums, at_max, at_neg_min = sums, mx, neg_min
    else:  # (the columns' statistics first, then put in place among the union's empty ones)
        at_sums, at_max, at_neg_min = np.empty(len(cols)), np.empty(len(cols)), np.empty(len(cols))
    if n == 1:  # one collect() call in the window (a flush every step): its values are the
        # sums, maxima and minima (copies, not three reductions of one row)
        np.copyto(at_sums, v[0])
        if not np.isfinite(at_sums).all():
            return None
        at_max[:] = at_sums
        np.negative(at_sums, out=at_neg_min)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # (+inf with -inf, or an overflow: None)
            v.sum(axis=0, out=at_sums)
        if not np.isfinite(at_sums).all():  # finite column sums: every value was finite
            return None
        v.max(axis=0, out=at_max)
        v.min(axis=0, out=at_neg_min)
        np.negative(at_neg_min, out=at_neg_min)
    if cols is None:
        count[:] = float(n)
    else:
        sums[:], count[:], mx[:], neg_min[:] = 0.0, 0.0, -np.inf, -np.inf
        sums[cols], count[cols], mx[cols], neg_min[cols] = at_sums, float(n), at_max, at_neg_min
    row[:HEADER_LEN] = header
    row[HEADER_LEN + 2 * k : HEADER_LEN + 3 * k] = 0.0  # nonfinite
    if extra is not None:
        row[HEADER_LEN + 3 * k : s_size] = extra
    row[s_size:h] = identity_slots(ident)
    return row, s_size


@dataclass(frozen=True)
class Reduced:
    """The reduced statistics of one flush, one entry per key (columns as arrays)."""

    keys: tuple[str, ...]
    mean: np.ndarray
    min: np.ndarray
    max: np.ndarray
    sum: np.ndarray
    count: np.ndarray
    nonfinite: np.ndarray
    argmin_rank: np.ndarray  # the (lowest) rank that held the minimum; NaN: no finite value
    argmax_rank: np.ndarray

    # read as a mapping of key -> statistics: ``red["loss"]``, ``"loss" in red``, ``for key in
    # red``, ``red.items()``, ``red.get(key)`` (``keys`` is the tuple of keys, an attribute:
    # ``dict(red.items())`` makes a dict)
    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys)

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def __getitem__(self, key: str) -> dict[str, float]:
        """The statistics of one key: ``{"mean": ..., "min": ..., ...}``."""
        try:
            i = self.keys.index(key)
        except ValueError:
            raise KeyError(f"{key!r} was not reduced in this flush; keys: {', '.join(self.keys)}") from None
        return {c: float(getattr(self, c)[i]) for c in ("mean", "min", "max", "sum", "count", "nonfinite")}

    def get(self, key: str, default: Any = None) -> dict[str, float] | Any:
        return self[key] if key in self.keys else default

    def items(self) -> list[tuple[str, dict[str, float]]]:
        return [(k, self[k]) for k in self.keys]

    def values(self) -> list[dict[str, float]]:
        return [self[k] for k in self.keys]

    def rows(self, aggregation: str) -> np.ndarray:
        """A ``(K, len(STAT_COLUMNS))`` float64 matrix in ``STAT_COLUMNS`` order."""
        out = np.empty((len(self.keys), len(STAT_COLUMNS)))
        for j, col in enumerate((getattr(self, aggregation), self.mean, self.min, self.max, self.sum,
                                 self.count, self.nonfinite, self.argmin_rank, self.argmax_rank)):
            out[:, j] = col  # (no np.stack: a flush calls this every time)
        if aggregation == "sum":  # no finite value: the headline is NaN (docs/FORMAT.md), not
            out[self.count == 0, 0] = np.nan  # the sum column's 0
        return out

    def reordered(self, keys: Sequence[str], other: "Reduced") -> "Reduced":
        """``self`` and ``other`` (disjoint keys) as one result in the order of ``keys``."""
        pos = {k: (0, i) for i, k in enumerate(self.keys)}
        pos.update({k: (1, i) for i, k in enumerate(other.keys)})
        cols = {}
        for c in ("mean", "min", "max", "sum", "count", "nonfinite", "argmin_rank", "argmax_rank"):
            both = (getattr(self, c), getattr(other, c))
            cols[c] = np.array([both[p][i] for p, i in (pos[k] for k in keys)], dtype=np.float64)
        return Reduced(tuple(keys), **cols)


def _finish(keys: Sequence[str], total: np.ndarray, count: np.ndarray, mn: np.ndarray,
            mx: np.ndarray, bad: np.ndarray, argmin: np.ndarray | None = None,
            argmax: np.ndarray | None = None) -> Reduced:
    empty = count == 0
    if empty.any():
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(empty, np.nan, total / np.where(empty, 1, count))
        mn, mx = np.where(empty, np.nan, mn), np.where(empty, np.nan, mx)
    else:  # every key had a finite value (the steady state)
        mean, mn, mx = total / count, mn.copy(), mx.copy()
    if argmin is None or argmax is None:
        none = np.full(len(keys), np.nan)
        argmin, argmax = none if argmin is None else argmin, none if argmax is None else argmax
    # the ranks are NaN already where no rank had a finite value (count 0)
    return Reduced(tuple(keys), mean, mn, mx, total.copy(), count.copy(), bad.copy(), argmin, argmax)


def unpack(keys: Sequence[str], s: np.ndarray, m: np.ndarray,
           ranks: np.ndarray | None = None) -> tuple[np.ndarray, Agreement, Reduced]:
    """``(header, agreement, reduced)`` from the reduced SUM and MAX buckets of ``pack``.

    ``ranks`` (optional) is, for each slot of the MAX bucket from ``MAX_HEADER_LEN`` on, the
    lowest rank holding the reduced value (``Comm.reduce_buckets_ranked``): the argmax and
    argmin ranks of every key.
    """
    k, h = len(keys), MAX_HEADER_LEN
    body = s[HEADER_LEN:]
    amax = amin = None
    if ranks is not None:
        amax, amin = ranks[:k], ranks[k : 2 * k]
    red = _finish(keys, body[:k], body[k : 2 * k], -m[h + k :], m[h : h + k], body[2 * k : 3 * k],
                  amin, amax)
    return s[:HEADER_LEN], agreement(m), red


def agreement(m: np.ndarray | list[float]) -> Agreement:
    """The ranks' agreement from the identity slots of the reduced MAX bucket (``m[:MAX_HEADER_LEN]``
    suffices; a list of them is read fastest)."""
    return Agreement(float(m[M_STEP]), (-float(m[M_NSEQ]), float(m[M_SEQ])),
                     (-float(m[M_NCLOSE]), float(m[M_CLOSE])), (-float(m[M_NXSTEP]), float(m[M_XSTEP])),
                     (-float(m[M_NSTEP]), float(m[M_STEP]) if m[M_NSTEP] > -np.inf else -np.inf))


# ---- the all_gather transport: every rank's (s, m) buckets side by side ----------------------
def buckets_of_rows(rows: np.ndarray, s_size: int, lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From the gathered rows (``(ranks, len(s) + len(m))``, each rank's ``pack`` buckets ``s``
    then ``m``): the summed ``s``, the maximum ``m`` and, for each slot ``m[lo:]``, the lowest
    rank holding its maximum (NaN where it is not finite) — ``Comm.reduce_buckets_ranked``."""
    mrows = rows[:, s_size:]
    top = mrows.max(axis=0)
    return rows[:, :s_size].sum(axis=0), top, rank_of_max(mrows[:, lo:], top[lo:])


def header_of_rows(rows: np.ndarray, s_size: int, k: int) -> tuple[list[float], Agreement, bool]:
    """From the gathered rows of a flush over ``k`` keys, in one reduction (the largest over
    the ranks): the header's flags (1.0 where any rank set one), the ranks' agreement, and
    whether any rank had a value (a count or a non-finite count above 0). The keys'
    statistics stay unreduced (``reduce_gathered_rows`` does them, later and many flushes at
    once)."""
    top = rows[:, : s_size + MAX_HEADER_LEN].max(axis=0)
    return (top[:HEADER_LEN].tolist(), agreement(top[s_size:].tolist()),
            bool(top[HEADER_LEN + k : HEADER_LEN + 3 * k].any()))


def reduce_gathered_rows(rows: np.ndarray, k: int, s_size: int) -> tuple[np.ndarray, ...]:
    """``(total, count, min, max, nonfinite, argmin rank, argmax rank)``, each ``(n, k)``, of
    ``n`` flushes over one union of ``k`` keys from their gathered rows (``(n, ranks,
    len(s) + len(m))``, stacked): what ``buckets_of_rows`` + ``unpack`` give for each flush
    (min/max ±inf and ranks NaN where no rank had a finite value), in a few NumPy calls for
    any number of flushes."""
    body = rows[:, :, HEADER_LEN : HEADER_LEN + 3 * k].sum(axis=1)
    slots = rows[:, :, s_size + MAX_HEADER_LEN : s_size + MAX_HEADER_LEN + 2 * k]  # max, then -min
    top = slots.max(axis=1)
    ranks = slots.argmax(axis=1).astype(np.float64)  # the first (lowest) rank holding it
    fin = np.isfinite(top)
    if not fin.all():
        ranks[~fin] = np.nan
    return (body[:, :k], body[:, k : 2 * k], -top[:, k:], top[:, :k], body[:, 2 * k :],
            ranks[:, k:], ranks[:, :k])


def reduce_gathered(keys: Sequence[str], parts: Sequence[LocalStats]) -> Reduced:
    """Reduce every rank's ``LocalStats`` for ``keys`` (from one all_gather) without collectives."""
    subs = [p.subset(keys) for p in parts] or [LocalStats.identity(keys)]
    mins, maxs = np.array([p.min for p in subs]), np.array([p.max for p in subs])
    return _finish(keys, np.sum([p.sum for p in subs], axis=0), np.sum([p.count for p in subs], axis=0),
                   mins.min(axis=0), maxs.max(axis=0), np.sum([p.nonfinite for p in subs], axis=0),
                   rank_of_max(-mins), rank_of_max(maxs))


def extra_slots(keys: Sequence[str], s: np.ndarray) -> np.ndarray:
    """The ``extra`` slots ``pack`` put at the end of the (reduced) SUM bucket."""
    return s[HEADER_LEN + 3 * len(keys) :]


def rank_of_max(rows: np.ndarray, top: np.ndarray | None = None) -> np.ndarray:
    """Per column of a ``(ranks, n)`` matrix: the lowest rank holding the column's maximum,
    as float64; NaN where no rank has a finite value (every entry -inf). ``top``: the
    columns' maxima, when the caller has them already."""
    if rows.ndim != 2 or not rows.shape[0]:
        return np.full(rows.shape[-1] if rows.ndim else 0, np.nan)
    out = rows.argmax(axis=0).astype(np.float64)
    fin = np.isfinite(rows.max(axis=0) if top is None else top)
    if not fin.all():
        out[~fin] = np.nan
    return out


def rank_slots(local: np.ndarray, reduced: np.ndarray, rank: int) -> np.ndarray:
    """For a second MAX pass: ``-rank`` where this rank holds the reduced (finite) maximum,
    else -inf; the MAX over ranks is then minus the lowest rank holding it."""
    hold = (local == reduced) & np.isfinite(reduced)
    return np.where(hold, -float(rank), -np.inf)


def ranks_from_slots(reduced_slots: np.ndarray) -> np.ndarray:
    """The ranks of ``rank_slots`` after the MAX pass (NaN where no rank held a finite value)."""
    return np.where(np.isfinite(reduced_slots), -reduced_slots, np.nan)


def single_row(value: float) -> np.ndarray:
    """The stored row for one directly logged value (``metrics.log``)."""
    v = float(value)
    if np.isfinite(v):
        return np.array([v, v, v, v, v, 1.0, 0.0, np.nan, np.nan])
    return np.array([v, np.nan, np.nan, np.nan, 0.0, 0.0, 1.0, np.nan, np.nan])


def reduce_window(keys: Sequence[str], ids: np.ndarray, values: np.ndarray) -> Reduced:
    """One process: the ``Reduced`` of a window's values, ``values[j]`` belonging to
    ``keys[ids[j]]`` — what ``pack`` + ``unpack`` give with one rank, without the buckets
    (argmin/argmax rank 0 where the key had a finite value, NaN otherwise)."""
    st = summarize_ids(keys, ids, values)
    rank = np.where(st.count > 0, 0.0, np.nan)
    return _finish(keys, st.sum, st.count, st.min, st.max, st.nonfinite, rank, rank.copy())


def present_rows(red: Reduced, aggregation: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """The keys with any value in a flush (finite or not), their ``STAT_COLUMNS`` rows, and
    the mask of those keys over ``red.keys``."""
    present = (red.count + red.nonfinite) > 0
    if present.all():
        return red.keys, red.rows(aggregation), present
    keys = tuple(red.keys[i] for i in np.flatnonzero(present))
    return keys, red.rows(aggregation)[present], present


_STAT_FIELDS = ("mean", "min", "max", "sum", "count", "nonfinite", "argmin_rank", "argmax_rank")


class LazyReduced(Reduced):
    """A ``Reduced`` whose statistics are computed on first use (``compute()`` returns the
    ``Reduced``). A flush handed on unreduced (one process; a steady flush of several ranks)
    returns one at once: the writer thread computes the stored rows, and a script that
    ignores flush()'s result never pays for it here. It pickles and copies as a ``Reduced``."""

    def __init__(self, keys: Sequence[str], compute=None, **fields: np.ndarray) -> None:  # noqa: ANN001
        object.__setattr__(self, "keys", tuple(keys))
        object.__setattr__(self, "_compute", compute)
        for f, v in fields.items():  # every field given (``dataclasses.replace``): computed already
            object.__setattr__(self, f, v)

    @classmethod
    def of(cls, keys: tuple[str, ...], compute) -> "LazyReduced":  # noqa: ANN001
        """``LazyReduced(keys, compute)`` for a tuple of keys, at a flush's cost (no keyword
        dictionary, no copy of the keys)."""
        self = object.__new__(cls)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "_compute", compute)
        return self

    def __reduce__(self):  # noqa: ANN204 - pickle and copy a plain Reduced (no closure, no lock)
        return Reduced, (self.keys, *(getattr(self, f) for f in _STAT_FIELDS))

    def __getattr__(self, name: str):  # noqa: ANN204 - only for attributes not set yet
        if name in _STAT_FIELDS:
            done = self._compute()
            for f in _STAT_FIELDS:
                object.__setattr__(self, f, getattr(done, f))
            return getattr(done, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reduced):
            return NotImplemented
        return self.keys == other.keys and all(
            np.array_equal(getattr(self, f), getattr(other, f), equal_nan=True) for f in _STAT_FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "Reduced(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in ("keys",) + _STAT_FIELDS) + ")"


def logged_rows(steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(K, n, 2 + len(STAT_COLUMNS))``: the stored rows of n ``log()`` calls of K keys
    (``values`` is ``(n, K)``), each row ``step, time`` then ``single_row`` of its value."""
    n, k = values.shape
    out = np.empty((k, n, 2 + len(STAT_COLUMNS)))
    for j in range(k):
        fill_logged(out[j], steps, times, values[:, j])
    return out


_LOGGED_TAIL = np.array([1.0, 0.0, np.nan, np.nan])  # count, nonfinite, argmin/argmax rank of a finite logged value


def fill_logged(out: np.ndarray, steps: np.ndarray, times: np.ndarray, v: np.ndarray) -> None:
    """Fill ``out`` (``(n, 2 + len(STAT_COLUMNS))``) with the rows of n logged values of one
    key: ``step, time`` then ``single_row`` of each value."""
    fill_logged_head(out, steps, times, v)
    widen_logged(out)


def fill_logged_head(out: np.ndarray, steps: np.ndarray, times: np.ndarray, v: np.ndarray) -> None:
    """The leading columns of logged rows (``LOGGED_HEAD``): step, time, value."""
    out[:, 0] = steps
    out[:, 1] = times
    out[:, 2] = v


#: the leading columns of a logged row (step, time, value) that ``widen_logged`` completes
LOGGED_HEAD = 3


def widen_logged(out: np.ndarray) -> None:
    """Complete rows of logged values whose first ``LOGGED_HEAD`` columns (step, time,
    value) are set: ``single_row`` of each value in the columns after them, in place."""
    v = out[:, 2]
    fin = np.isfinite(v)
    if fin.all():  # the usual block: one broadcast of the value, one of constants
        out[:, 3:7] = v[:, None]
        out[:, 7:] = _LOGGED_TAIL
    else:
        out[:, 9:] = np.nan  # argmin/argmax rank: not a reduction
        shown = np.where(fin, v, np.nan)
        out[:, 3] = out[:, 4] = out[:, 5] = shown
        out[:, 6] = np.where(fin, v, 0.0)
        out[:, 7] = fin
        out[:, 8] = ~fin
