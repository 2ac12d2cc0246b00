"""Plain-text rendering of query results for the CLI: aligned tables, CSV, JSON, times."""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import sys
import unicodedata
from typing import Any, Iterable, Sequence

import numpy as np

from ..logline import LogRecord, format_time


def fmt_value(v: Any) -> str:
    """Numbers compactly (``%.6g``; integral floats without ``.0``), None as ``-``."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.6g}"
    if isinstance(v, np.ndarray) and v.ndim:  # one line, long ones cut in the middle
        text = np.array2string(v, separator=", ", max_line_width=sys.maxsize, threshold=64, edgeitems=3)
        text = re.sub(r",\s+", ", ", re.sub(r"\[\s+", "[", text))  # (no padding, rows on one line)
        return one_line(text)
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # NumPy scalars, pandas NA
        try:
            return fmt_value(v.item())
        except (AttributeError, ValueError):
            pass
    if v.__class__.__name__ == "NAType":
        return "-"
    return one_line(str(v))


#: control characters (C0, DEL, C1) as a table cell or a ``key = value`` line shows them:
#: escaped, as the text logs escape a message, so a param's newline cannot start a row of its own
_CONTROLS = {**{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))},
             0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


#: what a log message shows of them: a newline starts an indented line and a tab stays; every
#: other control character (ESC of a terminal sequence, a bare CR that would overwrite the
#: header, BEL) is escaped
_MESSAGE_CONTROLS = {c: v for c, v in _CONTROLS.items() if c not in (0x0A, 0x09)}


def shown_text(text: str) -> str:
    """``text`` for a terminal: control characters escaped but newlines and tabs."""
    return text.translate(_MESSAGE_CONTROLS) if not text.isprintable() else text


def one_line(text: str) -> str:
    """``text`` with its control characters (newline, tab, ...) escaped."""
    return text.translate(_CONTROLS) if not text.isprintable() else text


def fmt_exact(v: Any) -> str:
    """A param as stored: floats in their shortest round-trip form (``repr``: values that
    differ print differently, ``1.0`` stays ``1.0``), the rest as ``fmt_value``."""
    if isinstance(v, np.ndarray) and v.ndim == 0:  # (a 0-d tensor's param: its one value)
        v = v[()]
    if hasattr(v, "dtype") and getattr(v.dtype, "kind", "") == "f" and not hasattr(v, "__len__"):
        # a NumPy float: the shortest text that round-trips at its own precision, written as
        # Python writes a float (float32 1e-4 is 0.0001, as the float 1e-4 is)
        return repr(float(str(v)))
    if isinstance(v, float):
        return repr(v)
    return fmt_value(v)


def fmt_step(v: Any) -> str:
    """A step in full (``1000000000000007``, not ``1e+15``; a float64 step past 2**53 too, as
    the integer it holds); one that is not an integer as stored (``fmt_exact``)."""
    if isinstance(v, float) and v.is_integer():  # (NaN and inf are not)
        return str(int(v))
    return fmt_exact(v)


def fmt_time(t: float | None) -> str:
    """``2026-11-28 07:00:00`` (UTC) or ``-``."""
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return "-"
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    """``4.2s``, ``3m05s``, ``2h03m``, ``3d04h`` or ``-``."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], right: Iterable[int] | None = None,
          exact: Iterable[int] = (), steps: Iterable[int] = ()) -> str:
    """An aligned text table; numbers are right-aligned unless ``right`` says which columns.
    Columns ``exact`` (params) are written with ``fmt_exact``, ``steps`` with ``fmt_step``,
    the others with ``fmt_value``."""
    fmts = {**{i: fmt_exact for i in exact}, **{i: fmt_step for i in steps}}
    cells = [[fmts.get(i, fmt_value)(v) for i, v in enumerate(row)] for row in rows]
    widths = [_width(h) for h in headers]
    for row in cells:
        widths = [max(w, _width(c)) for w, c in zip(widths, row)]
    if right is None:
        right = {i for i in range(len(headers))
                 if rows and all(_is_number(r[i]) or r[i] is None for r in rows)}
    right = set(right)

    def line(vals: Sequence[str]) -> str:
        return "  ".join(" " * (w - _width(v)) + v if i in right else v + " " * (w - _width(v))
                         for i, (v, w) in enumerate(zip(vals, widths))).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide (East Asian) characters two, combining
    marks none (``len`` would misalign every column after a Chinese run name)."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in text)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or (
        hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iuf")


