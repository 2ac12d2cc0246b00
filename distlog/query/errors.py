"""Errors of the query layer. Each says what was asked for and what exists instead.

    DistlogError
    └── QueryError
        ├── RunNotFound     (also FileNotFoundError)  no run at a URL; lists runs nearby
        ├── KeyNotFound     (also KeyError)           no such metric series; lists the keys
        └── RankNotFound    (also LookupError)        no data for a rank; lists the ranks
    DamagedRecord           (also ValueError)         a run's record is there but unreadable
                                                      (torn, or written by something else)
"""

from __future__ import annotations

import difflib
from typing import Iterable

from ..errors import DamagedRecord, DistlogError, damaged  # noqa: F401 (readers' names for them)


class QueryError(DistlogError):
    """A query named something that the store does not hold."""


class RunNotFound(QueryError, FileNotFoundError):
    def __str__(self) -> str:  # FileNotFoundError would print the args tuple
        return self.args[0] if self.args else ""


class KeyNotFound(QueryError, KeyError):
    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0] if self.args else ""


class FileNotInRun(KeyNotFound, FileNotFoundError):
    """No saved file (or version, or rank's save) of that name: a ``KeyNotFound`` of the read
    API and the ``FileNotFoundError`` the run's own ``exp.files`` raises, so either catch works."""

    def __str__(self) -> str:
        return self.args[0] if self.args else ""


class RankNotFound(QueryError, LookupError):
    pass


class DamagedRunRecord(RunNotFound, DamagedRecord):
    """A ``run.json`` that is there but torn or foreign: no run can be read from it (a
    ``RunNotFound``, as listings treat it), and a damaged record (``DamagedRecord``)."""


def listing(items: Iterable[object], limit: int = 20) -> str:
    """``a, b, c`` (``..., and N more``), or ``none``."""
    items = [str(i) for i in items]
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    return shown + (f", and {len(items) - limit} more" if len(items) > limit else "")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'a' or 'b'?"`` (the closest of ``known``), or ``""``."""
    near = difflib.get_close_matches(name, [str(k) for k in known], n=3)
    return f"; did you mean {' or '.join(map(repr, near))}?" if near else ""
