"""Numbers users pass, as distlog keeps them: steps (log lines, file records, ``exp.step``)
and counts (versions, ranks, sizes), an int that is no bool."""

from __future__ import annotations

import math
import operator
from typing import Any


def exact_step(step: Any) -> int | float:
    """``step`` as an int when it is an integer (exact however large: a Python or NumPy int,
    a bool, an integer tensor or string), else as its float (metrics take ``step=2.5``: it is
    not cut to 2). ``ValueError`` for a step that is no finite number."""
    try:
        return operator.index(step)
    except TypeError:
        pass
    try:
        f = float(step)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"a step must be a finite number, got {step!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"a step must be a finite number, got {step!r}")
    if not f.is_integer():
        return f
    try:
        return int(step)  # "12" or a tensor as given: exact past 2**53 too
    except (TypeError, ValueError, OverflowError):
        return int(f)


def plain_int(value: Any) -> int | None:
    """``value`` as an int when it is one (a Python or NumPy int; a bool is no count, though
    Python takes ``True`` as 1), else None: the caller raises its own error, naming the call."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None
