"""Show a flush's reduced values on a tqdm bar (rank 0), the way people watch training."""

from __future__ import annotations

from typing import Any, Sequence


def postfix_values(reduced: Any, keys: Sequence[str] | None = None, stat: str = "mean",
                   digits: int = 4) -> dict[str, str]:
    """``{key: formatted value}`` of one flush's result (keys with no value this flush left
    out). ``keys``: full names (``train/loss``), or the last part of one (``loss``) when it
    names one key of the flush; a key the flush does not know yet (collected later) is left
    out, as it has no value."""
    if stat not in ("mean", "min", "max", "sum", "count"):
        raise ValueError(f"stat must be one of mean, min, max, sum, count; got {stat!r}")
    names = list(reduced.keys)
    if keys is None:
        wanted = [(k, k) for k in names]
    else:
        wanted = []
        for k in keys:
            full = [n for n in names if n.rpartition("/")[2] == k] if k not in names else [k]
            if len(full) == 1:
                wanted.append((k, full[0]))
    out = {}
    for shown, key in wanted:
        i = names.index(key)
        if reduced.count[i] > 0:
            out[shown] = f"{float(getattr(reduced, stat)[i]):.{digits}g}"
    return out


def tqdm_postfix(bar: Any, reduced: Any, keys: Sequence[str] | None = None, stat: str = "mean",
                 digits: int = 4, rank: int | None = None) -> dict[str, str]:
    """Set ``bar``'s postfix to the reduced values of a flush and return them.

        reduced = exp.metrics.flush()            # every rank
        tqdm_postfix(bar, reduced, rank=exp.rank) # only rank 0 draws (bar may be None elsewhere)

    ``keys`` picks and orders the keys shown; ``stat`` is the statistic (``mean`` by default).
    """
    if bar is None or (rank is not None and rank != 0):
        return {}
    values = postfix_values(reduced, keys, stat, digits)
    bar.set_postfix(values, refresh=False)
    return values
