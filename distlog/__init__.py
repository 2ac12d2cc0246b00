"""distlog: a logger for distributed training.

    exp = distlog.get_logger("./runs")
    with exp.experiment("mnist"), exp.run():
        exp.params.set(lr=1e-3)
        exp.metrics("train").collect(step=1, loss=0.5)
        exp.metrics.flush()          # all-reduced across ranks; rank 0 writes Zarr
"""

__version__ = "0.1.0"

from .errors import (
    BackendNotInstalled,
    DistlogError,
    FlushError,
    FlushMismatch,
    FlushTimeout,
    RunInUseError,
    RunStateError,
    StorageError,
    UnknownScheme,
    WriterError,
)
import typing as _typing

from .experiment import Experiment, close_open_runs, get_logger
from .logline import LogRecord
from .storage import StorageBackend, open_storage, register_backend

if _typing.TYPE_CHECKING:
    from .cas import FileChangedError
    from .dashboard import serve
    from .query import open_root, open_run
    from .query.errors import DamagedRecord, KeyNotFound, QueryError, RunNotFound

# the readers and the dashboard are imported on first use (PEP 562): a training script that
# only writes does not pay for them (~50 ms of ``import distlog``)
_LAZY = {"open_root": "query", "open_run": "query", "serve": "dashboard", "query": None, "dashboard": None,
         # errors a script catches by name: ``except distlog.DamagedRecord``
         "QueryError": "query.errors", "RunNotFound": "query.errors", "KeyNotFound": "query.errors",
         "DamagedRecord": "query.errors", "FileChangedError": "cas"}


def __getattr__(name: str) -> _typing.Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'distlog' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f"{__name__}.{_LAZY[name] or name}")
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "BackendNotInstalled",
    "DamagedRecord",
    "DistlogError",
    "Experiment",
    "FileChangedError",
    "FlushError",
    "FlushMismatch",
    "FlushTimeout",
    "KeyNotFound",
    "LogRecord",
    "QueryError",
    "RunInUseError",
    "RunNotFound",
    "RunStateError",
    "StorageBackend",
    "StorageError",
    "UnknownScheme",
    "WriterError",
    "close_open_runs",
    "get_logger",
    "open_root",
    "open_run",
    "open_storage",
    "register_backend",
    "serve",
]
