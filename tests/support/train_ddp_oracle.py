"""An oracle for runs of ``scripts/train_ddp.py`` that is independent of distlog.

``train_ddp.py --oracle-dump DIR`` (or ``DISTLOG_ORACLE_DUMP=DIR``) makes every rank write the
raw values it collected to ``DIR/<run_id>/rank-R.attempt-A.jsonl``: a header line (rank,
attempt, checkpoint step it resumed from, the launcher's variables), then one line per flush
window ``{"step": S, "values": {key: [[step, value], ...]}}`` written *before* the flush, and
rank 0's ``val/loss`` after it. From those files alone, with NumPy, this module computes what
the run's stored series must hold:

* the reduced keys (``train/loss``, ``train/odd_rank_grad_norm``): one row per flush window
  at the window's last step, with mean/min/max/sum/count over every rank's values;
* ``val/loss``: rank 0's value at every flush;
* across attempts: a later attempt that resumed from checkpoint step C keeps the earlier
  attempts' windows with step <= C and drops the rest (the rewind), so the expected steps
  are strictly increasing with no gap.

``check_run(run, dumps)`` compares a ``distlog.open_run`` reader with that expectation.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
TRAIN_DDP = REPO / "scripts" / "train_ddp.py"
TORCHRUN = Path(sys.executable).parent / "torchrun"  # the venv's, next to its python
if not TORCHRUN.exists() and shutil.which("torchrun"):
    TORCHRUN = Path(shutil.which("torchrun"))
REDUCED_KEYS = ("train/loss", "train/odd_rank_grad_norm")
VAL_KEY = "val/loss"


@dataclass
class Dump:
    """One rank's dump of one attempt."""

    rank: int
    attempt: int
    resume_step: int | None
    env: dict
    windows: dict[int, dict[str, list[tuple[int, float]]]] = field(default_factory=dict)


def read_dumps(folder: str | Path, run_id: str) -> dict[tuple[int, int], Dump]:
    """``{(rank, attempt): Dump}`` of one run."""
    out = {}
    files = sorted(Path(folder, run_id).glob("rank-*.attempt-*.jsonl"))
    assert files, f"no oracle dumps in {Path(folder, run_id)} (did the ranks start?)"
    for path in files:
        lines = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
        head = lines[0]
        d = Dump(head["rank"], head["attempt"], head["resume_step"], head["env"])
        for rec in lines[1:]:
            win = d.windows.setdefault(int(rec["step"]), {})
            for key, pairs in rec["values"].items():
                win.setdefault(key, []).extend((int(s), float(v)) for s, v in pairs)
        out[(d.rank, d.attempt)] = d
    return out


def attempts(dumps: dict[tuple[int, int], Dump]) -> list[int]:
    return sorted({a for _, a in dumps})


def resume_steps(dumps: dict[tuple[int, int], Dump]) -> dict[int, int | None]:
    """The checkpoint step each attempt started from (rank 0's header)."""
    return {a: dumps[(0, a)].resume_step for a in attempts(dumps)}


def kept_windows(dumps: dict[tuple[int, int], Dump]) -> dict[int, dict[int, dict[str, list]]]:
    """``{flush_step: {rank: {key: [(step, value)]}}}`` of the windows that survive the rewinds."""
    atts = attempts(dumps)
    resume = resume_steps(dumps)
    out: dict[int, dict[int, dict[str, list]]] = {}
    for (rank, a), d in sorted(dumps.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        later = [b for b in atts if b > a]
        # the next attempt rewinds to its checkpoint (no checkpoint: to nothing)
        limit = None if not later else (resume[later[0]] if resume[later[0]] is not None else -1)
        for s, win in d.windows.items():
            if limit is not None and s > limit:
                continue
            assert rank not in out.get(s, {}), f"window {s} of rank {rank} kept from two attempts"
            out.setdefault(s, {})[rank] = win
    return dict(sorted(out.items()))


def expected(dumps: dict[tuple[int, int], Dump]) -> dict[str, np.ndarray]:
    """``{key: rows}``; reduced keys: columns step, mean, min, max, sum, count; val: step, value."""
    kept = kept_windows(dumps)
    out: dict[str, list] = {k: [] for k in (*REDUCED_KEYS, VAL_KEY)}
    for s, per_rank in kept.items():
        for key in REDUCED_KEYS:
            vals = np.array([v for win in per_rank.values() for _, v in win.get(key, [])], dtype=np.float64)
            steps = [st for win in per_rank.values() for st, _ in win.get(key, [])]
            assert all(st <= s for st in steps), f"window {s} of {key} holds steps {steps}"
            if len(vals):
                out[key].append([s, vals.mean(), vals.min(), vals.max(), vals.sum(), len(vals)])
        val = per_rank.get(0, {}).get(VAL_KEY, [])
        if val:
            assert len(val) == 1, f"rank 0 dumped {len(val)} val values at step {s}"
            out[VAL_KEY].append([s, val[0][1]])
    return {k: np.array(v, dtype=np.float64) for k, v in out.items() if v}


def check_run(run, dumps: dict[tuple[int, int], Dump], steps: list[int] | None = None) -> None:
    """Every stored series of ``run`` equals the oracle (and, if given, its steps are ``steps``)."""
    want = expected(dumps)
    assert set(run.metrics.keys()) >= set(want), (run.metrics.keys(), sorted(want))
    for key, rows in want.items():
        got = run.metrics.read(key)
        got_steps = got.step
        assert np.all(np.diff(got_steps) > 0), f"{key}: stored steps not strictly increasing: {got_steps.tolist()}"
        assert got_steps.tolist() == rows[:, 0].astype(int).tolist(), (
            f"{key}: stored steps {got_steps.tolist()} != oracle steps {rows[:, 0].astype(int).tolist()}")
        if steps is not None:
            assert got_steps.tolist() == steps, f"{key}: steps {got_steps.tolist()} != {steps}"
        if key == VAL_KEY:
            np.testing.assert_allclose(got["value"], rows[:, 1], rtol=1e-12, err_msg=key)
            continue
        for i, col in enumerate(("mean", "min", "max", "sum"), start=1):
            np.testing.assert_allclose(got[col], rows[:, i], rtol=1e-9, atol=1e-12, err_msg=f"{key} {col}")
        np.testing.assert_array_equal(got["count"], rows[:, 5], err_msg=f"{key} count")
        np.testing.assert_allclose(got["value"], got["mean"], rtol=0, err_msg=f"{key}: value is the mean")
        np.testing.assert_array_equal(got["nonfinite"], 0, err_msg=f"{key} nonfinite")


def flush_steps(steps: int, flush_every: int, start: int = 0) -> list[int]:
    """The steps ``train_ddp.py`` flushes at for ``range(start, steps)``."""
    return [s for s in range(start, steps) if (s + 1) % flush_every == 0 or s == steps - 1]
