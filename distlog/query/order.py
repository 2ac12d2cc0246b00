"""The one order runs are sorted in by a column (``distlog compare --sort``,
``open_root().table(sort=)``, the dashboard's ``/api/runs?sort=``), whatever types the column
mixes (a param that is ``1`` in one run, ``"1e-3"`` in another and ``True`` in a third):

1. numbers, ascending (ints and floats alike, infinities included; a bool is no number here);
2. booleans, ``False`` then ``True``;
3. everything else by its text (``str``: strings, lists);
4. NaN (a value that is no number);
5. no value (None, a run without the param or metric).

``desc`` reverses 1-3 only: NaN and missing stay last, as pandas'
``sort_values(na_position="last")``. Runs that compare equal keep the order they came in.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

NUMBER, BOOL, TEXT, NAN, MISSING = range(5)


def sort_key(v: Any) -> tuple[int, Any]:
    """``(group, value)``: a key any two values of one column compare by."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # NumPy scalars
        v = v.item()
    if v is None or type(v).__name__ == "NAType":
        return (MISSING, 0)
    if isinstance(v, bool):
        return (BOOL, v)
    if isinstance(v, (int, float)):
        return (NAN, 0) if isinstance(v, float) and math.isnan(v) else (NUMBER, v)
    return (TEXT, str(v))


def sorted_order(values: Sequence[Any], desc: bool = False) -> list[int]:
    """The indices of ``values`` in the order above (stable)."""
    keys = [sort_key(v) for v in values]
    # (reverse=True keeps equal keys in the order they came: stable both ways)
    present = sorted((i for i, k in enumerate(keys) if k[0] < NAN), key=keys.__getitem__, reverse=desc)
    rest = sorted((i for i, k in enumerate(keys) if k[0] >= NAN), key=lambda i: keys[i][0])
    return present + rest


__all__ = ["sort_key", "sorted_order"]
