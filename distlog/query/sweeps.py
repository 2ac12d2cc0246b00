"""Aggregation across runs for sweeps and seeds, like ml_logger's ``read_metrics("loss@mean")``.

``read_metrics(runs, "train/loss@mean", bin_size=100)``:

1. Runs are grouped by params: ``group_by`` (flattened keys), by default every param that
   varies between the runs except seeds (a key whose last part contains ``seed``), so the
   seeds of one configuration form one group.
2. Each run's series (the ``column`` statistic, ``value`` by default) is cut into step bins
   ``[start + i*bin_size, start + (i+1)*bin_size)``, ``start`` being the smallest step of any
   run (``bins=N``: N bins over the steps seen; neither: one bin per distinct step, also of
   fractional steps, see ``bin_grid``), and reduced within each bin by the ``@`` part of the
   spec: mean (default), min, max, sum, median, first, last or count. Non-finite values are
   left out.
3. Per group and bin, across the runs that have a value there: ``runs`` (how many), mean,
   std (ddof 0), min, max and the requested percentiles (linear interpolation). With
   ``nonfinite=True`` also ``nonfinite``: how many runs had a NaN or ±inf value in the bin,
   left out of the others (a run that diverged must not vanish from its group's band with
   no word); a bin only NaN/inf reached is then a row with ``runs`` 0 and NaN statistics.

The result is one long DataFrame: the group's params (``pd.NA`` where its runs lack one, apart
from a group that set it to None), ``step`` (the bin's first step), then the band columns.
Bins where no run of a group has a finite value are left out (``nonfinite=True``: no value).
A run whose params, run.json or series record is damaged is in no group: it is named in a
``RuntimeWarning`` and in the frame's ``attrs["left_out"]`` (``(position in runs, why)``).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .batch import is_bool, param_key, read_run_data
from .errors import DamagedRecord, KeyNotFound, did_you_mean, listing
from .run_reader import RunReader
from .series import Series, exact_ints

if TYPE_CHECKING:
    import pandas as pd

BIN_AGGS = ("mean", "min", "max", "sum", "median", "first", "last", "count")


def parse_spec(spec: str) -> tuple[str, str]:
    """``"loss@mean"`` → ``("loss", "mean")``; no ``@`` means mean."""
    key, _, agg = spec.rpartition("@") if "@" in spec else (spec, "", "mean")
    agg = agg or "mean"
    if agg not in BIN_AGGS:
        raise ValueError(f"{spec!r}: unknown reduction {agg!r}; use one of {', '.join(BIN_AGGS)}")
    if not key:
        raise ValueError(f"{spec!r} names no metric; write KEY@REDUCTION such as 'loss@mean'")
    return key, agg


def group_key(p: dict[str, Any], g: str) -> Any:
    """Where a run with flat params ``p`` meets others over param ``g``: ``param_key`` of its
    value; a run without ``g`` apart from one that set it to None (``table(varying_only=True)``
    keeps them apart too: a param added to a sweep later is not the same as ``g=None``)."""
    return ("missing",) if g not in p else param_key(p[g])


def group_label(p: dict[str, Any], g: str) -> Any:
    """The value of param ``g`` in a group's column: its value, or ``pd.NA`` for a run without
    it (None is a value a run set)."""
    if g in p:
        return p[g]
    import pandas as pd

    return pd.NA


def default_group_by(params: Sequence[dict[str, Any]]) -> list[str]:
    """Params that vary between runs, except seeds. A param some runs lack and others set
    (to None too) varies."""
    keys = sorted({k for p in params for k in p})
    varying = [k for k in keys if len({group_key(p, k) for p in params}) > 1]
    return [k for k in varying if "seed" not in k.rsplit(".", 1)[-1].lower()]


def _whole(a: np.ndarray | float) -> bool:
    a = np.asarray(a, dtype=float)
    return bool(np.all(a == np.trunc(a)))


def bin_index(steps: np.ndarray, start: float, bin_size: float) -> np.ndarray:
    """The bin number of each step on the grid ``start + k * bin_size``. Whole steps on a
    whole grid divide exactly; otherwise a step within float rounding (1e-9 relative) of a
    bin's start is in that bin (``0.3`` on a grid of ``0.1`` steps from 0 is bin 3, though
    ``0.3 / 0.1`` is 2.9999999999999996)."""
    q = (steps - start) / bin_size
    if _whole(bin_size) and _whole(start) and _whole(steps):
        return np.floor(q).astype(np.int64)
    r = np.round(q)
    return np.where(np.abs(q - r) <= 1e-9 * np.maximum(1.0, np.abs(r)), r, np.floor(q)).astype(np.int64)


def bin_steps(start: float, bin_size: float, index: np.ndarray, steps: Sequence[np.ndarray]) -> np.ndarray:
    """The first step of each bin ``index`` (``start + k * bin_size``, as ``exact_ints``
    reads it); on a fractional grid, a step of ``steps`` within float rounding of it instead
    (so one bin per step labels each bin with its step exactly, not ``0.30000000000000004``).
    Where a step is not whole and no bin holds two distinct steps (one bin per distinct step:
    ``bin_grid`` without ``bins``, or more bins than steps), each bin is labelled with its
    step, also one off the grid: steps 0, 0.3 and 0.5 bin on a grid of 0.2 (their smallest
    gap), and the value logged at 0.3 is at step 0.3, not at the grid's 0.2 (steps 3, 4.5 and
    5.5: at 4.5 and 5.5, not 4 and 5)."""
    at = start + np.asarray(index, dtype=float) * bin_size
    if not len(at) or (_whole(bin_size) and _whole(start)
                       and all(_whole(st[np.isfinite(st)]) for st in map(np.asarray, steps))):
        return exact_ints(at)  # (whole steps on a whole grid: every bin starts at a whole step, its label)
    seen = np.unique(np.concatenate([np.asarray(st, dtype=float) for st in steps]))
    seen = seen[np.isfinite(seen)]
    if not len(seen):
        return exact_ints(at)
    where = bin_index(seen, start, bin_size)  # sorted: bin_index never decreases
    if len(np.unique(where)) == len(seen):  # one distinct step per bin: each bin's own step
        index = np.asarray(index, dtype=np.int64)
        j = np.clip(np.searchsorted(where, index), 0, len(where) - 1)
        return exact_ints(np.where(where[j] == index, seen[j], at))
    j = np.searchsorted(seen, at)
    below, above = seen[np.clip(j - 1, 0, len(seen) - 1)], seen[np.clip(j, 0, len(seen) - 1)]
    near = np.where(np.abs(below - at) <= np.abs(above - at), below, above)
    at = np.where(np.abs(near - at) <= 1e-9 * bin_size, near, at)
    return exact_ints(at)


def bin_run(steps: np.ndarray, values: np.ndarray, start: float, bin_size: float, agg: str) -> "pd.Series":
    """One run's values reduced per bin: a Series indexed by bin number."""
    import pandas as pd

    ok = np.isfinite(values)
    idx = bin_index(steps[ok], start, bin_size)
    grouped = pd.Series(values[ok]).groupby(idx, sort=True)
    return grouped.size().astype(float) if agg == "count" else getattr(grouped, agg)()


