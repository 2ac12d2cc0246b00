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
    RunStateError,
    StorageError,
    UnknownScheme,
    WriterError,
)
from .dashboard import serve
from .experiment import Experiment, get_logger
from .logline import LogRecord
from .query import open_root, open_run
from .storage import StorageBackend, open_storage, register_backend

__all__ = [
    "BackendNotInstalled",
    "DistlogError",
    "Experiment",
    "FlushError",
    "FlushMismatch",
    "FlushTimeout",
    "LogRecord",
    "RunStateError",
    "StorageBackend",
    "StorageError",
    "UnknownScheme",
    "WriterError",
    "get_logger",
    "open_root",
    "open_run",
    "open_storage",
    "register_backend",
    "serve",
]
