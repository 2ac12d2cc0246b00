"""``run.metrics.summary()`` (what ``distlog show`` prints) reads a wide run's series a batch
of keys at a time: a memory review found it held every row of 2,000 keys × 20,000 rows at
once (4 GB) to keep a few numbers of each. Batched, it gives the same table."""

from __future__ import annotations

import numpy as np
import pandas as pd

import distlog
from distlog.query import series as S


def test_a_summary_read_in_batches_equals_one_read_whole(tmp_path, monkeypatch):
    exp = distlog.get_logger(str(tmp_path))
    rng = np.random.default_rng(0)
    with exp.run("wide"):
        for step in range(100):
            vals = {f"k{i}": float(rng.normal()) for i in range(7)}
            if step % 9 == 0:
                vals["k3"] = float("nan")
            exp.metrics.log(vals, step=step)
        for step in range(100, 140):
            exp.metrics.collect(k8=1.0, k9=float(step), step=step)
            exp.metrics.flush()
    run = distlog.open_run(tmp_path / "default" / "wide")
    whole = run.metrics.summary()
    batches = []
    cls = type(run.metrics)
    real = cls._read_batch

    def counted(self, *a, **kw):
        out = real(self, *a, **kw)
        batches.append(list(out[0]))
        return out

    monkeypatch.setattr(cls, "_read_batch", counted)
    monkeypatch.setattr(S, "SUMMARY_BATCH_ROWS", 250)
    parts = run.metrics.summary()
    pd.testing.assert_frame_equal(parts, whole)
    assert len(batches) >= 3 and sum(map(len, batches)) == 9, batches
    assert max(sum(len(run.metrics.read(k)) for k in b) for b in batches if len(b) > 1) <= 250
    named = run.metrics.summary(["k5", "k1"])
    assert named["key"].tolist() == ["k5", "k1"]
