"""A 2-rank training script that the kill -9 campaign kills and resumes.

    python killable_train.py ROOT MODE STEPS WORKDIR

MODE ``ckpt``: rank 0 commits the series and then writes a checkpoint (its step) every 7
steps; a new attempt resumes after it with ``resume_step``. MODE ``restart``: no checkpoint, a
new attempt starts again at step 0 (and must rewind what the killed attempt stored).
Every value is a function of (rank, step), so the oracle is known for any attempt.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sys
import time
import uuid


def value(rank: int, step: int) -> float:
    return math.cos(0.05 * step) * (rank + 1) + 0.001 * step


def own(rank: int, step: int) -> float:
    return 1000.0 * rank + step


def _rank(rank, world, root, mode, steps, workdir, init_file):
    import datetime

    import torch.distributed as dist

    import distlog

    with open(os.path.join(workdir, f"pid-{rank}"), "w") as f:
        f.write(str(os.getpid()))
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                           timeout=datetime.timedelta(seconds=30))
    ckpt_file = os.path.join(workdir, "checkpoint")
    ckpt = int(open(ckpt_file).read()) if mode == "ckpt" and os.path.exists(ckpt_file) else None
    exp = distlog.get_logger(root, commit_interval=0.05, chunk_rows=16, flush_timeout=5)
    with exp.experiment("kill"), exp.run("k", resume_step=ckpt):
        start = 0 if ckpt is None else ckpt + 1
        for step in range(start, steps):
            exp.metrics.collect(step=step, loss=value(rank, step))
            exp.metrics.flush()
            exp.metrics.log(step=step, own=own(rank, step))
            time.sleep(0.03)  # slow enough that the kill lands mid-run
            if mode == "ckpt" and step % 7 == 6:
                exp.metrics.commit(barrier=True)  # every rank's rows are stored before the checkpoint
                if rank == 0:
                    tmp = ckpt_file + ".tmp"
                    with open(tmp, "w") as f:
                        f.write(str(step))
                    os.replace(tmp, ckpt_file)
            if rank == 0:
                with open(os.path.join(workdir, "progress"), "w") as f:
                    f.write(str(step))
    dist.destroy_process_group()


def main() -> None:
    root, mode, steps, workdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    init_file = os.path.join(workdir, f"rdzv-{uuid.uuid4().hex[:8]}")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_rank, args=(r, 2, root, mode, steps, workdir, init_file)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    sys.exit(max(abs(p.exitcode or 0) for p in procs))


if __name__ == "__main__":
    main()
