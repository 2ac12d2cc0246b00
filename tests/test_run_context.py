"""The run/component contract (issue 11): each component gets a narrow ``RunContext`` (identity
and place, the current step, close hooks) plus only the collaborators it uses, and never the
run. Checked on a real run (no component reaches the ``Run`` object through its references)
and by building components from their parts alone, without a run."""

from __future__ import annotations

import dataclasses
import gc
import sys
import types

import numpy as np

import distlog
from distlog.comm import LocalComm
from distlog.context import RunContext
from distlog.launcher import RankInfo
from distlog.layout import PARAMS_FILE, SCALARS_TABLE, rank_log_path
from distlog.logs import TextLogger
from distlog.metrics import SCALAR_COLUMNS, MetricsLogger
from distlog.monitor import RankMonitor
from distlog.params import ParameterIndex
from distlog.run import open_writer
from distlog.storage.registry import open_storage
from distlog.writers.rowstore import RowTable
from distlog.writers.runwriters import RunWriters
from distlog.writers.textlog import TextLogSink

IDENTITY_AND_PLACE = {"rank", "world_size", "attempt", "info", "storage", "root", "current_step",
                      "stop_requested", "final_flush_hooks", "close_hooks"}


def test_the_context_holds_identity_and_place_only(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=0)
    with exp.run("ctx"):
        run = exp.current_run
        ctx = run.ctx
        assert {f.name for f in dataclasses.fields(RunContext)} == IDENTITY_AND_PLACE
        for collaborator in ("comm", "metrics", "monitor", "writers", "log_sink", "logs", "files"):
            assert not hasattr(ctx, collaborator), collaborator
        assert (ctx.rank, ctx.world_size, ctx.attempt, ctx.url) == (0, 1, 0, run.url)
        with exp.step(7):
            assert ctx.current_step == 7  # what the run set, read by every component
        assert ctx.current_step is None
        assert not exp.stop_requested
        exp.request_stop()
        assert ctx.stop_requested and not exp.stop_requested  # agreed at the next flush only
        exp.metrics.collect(step=1, loss=1.0)
        exp.flush()
        assert exp.stop_requested


def _reaches(start: object, target: object, limit: int = 200_000) -> list[str]:
    """The type names on a reference path from ``start`` to ``target`` (empty: none), not
    counting modules, classes and module globals (shared by everything)."""
    skip = {id(m.__dict__) for m in list(sys.modules.values()) if m is not None}
    seen = {id(start)}
    queue = [(start, [type(start).__name__])]
    while queue and len(seen) < limit:
        obj, path = queue.pop(0)
        for ref in gc.get_referents(obj):
            if ref is target:
                return path + [type(ref).__name__]
            if id(ref) in seen or id(ref) in skip or isinstance(ref, (types.ModuleType, type)):
                continue
            seen.add(id(ref))
            queue.append((ref, path + [type(ref).__name__]))
    return []


def test_no_component_holds_the_run(tmp_path):
    exp = distlog.get_logger(str(tmp_path), heartbeat_interval=3600)
    with exp.run("refs"):
        run = exp.current_run
        exp.metrics("train").collect(step=1, loss=0.5)
        exp.metrics.flush()
        exp.metrics.log(step=2, acc=1.0)
        exp.info("hello")
        exp.files.save({"a": 1}, "c.json")
        exp.params.set(lr=0.1)
        exp.readme.write("# notes")
        parts = {"ctx": run.ctx, "metrics": run.metrics, "view": run.metrics("train"), "logs": run.logs,
                 "params": run.params, "readme": run.readme, "files": run.files, "monitor": run.monitor,
                 "writers": run.writers, "sink": run.log_sink, "comm": run.comm}
        assert run.monitor.heartbeat is not None  # the heartbeat thread and its record are covered
        held = {name: path for name, obj in parts.items() if (path := _reaches(obj, run))}
        assert not held, f"components reach the run: {held}"


def test_components_are_built_from_their_parts_without_a_run(tmp_path):
    """A rank 3 of 4 needs no process group to log text: the logger uses the context and the
    sink only. Metrics on one process use a LocalComm, the writers and a quiet monitor."""
    storage = open_storage(str(tmp_path / "run"))
    ctx = RunContext(rank=3, world_size=4, attempt=1, info=RankInfo(3, 4, local_rank=1, host="h"),
                     storage=storage, root=open_storage(str(tmp_path)))
    sink = TextLogSink(storage, rank_log_path(3, 1))
    logs = TextLogger(ctx, sink, latest_step=lambda: 41.0)
    logs.info("from parts", k=1)
    rec = logs.get_logs(limit=None)[-1]
    assert (rec.rank, rec.local_rank, rec.host, rec.attempt, rec.step) == (3, 1, "h", 1, 41)
    assert logs.last_record is not None and logs.last_record.message == "from parts"
    sink.close()

    ctx0 = dataclasses.replace(ctx, rank=0, world_size=1, attempt=0, info=RankInfo(),
                               final_flush_hooks=[], close_hooks=[])
    ParameterIndex(ctx0).set(lr=0.5)
    assert storage.read_json(PARAMS_FILE)["lr"] == 0.5

    opened = []

    def open_(main, resume_step, rewind, since):
        opened.append(main)
        return open_writer(ctx0, main, resume_step, rewind, since, chunk_rows=64, commit_interval=3600,
                           telemetry=False, warn=print)

    comm = LocalComm()
    writers = RunWriters(0, open_)
    monitor = RankMonitor(ctx0, comm, writers, telemetry=False, heartbeat_interval=None)
    flushed = []
    metrics = MetricsLogger(ctx0, comm, writers, monitor, after_flush=lambda: flushed.append(1))
    values = np.array([0.5, 1.5, 4.0])
    for v in values:
        metrics("train").collect(step=3, loss=float(v))
    red = metrics.flush()
    assert np.isclose(red["train/loss"]["mean"], values.mean())
    assert flushed == [1] and opened == [True] and writers.local() is writers.main()
    assert metrics.progress() == (3.0, 1)
    writers.commit()
    assert writers.close() == []
    table = RowTable(storage, SCALARS_TABLE, SCALAR_COLUMNS, 64)
    table.load()
    assert list(table.series) == ["train/loss"] and table.series["train/loss"].committed == 1
