"""Pure reduction maths for a flush: no process group, no I/O, testable with NumPy alone.

Per key a rank holds ``(sum, count, min, max, nonfinite)`` over its finite values since the
last flush. Across ranks these reduce with two element-wise collectives:

* SUM bucket: ``[sum_0..sum_K, count_0..count_K, nonfinite_0..nonfinite_K]``
* MAX bucket: ``[max_0..max_K, -min_0..-min_K]``

A small header (flags and the last step) is reduced with MAX first, so every rank learns at
once whether the key set changed, whether any rank had bad input, and whether to stop.

A rank without a key contributes the identities (0, 0, +inf, -inf, 0); the mean is
``Σsum / Σcount`` — never a mean of per-rank means. Values are float64 throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

AGGREGATIONS = ("mean", "min", "max", "sum")
#: columns of a stored row, in order (``value`` is the headline picked by ``_aggregation``)
STAT_COLUMNS = ("value", "mean", "min", "max", "sum", "count", "nonfinite")

# header slots, reduced with MAX in the first collective of a flush:
# new-keys flag, bad-input flag, writer-failure flag, stop (preemption) flag, last step
H_NEW_KEYS, H_ERROR, H_WRITER, H_STOP, H_STEP, HEADER_LEN = 0, 1, 2, 3, 4, 5
NO_STEP = -1.0


def summarize(values: np.ndarray) -> tuple[float, float, float, float, float]:
    """``(sum, count, min, max, nonfinite)`` of the finite entries of ``values``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = np.isfinite(v)
    n_bad = float(v.size - int(finite.sum()))
    if n_bad:
        v = v[finite]
    if v.size == 0:
        return 0.0, 0.0, np.inf, -np.inf, n_bad
    return float(v.sum()), float(v.size), float(v.min()), float(v.max()), n_bad


@dataclass(frozen=True)
class LocalStats:
    """This rank's statistics since the last flush, one entry per local key (sorted)."""

    keys: tuple[str, ...]
    sum: np.ndarray
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray
    nonfinite: np.ndarray

    @staticmethod
    def empty() -> "LocalStats":
        z = np.zeros(0)
        return LocalStats((), z, z, z, z, z)

    def merged(self, other: "LocalStats") -> "LocalStats":
        """Combine two summaries of disjoint value sets (e.g. CPU numbers and CUDA tensors)."""
        keys = tuple(sorted(set(self.keys) | set(other.keys)))
        out = {c: np.array([ident] * len(keys)) for c, ident in
               (("sum", 0.0), ("count", 0.0), ("min", np.inf), ("max", -np.inf), ("nonfinite", 0.0))}
        pos = {k: i for i, k in enumerate(keys)}
        for part in (self, other):
            idx = np.array([pos[k] for k in part.keys], dtype=np.intp)
            np.add.at(out["sum"], idx, part.sum)
            np.add.at(out["count"], idx, part.count)
            np.add.at(out["nonfinite"], idx, part.nonfinite)
            np.minimum.at(out["min"], idx, part.min)
            np.maximum.at(out["max"], idx, part.max)
        return LocalStats(keys, **out)


def summarize_segments(keys: Sequence[str], flat: np.ndarray, lengths: Sequence[int]) -> LocalStats:
    """Per-key statistics of ``flat``, split into consecutive segments of ``lengths`` (all > 0).

    Vectorised over keys: the cost of a flush does not grow with Python work per key.
    """
    if not len(keys):
        return LocalStats.empty()
    starts = np.zeros(len(lengths), dtype=np.intp)
    np.cumsum(lengths[:-1], out=starts[1:])
    finite = np.isfinite(flat)
    counts = np.add.reduceat(finite.astype(np.float64), starts)
    return LocalStats(
        keys=tuple(keys),
        sum=np.add.reduceat(np.where(finite, flat, 0.0), starts),
        count=counts,
        min=np.minimum.reduceat(np.where(finite, flat, np.inf), starts),
        max=np.maximum.reduceat(np.where(finite, flat, -np.inf), starts),
        nonfinite=np.asarray(lengths, dtype=np.float64) - counts,
    )


def pack(union: Sequence[str], local: LocalStats, index: Mapping[str, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The SUM and MAX buckets over the agreed, sorted ``union`` of keys.

    Keys of ``union`` this rank has no values for keep the identity elements; local keys
    outside ``union`` (rejected when the union was agreed) are left out.
    """
    k = len(union)
    if index is None:
        index = {key: i for i, key in enumerate(union)}
    pos = np.fromiter((index.get(key, -1) for key in local.keys), dtype=np.intp, count=len(local.keys))
    keep = pos >= 0
    idx = pos[keep]
    s = np.zeros(3 * k)
    m = np.full(2 * k, -np.inf)
    s[idx], s[k + idx], s[2 * k + idx] = local.sum[keep], local.count[keep], local.nonfinite[keep]
    m[idx], m[k + idx] = local.max[keep], -local.min[keep]
    return s, m


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

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, key: str) -> dict[str, float]:
        """The statistics of one key: ``{"mean": ..., "min": ..., ...}``."""
        try:
            i = self.keys.index(key)
        except ValueError:
            raise KeyError(f"{key!r} was not reduced in this flush; keys: {', '.join(self.keys)}") from None
        return {c: float(getattr(self, c)[i]) for c in ("mean", "min", "max", "sum", "count", "nonfinite")}

    def headline(self, aggregation: str) -> np.ndarray:
        return getattr(self, aggregation)

    def rows(self, aggregation: str) -> np.ndarray:
        """A ``(K, len(STAT_COLUMNS))`` float64 matrix in ``STAT_COLUMNS`` order."""
        return np.stack(
            [self.headline(aggregation), self.mean, self.min, self.max, self.sum, self.count, self.nonfinite],
            axis=1,
        )


def unpack(keys: Sequence[str], s: np.ndarray, m: np.ndarray) -> Reduced:
    """Reduced statistics from the reduced SUM and MAX buckets of ``pack``."""
    k = len(keys)
    total, count, bad = s[:k], s[k : 2 * k], s[2 * k :]
    mx, mn = m[:k], -m[k:]
    empty = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(empty, np.nan, total / np.where(empty, 1, count))
    return Reduced(
        keys=tuple(keys),
        mean=mean,
        min=np.where(empty, np.nan, mn),
        max=np.where(empty, np.nan, mx),
        sum=total.copy(),
        count=count.copy(),
        nonfinite=bad.copy(),
    )


def single_row(value: float) -> np.ndarray:
    """The stored row for one directly logged value (``metrics.log``)."""
    v = float(value)
    if np.isfinite(v):
        return np.array([v, v, v, v, v, 1.0, 0.0])
    return np.array([v, np.nan, np.nan, np.nan, 0.0, 0.0, 1.0])


def check_aggregation(aggregation: str) -> str:
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"_aggregation must be one of {', '.join(AGGREGATIONS)}; got {aggregation!r}"
        )
    return aggregation
