"""Lightning: a real 2-rank DDP fit on CPU and a resumed fit, read back with open_run."""

import json
from pathlib import Path

import numpy as np
import pytest

from support.framework_runs import SCRIPTS, run_script

pytest.importorskip("lightning.pytorch")
pytestmark = [pytest.mark.integrations, pytest.mark.timeout(600)]

import distlog  # noqa: E402


def _ranks(out: Path, world: int) -> list[dict]:
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(world)]


def _oracle(seen: list[dict], key: str) -> dict[int, list[float]]:
    per_step: dict[int, list[float]] = {}
    for rank in seen:
        for step, values in rank["seen"].items():
            if step != "val" and key in values:
                per_step.setdefault(int(step), []).append(values[key])
    return dict(sorted(per_step.items()))


def _assert_rows(run, key: str, oracle: dict[int, list[float]]) -> None:
    got = run.metrics.numpy(key)
    steps = sorted(oracle)
    np.testing.assert_array_equal(got["step"], steps)
    vals = [np.asarray(oracle[s]) for s in steps]
    np.testing.assert_allclose(got["mean"], [v.mean() for v in vals])
    np.testing.assert_allclose(got["min"], [v.min() for v in vals])
    np.testing.assert_allclose(got["max"], [v.max() for v in vals])
    np.testing.assert_array_equal(got["count"], [len(v) for v in vals])


def test_ddp_fit_rows_equal_every_ranks_values(tmp_path):
    root, out = tmp_path / "root", tmp_path / "out"
    run_script([str(SCRIPTS / "lightning_fit.py"), str(root), str(out), "--devices", "2", "--max-steps", "6",
                "--val", "--log-checkpoints"], tmp_path)
    seen = _ranks(out, 2)
    assert seen[0]["run_id"] == seen[1]["run_id"] and seen[0]["world"] == 2
    run = distlog.open_run(root / "lit" / seen[0]["run_id"])
    assert (run.info.status, run.info.world_size) == ("completed", 2)
    for key in ("v", "direct"):
        oracle = _oracle(seen, key)
        assert all(len(v) == 2 for v in oracle.values()), oracle  # both ranks saw every step
        _assert_rows(run, f"train/{key}", oracle)
    # validation: each rank logs its epoch mean; the row is the mean over ranks
    rank_means = [np.mean(r["seen"]["val"]["4"]) for r in seen]
    val = run.metrics.numpy("val/v")
    np.testing.assert_allclose(val["mean"], [np.mean(rank_means)])
    np.testing.assert_allclose([val["min"][0], val["max"][0]], [min(rank_means), max(rank_means)])
    assert run.params == {"lr": 0.1, "width": 4}
    assert run.logs.ranks() == [0, 1]
    # Lightning's conventions: log_dir = save_dir/name/version = the run folder
    info = seen[0]
    assert (info["save_dir"], info["name"]) == (str(root), "lit")
    assert info["log_dir"] == str(root / "lit" / info["run_id"])
    assert info["ckpt_dir"] == str(Path(info["log_dir"]) / "checkpoints")
    # checkpoints stored as artifacts, byte for byte
    ckpts = sorted(Path(info["ckpt_dir"]).glob("*.ckpt"))
    assert [p.name for p in ckpts] == ["epoch=0-step=2.ckpt", "epoch=0-step=4.ckpt", "epoch=0-step=6.ckpt"]
    assert sorted(p for p in run.files.paths() if p.startswith("checkpoints/")) == [f"checkpoints/{p.name}" for p in ckpts]
    for p in ckpts:
        assert run.files.read_bytes(f"checkpoints/{p.name}") == p.read_bytes()


def test_resumed_fit_continues_the_run_without_repeating_steps(tmp_path):
    root, script = tmp_path / "root", str(SCRIPTS / "lightning_fit.py")
    run_script([script, str(root), str(tmp_path / "a"), "--devices", "1", "--max-steps", "6",
                "--version", "resumed"], tmp_path)
    ckpt = root / "lit" / "resumed" / "checkpoints" / "epoch=0-step=4.ckpt"
    assert ckpt.exists()
    # the first fit wrote steps 0..5; resuming from step 4 must drop 4 and 5 and write them again
    run_script([script, str(root), str(tmp_path / "b"), "--devices", "1", "--max-steps", "8",
                "--version", "resumed", "--ckpt", str(ckpt)], tmp_path)
    run = distlog.open_run(root / "lit" / "resumed")
    assert run.info.status == "completed"
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed"]
    v = run.metrics.numpy("train/v")
    np.testing.assert_array_equal(v["step"], np.arange(8))  # each step once, in order
    from integration_scripts.lightning_fit import value

    np.testing.assert_allclose(v["mean"], [value(0, s) for s in range(8)])
    assert any("series rewound to step 3" in r.message for r in run.logs.query(level="INFO"))


