"""Threads whose first calls meet a run's start or end (a user review of thread races).

* Threads whose first call comes with no run open: one run starts; the others raised
  "run ... is still open" (20 of 20 reps with 4 threads).
* A monitor thread's call between the runs of a loop (an HPO search) started a stray run,
  which the next trial's ``with exp.run(...)`` refused as still open.
* A thread's first ``log()`` racing the run's close opened a writer after the close: the call
  returned, its row went nowhere (or, late, into the run recorded complete), its writer thread
  ran on.
* Concurrent ``params.extend``/``update`` lost keys (23 of 30 reps); concurrent first
  ``exp.files`` made several artifact loggers (each merging the files table at close).
* A run ``start_run`` returned, closed with its own ``close()`` (wandb's ``run.finish()``), left
  the logger saying both that it had ended and that it was still open."""

from __future__ import annotations

import threading
import time

import pytest

import distlog
from distlog.errors import RunStateError


def _together(n, fn):
    go, out = threading.Barrier(n), [None] * n

    def one(i):
        go.wait()
        try:
            fn(i)
            out[i] = "ok"
        except Exception as e:  # noqa: BLE001 - what each thread got is the result
            out[i] = f"{type(e).__name__}: {e}"

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


@pytest.mark.timeout(120)
def test_threads_whose_first_calls_come_together_share_one_run_started_once(tmp_path):
    for rep in range(5):
        root = str(tmp_path / f"root{rep}")
        exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
        got = _together(4, lambda i: exp.metrics(f"t{i}").log(step=0, v=float(i)))
        exp.close()
        assert got == ["ok"] * 4, got
        (run,) = distlog.open_root(root).runs()
        assert run.metrics.lengths() == {f"t{i}/v": 1 for i in range(4)}


@pytest.mark.timeout(120)
def test_a_threads_call_between_runs_is_refused_and_starts_no_stray_run(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    stop, said = threading.Event(), []

    def monitor():
        step = 0
        while not stop.is_set():
            try:
                exp.metrics("sys").log(step=step, cpu=1.0)
                step += 1
            except RunStateError as e:
                said.append(str(e))
            time.sleep(0.001)

    th = threading.Thread(target=monitor)
    with exp.experiment("hpo"):
        for trial in range(4):
            with exp.run(f"t{trial}"):
                if trial == 0:
                    th.start()
                for step in range(5):
                    exp.metrics.log(step=step, loss=float(trial))
                time.sleep(0.02)
            time.sleep(0.02)  # (between trials: the monitor's calls find no run)
    stop.set()
    th.join(30)
    runs = sorted(r.info.path for r in distlog.open_root(root).runs())
    assert runs == [f"hpo/t{i}" for i in range(4)], runs  # no stray run
    assert said and all("does not start one" in m for m in said), said[:3]


@pytest.mark.timeout(120)
def test_a_threads_first_log_racing_the_close_is_stored_or_refused(tmp_path):
    earlier = _writer_threads()  # (another test's in this worker: not this one's to judge)
    for rep in range(3):
        exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0, telemetry=False)
        got = []
        with exp.run(f"r{rep}"):
            writers = exp.current_run.writers
            real = writers._open_writer

            def slow(*args, _real=real):  # (a slow store: the writer opens as the run closes)
                if threading.current_thread() is not threading.main_thread():
                    time.sleep(0.05)
                return _real(*args)

            writers._open_writer = slow
            started = threading.Event()

            def late():
                started.set()
                try:
                    exp.metrics("sys").log(step=0, v=1.0)
                    got.append("returned")
                except RunStateError:
                    got.append("refused")

            th = threading.Thread(target=late)
            th.start()
            started.wait()
            time.sleep(0.01)
        th.join(30)
        run = distlog.open_run(tmp_path / "root" / "default" / f"r{rep}")
        stored = run.metrics.lengths().get("sys/v", 0)
        assert got in (["returned"], ["refused"]) and stored == (1 if got == ["returned"] else 0), (got, stored)
        assert not _writer_threads() - earlier


@pytest.mark.timeout(120)
def test_params_set_from_several_threads_at_once_keep_every_key(tmp_path):
    for rep in range(10):
        exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0, telemetry=False)
        with exp.run(f"r{rep}"):
            exp.params.set(base=1)
            got = _together(4, lambda i: exp.params.extend({f"e{i}": i}) if i % 2 else
                            exp.params.update(f"u.k{i}", i))
            assert got == ["ok"] * 4
        stored = distlog.open_run(tmp_path / "root" / "default" / f"r{rep}").params
        assert stored == {"base": 1, "e1": 1, "e3": 3, "u": {"k0": 0, "k2": 2}}, stored


@pytest.mark.timeout(120)
def test_threads_saving_their_first_files_at_once_share_one_artifact_logger(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0, telemetry=False)
    with exp.run("r"):
        run = exp.current_run
        made = []
        import distlog.files as files_module

        real = files_module.ArtifactLogger.__init__

        def counted(self, ctx, namespace="", _shared=None):
            if _shared is None:  # (the run's logger, not a namespace's view of it)
                made.append(1)
                time.sleep(0.01)  # (a wider window: the import and set-up of the first use)
            real(self, ctx, namespace, _shared)

        files_module.ArtifactLogger.__init__ = counted
        try:
            got = _together(4, lambda i: exp.files("f").save(f"bytes {i}".encode(), f"f{i}.bin"))
        finally:
            files_module.ArtifactLogger.__init__ = real
        assert got == ["ok"] * 4 and len(made) == 1 and run.files is run.files
    paths = distlog.open_run(tmp_path / "root" / "default" / "r").files.paths()
    assert sorted(paths) == [f"f/f{i}.bin" for i in range(4)]


def test_a_run_closed_with_its_own_close_is_over_for_the_logger(tmp_path):
    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0, telemetry=False)
    run = exp.start_run("z")
    exp.metrics.log(step=0, x=1.0)
    run.close()  # (wandb's run.finish())
    exp.start_run("w")  # before: "run 'z' is still open"
    exp.metrics.log(step=0, x=2.0)
    exp.close()
    for run_id, x in (("z", 1.0), ("w", 2.0)):
        r = distlog.open_run(tmp_path / "root" / "default" / run_id)
        assert r.info.status == "completed" and r.metrics.read("x")["value"].tolist() == [x]


@pytest.mark.timeout(120)
def test_a_worker_thread_that_opens_its_own_runs_goes_on_to_the_next(tmp_path):
    """The refusal above is for threads logging into runs others opened: a job-queue thread
    that logged, closed its run and logged again got RunStateError (a review of the fix)."""
    exp = distlog.get_logger(str(tmp_path / "root"), heartbeat_interval=0, telemetry=False)
    got = []

    def jobs():
        for job in range(3):
            try:
                exp.metrics.log(step=0, job=float(job))  # (its first call starts the run)
                exp.close()
                got.append("ok")
            except RunStateError as e:
                got.append(str(e))

    th = threading.Thread(target=jobs, name="jobs")
    th.start()
    th.join(60)
    assert got == ["ok"] * 3, got
    assert sorted(r.metrics.read("job")["value"].tolist()[0] for r in distlog.open_root(str(tmp_path / "root")).runs()) == [0.0, 1.0, 2.0]


def _writer_threads() -> set:
    return {t for t in threading.enumerate() if t.name == "distlog-writer"}
