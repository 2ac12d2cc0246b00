"""A step as records keep it (log lines, file records, ``exp.step``)."""

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