def bands(matrix: np.ndarray, percentiles: Sequence[float]) -> dict[str, np.ndarray]:
    """Across-run statistics of a (bins, runs) matrix with NaN for "no value"."""
    n = np.sum(np.isfinite(matrix), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are dropped by the caller
        out = {"runs": n, "mean": np.nanmean(matrix, axis=1), "std": np.nanstd(matrix, axis=1),
               "min": np.nanmin(matrix, axis=1), "max": np.nanmax(matrix, axis=1)}
        for p in percentiles:
            out[f"p{p:g}"] = np.nanpercentile(matrix, p, axis=1)
    return out




def read_metrics(runs: Sequence[RunReader], spec: str, *, group_by: Sequence[str] | None = None,
                 bin_size: float | None = None, bins: int | None = None, column: str = "value",
                 percentiles: Sequence[float] = (25, 50, 75), rank: int | None = None,
                 per_run: bool = False, quiet: bool = False, nonfinite: bool = False) -> "pd.DataFrame":
    """Bands of ``spec`` across ``runs``, grouped by params (see the module docstring).

    ``bin_size`` (steps per bin) or ``bins`` (how many bins over the steps seen); neither means
    one bin per distinct step (see ``bin_grid``). ``per_run=True`` returns each run's binned values instead of bands.
    ``quiet``: runs left out as damaged are named in ``attrs["left_out"]`` only, no warning
    (a caller that shows them itself).
    """
    import pandas as pd

    key, agg = parse_spec(spec)
    series = []
    flat = []
    left_out = []
    if rank is None:  # every run's params, commit record and series at once
        for i, (run, d) in enumerate(zip(runs, read_run_data(runs, params=True, full_keys=[key]))):
            if d.damaged:  # its group (or its series) is unknown: never a group of its own
                left_out.append((i, "; ".join(d.damaged)))
                continue
            if key in d.full:
                s = Series(key, *d.full[key])
                series.append((run, s["step"], s[column]))
                flat.append(d.flat_params)
    else:
        for i, run in enumerate(runs):  # a run without rank's table, or with no rows of key, is left out
            try:
                if not run.metrics.lengths(rank, missing_ok=True).get(key):
                    continue
                p = run.flat_params
                s = run.metrics.read(key, rank)
            except DamagedRecord as e:  # as above: in no group, named in the warning
                left_out.append((i, str(e)))
                continue
            series.append((run, s["step"], s[column]))
            flat.append(p)
    named = ", ".join(f"{runs[i].info.path} ({why})" for i, why in left_out)
    if left_out and not quiet:
        warnings.warn(f"{len(left_out)} run(s) left out of {spec!r}: {named}", RuntimeWarning, stacklevel=2)
    if not series:
        known = sorted({k for r in runs for k, n in _lengths(r, rank).items() if n})
        raise KeyError(f"no run has the metric {key!r}; keys: {', '.join(known) or 'none'}"
                       + (f"; left out as damaged: {named}" if left_out else ""))
    lo, bin_size = bin_grid([st for _, st, _ in series], bin_size, bins)
    group_by = list(default_group_by(flat) if group_by is None else group_by)
    absent = [g for g in group_by if not any(g in p for p in flat)]
    if absent:  # a typo made one group of every run, which read as a result
        known = sorted({k for p in flat for k in p})
        raise KeyNotFound("; ".join(f"group_by {g!r}: no run of the {len(flat)} read has the param"
                                    f"{did_you_mean(g, known)}" for g in absent) + f" (params: {listing(known)})")
    if per_run:
        every = [st for _, st, _ in series]
        frames = []
        for (run, st, v), p in zip(series, flat):
            b = bin_run(st, v, lo, bin_size, agg)
            df = pd.DataFrame({"step": bin_steps(lo, bin_size, b.index.to_numpy(), every),
                               "value": b.to_numpy()})
            df.insert(0, "run_id", run.folder_name[1])
            for i, g in enumerate(group_by):
                df.insert(i, g, [group_label(p, g)] * len(df))
            frames.append(df)
        out = _concat(frames, group_by, [[group_label(p, g) for g in group_by] for p in flat])
    else:
        out = group_bands([(st, v) for _, st, v in series], flat, group_by, lo, bin_size, agg, percentiles,
                          nonfinite)
    # the runs left out (a damaged record), as (position in ``runs``, why): a caller showing
    # the bands names them beside the bands, not only in the warning
    out.attrs["left_out"] = left_out
    return out


def _lengths(run: RunReader, rank: int | None) -> dict[str, int]:
    """``run``'s committed rows per key (``{}`` when its commit record is damaged)."""
    try:
        return run.metrics.lengths(rank, missing_ok=True)
    except DamagedRecord:
        return {}


def bin_grid(steps: Sequence[np.ndarray], bin_size: float | None, bins: int | None) -> tuple[float, float]:
    """``(first step, steps per bin)`` of the bins over every run's ``steps``: ``bin_size``, or
    ``bins`` bins over the steps seen, or (neither) one bin per step.

    Whole steps: a bin holds whole steps (``ceil((hi - lo + 1) / bins)`` of them, so ``bins``
    is at most that many bins). Fractional steps (any step not whole, such as 0.125): each
    step spans the smallest gap between two distinct steps, ``bins`` cuts the span
    ``[lo, hi + gap)`` into exactly ``bins`` bins (fewer only where there are fewer distinct
    steps), and neither means one bin per distinct step."""
    lo = min(float(st.min()) for st in steps if len(st))
    hi = max(float(st.max()) for st in steps if len(st))
    if bin_size is None and all(_whole(st) for st in steps):  # whole steps: a bin is whole steps
        bin_size = 1.0 if bins is None else max(1.0, math.ceil((hi - lo + 1) / bins))
    elif bin_size is None:  # fractional steps: a step spans the smallest gap between two
        seen = np.unique(np.concatenate([np.asarray(st, dtype=float) for st in steps]))
        gap = float(np.diff(seen).min()) if len(seen) > 1 else 1.0
        bin_size = gap if bins is None else max(gap, (hi - lo + gap) / bins)
    if bin_size <= 0:
        raise ValueError(f"bin_size must be positive, got {bin_size}")
    return lo, bin_size


def group_bands(series: Sequence[tuple[np.ndarray, np.ndarray]], flat: Sequence[dict[str, Any]],
                group_by: Sequence[str], lo: float, bin_size: float, agg: str = "mean",
                percentiles: Sequence[float] = (25, 50, 75), nonfinite: bool = False) -> "pd.DataFrame":
    """Bands across runs of each group: run i's ``(steps, values)`` binned on the grid
    ``lo + k * bin_size``, grouped by its flat params ``flat[i]`` over ``group_by`` (groups in
    order of first appearance, rows sorted by group then step where the values sort).
    ``runs``: the runs with a finite value in the bin (the statistics are of those); with
    ``nonfinite``, a column of the runs with a NaN or ±inf value there, left out of them (a
    bin where every run went NaN is a row with ``runs`` 0, statistics NaN)."""
    import pandas as pd

    binned = [bin_run(st, v, lo, bin_size, agg) for st, v in series]
    bad = [np.unique(bin_index(np.asarray(st)[~np.isfinite(v)], lo, bin_size)) if nonfinite
           else np.zeros(0, np.int64) for st, v in series]
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(flat):
        groups.setdefault(tuple(group_key(p, g) for g in group_by), []).append(i)
    frames = []
    for members in groups.values():
        table = pd.concat([binned[i] for i in members], axis=1, sort=True)
        bins, counts = np.unique(np.concatenate([bad[i] for i in members]), return_counts=True)
        if len(bins):  # (bins only NaN/inf reached: rows of their own)
            table = table.reindex(table.index.union(pd.Index(bins)))
        st = bands(table.to_numpy(dtype=float), percentiles)
        st["nonfinite"] = pd.Series(counts, index=bins).reindex(table.index, fill_value=0).to_numpy()
        keep = (st["runs"] > 0) | (st["nonfinite"] > 0)
        df = pd.DataFrame({"step": bin_steps(lo, bin_size, table.index.to_numpy()[keep],
                                             [st for st, _ in series]),
                           **{k: v[keep] for k, v in st.items()}})
        df["runs"] = df["runs"].astype(np.int64)
        if nonfinite:
            df["nonfinite"] = df["nonfinite"].astype(np.int64)
        else:
            del df["nonfinite"]
        for i, g in enumerate(group_by):
            df.insert(i, g, [group_label(flat[members[0]], g)] * len(df))
        frames.append(df)
    out = _concat(frames, group_by, [[group_label(flat[m[0]], g) for g in group_by]
                                     for m in groups.values()])
    if group_by:
        try:
            out = out.sort_values([*group_by, "step"], kind="stable", ignore_index=True)
        except TypeError:  # params of mixed types do not sort: keep the runs' order
            pass
    return out


def _concat(frames: list["pd.DataFrame"], group_by: Sequence[str], labels: list[list[Any]]) -> "pd.DataFrame":
    """``pd.concat`` of one frame per group (``labels[i]``: frame i's group_by values); a group
    column holding bools and other values is kept as objects (concat would turn True into 1)."""
    import pandas as pd

    out = pd.concat(frames, ignore_index=True)
    for j, g in enumerate(group_by):
        kinds = {is_bool(lab[j]) for lab in labels}
        if len(kinds) > 1:
            out[g] = pd.Series([lab[j] for lab, f in zip(labels, frames) for _ in range(len(f))],
                               dtype=object, index=out.index)
    return out
