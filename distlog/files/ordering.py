"""The orders ``make_video`` takes frames in (natural, name, time, step, a key function)."""

from __future__ import annotations

import re
from typing import Any

from ..writers.manifest import FileRecord


_NUM = re.compile(r"(\d+)")


def _natural_key(r: FileRecord) -> list[Any]:
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in _NUM.split(r.path) if t]


def _sort_records(recs: list[FileRecord], sort: Any) -> list[FileRecord]:
    if callable(sort):
        return sorted(recs, key=sort)
    if sort in (None, False, "time"):
        return sorted(recs, key=lambda r: (r.time, r.rank))
    if sort in (True, "natural"):
        return sorted(recs, key=_natural_key)
    if sort == "name":
        return sorted(recs, key=lambda r: r.path)
    if sort == "step":
        return sorted(recs, key=lambda r: (-1 if r.step is None else r.step, r.time))
    raise ValueError(f"make_video sort={sort!r}; use 'natural', 'name', 'time', 'step', "
                     "a key function, or None")
