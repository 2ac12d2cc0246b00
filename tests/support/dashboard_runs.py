"""Runs made by the real logger for the dashboard tests (API and browser)."""

from __future__ import annotations

import numpy as np

HOSTILE = "<img src=x onerror=alert(1)>"
STEPS = 30
SWEEP = [(lr, seed) for lr in (0.1, 0.01) for seed in (0, 1)]


def ema(values, weight: float) -> np.ndarray:
    """The smoothing oracle: the debiased EMA over every stored row, as the dashboard's server
    smooths (non-finite rows skipped, NaN at them)."""
    out, last, n = np.full(len(values), np.nan), 0.0, 0
    for i, v in enumerate(values):
        if np.isfinite(v):
            last, n = last * weight + (1 - weight) * v, n + 1
            out[i] = last / (1 - weight ** n)
    return out


def loss(lr: float, seed: int, step: int) -> float:
    return lr * (STEPS - step) + 0.01 * seed


def make_root(root: str) -> str:
    """A sweep of four runs (two lrs x two seeds) and one run with media, logs, histograms."""
    import distlog

    exp = distlog.get_logger(root)
    with exp.experiment("sweep"):
        for lr, seed in SWEEP:
            with exp.run(f"lr{lr}-s{seed}", params={"optim": {"lr": lr}, "seed": seed},
                         tags=["sweep", "base" if lr == 0.1 else "small"]):
                for step in range(STEPS):
                    exp.metrics.log(step=step, **{"train/loss": loss(lr, seed, step)})
                    exp.metrics("val").collect(step=step, acc=step / STEPS + seed)
                    exp.metrics.flush()
    with exp.experiment("media"), exp.run("m1", params={"model": {"depth": 4, "act": "<b>relu</b>"}, "max_grad_norm": 1.0}):
        for step in range(STEPS):
            exp.metrics.log(step=step, spiky=100.0 if step == 17 else 1.0)
            lvl = ("INFO", "WARNING", "ERROR")[step % 3]
            exp.log(lvl, f"step {step} done", step=step)
        exp.info(HOSTILE, step=5)
        exp.log_histogram("weights", np.arange(100.0), bins=10, step=1)
        exp.log_histogram("weights", np.arange(100.0) * 2, bins=10, step=2)
        img = np.zeros((32, 48, 3), dtype=np.uint8)
        img[:, :, 0] = np.linspace(0, 255, 48, dtype=np.uint8)[None, :]
        img[8:24, 16:32, 1] = 255
        exp.log_image("samples/gradient.png", img)
        exp.files.save({"b": [1, 2], "html": HOSTILE}, "config.json")
        exp.files.save("plain text\nline 2\n", "notes.txt")
        exp.files.save_audio("beep.wav", np.sin(np.arange(8000) / 5.0).astype(np.float32), 8000)
        exp.files.save(b"\x00" * 100_000 + b"end", "blob.bin")
    with exp.experiment("media"):  # a run that failed once and was resumed: two attempts
        try:
            with exp.run("resumed"):
                exp.metrics.log(step=0, x=0.0)
                raise RuntimeError("node lost")
        except RuntimeError:
            pass
        with exp.run("resumed", resume_step=1):
            exp.metrics.log(step=1, x=1.0)
    return root


def rank_worker(rank: int, world: int, root: str) -> str:
    """A 2-rank run: each rank logs its own ``own`` series and ``gappy`` (rank 1's is NaN at
    steps 5 and 6: a gap), collects ``loss`` and saves ``out.txt`` (its own text under one name)."""
    import distlog

    exp = distlog.get_logger(root)
    with exp.experiment("ddp"), exp.run("two", params={"world": world}):
        for step in range(12):
            exp.metrics.log(step=step, own=float(100 * rank + step))
            exp.metrics.log(step=step, gappy=float("nan") if rank == 1 and step in (5, 6) else float(10 * rank + 1))
            exp.metrics.collect(step=step, loss=float(rank + step))
            exp.log("ERROR" if step % 4 == 0 else "INFO", f"rank {rank} step {step}", step=step)
            if step % 4 == 3:
                exp.metrics.flush()
        # one name saved by both ranks, neither having read the other's record (as when both
        # save at once) - made certain by not reading it: the version claims still give two
        index = exp.files._shared.index
        refresh, index.refresh = index.refresh, lambda: None
        exp.files.save(f"rank {rank} text\n", "out.txt")
        index.refresh = refresh
        return exp.run_url


LIVE_WRITER = """
import sys, time, distlog
exp = distlog.get_logger(sys.argv[1], commit_interval=0.2)
with exp.experiment("live"), exp.run("l1"):
    for step in range(900):  # at most ~90 s, even if the test dies
        exp.metrics.log(step=step, live=float(step))
        exp.info(f"tick {step}", step=step)
        exp.metrics.commit()
        time.sleep(0.1)
"""


ZOOM_STEPS = 3000  # more rows than a chart's overview keeps (4 per pixel): it is downsampled


def zoom_loss(run: str, step: int) -> float:
    return (2.0 if run == "b" else 1.0) * (ZOOM_STEPS - step)


def make_zoom_root(root: str) -> str:
    """Two runs, ``z/a`` and ``z/b``, with ``train/loss`` (``zoom_loss``) and ``train/acc``
    (step / ZOOM_STEPS) at every step 0..ZOOM_STEPS-1: charts that share the step axis."""
    import distlog

    exp = distlog.get_logger(root)
    with exp.experiment("z"):
        for name in ("a", "b"):
            with exp.run(name):
                for step in range(ZOOM_STEPS):
                    exp.metrics.log(step=step, **{"train/loss": zoom_loss(name, step), "train/acc": step / ZOOM_STEPS})
    exp.close()
    return root
