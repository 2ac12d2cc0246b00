"""Spawn N real ranks with a gloo process group; a hang becomes a failure with tracebacks.

    results = run_ranks(worker, 4, tmp_path, arg1, arg2)   # worker(rank, world, *args)

Rendezvous goes through a file in the test's temp dir (no ports, safe under xdist). Each rank
arms ``faulthandler`` so that, if it hangs, its stack is written to a file the parent reads
into the failure message.
"""

from __future__ import annotations

import faulthandler
import multiprocessing as mp
import os
import pickle
import traceback
import uuid
from pathlib import Path
from typing import Any, Callable


def _child(fn, rank, world, args, init_file, result_q, dump_path, timeout, env):
    os.environ.update(env)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with open(dump_path, "w") as dump:
        faulthandler.dump_traceback_later(timeout, exit=True, file=dump)
        try:
            import datetime

            import torch.distributed as dist

            dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                    world_size=world, timeout=datetime.timedelta(seconds=timeout))
            try:
                out = fn(rank, world, *args)
            finally:
                try:
                    dist.destroy_process_group()
                except Exception:
                    pass
            result_q.put((rank, True, pickle.dumps(out)))
        except BaseException as e:  # noqa: BLE001
            result_q.put((rank, False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
        finally:
            faulthandler.cancel_dump_traceback_later()


class RankFailure(AssertionError):
    pass


def run_ranks(fn: Callable[..., Any], world: int, tmp_path: Path, *args: Any, timeout: float = 90,
              env: dict | None = None, expect_failure: bool = False) -> list[Any]:
    """Run ``fn(rank, world, *args)`` on ``world`` spawned ranks; return their results by rank.

    ``env`` is either one dict for every rank or ``{rank: dict}``. With ``expect_failure`` the
    per-rank outcomes are returned as ``(ok, value_or_error_text)`` instead of raising.
    """
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    tag = uuid.uuid4().hex[:8]
    init_file = Path(tmp_path) / f"rdzv-{tag}"
    dumps = [Path(tmp_path) / f"hang-{tag}-rank{r}.txt" for r in range(world)]
    per_rank_env = env if env and all(isinstance(k, int) for k in env) else None
    procs = []
    for r in range(world):
        e = (per_rank_env or {}).get(r, {}) if per_rank_env is not None else (env or {})
        p = ctx.Process(target=_child, args=(fn, r, world, args, str(init_file), q, str(dumps[r]), timeout, e))
        p.start()
        procs.append(p)
    results: dict[int, tuple[bool, Any]] = {}
    import queue as _queue

    deadline_each = timeout + 30
    try:
        while len(results) < world:
            try:
                rank, ok, payload = q.get(timeout=deadline_each)
            except _queue.Empty:
                break
            results[rank] = (ok, pickle.loads(payload) if ok else payload)
    finally:
        for p in procs:
            p.join(10)
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
    missing = [r for r in range(world) if r not in results]
    if missing:
        stacks = "\n".join(f"--- rank {r} ---\n{dumps[r].read_text() if dumps[r].exists() else '(no dump)'}"
                           for r in missing)
        raise RankFailure(f"ranks {missing} did not finish within {timeout} s (exit codes "
                          f"{[p.exitcode for p in procs]}):\n{stacks}")
    if expect_failure:
        return [results[r] for r in range(world)]
    failed = [(r, results[r][1]) for r in range(world) if not results[r][0]]
    if failed:
        raise RankFailure("\n".join(f"--- rank {r} failed ---\n{err}" for r, err in failed))
    return [results[r][1] for r in range(world)]
