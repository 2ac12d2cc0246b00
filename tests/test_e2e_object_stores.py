"""End to end: the same 2-rank gloo script logging to ``s3://`` (moto) and ``gs://``
(fake-gcs-server) stores what it stores on local disk, as read by ``distlog.open_run``.

The script (``support.e2e_script.train``) sets params, collects and flushes metrics every step (the
stored rows are checked against a NumPy oracle), logs per-rank values, writes text logs on
every rank and saves artifacts. ``support.e2e_script.snapshot`` reads everything back through the
reader used for local runs; the object-store snapshot must equal the local one.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from distlog.layout import SCALARS_TABLE, rank_dir, table_zarr
from support import e2e_script as E
from support.ranks import run_ranks

pytestmark = pytest.mark.dist


CFG = {"steps": 12, "keys": 3, "chunk_rows": 8, "segment_max_bytes": 512, "commit_interval": 0.2}


def _run(tmp_path: Any, url: str, options: dict[str, Any], env: dict[str, str] | None = None,
         cfg: dict[str, Any] = CFG) -> tuple[list[Any], dict[str, Any]]:
    reduced = run_ranks(E.train, 2, tmp_path, url, options, cfg, timeout=120, env=env or {})
    return reduced, E.snapshot(url, options)


def _check_against_oracle(snap: dict[str, Any], reduced: list[Any], cfg: dict[str, Any]) -> None:
    want = E.expected_rows(2, cfg)
    assert sorted(snap["metrics"]) == sorted(want)
    for key, rows in want.items():
        cols, got = snap["metrics"][key]
        assert cols == ("step", "value", "mean", "min", "max", "sum", "count", "nonfinite",
                        "argmin_rank", "argmax_rank")
        np.testing.assert_allclose(np.array(got, dtype=float), np.array(rows), rtol=1e-12,
                                   err_msg=key)
    # every rank got the same reduced statistics, and they match the stored rows
    assert E.nan_safe(reduced[0]) == E.nan_safe(reduced[1])
    for step, flush in enumerate(reduced[0]):
        assert flush["train/m00"]["mean"] == want["r0:train/m00"][step][2]
    assert snap["status"] == "completed" and snap["world_size"] == 2
    assert snap["params"] == {**E.PARAMS, "world": 2}
    for rank in (0, 1):
        msgs = [m for _, _, m, _, _ in snap["logs"][rank]]
        steps_done = [m for m in msgs if m.endswith(" done") and m.startswith("step ")]
        assert steps_done == [f"step {s} done" for s in range(cfg["steps"])]
        assert msgs[-2:] == ["done", "run ended: completed"]
        assert snap["logs_table"][rank] == [(lv, st, m, f) for lv, st, m, _, f in snap["logs"][rank]]
    assert [(f["path"], f["rank"], f["version"]) for f in snap["files"]] == [
        ("reports/summary.json", 0, 1), ("weights.npy", 0, 1), ("weights.npy", 1, 1)]
    assert json.loads(snap["file_bytes"]["reports/summary.json"]) == {"rank": 0, "ok": True}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: Any) -> dict[str, Any]:
    """The reference: the script on local disk (run once per module and worker)."""
    tmp = tmp_path_factory.mktemp("local")
    reduced, snap = _run(tmp, str(tmp / "root"), {})
    _check_against_oracle(snap, reduced, CFG)
    return snap


def _assert_same_as_local(snap: dict[str, Any], local: dict[str, Any]) -> None:
    assert snap.keys() == local.keys()
    for part in local:
        assert snap[part] == local[part], part


def _consolidated(url: str, options: dict[str, Any], table: str) -> dict[str, Any]:
    from distlog import open_storage

    run = open_storage(f"{url}/{E.EXPERIMENT}/{E.RUN_ID}", **options)
    meta = run.read_json(f"{table}/zarr.json")
    return meta.get("consolidated_metadata") or {}


@pytest.mark.s3
@pytest.mark.timeout(240)
def test_two_rank_run_to_s3_reads_back_like_local(tmp_path: Any, s3_bucket: dict[str, Any],
                                                  local_run: dict[str, Any]) -> None:
    url, opts = s3_bucket["url"], s3_bucket["storage_options"]
    reduced, snap = _run(tmp_path, url, opts)
    _check_against_oracle(snap, reduced, CFG)
    _assert_same_as_local(snap, local_run)
    # consolidated metadata exists after close, listing every series of the table
    scalars = table_zarr(SCALARS_TABLE)
    for rank, table, keys in ((0, scalars, {"train/m00", "train/m01", "train/m02", "sparse", "own"}),
                              (1, f"{rank_dir(1)}/{scalars}", {"own"})):
        members = _consolidated(url, opts, table).get("metadata", {})
        assert keys <= set(members), (table, sorted(members))
        for key in keys:  # shrunk to the exact length at close
            assert members[key]["shape"][0] == len(snap["metrics"][f"r{rank}:{key}"][1])


@pytest.mark.s3
@pytest.mark.timeout(240)
def test_two_rank_run_to_s3_with_env_credentials(tmp_path: Any, s3_bucket: dict[str, Any],
                                                 local_run: dict[str, Any]) -> None:
    """No storage_options at all: the ranks find key, secret and endpoint in AWS_* variables."""
    env = s3_bucket["env"]
    reduced = run_ranks(E.train, 2, tmp_path, s3_bucket["url"], {}, CFG, timeout=120, env=env)
    snap = E.snapshot(s3_bucket["url"], s3_bucket["storage_options"])
    _check_against_oracle(snap, reduced, CFG)
    _assert_same_as_local(snap, local_run)


@pytest.mark.gcs
@pytest.mark.timeout(240)
def test_two_rank_run_to_gcs_reads_back_like_local(tmp_path: Any, gcs_bucket: dict[str, Any],
                                                   local_run: dict[str, Any]) -> None:
    url, opts = gcs_bucket["url"], gcs_bucket["storage_options"]
    reduced, snap = _run(tmp_path, url, opts)
    _check_against_oracle(snap, reduced, CFG)
    _assert_same_as_local(snap, local_run)
    members = _consolidated(url, opts, table_zarr(SCALARS_TABLE)).get("metadata", {})
    assert {"train/m00", "sparse", "own"} <= set(members)
