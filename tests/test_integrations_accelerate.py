"""Accelerate: DistlogTracker under torchrun with 2 ranks and in one process (log_with="distlog")."""

import json

import numpy as np
import pytest

from support.framework_runs import SCRIPTS, run_script

pytest.importorskip("accelerate")
pytestmark = [pytest.mark.integrations, pytest.mark.timeout(600)]

import distlog  # noqa: E402


def _check(run, seen: list[dict]) -> None:
    world = len(seen)
    assert (run.info.status, run.info.world_size) == ("completed", world)
    assert run.params == {"lr": 0.1, "width": 4}
    assert run.logs.ranks() == list(range(world))
    steps = [0, 1, 2, 3]
    for key in ("loss", "v"):
        vals = [np.array([r["seen"][str(s)][key] for r in seen]) for s in steps]
        got = run.metrics.numpy(key)
        np.testing.assert_array_equal(got["step"], steps)
        np.testing.assert_allclose(got["mean"], [v.mean() for v in vals], rtol=1e-6)
        np.testing.assert_allclose(got["min"], [v.min() for v in vals], rtol=1e-6)
        np.testing.assert_allclose(got["max"], [v.max() for v in vals], rtol=1e-6)
        np.testing.assert_array_equal(got["count"], [world] * 4)
    main = run.metrics.numpy("main_only")  # accelerator.log: the main process's values as they are
    np.testing.assert_array_equal(main["step"], steps)
    np.testing.assert_allclose(main["value"], [100.0 + s for s in steps])
    np.testing.assert_array_equal(main["count"], [1] * 4)


def test_tracker_under_torchrun_two_ranks(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    out.mkdir()
    run_script([str(SCRIPTS / "accel_train.py"), str(root), str(out)], tmp_path, torchrun=2)
    seen = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [s["world"] for s in seen] == [2, 2]
    assert seen[0]["seen"]["0"]["v"] != seen[1]["seen"]["0"]["v"]
    _check(distlog.open_run(root / "acc" / "acc-run"), seen)


def test_tracker_single_process_by_name(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    out.mkdir()
    run_script([str(SCRIPTS / "accel_train.py"), str(root), str(out), "--by-name"], tmp_path)
    seen = [json.loads((out / "rank0.json").read_text())]
    _check(distlog.open_run(root / "acc1" / "acc-single"), seen)
