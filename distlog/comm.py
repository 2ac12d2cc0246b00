"""The one seam around ``torch.distributed``: every collective distlog runs lives here.

``Comm`` is the interface the rest of distlog uses; ``LocalComm`` is the single-process
implementation (laptop, or torch.distributed not initialised) and ``TorchComm`` runs on a
dedicated gloo group, so the CPU-side exchange works beside an NCCL training group and has
its own timeout. Collective failures become ``FlushTimeout``/``FlushError`` naming the
timeout, never an endless hang; both add ``diagnose``'s text (the ranks that did not arrive).
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from .errors import FlushError, FlushTimeout
from .reduce import buckets_of_rows, rank_slots, ranks_from_slots


class Comm(ABC):
    rank: int
    world_size: int
    #: collective calls issued so far (tests and benchmarks count them)
    calls: int = 0
    #: called on a timeout or a lost peer; its text (which ranks did not arrive) is added to
    #: the error
    diagnose: Any = None

    @abstractmethod
    def all_reduce(self, arr: np.ndarray, op: str) -> np.ndarray:
        """Element-wise reduce a float64 vector over all ranks; ``op`` is ``sum`` or ``max``."""

    @abstractmethod
    def all_gather_object(self, obj: Any) -> list[Any]: ...

    @abstractmethod
    def broadcast_object(self, obj: Any, src: int = 0) -> Any: ...

    def close(self) -> None:
        """Release what the collectives hold (the run calls it after its last collective)."""

    def barrier(self) -> None:
        self.all_reduce(np.zeros(1), "max")

    def gather_rows(self, row: np.ndarray) -> np.ndarray | None:
        """Every rank's ``row`` (its buckets ``s`` and ``m`` side by side), ``(world_size,
        len(row))``, in one ``all_gather`` when that is the transport (more than one rank, and
        at most ``gather_max_bytes`` to receive); None, sending nothing, otherwise. The same
        decision on every rank (sizes and the setting are alike)."""
        if self.world_size == 1 or self.world_size * row.size * 8 > gather_max_bytes():
            return None
        return self.all_gather_array(row)

    def reduce_buckets_ranked(self, s: np.ndarray, m: np.ndarray,
                              lo: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Element-wise SUM of ``s`` and MAX of ``m`` over all ranks plus, for each slot
        ``m[lo:]``, the lowest rank whose value is the maximum (float64; NaN where the maximum
        is not finite). Small buckets travel in one ``all_gather`` (``gather_rows``) and are
        reduced locally (latency-bound: one collective); large ones in ``all_reduce`` calls,
        so no rank ever receives more than ``gather_max_bytes`` (default 1 MiB,
        ``DISTLOG_GATHER_MAX_BYTES``). Both give the same result. (A steady flush calls
        ``gather_rows`` itself and reduces the rows later: ``reduce.reduce_gathered_rows``.)

        On the all_gather transport the ranks come free from the gathered rows. On the
        all_reduce transport they take one more ``all_reduce(MAX)`` of ``len(m) - lo`` slots
        holding ``-rank`` where a rank's value equals the reduced maximum: the maximum must be
        known before a rank can tell whether it holds it, and no element-wise sum or max of one
        pass can name the lowest holder exactly.
        """
        if self.world_size == 1:
            return s, m, np.where(np.isfinite(m[lo:]), 0.0, np.nan)
        rows = self.gather_rows(np.concatenate([s, m]))
        if rows is not None:
            return buckets_of_rows(rows, s.size, lo)
        mine = m[lo:].copy()  # all_reduce may reduce in place (torch.from_numpy shares memory)
        s_red, m_red = self.all_reduce(s, "sum"), self.all_reduce(m, "max")
        if m.size == lo:
            return s_red, m_red, np.zeros(0)
        held = self.all_reduce(rank_slots(mine, m_red[lo:], self.rank), "max")
        return s_red, m_red, ranks_from_slots(held)

    def all_gather_array(self, arr: np.ndarray) -> np.ndarray:
        """``(world_size, n)``: every rank's float64 vector (all of the same length)."""
        return np.asarray(self.all_gather_object(arr))


class LocalComm(Comm):
    """One process: every collective is the identity and costs nothing."""

    def __init__(self) -> None:
        self.rank, self.world_size = 0, 1

    def all_reduce(self, arr: np.ndarray, op: str) -> np.ndarray:
        return arr

    def all_gather_object(self, obj: Any) -> list[Any]:
        return [obj]

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        return obj


