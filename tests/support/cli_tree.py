"""A fixed run tree for the CLI tests: three runs written with the format's own writers.

``build_tree(root)`` writes mnist/sweep/run-a (2 ranks, files), mnist/sweep/run-b (failed)
and mnist/other/run-c with fixed times and host names, so every CLI output is deterministic.
``cli(capsys, *args)`` runs the CLI in-process: ``(exit code, stdout, stderr)``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from distlog.layout import PARAMS_FILE, RUN_FILE, SCALARS_TABLE, manifest_path, rank_dir, rank_log_path
from distlog.logline import LogRecord, format_line
from distlog.metrics import SCALAR_COLUMNS
from distlog.storage import open_storage
from distlog.writers.rowstore import RowTable

T0 = 1767323045.0  # 2026-01-02T03:04:05Z


def _iso(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="microseconds")


def _meta(exp: str, run_id: str, status: str, start: float, end: float | None, world: int,
          hosts: list[str], last_step: int | None, error: dict | None = None) -> dict:
    attempt = {"attempt": 0, "started": _iso(start), "ended": end and _iso(end), "status": status,
               "world_size": world, "hosts": hosts, "ranks": [], "error": error}
    return {"format": 1, "experiment": exp, "run_id": run_id, "created": _iso(start),
            "started": _iso(start), "ended": end and _iso(end), "status": status, "error": error,
            "world_size": world, "hosts": hosts, "attempts": [attempt], "attempt": 0,
            "last_step": last_step, "tags": [], "launcher": "none"}


def _rows(steps, values, spread=0.1, count=4):
    steps = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    out = np.empty((len(steps), len(SCALAR_COLUMNS)))
    out[:, 0] = steps
    out[:, 1] = T0 + steps
    out[:, 2] = v
    out[:, 3] = v
    out[:, 4] = v - spread
    out[:, 5] = v + spread
    out[:, 6] = v * count
    out[:, 7] = count
    out[:, 8] = 0
    out[:, 9] = 1  # argmin_rank
    out[:, 10] = 0  # argmax_rank
    return out


def _scalars(storage, series: dict[str, np.ndarray]) -> None:
    t = RowTable(storage, SCALARS_TABLE, SCALAR_COLUMNS)
    for key, rows in series.items():
        t.add(key, rows)
    t.write(final=True)


def _log(storage, rank: int, records: list[tuple[float, str, int | None, str, dict]], host: str) -> None:
    text = "".join(format_line(LogRecord(time=T0 + dt, level=level, message=msg, host=host,
                                         rank=rank, local_rank=rank % 2, node=rank // 2,
                                         step=step, fields=fields))
                   for dt, level, step, msg, fields in records)
    storage.write_text(rank_log_path(rank, 0), text)


def build_tree(root: Path) -> Path:
    """Three runs: mnist/sweep/run-a (2 ranks, files), mnist/sweep/run-b (failed),
    mnist/other/run-c."""
    st = open_storage(str(root))
    a = st.child("mnist/sweep/run-a")
    a.write_json(RUN_FILE, _meta("mnist/sweep", "run-a", "completed", T0, T0 + 754.5, 2,
                                   ["node-a", "node-b"], 20))
    a.write_json(PARAMS_FILE, {"lr": 0.1, "optim": {"name": "adam", "wd": 0.0}, "seed": 1})
    _scalars(a, {"train/loss": _rows([0, 10, 20], [1.0, 0.5, 0.25]),
                 "val/acc": _rows([10, 20], [0.8, 0.9], spread=0.0, count=1)})
    _scalars(a.child(rank_dir(1)), {"grad_norm": _rows([0, 10, 20], [3.0, 2.0, 1.5], 0, 1)})
    _log(a, 0, [(0.0, "INFO", None, "run started", {}),
                (1.0, "INFO", 0, "step 0 loss=1.0", {}),
                (11.0, "INFO", 10, "step 10 loss=0.5", {}),
                (21.0, "INFO", 20, "step 20 loss=0.25", {}),
                (30.0, "DEBUG", None, "run ended: completed", {})], "node-a")
    _log(a, 1, [(0.5, "DEBUG", None, "rank 1 ready", {}),
                (1.0, "INFO", 0, "step 0 loss=1.1", {}),
                (12.0, "WARNING", 10, "slow batch\nwaited 2.5 s", {"batch": 7}),
                (21.5, "ERROR", 20, "nan in grad", {"param": "w1", "traceback": "Traceback\n  line 1"}),
                (29.0, "INFO", None, "done", {})], "node-b")
    cas = __import__("distlog.cas", fromlist=["ContentStore"]).ContentStore(st)
    data = b'{"classes": 10}'
    put = cas.put_bytes(data)
    rec = {"path": "config/data.json", "name": "data.json", "namespace": "config",
           "sha256": put.sha256, "size": len(data), "media_type": "application/json", "rank": 0,
           "host": "node-a", "step": 0, "time": T0 + 2, "version": 1, "attempt": 0}
    a.write_text(manifest_path(0), json.dumps(rec) + "\n")

    b = st.child("mnist/sweep/run-b")
    b.write_json(RUN_FILE, _meta("mnist/sweep", "run-b", "failed", T0 + 3600, T0 + 3600 + 95, 1,
                                   ["node-a"], 10, {"type": "RuntimeError", "message": "CUDA error"}))
    b.write_json(PARAMS_FILE, {"lr": 0.01, "optim": {"name": "adam", "wd": 0.0}, "seed": 1})
    _scalars(b, {"train/loss": _rows([0, 10], [1.2, 0.9])})
    _log(b, 0, [(3600.0, "INFO", 0, "step 0 loss=1.2", {}),
                (3690.0, "ERROR", 10, "RuntimeError: CUDA error", {})], "node-a")

    c = st.child("mnist/other/run-c")
    c.write_json(RUN_FILE, _meta("mnist/other", "run-c", "completed", T0 + 7200, T0 + 7200 + 3725,
                                   4, ["node-a", "node-b"], 5))
    c.write_json(PARAMS_FILE, {"lr": 0.1, "batch": 64})
    _scalars(c, {"loss": _rows([0, 5], [2.0, 1.0])})
    return root


def cli(capsys, *args) -> tuple[int, str, str]:
    """``distlog ARGS...`` in this process (arguments as text): exit code, stdout, stderr."""
    from distlog.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err
