"""Values made JSON: NumPy columns as lists (NaN and infinities become ``null``), params as
plain JSON (tuples as lists, anything exotic as its ``repr``). Pure functions."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..query.render import fmt_value
from ..query.series import exact_ints


def column(a: np.ndarray, digits: int | None = None) -> list:
    """A float column as a list; integral columns as ints; non-finite values as None."""
    a = np.asarray(a, dtype=np.float64)
    ints = exact_ints(a)
    if ints.dtype.kind == "i":
        return ints.tolist()
    finite = np.isfinite(a)
    if digits is not None:
        a = np.round(a, digits)
    out = a.tolist()
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            out[i] = None
    return out


def nonfinite_marks(a: np.ndarray) -> list | None:
    """``"NaN"``, ``"inf"`` or ``"-inf"`` where ``a`` holds no finite number, None elsewhere
    (``column`` sends them all as null); None when every value is finite."""
    a = np.asarray(a, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(a))
    if not len(bad):
        return None
    out: list = [None] * len(a)
    for i in bad.tolist():
        v = a[i]
        out[i] = "NaN" if v != v else ("inf" if v > 0 else "-inf")
    return out


def columns(cols: dict[str, np.ndarray]) -> dict[str, list]:
    return {k: column(v, 3 if k == "time" else None) for k, v in cols.items()}


def jsonable(value: Any) -> Any:
    """A param value as plain JSON (for the params tree and the runs table), shown as the
    CLI shows it: a path, a date as their text, a set in one order, an int that a browser's
    numbers cannot hold exactly (past 2**53) as its digits, a long array as one line."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _EXACT_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=repr)  # (as stored: the same order in every process)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, np.ndarray) and value.size <= 64:
        return jsonable(value.tolist())
    return fmt_value(value)


_EXACT_INT = 2**53  # the largest integers a JavaScript number holds exactly


def nonfinite_params(flat: dict[str, Any]) -> dict[str, str]:
    """The flat params that are floats but not finite numbers, as ``"nan"``, ``"inf"`` or
    ``"-inf"`` (``jsonable`` sends them as that text, which a text param may also be)."""
    return {k: repr(float(v)) for k, v in flat.items()
            if isinstance(v, (float, np.floating)) and not math.isfinite(v)}


def dumps(obj: Any) -> bytes:
    """Compact JSON, with any NaN or infinity that slipped through as ``null``."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_default).encode()
    except ValueError:
        return json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False,
                          default=_default).encode()


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        v = o.item()
        return v if not isinstance(v, float) or math.isfinite(v) else None
    if isinstance(o, np.ndarray):
        return column(o)
    return repr(o)