class TorchComm(Comm):
    """Collectives on a gloo group created with ``new_group`` on every rank."""

    def __init__(self, timeout: float = 600.0) -> None:
        import torch.distributed as dist

        self._dist = dist
        self._gather_into: Any = None  # all_gather into one tensor (False: this torch's gloo lacks it)
        self._gather_buffers: Any = None  # (input, its array, output, its array) of the last size
        self.timeout = timeout
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        # new_group is itself a collective: every rank creates it, in the same order.
        try:
            self.group = dist.new_group(backend="gloo", timeout=_dt.timedelta(seconds=timeout))
        except RuntimeError as e:  # (torch's DistStoreError: "wait timeout ... keys: /default_pg/...")
            if "timeout" not in str(e).lower() and "timed out" not in str(e).lower():
                raise
            raise FlushTimeout(
                f"starting the run: the other ranks did not arrive within {timeout:g} s (rank "
                f"{self.rank} of {self.world_size} waited). Starting a run is a collective under "
                "torch.distributed: every rank enters `with exp.run(...)` (or calls exp.start_run()) — "
                "not rank 0 alone, as `if rank == 0: wandb.init()` does; for values of rank 0 only, "
                f"log them on rank 0 inside the run every rank opened. Cause: {e}") from e

    def close(self) -> None:
        """Destroy this run's gloo group now, while the interpreter is fully alive.

        Otherwise the group lives as long as the run's objects, which may be freed only by the
        cyclic garbage collector, at any later moment or during interpreter shutdown, where
        destroying a gloo group can abort the process ("terminate called without an active
        exception", seen under torchrun)."""
        group, self.group = self.group, None
        if group is None:
            return
        try:
            self._dist.destroy_process_group(group)
        except (RuntimeError, ValueError, AssertionError):
            pass  # already gone with the default group (the script destroyed that first)

    def _run(self, what: str, fn, *args, **kw):
        self.calls += 1
        try:
            return fn(*args, **kw)
        except RuntimeError as e:  # gloo reports timeouts and lost peers as RuntimeError
            msg = str(e)
            if "timeout" in msg.lower() or "timed out" in msg.lower():
                raise FlushTimeout(
                    f"{what}: a rank did not arrive within {self.timeout:g} s (rank {self.rank} of "
                    f"{self.world_size} waited). Every rank must call flush()/close() the same "
                    f"number of times; raise flush_timeout= if ranks are just slow. Cause: {msg}"
                    + self._diagnosis()
                ) from e
            # (a hang seen from a rank whose peer timed out first and went: "connection
            # closed" here, so it names the ranks that did not arrive as well)
            raise FlushError(
                f"{what} failed on rank {self.rank} of {self.world_size}: {msg}. "
                "A peer rank probably exited or crashed; look at its log."
                + self._diagnosis()
            ) from e

    def _diagnosis(self) -> str:
        """What ``diagnose`` (set by the run: heartbeats of the ranks) says, if anything."""
        if self.diagnose is None:
            return ""
        try:
            return "\n" + self.diagnose()
        except Exception as e:  # noqa: BLE001 - the timeout itself is the error to raise
            return f"\n(could not read the ranks' heartbeats: {e!r})"

    def all_reduce(self, arr: np.ndarray, op: str) -> np.ndarray:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
        rop = {"sum": self._dist.ReduceOp.SUM, "max": self._dist.ReduceOp.MAX}[op]
        self._run(f"all_reduce({op})", self._dist.all_reduce, t, op=rop, group=self.group)
        return t.numpy()

    def all_gather_array(self, arr: np.ndarray) -> np.ndarray:
        import torch

        into = self._gather_into
        if into is not False:  # one (world_size, n) tensor: no list of tensors, no stack
            if into is None:  # first use: torch 2.13 names it all_gather_single
                into = self._gather_into = (getattr(self._dist, "all_gather_single", None)
                                            or self._dist.all_gather_into_tensor)
            # the steady flush gathers rows of one size: its two tensors are kept and reused
            # (two fresh tensors a call cost 30-60 us of a ~350 us gather here: bench notes)
            buffers = self._gather_buffers
            if buffers is None or buffers[1].size != arr.size:
                t = torch.empty(arr.size, dtype=torch.float64)
                out = torch.empty(self.world_size * arr.size, dtype=torch.float64)  # gloo: flat only
                buffers = self._gather_buffers = (t, t.numpy(), out, out.numpy())
            t, mine, out, gathered = buffers
            mine[:] = arr
            try:
                self._run("all_gather", into, out, t, group=self.group)
                # a copy: the rows outlive this call (the writer reduces them later)
                return gathered.reshape(self.world_size, arr.size).copy()
            except FlushError as e:  # a gloo without it says so on every rank, before sending
                if "support" not in str(e.__cause__):  # (gloo's words, not the diagnosis)
                    raise
                self._gather_into = False
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64))
        out = [torch.empty_like(t) for _ in range(self.world_size)]
        self._run("all_gather", self._dist.all_gather, out, t, group=self.group)
        return torch.stack(out).numpy()

    def all_gather_object(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world_size
        self._run("all_gather_object", self._dist.all_gather_object, out, obj, group=self.group)
        return out

    def broadcast_object(self, obj: Any, src: int = 0) -> Any:
        box = [obj]
        self._run("broadcast_object", self._dist.broadcast_object_list, box, src=src, group=self.group)
        return box[0]


def gather_max_bytes() -> int:
    """Largest gathered flush (bytes per rank) sent as one all_gather instead of two all_reduces
    (read once per process: every rank must decide alike, and a flush reads it every time)."""
    global _GATHER_MAX
    if _GATHER_MAX is None:
        _GATHER_MAX = int(os.environ.get("DISTLOG_GATHER_MAX_BYTES", 1 << 20))
    return _GATHER_MAX


_GATHER_MAX: int | None = None


def dist_initialized() -> bool:
    """Whether a torch.distributed process group is up, without importing torch.

    A process group exists only if the script imported ``torch.distributed`` (``import torch``
    does), so when it is not in ``sys.modules`` the answer is no, and opening a run in a script
    that never touched torch does not pay torch's import (about a second).
    """
    dist = sys.modules.get("torch.distributed")
    if dist is None:
        return False
    return dist.is_available() and dist.is_initialized()


def make_comm(timeout: float = 600.0) -> Comm:
    """A TorchComm when torch.distributed is initialised with >1 rank, else a LocalComm."""
    if dist_initialized():
        import torch.distributed as dist

        if dist.get_world_size() > 1:
            return TorchComm(timeout)
    return LocalComm()


def dist_state() -> tuple[int, int] | None:
    if not dist_initialized():
        return None
    import torch.distributed as dist

    return dist.get_rank(), dist.get_world_size()