def test_standalone_pytorch_lightning_package(tmp_path):
    pytest.importorskip("pytorch_lightning")
    root, out = tmp_path / "root", tmp_path / "out"
    run_script([str(SCRIPTS / "lightning_fit.py"), str(root), str(out), "--devices", "1", "--max-steps", "3",
                "--version", "pl", "--package=pytorch_lightning"], tmp_path)
    seen = _ranks(out, 1)
    assert seen[0]["logger_base"].startswith("pytorch_lightning.")  # subclasses the imported package
    run = distlog.open_run(root / "lit" / "pl")
    assert run.info.status == "completed"
    _assert_rows(run, "train/v", _oracle(seen, "v"))


def test_a_fresh_logger_pickles_for_ddp_spawn(tmp_path):
    import pickle

    from distlog.integrations.lightning import DistlogLogger

    logger = DistlogLogger(str(tmp_path), name="lit", version="v1", log_checkpoints="all")
    copy = pickle.loads(pickle.dumps(logger))
    assert (copy.name, copy.version, copy.log_dir) == ("lit", "v1", str(tmp_path / "lit" / "v1"))
    assert copy.callback._logger is copy
    assert DistlogLogger(str(tmp_path), version=3).version == "3"  # Lightning's int versions
    with pytest.raises(ValueError, match="log_checkpoints must be one of"):
        DistlogLogger(str(tmp_path), log_checkpoints="best")
    with pytest.raises(ValueError, match="flush_every_n_steps must be a positive int"):
        DistlogLogger(str(tmp_path), flush_every_n_steps=0)


def test_logger_api_without_a_trainer(tmp_path):
    """The Logger methods alone: finalize maps statuses; a missing callback is reported; each
    of Lightning's steps is its own row even so."""
    from distlog.integrations.lightning import DistlogLogger

    logger = DistlogLogger(str(tmp_path), name="x", version="ok")
    logger.log_hyperparams({"lr": 0.1})  # before the run opens: kept
    assert logger.experiment.run_id == "ok"
    logger.log_metrics({"a": 1.0, "skip": "text"}, step=0)
    logger.log_metrics({"a": 3.0}, step=1)
    logger.log_graph(None)  # documented no-op
    logger.finalize("success")
    run = distlog.open_run(tmp_path / "x" / "ok")
    assert (run.info.status, run.params) == ("completed", {"lr": 0.1})
    a = run.metrics.numpy("a")  # no callback: flushed when the step moves on, and at the end
    assert (list(a["step"]), list(a["mean"]), list(a["count"])) == ([0, 1], [1.0, 3.0], [1, 1])
    assert any("callbacks=[logger.callback]" in r.message for r in run.logs.query(level="WARNING"))
    failed = DistlogLogger(str(tmp_path), name="x", version="bad")
    failed.experiment  # noqa: B018 - opens the run
    failed.finalize("failed")
    info = distlog.open_run(tmp_path / "x" / "bad").info
    assert info.status == "failed" and "status 'failed'" in info.error["message"]


def test_log_metrics_with_no_trainer_and_the_run_never_touched_writes_every_step(tmp_path):
    """No Trainer and no ``logger.experiment``: the values were kept for a run that never
    opened (all lost at finalize, no warning), or, opened later, their steps shared one row."""
    from distlog.integrations.lightning import DistlogLogger

    logger = DistlogLogger(str(tmp_path), name="m", version="untouched")
    logger.log_hyperparams({"lr": 0.1})
    for s in range(3):
        logger.log_metrics({"ok": float(s)}, step=s)
    logger.finalize("success")
    run = distlog.open_run(tmp_path / "m" / "untouched")
    ok = run.metrics.numpy("ok")
    assert (run.info.status, run.params) == ("completed", {"lr": 0.1})
    assert (list(ok["step"]), list(ok["mean"]), list(ok["count"])) == ([0, 1, 2], [0.0, 1.0, 2.0], [1, 1, 1])
    late = DistlogLogger(str(tmp_path), name="m", version="late")
    late.log_metrics({"ok": 0.0}, step=0)
    late.log_metrics({"ok": 1.0}, step=1)
    assert late.experiment.run_id == "late"  # (it opened at the first call)
    late.log_metrics({"ok": 2.0}, step=2)
    late.finalize("success")
    ok = distlog.open_run(tmp_path / "m" / "late").metrics.numpy("ok")
    assert (list(ok["step"]), list(ok["count"])) == ([0, 1, 2], [1, 1, 1])


def test_array_hyperparameters_are_stored_whole(tmp_path):
    import torch

    from distlog.integrations.lightning import DistlogLogger

    weights, mask = np.linspace(0.0, 1.0, 2000), torch.arange(1500)
    logger = DistlogLogger(str(tmp_path), name="x", version="arr")
    logger.experiment  # noqa: B018 - opens the run
    logger.log_hyperparams({"class_weights": weights, "mask": mask, "w": torch.ones(3, requires_grad=True),
                            "half": torch.ones(2, dtype=torch.bfloat16), "z": np.array([1j])})
    logger.finalize("success")
    params = distlog.open_run(tmp_path / "x" / "arr").params
    np.testing.assert_array_equal(params["class_weights"], weights)  # not their '...'-cut text
    np.testing.assert_array_equal(params["mask"], mask.numpy())
    np.testing.assert_array_equal(params["w"], np.ones(3, dtype=np.float32))
    np.testing.assert_array_equal(params["half"], np.ones(2, dtype=np.float32))
    assert params["z"] == str(np.array([1j]))  # what params.json cannot hold: its text, as before


