"""One small training script, run the same way against local disk, S3 and GCS, and a
normalised snapshot of what it stored, read back through ``distlog.open_run``.

The end-to-end tests (``test_e2e_object_stores.py``, ``test_e2e_faults.py``) run
``train`` on 2 gloo ranks against each root and compare ``snapshot``s: everything a reader
sees must be equal, except wall-clock times (and the URL the run lives at).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

EXPERIMENT = "e2e"
RUN_ID = "run-1"
PARAMS = {"optim": {"lr": 3e-4, "betas": [0.9, 0.99]}, "model": "tiny", "seed": 7}
ARRAY = np.arange(12, dtype=np.float32).reshape(3, 4)


def value(rank: int, step: int, i: int) -> float:
    """The deterministic value rank ``rank`` collects for metric ``i`` at ``step``."""
    return math.sin(0.1 * step + i) * (rank + 1) + 0.01 * i


def keys(n_keys: int) -> list[str]:
    return [f"m{i:02d}" for i in range(n_keys)]


def train(rank: int, world: int, url: str, options: dict[str, Any], cfg: dict[str, Any]) -> Any:
    """The script: params, collect/flush every step, a per-rank ``log``, per-rank text logs
    and a saved artifact on every rank (identical bytes: one blob) plus one of rank 0's own.

    Returns what each flush returned (the reduced statistics) for the oracle.
    """
    import distlog

    steps, n_keys = cfg.get("steps", 12), cfg.get("keys", 3)
    exp = distlog.get_logger(url, commit_interval=cfg.get("commit_interval", 0.2),
                             chunk_rows=cfg.get("chunk_rows", 8192),
                             segment_max_bytes=cfg.get("segment_max_bytes", 1 << 20),
                             segment_max_age=cfg.get("segment_max_age", 30.0), **options)
    reduced = []
    with exp.experiment(EXPERIMENT), exp.run(RUN_ID, params=PARAMS):
        exp.params.update("world", world)
        train_ns = exp.metrics("train")
        for step in range(steps):
            train_ns.collect(step=step, **{k: value(rank, step, i)
                                           for i, k in enumerate(keys(n_keys))})
            if step % 2 == 0:
                exp.metrics.collect(step=step, sparse=float(step + rank))  # only every other flush
            red = exp.metrics.flush()
            reduced.append({k: red[k] for k in red.keys})
            exp.metrics.log(step=step, own=float(100 * rank + step))  # per-rank series
            exp.info(f"step {step} done", loss=round(value(rank, step, 0), 6))
            if step % 5 == 0:
                exp.warning(f"rank {rank} checkpoint at {step}")
        exp.files.save(ARRAY, "weights.npy", step=steps)  # same bytes on every rank
        if rank == 0:
            exp.files("reports").save({"rank": rank, "ok": True}, "summary.json", step=steps)
        exp.info("done")
    return reduced


# ---- reading back ---------------------------------------------------------------------------
def _plain(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    return x


def nan_safe(x: Any) -> Any:
    """``x`` with NaN spelled ``"nan"``, so that equal results compare equal."""
    import json

    return json.loads(json.dumps(x, default=float).replace("NaN", '"nan"'))


def snapshot(url: str, options: dict[str, Any]) -> dict[str, Any]:
    """Everything a reader sees of the run at ``url``, minus wall-clock times."""
    import distlog

    run = distlog.open_run(f"{url.rstrip('/')}/{EXPERIMENT}/{RUN_ID}", **options)
    info = run.info
    out: dict[str, Any] = {
        "status": info.status, "world_size": info.world_size, "last_step": info.last_step,
        "params": run.params,
    }
    metrics: dict[str, Any] = {}
    for rank in run.metrics.ranks():
        for key in run.metrics.keys(rank=rank):
            s = run.metrics.read(key, rank=rank)
            cols = [c for c in s.columns if c != "time"]
            data = np.stack([s[c] for c in cols], axis=1) if len(s) else np.zeros((0, len(cols)))
            metrics[f"r{rank}:{key}"] = (tuple(cols), [tuple(map(_plain, row)) for row in data.tolist()])
    out["metrics"] = metrics
    out["logs"] = {
        r: [(rec.level, rec.step, rec.message, rec.attempt, rec.fields)
            for rec in run.logs.query(rank=r, source="text")]
        for r in run.logs.ranks()
    }
    # the merged logs table rank 0 writes at close (ranks interleave by time: compare per rank)
    table: dict[int, list[tuple[Any, ...]]] = {}
    for rec in run.logs.query(source="table"):
        table.setdefault(rec.rank, []).append((rec.level, rec.step, rec.message, rec.fields))
    out["logs_table"] = table
    files = run.files.table().drop(columns=["time"]).sort_values(["path", "rank"])
    out["files"] = files.to_dict("records")
    out["file_bytes"] = {p: run.files.read_bytes(p) for p in run.files.paths()}
    return out


def expected_rows(world: int, cfg: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The oracle: rows per ``r<rank>:<key>`` as ``snapshot`` shows them (no time column):
    ``(step, value, mean, min, max, sum, count, nonfinite, argmin_rank, argmax_rank)``, value
    being the mean; the ranks are NaN for a rank's own ``log()`` rows (not reduced)."""
    steps, n_keys = cfg.get("steps", 12), cfg.get("keys", 3)
    out: dict[str, list[tuple[Any, ...]]] = {}

    def row(step: int, vals: np.ndarray, reduced: bool = True) -> tuple[Any, ...]:
        m = float(vals.mean())
        ranks = (float(np.argmin(vals)), float(np.argmax(vals))) if reduced else (np.nan, np.nan)
        return (float(step), m, m, float(vals.min()), float(vals.max()), float(vals.sum()),
                float(len(vals)), 0.0, *ranks)

    for step in range(steps):
        for i, k in enumerate(keys(n_keys)):
            out.setdefault(f"r0:train/{k}", []).append(
                row(step, np.array([value(r, step, i) for r in range(world)])))
        if step % 2 == 0:
            out.setdefault("r0:sparse", []).append(
                row(step, np.array([float(step + r) for r in range(world)])))
        for r in range(world):
            out.setdefault(f"r{r}:own", []).append(row(step, np.array([float(100 * r + step)]), reduced=False))
    return out
