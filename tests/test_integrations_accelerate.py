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


def _accelerator(tmp_path):
    from accelerate import Accelerator

    from distlog.integrations.accelerate import DistlogTracker

    tracker = DistlogTracker(root=str(tmp_path), experiment="a", run_id="r")
    acc = Accelerator(log_with=tracker, cpu=True)
    acc.init_trackers("a")
    return acc


def test_log_flattens_a_dict_of_values(tmp_path):
    acc = _accelerator(tmp_path)  # as TensorBoard's tracker takes it (add_scalars)
    acc.log({"loss": {"train": 1.0, "val": 2.0}, "note": "text"}, step=1)
    acc.end_training()
    run = distlog.open_run(tmp_path / "a" / "r")
    assert run.metrics.keys() == ["loss/train", "loss/val"]
    assert list(run.metrics.numpy("loss/val")["mean"]) == [2.0]
    warnings = [r.message for r in run.logs.query(level="WARNING")]
    assert len(warnings) == 1 and "note (str)" in warnings[0]


def test_log_stores_a_step_entry_as_a_metric(tmp_path):
    acc = _accelerator(tmp_path)  # TensorBoard's tracker stores it as a scalar named "step"
    acc.log({"step": 2, "acc": 0.5}, step=2)
    acc.log({"step": 3, "acc": 0.75}, step=3)
    acc.end_training()
    run = distlog.open_run(tmp_path / "a" / "r")
    assert run.metrics.keys() == ["acc", "step"]
    for key, values in (("acc", [0.5, 0.75]), ("step", [2.0, 3.0])):
        rows = run.metrics.numpy(key)
        assert (list(rows["step"]), list(rows["mean"])) == ([2, 3], values)
    assert [r.message for r in run.logs.query(level="WARNING")] == []
