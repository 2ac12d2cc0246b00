"""Who am I? Rank, world size and job identity, read from per-launcher environment tables.

Prefers ``torch.distributed`` once it is initialised (global rank and world size), then
torchrun's variables, then SLURM's inside an srun step (``SLURM_PROCID`` is per srun task;
the batch script's own ``SLURM_PROCID=0`` is no rank), then torch's env:// variables any other
launcher sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), then a single process.
``LOCAL_RANK`` is never taken as the global rank (it repeats on every node).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Mapping

# launcher -> {field: environment variable}
LAUNCHERS: dict[str, dict[str, str]] = {
    "torchrun": {
        "rank": "RANK",
        "world_size": "WORLD_SIZE",
        "local_rank": "LOCAL_RANK",
        "node_rank": "GROUP_RANK",
        "run_id": "TORCHELASTIC_RUN_ID",
        "restart_count": "TORCHELASTIC_RESTART_COUNT",
    },
    "slurm": {
        "rank": "SLURM_PROCID",
        "world_size": "SLURM_NTASKS",
        "local_rank": "SLURM_LOCALID",
        "node_rank": "SLURM_NODEID",
        "job_id": "SLURM_JOB_ID",
        "array_job_id": "SLURM_ARRAY_JOB_ID",
        "array_task_id": "SLURM_ARRAY_TASK_ID",
        "restart_count": "SLURM_RESTART_COUNT",
    },
    # torch's env:// variables, set by other launchers (DeepSpeed, mpirun wrappers, a script
    # that spawns its ranks itself)
    "env": {
        "rank": "RANK",
        "world_size": "WORLD_SIZE",
        "local_rank": "LOCAL_RANK",
        "node_rank": "NODE_RANK",
    },
}
# how a launcher is recognised
_MARKERS = {"torchrun": "TORCHELASTIC_RUN_ID", "slurm": "SLURM_JOB_ID", "env": "WORLD_SIZE"}


@dataclass(frozen=True)
class RankInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    node_rank: int = 0
    host: str = field(default_factory=socket.gethostname)
    launcher: str = "none"
    # the launcher's identity of this job/attempt, recorded in the run metadata
    ids: Mapping[str, str] = field(default_factory=dict)
    # local_rank and node_rank came from the launcher; else (mp.spawn, a script's own ranks)
    # the run places the ranks by host when it starts (``place_by_host``)
    placed: bool = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int(env: Mapping[str, str], name: str | None, default: int, minimum: int = 0) -> int:
    """The integer in ``env[name]`` (``default`` when unset). A value that is not an integer
    of at least ``minimum`` is an error naming the variable: a typo there must not make every
    process rank 0 of a world of 1."""
    if not name or name not in env:
        return default
    text = env[name]
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ValueError(
            f"environment variable {name}={text!r}: expected an integer >= {minimum}. "
            f"It is set by the launcher (torchrun, srun); fix or unset {name} in the job's "
            f"environment.")
    return value


def _in_srun_step(env: Mapping[str, str]) -> bool:
    """Whether this process is a task of an srun step, where ``SLURM_PROCID``/``SLURM_NTASKS``
    number the step's tasks. The batch script (and whatever it starts without srun) also
    sees ``SLURM_PROCID=0``, ``SLURM_LOCALID=0`` and the allocation's ``SLURM_NTASKS``, but
    no ``SLURM_STEP_ID``: there they say nothing about the processes a launcher of its own
    (DeepSpeed's, a script setting ``RANK``) starts, nor make one python a rank of many."""
    return "SLURM_STEP_ID" in env or "SLURM_STEPID" in env


def detect(env: Mapping[str, str] | None = None, dist_state: tuple[int, int] | None = None) -> RankInfo:
    """Rank information for this process.

    ``dist_state`` is ``(rank, world_size)`` from an initialised process group (the comm
    layer passes it); it wins over the environment.
    """
    env = os.environ if env is None else env
    host = env.get("DISTLOG_HOSTNAME") or socket.gethostname()  # overridable for tests
    ids: dict[str, str] = {}
    for name, table in LAUNCHERS.items():
        for key, var in table.items():
            if key in ("run_id", "restart_count", "job_id", "array_job_id", "array_task_id") and var in env:
                ids[f"{name}.{key}"] = env[var]
    launcher = "none"
    table: dict[str, str] = {}
    # torchrun inside SLURM: torchrun's RANK is the global rank of the training job
    for name in ("torchrun", "slurm", "env"):
        if _MARKERS[name] in env and LAUNCHERS[name]["rank"] in env:
            if name == "slurm" and not _in_srun_step(env):
                continue  # the batch script's own SLURM_PROCID=0: not a task of a step
            launcher, table = name, LAUNCHERS[name]
            break
    local = _int(env, table.get("local_rank"), 0)
    node = _int(env, table.get("node_rank"), 0)
    if dist_state is not None:
        rank, world = dist_state
    else:
        rank = _int(env, table.get("rank"), 0)
        world = _int(env, table.get("world_size"), 1, minimum=1)
        if rank >= world:
            raise ValueError(
                f"environment variables {table['rank']}={rank} and {table['world_size']}={world}: "
                f"the rank must be below the world size. Fix the launcher's variables.")
    placed = "local_rank" in table and table["local_rank"] in env
    return RankInfo(rank, world, local, node, host, launcher, ids, placed)


def place_by_host(hosts: list[str]) -> list[tuple[int, int]]:
    """``(local_rank, node_rank)`` of each rank (``hosts[rank]`` its host) when no launcher
    said: the ranks of a host numbered in rank order, the hosts in the order of their first
    rank. (``torch.multiprocessing.spawn`` sets no ``LOCAL_RANK``: every rank read 0.)"""
    nodes: dict[str, int] = {}
    seen: dict[str, int] = {}
    out = []
    for host in hosts:
        node = nodes.setdefault(host, len(nodes))
        local = seen[host] = seen.get(host, -1) + 1
        out.append((local, node))
    return out


def launcher_run_id(env: Mapping[str, str] | None = None) -> str | None:
    """A run id every rank of the job derives alike, or None (then rank 0 picks one): the
    name the sbatch templates set, else the job's (``job_run_id``)."""
    env = os.environ if env is None else env
    return named_run_id(env) or job_run_id(env)


def named_run_id(env: Mapping[str, str] | None = None) -> str | None:
    """The run name the sbatch templates set (``DISTLOG_RUN_ID``, ``DISTLOG_RUN_NAME``)."""
    env = os.environ if env is None else env
    for var in ("DISTLOG_RUN_ID", "DISTLOG_RUN_NAME"):
        if env.get(var):
            return env[var]
    return None


def job_run_id(env: Mapping[str, str] | None = None) -> str | None:
    """The id of the launched job: SLURM's job (array task), else torchrun's rendezvous."""
    env = os.environ if env is None else env
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"slurm-{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return f"slurm-{env['SLURM_JOB_ID']}"
    rid = env.get("TORCHELASTIC_RUN_ID")
    if rid and rid != "none":  # torchrun's default without --rdzv-id is the literal "none"
        return f"torchrun-{rid}"
    return None


def restart_counts(env: Mapping[str, str] | None = None) -> dict[str, int]:
    env = os.environ if env is None else env
    return {
        "slurm": _int(env, "SLURM_RESTART_COUNT", 0),
        "torchrun": _int(env, "TORCHELASTIC_RESTART_COUNT", 0),
    }
