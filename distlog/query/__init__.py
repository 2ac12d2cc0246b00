"""Reading runs after (or while) they are written: the Python side of ``distlog`` queries.

    run = distlog.open_run("runs/mnist/20261128-070000-ab12cd")
    run.info.status, run.params, run.metrics.keys()   # status: "stale" when heartbeats stopped
    df = run.metrics["train/loss"]            # step, time, value, mean, min, max, sum, count,
                                              # nonfinite, argmin_rank, argmax_rank
    run.logs.query(rank=1, level="WARNING", grep="nan", tail=50)
    run.telemetry.report(), run.heartbeats()  # per-rank step time, waits, memory; last heartbeats

    root = distlog.open_root("runs")
    root.table("mnist", metrics=["train/loss"])          # the sweep table (runs x params x metrics)
    root.read_metrics("train/loss@mean", "mnist", bin_size=100)   # bands across seeds

Only committed data is read: a run being written is read safely, at its last commit.
"""

from .errors import KeyNotFound, QueryError, RankNotFound, RunNotFound
from .logfilter import LogFilter
from .logmerge import LogReader, MergedLogs
from .root import RootReader, find_run, open_root
from .run_reader import RunInfo, RunReader, open_run
from .series import Histograms, MetricsReader, Series
from .sweeps import read_metrics

__all__ = [
    "Histograms", "KeyNotFound", "LogFilter", "LogReader", "MergedLogs", "MetricsReader",
    "QueryError", "RankNotFound", "RootReader", "RunInfo", "RunNotFound", "RunReader", "Series",
    "find_run", "open_root", "open_run", "read_metrics",
]
