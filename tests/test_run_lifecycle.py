import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from distlog.layout import (LOGS_DIR, PARAMS_FILE, README_FILE, RUN_FILE, SCALARS_TABLE, rank_log_path,
                            table_commit)
import distlog
from distlog.errors import RunStateError


def meta(root, exp, run):
    with open(os.path.join(root, exp, run, RUN_FILE)) as f:
        return json.load(f)


def test_run_completes_with_metadata(root):
    exp = distlog.get_logger(root)
    with exp.experiment("mnist"), exp.run("r1", tags=["baseline"]) as e:
        assert e is exp and exp.run_id == "r1"
        assert meta(root, "mnist", "r1")["status"] == "running"
    m = meta(root, "mnist", "r1")
    assert m["status"] == "completed" and m["ended"] and m["started"]
    assert m["world_size"] == 1 and len(m["hosts"]) == 1
    assert m["tags"] == ["baseline"] and m["argv"] == sys.argv
    assert m["python"] and m["torch"] and m["attempts"][0]["status"] == "completed"


def test_run_failure_records_exception(root):
    exp = distlog.get_logger(root)
    with pytest.raises(ZeroDivisionError):
        with exp.run("boom"):
            exp.metrics.collect(step=7, loss=float("nan"))  # what led to the failure is kept
            1 / 0
    frame = distlog.open_run(os.path.join(root, "default", "boom")).metrics.read("loss").to_frame()
    assert frame["step"].tolist() == [7.0] and frame["nonfinite"].tolist() == [1.0]
    m = meta(root, "default", "boom")
    assert m["status"] == "failed"
    assert m["error"]["type"] == "ZeroDivisionError" and "1 / 0" in m["error"]["traceback"]
    log = open(os.path.join(root, "default", "boom", rank_log_path(0, 0))).read()
    assert "ZeroDivisionError" in log and "run failed" in log


def test_decorator_with_call_time_options(root):
    exp = distlog.get_logger(root)

    @exp.run
    def train(config):
        exp.metrics.log(step=0, acc=config["lr"] * 10)
        return exp.run_id

    with exp.experiment("sweep"):
        rid = train({"lr": 0.1}, _run_name="cnn_lr0.1", _hyperparams={"lr": 0.1}, _tags=["cnn"])
    assert rid == "cnn_lr0.1"
    m = meta(root, "sweep", "cnn_lr0.1")
    assert m["status"] == "completed" and m["tags"] == ["cnn"]
    assert json.load(open(os.path.join(root, "sweep", "cnn_lr0.1", PARAMS_FILE))) == {"lr": 0.1}


def test_one_run_at_a_time(root):
    exp = distlog.get_logger(root)
    with exp.run("a"):
        with pytest.raises(RunStateError, match="still open"):
            exp.start_run("b")


def test_git_state_recorded_inside_a_checkout(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "f.txt").write_text("x")
    subprocess.run(["git", "add", "f.txt"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "m"], cwd=repo, check=True)
    (repo / "f.txt").write_text("changed")
    script = "import distlog\nexp = distlog.get_logger('runs')\nwith exp.run('g'):\n    pass\n"
    subprocess.run([sys.executable, "-c", script], cwd=repo, check=True, timeout=120)
    m = meta(str(repo / "runs"), "default", "g")
    assert len(m["git"]["commit"]) == 40 and m["git"]["dirty"] is True


