#!/usr/bin/env python
"""A small model trained on synthetic data with distlog: the demo and the SLURM/torchrun example.

    torchrun --standalone --nproc_per_node 2 scripts/train_ddp.py --root ./runs --steps 60

Every rank collects its training loss each step; every ``--flush-every`` steps all ranks
flush (all-reduced mean/min/max; rank 0 writes Zarr). Validation metrics are logged on rank 0
only; odd ranks collect an extra key (``train/odd_rank_grad_norm``) to show that ranks may log
different keys. ``key=value`` style options (``--lr 0.1 --seed 2``) come from the sweep grid.

Preemption: SIGUSR1 only sets a flag; at the next flush every rank agrees to stop, the script
saves a checkpoint and exits with code 3 ("requeue me"). A restarted or requeued attempt finds
the checkpoint, continues the same run (same run id from the launcher) and rewinds the stored
series to the checkpoint's step. Before each checkpoint rank 0 commits the stored series, so a
hard kill (``scontrol requeue``, SIGKILL) never leaves a gap between the checkpoint's step and
the rows on the store.

Elastic restarts (``torchrun --max-restarts N``): set ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``
for torchrun. With torch's default shared rendezvous store the restarted gloo workers can read
the dead workers' addresses left in the store and fail ("Gloo connectFullMesh failed ...
Connection refused"; pytorch/pytorch#135712); the opt-out gives each round a fresh store.

``--oracle-dump DIR`` (tests): every rank also writes the raw values it collected, per flush
window, to ``DIR/<run_id>/rank-R.attempt-A.jsonl`` (see ``tests/support/train_ddp_oracle.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn

import distlog
from distlog.launcher import launcher_run_id

EXIT_REQUEUE = 3


class OracleDump:
    """The raw values this rank collected, written independently of distlog (for tests).

    A header line (rank, attempt, checkpoint step, the launcher's variables), then JSON lines
    ``{"step": flush_step, "values": {key: [[step, value], ...]}}``: the collected window,
    written just before each flush, and rank 0's validation value after it.
    """

    def __init__(self, folder: str | None, run_id: str, rank: int, attempt: int, resume_step) -> None:
        self.file = None
        self.window: dict[str, list] = {}
        if not folder:
            return
        os.makedirs(os.path.join(folder, run_id), exist_ok=True)
        self.file = open(os.path.join(folder, run_id, f"rank-{rank}.attempt-{attempt}.jsonl"), "w")
        env = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "GROUP_RANK", "WORLD_SIZE",
                                              "DISTLOG_HOSTNAME", "TORCHELASTIC_RESTART_COUNT",
                                              "SLURM_RESTART_COUNT", "SLURM_ARRAY_TASK_ID")}
        self._write({"rank": rank, "attempt": attempt, "resume_step": resume_step, "env": env})

    def add(self, step: int, **values) -> None:
        if self.file is not None:
            for k, v in values.items():
                self.window.setdefault(k, []).append([step, float(v)])

    def flushed(self, step: int) -> None:
        if self.file is not None and self.window:
            self._write({"step": step, "values": self.window})
            self.window = {}

    def _write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())


def _flag(text: str) -> bool:
    """``--save-artifact``, ``--save-artifact true`` (grid files only pass key=value)."""
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def default_checkpoint_dir(root: str, experiment: str) -> str:
    """Where checkpoints go without ``--ckpt-dir``: beside the run's experiment for a local
    root; for an object-store root (torch.save writes local files) a local folder in the
    job's submit directory (``SLURM_SUBMIT_DIR``, else the current one), never a folder
    named after the URL ("./s3:/bucket/...")."""
    scheme, sep, path = root.partition("://")
    if sep and scheme != "file":
        return os.path.join(os.environ.get("SLURM_SUBMIT_DIR") or os.getcwd(), ".checkpoints", experiment)
    return os.path.join(path if sep else root, experiment, ".checkpoints")


def _status(root: str, experiment: str, run_id: str) -> str | None:
    """The stored run's status (None: no such run, or unreadable)."""
    try:
        return distlog.open_run(f"{root.rstrip('/')}/{experiment}/{run_id}").info.status
    except Exception:  # noqa: BLE001 - then the run is opened as usual
        return None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="./runs")
    p.add_argument("--experiment", default="demo")
    p.add_argument("--run-id", default=None, help="default: from the launcher (SLURM/torchrun ids)")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--flush-every", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--step-sleep", type=float, default=0.0, help="seconds per step (tests of preemption)")
    p.add_argument("--ckpt-dir", default=None, help="default: <root>/<experiment>/.checkpoints for a local "
                   "root; for an object-store root (s3://, gs://) a local folder: "
                   "<submit dir>/.checkpoints/<experiment>")
    p.add_argument("--crash-once-at", type=int, default=None, help="rank 1 raises once at this step (restart tests)")
    p.add_argument("--hold-at", type=int, default=None,
                   help="attempt 0 stops after its checkpoint at this flush step until USR1 or a kill "
                        "(tests of requeue and preemption: the job is certainly still running then)")
    p.add_argument("--save-artifact", type=_flag, nargs="?", const=True, default=False,
                   help="every rank saves the same small file (a grid line may say save-artifact=true)")
    p.add_argument("--oracle-dump", default=os.environ.get("DISTLOG_ORACLE_DUMP"),
                   help="folder: each rank appends the raw values it collected to "
                        "<run_id>/rank-R.attempt-A.jsonl at every flush (tests' oracle; "
                        "default $DISTLOG_ORACLE_DUMP)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if "RANK" in os.environ and not dist.is_initialized():
        dist.init_process_group("gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    torch.manual_seed(args.seed)

    exp = distlog.get_logger(args.root, flush_timeout=120)
    exp.install_preemption_handler()
    with exp.experiment(args.experiment):
        # the launcher's run id (SLURM array task, torchrun rendezvous) is stable across
        # requeues and restarts, so the checkpoint can be found before the run starts
        run_id = args.run_id or launcher_run_id()
        model = nn.Sequential(nn.Linear(8, args.hidden), nn.ReLU(), nn.Linear(args.hidden, 1))
        opt = torch.optim.SGD(model.parameters(), lr=args.lr)
        ckpt_dir = args.ckpt_dir or default_checkpoint_dir(args.root, args.experiment)
        ckpt_path = os.path.join(ckpt_dir, f"{run_id}.pt") if run_id else None
        start, resume_step = 0, None
        if ckpt_path and os.path.exists(ckpt_path):
            state = torch.load(ckpt_path, weights_only=True)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            resume_step = int(state["step"])  # stored series are rewound to this step
            start = resume_step + 1
            if start >= args.steps and _status(args.root, args.experiment, run_id) == "completed":
                # a finished run's final checkpoint: the same grid line again (a run preempted
                # at its last step is opened, and closes completed)
                if rank == 0:
                    print(f"run {run_id} already trained {args.steps} steps (checkpoint at step "
                          f"{resume_step}, {ckpt_path}): nothing to do, the run is left as it is; "
                          "pass --steps N to train further, or --run-id for a new run", file=sys.stderr)
                return 0
        run = exp.start_run(run_id, resume_step=resume_step)
        oracle = OracleDump(args.oracle_dump, run.run_id, rank, run.attempt, resume_step)
        try:
            exp.params.set(lr=args.lr, seed=args.seed, hidden=args.hidden, world_size=world,
                           steps=args.steps, flush_every=args.flush_every)
            exp.info(f"training from step {start} on rank {rank} of {world}")
            g = torch.Generator().manual_seed(1000 + rank)
            w_true = torch.arange(8, dtype=torch.float32) / 8
            for step in range(start, args.steps):
                x = torch.randn(32, 8, generator=g)
                y = x @ w_true + 0.1 * torch.randn(32, generator=g)
                loss = nn.functional.mse_loss(model(x).squeeze(-1), y)
                opt.zero_grad()
                loss.backward()
                if world > 1:
                    for prm in model.parameters():
                        dist.all_reduce(prm.grad)
                        prm.grad /= world
                opt.step()
                exp.metrics("train").collect(step=step, loss=loss.detach())
                if oracle.file:
                    oracle.add(step, **{"train/loss": loss.item()})
                if rank % 2 == 1:
                    gn = sum(p.grad.norm() ** 2 for p in model.parameters()) ** 0.5
                    exp.metrics("train").collect(step=step, odd_rank_grad_norm=gn.detach())
                    if oracle.file:
                        oracle.add(step, **{"train/odd_rank_grad_norm": gn.item()})
                if args.crash_once_at == step and rank == 1 and run.attempt == 0:
                    raise RuntimeError(f"injected crash at step {step}")
                if args.step_sleep:
                    time.sleep(args.step_sleep)
                if (step + 1) % args.flush_every == 0 or step == args.steps - 1:
                    # written before the flush: a window the checkpoint covers is in every dump
                    oracle.flushed(step)
                    exp.metrics.flush()
                    if rank == 0:
                        with torch.no_grad():
                            xv = torch.randn(256, 8, generator=torch.Generator().manual_seed(7))
                            val = nn.functional.mse_loss(model(xv).squeeze(-1), xv @ w_true)
                        exp.metrics("val").log(step=step, loss=val.item())
                        oracle.add(step, **{"val/loss": val.item()})
                        oracle.flushed(step)
                    if ckpt_path:
                        # A checkpoint may only cover rows that are stored: every rank commits
                        # its series up to this step first (a collective). Otherwise a hard kill
                        # (scontrol requeue, SIGKILL) loses the rows since the last timed
                        # commit, and the resumed run, rewound to this step, has a gap.
                        exp.metrics.commit(timeout=120, barrier=True)
                    if rank == 0 and ckpt_path:
                        os.makedirs(ckpt_dir, exist_ok=True)
                        tmp = ckpt_path + ".tmp"
                        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
                        os.replace(tmp, ckpt_path)
                    if args.hold_at == step and run.attempt == 0:
                        while not run.stop_requested:  # set by the USR1 handler
                            time.sleep(0.05)
                    if exp.stop_requested:
                        exp.warning(f"preempted: checkpointed at step {step}, exiting for requeue")
                        exp.close()  # collective: every rank is past the checkpoint here
                        flag = os.environ.get("DISTLOG_REQUEUE_FILE")
                        if flag and rank == 0:
                            open(flag, "w").close()  # the sbatch templates requeue on this
                        return EXIT_REQUEUE
            if args.save_artifact:
                exp.files.save(b"the same bytes on every rank\n", "shared.txt")
            exp.info("training done")
            if rank == 0:
                print(f"{'metric':<28} {'last':>10} {'min':>10} {'max':>10}")
                for key in ("train/loss", "train/odd_rank_grad_norm", "val/loss"):
                    try:
                        st = exp.metrics.get_stats(key)
                        last = exp.metrics.get_summary(key, 1)[-1]["mean"]
                    except KeyError:
                        continue
                    print(f"{key:<28} {last:>10.4f} {st.min:>10.4f} {st.max:>10.4f}")
        except BaseException as e:
            exp._close_run(exc=e, collective=False)
            raise
        exp.close()
    if rank == 0:
        print(f"run written to {run.url}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
