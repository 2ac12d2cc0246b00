"""The contract between a run and its components: what ``metrics``, ``logs``, ``params``,
``readme``, ``files``, the heartbeat and the rank monitor may use of the run they belong to.

Components receive an object satisfying ``RunContext`` (the ``Run``) and never import
``distlog.run``: dependencies run one way, run → components → context, writers and storage.
Everything here exists on a started run; ``comm`` is whatever ``Comm`` the run was given
(``LocalComm`` on one process, ``TorchComm`` under torch.distributed, or one injected by a test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from .comm import Comm
    from .launcher import RankInfo
    from .logline import LogRecord
    from .storage.base import StorageBackend
    from .writers.rowstore import BackgroundWriter
    from .writers.textlog import TextLogSink


class RunContext(Protocol):
    # identity, agreed by every rank when the run started
    rank: int
    world_size: int
    attempt: int
    info: "RankInfo"  # host, local rank, node, launcher ids
    comm: "Comm"
    # where the run lives: ``storage`` is the run folder, ``root`` the logger's root (the CAS)
    storage: "StorageBackend"
    root: "StorageBackend"
    url: str
    # what the training loop set
    current_step: int | None
    stop_requested: bool
    last_log: "LogRecord | None"
    # the collaborators components share (each owned by the run)
    log_sink: "TextLogSink"
    metrics: Any  # MetricsLogger: the heartbeat reads its step counters
    monitor: Any  # RankMonitor: telemetry and heartbeats

    def main_writer(self) -> "BackgroundWriter": ...  # rank 0's writer of the run's series

    def local_writer(self) -> "BackgroundWriter": ...  # this rank's writer of its own values

    def writer_failed(self) -> bool: ...

    def raise_writer_error(self, every_rank: bool = False) -> None: ...

    def commit(self, timeout: float | None = 300.0) -> None: ...

    def after_flush(self) -> None: ...

    def on_close(self, fn: Callable[[], None]) -> None: ...

    def before_final_flush(self, fn: Callable[[], None]) -> None: ...