def test_no_git_process_outside_a_checkout(tmp_path):
    """Opening a run outside a git working tree starts no ``git`` (a process start is most
    of a run's open time); run.json says ``"git": null``. A ``git`` first on PATH that
    leaves a mark shows whether one was started; with GIT_DIR set it is."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    work.mkdir()
    mark = tmp_path / "git-started"
    fake = bin_dir / "git"
    fake.write_text(f"#!/bin/sh\ntouch {mark}\nexit 128\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("GIT_DIR", None)
    script = "import distlog\nexp = distlog.get_logger('runs')\nwith exp.run('g'):\n    pass\n"
    subprocess.run([sys.executable, "-c", script], cwd=work, env=env, check=True, timeout=120)
    assert not mark.exists()
    assert meta(str(work / "runs"), "default", "g")["git"] is None
    subprocess.run([sys.executable, "-c", script.replace("'g'", "'h'")], cwd=work,
                   env={**env, "GIT_DIR": str(tmp_path / "elsewhere.git")}, check=True, timeout=120)
    assert mark.exists()
    assert meta(str(work / "runs"), "default", "h")["git"] is None  # (git failed: nothing recorded)


@pytest.mark.parametrize("crash", [False, True])
def test_atexit_closes_a_forgotten_run(tmp_path, crash):
    script = textwrap.dedent(f"""
        import distlog
        exp = distlog.get_logger({str(tmp_path)!r})
        exp.start_run("forgot")
        exp.metrics.log(step=1, loss=0.5)
        exp.metrics.collect(step=2, acc=0.25)  # never flushed: the closing flush keeps it
        exp.metrics.collect(step=3, acc=0.75)
        exp.info("still here")
        if {crash}:
            raise RuntimeError("user bug")
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (p.returncode != 0) == crash
    m = meta(str(tmp_path), "default", "forgot")
    assert m["status"] == ("failed" if crash else "completed")
    if crash:
        assert m["error"]["message"] == "user bug"
    commit = json.load(open(tmp_path / "default" / "forgot" / table_commit(SCALARS_TABLE)))
    assert commit["lengths"] == {"loss": 1, "acc": 1}
    acc = distlog.open_run(str(tmp_path / "default" / "forgot")).metrics.read("acc").to_frame()
    assert acc["step"].tolist() == [3.0] and acc["mean"].tolist() == [0.5]
    assert m["last_step"] == 3


