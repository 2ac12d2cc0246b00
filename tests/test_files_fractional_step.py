"""A file saved at a fractional step (metrics and log lines take ``step=2.5``) keeps that step
in its record, as ``run.files`` and ``exp.files`` read it, and orders ``sort="step"`` by it."""

from __future__ import annotations

import numpy as np
import pytest

import distlog
from distlog.files.ordering import _sort_records
from distlog.query import open_run

#: save order (so time order) differs from step order
STEPS = [2.75, 2.25, 2.5, 3, None]


@pytest.mark.timeout(60)
def test_a_fractional_step_is_kept_by_file_records(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        for i, s in enumerate(STEPS):
            rec = exp.files.save(f"frame {i}".encode(), f"f{i}.bin", step=s)
            assert rec.step == s
        assert [exp.files.info(f"f{i}.bin").step for i in range(len(STEPS))] == STEPS
    run = open_run(f"{root}/e/r")
    recs = run.files.records()
    assert {r.name: r.step for r in recs} == {f"f{i}.bin": s for i, s in enumerate(STEPS)}
    assert [type(r.step) for r in sorted(recs, key=lambda r: r.name)] == [type(s) for s in STEPS]
    by_step = [r.name for r in _sort_records(recs, "step")]
    want = sorted(range(len(STEPS)), key=lambda i: -1 if STEPS[i] is None else STEPS[i])
    assert by_step == [f"f{i}.bin" for i in want]
    table = run.files.table().set_index("name")
    assert [table.loc[f"f{i}.bin", "step"] for i in range(4)] == STEPS[:4]
    # the files table rank 0 merges at close (for readers without distlog) keeps them too:
    # before, int64 cut 2.75 to 2 and wrote -1 for none (a step -1 looked the same)
    import zarr

    from distlog.layout import FILES_TABLE, table_zarr

    g = zarr.open_consolidated(f"{root}/e/r/{table_zarr(FILES_TABLE)}", mode="r")
    got = dict(zip(g["name"][:], g["step"][:].tolist()))
    assert [got[f"f{i}.bin"] for i in range(4)] == STEPS[:4] and np.isnan(got["f4.bin"])
