"""What every component of a run may know about it: who this rank is and where the run lives.

``RunContext`` is a small record the run builds once every rank agreed on the run (in
``Run.start``) and hands to each component (``metrics``, ``logs``, ``params``, ``readme``,
``files``, the rank monitor). It holds identity and place, the step the training loop set,
and the close hooks — nothing else. The collaborators a component uses are passed to it
explicitly, each only to the components that use it:

* ``comm`` (``distlog.comm.Comm``): the metrics flush and the rank monitor,
* the scalar writers (``distlog.writers.runwriters.RunWriters``): metrics and the monitor,
* the text sink (``distlog.writers.textlog.TextLogSink``): the text logger.

Dependencies run one way: run → components → context, writers, storage. No component
imports ``distlog.run`` or holds the run; this module imports no component
(tests/test_import_graph.py checks both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .launcher import RankInfo
    from .storage.base import StorageBackend


@dataclass(eq=False, slots=True)
class RunContext:
    # identity, agreed by every rank when the run started
    rank: int
    world_size: int
    attempt: int
    info: "RankInfo"  # host, local rank, node, launcher ids
    # where the run lives: ``storage`` is the run folder, ``root`` the logger's root (the CAS)
    storage: "StorageBackend"
    root: "StorageBackend"
    # what the training loop set (through the run: ``exp.step(n)``, ``exp.request_stop()``,
    # the framework integrations); components only read them
    current_step: int | None = None
    stop_requested: bool = False
    # hooks the run calls when it closes; components register, the run runs them
    final_flush_hooks: list[Callable[[], None]] = field(default_factory=list, repr=False)
    close_hooks: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return self.storage.url

    def before_final_flush(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on this rank before the closing flush (make per-rank records durable)."""
        self.final_flush_hooks.append(fn)

    def on_close(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` when the run closes, after the final flush (rank 0 may merge tables);
        hooks run in reverse order of registration."""
        self.close_hooks.append(fn)