def test_a_run_whose_logger_was_dropped_is_closed_at_exit_with_its_rows(tmp_path):
    """A logger made in a function (or a notebook cell run again) and dropped while its run is
    open: its run is still closed at exit, every row stored (it used to be garbage-collected
    with its logger: run.json said "running" and no row was committed)."""
    script = textwrap.dedent(f"""
        import gc
        import distlog

        def train():
            exp = distlog.get_logger({str(tmp_path)!r})
            exp.start_run("dropped")
            for i in range(3):
                exp.metrics.log(step=i, loss=0.5 * i)

        train()
        gc.collect()
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    m = meta(str(tmp_path), "default", "dropped")
    assert m["status"] == "completed" and m["last_step"] == 2
    loss = distlog.open_run(str(tmp_path / "default" / "dropped")).metrics.read("loss").to_frame()
    assert loss["value"].tolist() == [0.0, 0.5, 1.0]


def test_close_open_runs_frees_a_run_whose_logger_a_notebook_made_again(tmp_path):
    """A notebook cell run again makes a new logger while the first one's run is open:
    starting the run again says how to free it, ``distlog.close_open_runs()`` closes it (its
    rows stored), and the run then starts again as its next attempt. In a process of its own:
    close_open_runs() closes every run of the process, and a test worker holds other tests'."""
    script = textwrap.dedent(f"""
        import gc
        import distlog

        root = {str(tmp_path)!r}
        exp = distlog.get_logger(root)
        exp.start_run("nb")
        exp.metrics.log(step=0, loss=1.0)
        exp = distlog.get_logger(root)  # the cell again: the first logger is dropped
        gc.collect()
        try:
            exp.start_run("nb")
            raise SystemExit("started a run this process holds")
        except distlog.RunInUseError as e:
            assert "this process" in str(e) and "distlog.close_open_runs" in str(e), e
        assert distlog.close_open_runs() == ["default/nb"]
        assert distlog.close_open_runs() == []
        exp.start_run("nb")
        exp.metrics.log(step=1, loss=2.0)
        exp.close()
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    loss = distlog.open_run(str(tmp_path / "default" / "nb")).metrics.read("loss").to_frame()
    assert loss["value"].tolist() == [1.0, 2.0]
    assert [a["status"] for a in meta(str(tmp_path), "default", "nb")["attempts"]] == ["completed", "completed"]


def test_import_leaves_the_excepthook_alone():
    script = "import sys; hook = sys.excepthook; import distlog; assert sys.excepthook is hook"
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_params_api(root):
    exp = distlog.get_logger(root)
    with exp.run("p"):
        exp.params.set(lr=0.1, optim={"name": "adam", "betas": (0.9, 0.999)})
        exp.params.extend(optim={"eps": 1e-8}, seed=3)
        exp.params.update("optim.lr", 3e-4)
        exp.params.update("sched.warmup.steps", 100)
        got = exp.params.read()
        assert got == {"lr": 0.1, "seed": 3, "sched": {"warmup": {"steps": 100}},
                       "optim": {"name": "adam", "betas": (0.9, 0.999), "eps": 1e-8, "lr": 3e-4}}
        with pytest.raises(TypeError, match="param 'bad' has type object"):
            exp.params.extend(bad=object())
        assert exp.params.read() == got  # the failed update changed nothing
        exp.params.set(arr=np.eye(2))
        np.testing.assert_array_equal(exp.params.read()["arr"], np.eye(2))


def test_logs_api(root, caplog):
    exp = distlog.get_logger(root)
    with exp.run("l"):
        exp.logs.set_level("INFO")
        exp.debug("hidden")
        exp.info("starting epoch 1")
        exp.logs.warning("low GPU memory", free_mb=512)
        exp.error("failed at step", step=12, input_shape=(3, 4))
        try:
            {}["missing"]
        except KeyError:
            exp.exception("lookup failed")
        logging.getLogger("thirdparty").propagate = False
        exp.logs.capture_logging("thirdparty", "INFO")
        logging.getLogger("thirdparty").info("from stdlib %d", 42)
        errors = exp.get_logs(level="ERROR", limit=50)
        assert [r.message for r in errors] == ["failed at step", "lookup failed: KeyError: 'missing'"]
        assert errors[0].step == 12 and errors[0].fields == {"input_shape": [3, 4]}
        assert "Traceback" in errors[1].fields["traceback"]
        everything = [r.message for r in exp.get_logs(limit=None)]
        assert "hidden" not in everything and "from stdlib 42" in everything
        assert exp.get_logs(limit=2)[-1].message == "from stdlib 42"
    # echoed through the stdlib logger "distlog.echo" (stderr when logging is not configured)
    echoed = [r.getMessage() for r in caplog.records if r.name == "distlog.echo"]
    assert echoed[0] == "[distlog r0] WARNING low GPU memory", echoed
    assert all(" INFO " not in m and " DEBUG " not in m for m in echoed), echoed  # WARNING up


def test_readme_notes(root):
    exp = distlog.get_logger(root)
    with exp.run("n"):
        exp.readme.write("# Notes\n")
        exp.readme.append("Tried lr=0.1.")
        assert exp.readme.read() == "# Notes\n\nTried lr=0.1."
    assert open(os.path.join(root, "default", "n", README_FILE)).read().startswith("# Notes")


def test_log_io_failure_is_reported_not_raised(root, caplog):
    exp = distlog.get_logger(root)
    with exp.run("io"):
        run = exp.current_run
        logdir = os.path.join(root, "default", "io", LOGS_DIR)
        sink = run.log_sink
        with sink._lock:  # the open log file goes away: the next record opens it again
            sink._app.close()
            sink._app = None
        os.chmod(logdir, 0o500)
        try:
            if os.access(logdir, os.W_OK):  # root ignores permissions: break the path instead
                os.chmod(logdir, 0o700)
                import shutil

                shutil.rmtree(logdir)
                open(logdir, "w").close()  # a file where the folder should be
            exp.info("this line cannot be written")
            exp.info("nor this one")
        finally:
            if os.path.isdir(logdir):
                os.chmod(logdir, 0o700)
    reported = [r.getMessage() for r in caplog.records if r.name == "distlog"]
    assert sum("could not write to log" in m for m in reported) == 1, reported
    assert all(m.startswith("distlog: ") for m in reported), reported


def test_logger_on_a_storage_backend_object(tmp_path):
    from distlog.storage import open_storage

    backend = open_storage(str(tmp_path / "root"))
    exp = distlog.get_logger(backend, commit_interval=1.0)  # run options still apply
    assert exp.storage is backend
    with exp.run("obj"):
        exp.metrics.log(step=0, loss=1.5)
    run = distlog.open_run(str(tmp_path / "root" / "default" / "obj"))
    assert run.info.status == "completed" and run.metrics.read("loss")["value"].tolist() == [1.5]
    exp2 = distlog.Experiment(backend)
    assert exp2.storage is backend
    with pytest.raises(TypeError, match=r"storage options \['anon'\] given with a StorageBackend"):
        distlog.get_logger(backend, anon=True)
    with pytest.raises(TypeError, match="expected a root path or URL .* got int"):
        distlog.get_logger(3)


def test_a_log_record_carries_the_step_it_is_written_in(root):
    exp = distlog.get_logger(root)
    with exp.run("steps"):
        exp.info("before any step")
        exp.metrics.collect(step=5, loss=1.0)
        exp.info("inside step 5")
        exp.metrics.flush()
        exp.info("after the flush of step 5")
        exp.metrics.collect(step=6, loss=0.5)
        exp.info("explicit", step=42)
        exp.metrics.log(step=7, acc=0.5)
        exp.metrics.flush()
        exp.info("after log(step=7) and the flush of 6")
        with exp.step(9):
            exp.info("in exp.step(9)")
        got = {r.message: r.step for r in exp.get_logs(level="INFO", limit=None)}
    assert got == {"before any step": None, "inside step 5": 5, "after the flush of step 5": 5,
                   "explicit": 42, "after log(step=7) and the flush of 6": 7, "in exp.step(9)": 9}


@pytest.mark.parametrize("params, kind", [({"bad": object()}, TypeError),
                                          ({"optim.lr": 0.1, "optim": {"lr": 0.01}}, ValueError)])
def test_a_run_whose_params_are_refused_ends_failed_and_frees_the_experiment(tmp_path, params, kind):
    root = str(tmp_path)
    exp = distlog.get_logger(root)
    with pytest.raises(kind):
        with exp.run("r", params=params):
            pass
    meta = json.loads((tmp_path / "default" / "r" / "run.json").read_text())
    assert meta["status"] == "failed" and kind.__name__ in str(meta["error"]), meta
    with exp.run("next", params={"lr": 0.1}):  # the experiment is free for the next run
        exp.metrics.log(step=0, x=1.0)
    assert distlog.open_run(f"{root}/default/next").params["lr"] == 0.1


def test_an_attempt_that_fails_while_starting_ends_failed_with_its_cause(tmp_path):
    """run.json says the attempt runs before its parts load (here params.json of the first
    attempt is unreadable): the failure ends the attempt failed, with a failure record,
    instead of "running" forever with no heartbeat to judge it by."""
    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with exp.run("r", params={"lr": 0.1}):
        exp.metrics.log(step=0, loss=1.0)
    (tmp_path / "default" / "r" / PARAMS_FILE).write_text('{"lr": 0.1')  # torn
    with pytest.raises(ValueError):
        exp.start_run("r")
    meta = json.loads((tmp_path / "default" / "r" / RUN_FILE).read_text())
    assert meta["status"] == "failed" and meta["attempt"] == 1, meta
    assert meta["attempts"][1]["status"] == "failed" and meta["error"]["type"] == "DamagedRecord"  # (stop 46: named, not a bare JSONDecodeError)
    assert distlog.open_run(f"{root}/default/r").info.status == "failed"


def test_a_resumed_attempt_starts_without_the_earlier_attempts_rank_errors(tmp_path):
    root = str(tmp_path)
    exp = distlog.get_logger(root, heartbeat_interval=0)
    with pytest.raises(RuntimeError):
        with exp.run("r"):
            raise RuntimeError("attempt 0 failed")
    assert json.loads((tmp_path / "default" / "r" / RUN_FILE).read_text())["rank_errors"]
    with exp.run("r"):
        meta = json.loads((tmp_path / "default" / "r" / RUN_FILE).read_text())
        assert meta["attempt"] == 1 and meta["rank_errors"] == [] and meta["error"] is None
    meta = json.loads((tmp_path / "default" / "r" / RUN_FILE).read_text())
    assert meta["status"] == "completed" and meta["rank_errors"] == []
