"""The exceptions distlog raises.

    DistlogError
    ├── StorageError            a store refused or failed an operation (names the URL and the fix)
    │   ├── BackendNotInstalled an optional package for a URL scheme is missing (install hint)
    │   └── UnknownScheme       no backend is registered for a URL scheme
    ├── FlushError              a flush could not complete on every rank
    │   ├── FlushTimeout        a rank did not arrive within the flush timeout
    │   └── FlushMismatch       ranks called flush()/close() out of step (names the ranks)
    ├── WriterError             the background writer failed; raised at the next flush or close
    ├── RunStateError           an operation needs an open run (or none)
    │   └── RunInUseError       another live process writes the run asked for (``claims``)
    ├── LayoutError             a root holds a layout distlog does not write (gc refuses)
    └── QueryError              (distlog.query.errors) a run, key or rank that does not exist;
                                RunNotFound, KeyNotFound, RankNotFound list what does

Bad input raises the built-in ``TypeError`` / ``ValueError`` with a message that says what
was expected, what came, and how to fix it.
"""

from __future__ import annotations

from .layout import PARAMS_FILE


class DistlogError(Exception):
    """Base class of every error distlog raises on its own account."""


class StorageError(DistlogError, OSError):
    """A storage backend failed; the message names the URL and what to do."""


class BackendNotInstalled(StorageError):
    """The backend for a URL scheme needs an optional package that is not installed."""


class UnknownScheme(StorageError, ValueError):
    """No storage backend is registered for a URL scheme."""


class FlushError(DistlogError, RuntimeError):
    """A collective flush failed."""


class FlushTimeout(FlushError, TimeoutError):
    """A rank did not reach the flush within the configured timeout."""


class FlushMismatch(FlushError):
    """Ranks were not in the same flush (a skipped flush(), or flush() against close())."""


class RankLost(DistlogError, RuntimeError):
    """Another rank's process ended without closing the run (killed, e.g. by the OOM killer,
    or crashed), and the launcher then stopped this one: the run's cause."""


class WriterError(DistlogError, RuntimeError):
    """The background writer failed; earlier rows stay committed."""


class RunStateError(DistlogError, RuntimeError):
    """The operation needs an open run, or a run is already open."""


class RunInUseError(RunStateError):
    """Another live process writes the run this process was asked to start (``claims``)."""


class RowsRefused(WriterError):
    """Rows the writer could not take (a series whose width changed, a failing handler): they
    were not stored and are not retried (a store's failure, ``WriterError``, is)."""


class LayoutError(DistlogError, ValueError):
    """A root holds a layout distlog does not understand (``distlog gc`` refuses to run)."""


class DamagedRecord(DistlogError, ValueError):
    """A JSON record of a run that is there but does not parse, or is not what distlog writes
    there (torn by a write cut short, or written by something else). The message names the
    file, what of the run it makes unreadable, what can still be read and what to do."""


def damaged(backend: object, path: str, why: str) -> DamagedRecord:
    """The ``DamagedRecord`` of ``path`` under ``backend`` (a storage backend), ``why`` saying
    what is wrong with it."""
    url = getattr(backend, "url", str(backend))
    leaf = path.rpartition("/")[2]
    own = "/ranks/rank-" in f"{url}/{path}"  # (a rank's own series: its rank folder's storage)
    restore = "Restore it from a copy of the run"
    if leaf == PARAMS_FILE:
        lost = ("the run's params cannot be read; its series, logs and files still can. Restore "
                "the file from a copy of the run, or rewrite it with the run's params")
    elif leaf in ("scalars.commit.json", "histograms.commit.json"):
        what = "series" if leaf.startswith("scalars") else "histograms"
        rest = "the run's params, logs, files and its other series" if own else "its params, logs and files"
        lost = (f"it says how many rows of each series are written, so {'this rank' if own else 'the run'}'s "
                f"{what} cannot be read; {rest} still can. {restore}")
    elif leaf == "telemetry.commit.json":
        lost = ("the run's telemetry (`distlog ranks`, the dashboard's Ranks tab) cannot be read; its "
                f"series, params, logs and files still can. {restore}")
    elif leaf == "logs.commit.json":
        lost = ("the run's merged logs table cannot be read; each rank's text log under logs/ still "
                f"can, and everything else. {restore}, or delete it: the next close merges the logs again")
    elif leaf == "files.commit.json":
        lost = ("the run's files table cannot be read; each rank's manifest under files/ still can, "
                f"and everything else. {restore}")
    elif leaf.endswith(".commit.json"):
        lost = f"it says how many rows of a table are written, so that table cannot be read. {restore}"
    else:
        lost = "restore it from a copy of the run"
    return DamagedRecord(f"{url}/{path} is damaged ({why}; a write cut short, such as a full disk "
                         f"or a killed copy, leaves a record torn): {lost}")