def frame_table(df: Any, exact: Iterable[str] = (), steps: Iterable[str] = ()) -> str:
    """``table`` of a DataFrame; the columns named in ``exact`` with ``fmt_exact``, those in
    ``steps`` with ``fmt_step``."""
    exact, steps = set(exact), set(steps)
    return table(list(df.itertuples(index=False, name=None)), [str(c) for c in df.columns],
                 exact=[i for i, c in enumerate(df.columns) if c in exact],
                 steps=[i for i, c in enumerate(df.columns) if c in steps])


def _nan_as_text(df: Any) -> Any:
    """``df`` with each NaN value as ``"nan"``: an empty cell (CSV) or ``null`` (JSON) is a
    value that is not there (None: a step a key has no row at, a run without the metric),
    and a NaN that was logged must not read the same."""
    out = None
    for i, (name, col) in enumerate(df.items()):
        mark: Any = "nan"
        if col.dtype.kind == "f" and isinstance(col.dtype, np.dtype):
            bad = col.isna().to_numpy()
        elif col.dtype == object:  # (a NumPy float32 NaN is no Python float)
            bad = np.fromiter((isinstance(v, (float, np.floating)) and v != v for v in col), bool, len(col))
        elif not isinstance(col.dtype, np.dtype):  # pandas' own missing value (a str column's
            bad, mark = col.isna().to_numpy(), None  # None, which pandas 3 holds as NaN): none
        else:
            continue
        if bad.any():
            out = df.copy() if out is None else out
            fixed = col.astype(object)  # (a copy)
            fixed[bad] = mark
            out.isetitem(i, fixed)
    return df if out is None else out


def frame_csv(df: Any, path: str | None = None) -> str | None:
    """The frame as CSV (written to ``path`` when given): floats exact, ``nan`` / ``inf`` /
    ``-inf`` as such, an empty cell where there is no value."""
    return _nan_as_text(df).to_csv(path, index=False, lineterminator="\n")


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (AttributeError, ValueError):
            pass
    if isinstance(v, float) and not math.isfinite(v):  # (JSON has no such numbers)
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v.__class__.__name__ == "NAType":
        return None
    if isinstance(v, dict):  # a param's value: non-finite numbers inside it too
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def frame_json(df: Any) -> str:
    """One JSON object per row, in a list: ``null`` where there is no value, NaN and the
    infinities as ``"nan"``, ``"inf"`` and ``"-inf"`` (strict JSON has no such numbers)."""
    df = _nan_as_text(df)  # (as in CSV: a NaN "nan", a str column's missing value null)
    rows = [{str(k): _jsonable(v) for k, v in zip(df.columns, row)}
            for row in df.itertuples(index=False, name=None)]
    return json.dumps(rows, indent=1, default=str, allow_nan=False)


def render_frame(df: Any, fmt: str, exact: Iterable[str] = (), steps: Iterable[str] = ()) -> str:
    if fmt == "csv":
        return frame_csv(df).rstrip("\n")
    if fmt == "json":
        return frame_json(df)
    return frame_table(df, exact, steps)


def format_record(r: LogRecord, fields: bool = False) -> str:
    """One record for people: time, level, host:rank, attempt, step, message (continuation
    lines indented; other control characters escaped, ``shown_text``: a stored terminal
    sequence is shown, not run; ``--raw`` prints the stored lines)."""
    step = "-" if r.step is None else str(r.step)
    when = format_time(r.time)[:26].replace("T", " ")
    head = f"{when} {r.level:<8} {r.host or '-'}:r{r.rank} a{r.attempt} s{step}"
    msg = shown_text(r.message).replace("\n", "\n    ")
    text = f"{head}  {msg}"
    if fields and r.fields:
        extra = {k: v for k, v in r.fields.items() if k != "traceback"}
        if extra:
            text += "  " + json.dumps(extra, sort_keys=True, default=repr)
        if "traceback" in r.fields:
            text += "\n    " + shown_text(str(r.fields["traceback"])).rstrip("\n").replace("\n", "\n    ")
    return text