def test_params_before_the_run_opens_are_merged_deeply(tmp_path):
    from distlog.integrations.lightning import DistlogLogger

    logger = DistlogLogger(str(tmp_path), name="x", version="deep")
    logger.log_hyperparams({"optim": {"lr": 0.1}, "seed": 1})  # before the run opens: kept
    logger.log_hyperparams({"optim": {"momentum": 0.9}})
    logger.experiment  # noqa: B018 - opens the run
    logger.log_hyperparams({"optim": {"nesterov": True}})
    logger.finalize("success")
    params = distlog.open_run(tmp_path / "x" / "deep").params
    assert params == {"optim": {"lr": 0.1, "momentum": 0.9, "nesterov": True}, "seed": 1}


def test_ddp_fit_resumed_after_validate_and_test_keeps_their_rows(tmp_path):
    # 2 ranks: fit 2 epochs, validate, test (at the step the fit ended), then a new Trainer
    # resumes from last.ckpt. Every rank decides alike to keep the evaluations' rows (rank 0
    # read the attempt records as the attempt started): each row is the mean over both ranks
    # of what Lightning handed them, at its step
    root, out = tmp_path / "root", tmp_path / "out"
    run_script([str(SCRIPTS / "lightning_resume_evals.py"), str(root), str(out), "--devices", "2"], tmp_path)
    ranks = _ranks(out, 2)
    assert [r["world"] for r in ranks] == [2, 2]
    run = distlog.open_run(root / "lit" / "evals")
    assert [a["status"] for a in run.info.attempts] == ["completed"] * 4
    for key in ("loss", "val", "tst", "epoch"):
        per_step: dict[int, list[float]] = {}
        for r in ranks:
            mine: dict[int, list[float]] = {}
            for step, values in r["rows"]:
                if key in values:
                    mine.setdefault(step, []).append(values[key])
            for step, vs in mine.items():  # a value per step and rank (``epoch``: one per call, alike)
                assert len(set(vs)) == 1 and (key == "epoch" or len(vs) == 1), (key, step, vs)
                per_step.setdefault(step, []).append(vs[0])
        _assert_rows(run, key, dict(sorted(per_step.items())))
    # 6 batches an epoch: the fit ended at step 12, where validate() and test() logged and
    # the resumed fit's first batch logs
    assert list(run.metrics.numpy("tst")["step"]) == [12]  # test()'s row: kept
    assert list(run.metrics.numpy("val")["step"]) == [5, 11, 12, 17]  # validate()'s at 12 too
    kept = [r for r in run.logs.query(level="INFO") if "nothing is rewound now" in r.message]
    assert sorted(r.rank for r in kept) == [0, 1]  # both ranks decided to keep them


def test_a_resumed_fit_that_crashed_and_is_resumed_again_keeps_the_evaluations_rows(tmp_path):
    # fit 2 epochs, validate and test (their rows at step 12), a fit resumed from last.ckpt
    # (keeps them) crashes at step 15, and a third fit resumes from the same last.ckpt: it
    # rewound every series to step 11, so validate()'s and test()'s rows were gone (stop 33).
    # Now only the crashed fit's rows go (written since it began)
    root, out = tmp_path / "root", tmp_path / "out"
    run_script([str(SCRIPTS / "lightning_resume_evals.py"), str(root), str(out), "--devices", "1",
                "--crash-at", "15"], tmp_path)
    [rank] = _ranks(out, 1)
    first, end = rank["crashed"]
    crashed, kept = rank["rows"][first:end], rank["rows"][:first] + rank["rows"][end:]
    assert {s for s, v in crashed if "loss" in v} == {12, 13, 14}  # the crashed fit logged those
    run = distlog.open_run(root / "lit" / "evals")
    assert [a["status"] for a in run.info.attempts] == ["completed", "completed", "completed", "failed", "completed"]
    for key in ("loss", "val", "tst", "epoch"):
        oracle: dict[int, list[float]] = {}
        for step, values in kept:  # the last value Lightning handed at a step is the row's
            if key in values:
                oracle[step] = [values[key]]
        _assert_rows(run, key, dict(sorted(oracle.items())))
    assert list(run.metrics.numpy("tst")["step"]) == [12]  # test()'s row: kept again
    assert list(run.metrics.numpy("val")["step"]) == [5, 11, 12, 17]  # validate()'s at 12 too
    rewound = [r.message for r in run.logs.query(level="INFO") if "series rewound to step 11" in r.message]
    assert len(rewound) == 1 and "any an evaluation appended before then are kept" in rewound[0], rewound
