"""``/api/ranks``: every rank of a run at a glance — its heartbeat (host, pid, where it is, whether
it still lives) beside its telemetry (the straggler report's row), and one telemetry field over
the run's flushes for a chart.

``field=`` picks the charted field (default ``step_time``; ``run.telemetry.fields()`` lists
them). The field's rank x flush matrix is cut to at most ``width`` points: each point the mean
of the finite values of its bucket of consecutive flushes (a straggler is a rank whose line sits
above the others for many flushes; a one-flush spike is not what this view is for — the CLI's
``distlog ranks --plot`` draws every flush). Up to ``LINES_UP_TO`` ranks each get a line; more
get the median over ranks, the min–max band and the slowest rank's line.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from starlette.requests import Request

from ..heartbeat import _stopped, describe, process_gone
from ..query.errors import KeyNotFound
from ..query.telemetry import Matrix
from .api import Api, arg_int, arg_str
from .downsample import bucket_starts, is_sorted
from .encode import jsonable

LINES_UP_TO = 16
DEFAULT_FIELD = "step_time"


def ranks(api: Api, request: Request) -> dict[str, Any]:
    run = api.run(request)
    info = run.info
    now = time.time()
    beats = run.heartbeats()
    tel = run.telemetry
    fields = tel.fields() if tel else []
    report = None
    if fields:
        try:
            report = tel.report()
        except KeyNotFound:  # (no interval stored: a run whose flushes all came before telemetry)
            report = None
    world = int(info.world_size or 0) or max(beats, default=-1) + 1
    told = len(report.ranks) if report is not None else 0
    rows = [_rank_row(r, beats.get(r), now) for r in range(max(world, told))]
    note = None
    columns = [c for c in report.ranks.columns if c != "rank"] if report is not None else []
    if report is not None:
        for rec in report.ranks.to_dict("records"):
            rows[int(rec["rank"])]["telemetry"] = {c: _number(rec[c]) for c in columns}
        if world and told != world:  # (a resumed attempt at another world size stores none)
            note = (f"telemetry of {told} ranks, from an earlier attempt: the run's last attempt ran "
                    f"{world} rank{'s' if world != 1 else ''}, whose telemetry is not stored")
    field = arg_str(request, "field", required=False) or DEFAULT_FIELD
    width = arg_int(request, "width", 600, 10, 4000)
    chart = None
    if fields:
        try:
            chart = chart_of(tel.matrix(field), width, report.slowest if report else None)
        except KeyNotFound as e:  # (a field this run has not: the page lists the ones it has)
            chart = {"error": str(e)}
    return {
        "status": info.status, "world_size": world, "ranks": rows, "note": note,
        "telemetry": None if report is None else {
            "columns": columns, "summary": report.summary(),
            "slowest": report.slowest, "flushes": report.flushes,
        },
        "fields": fields, "field": field, "chart": chart,
        "why_none": None if fields else "no telemetry: the run was started with telemetry=False, "
                                        "or no flush has been committed yet",
    }


def _rank_row(rank: int, rec: dict[str, Any] | None, now: float) -> dict[str, Any]:
    if rec is None:
        return {"rank": rank, "health": "no heartbeat", "line": "no heartbeat (heartbeat_interval=0, "
                "or the rank never started)", "telemetry": None}
    state = rec.get("state", "running")
    if state != "running":
        health = state  # its last record: completed, failed, interrupted ...
    elif process_gone(rec):
        health = "process gone"
    elif _stopped(rec, now):
        health = "heartbeats stopped"
    elif rec.get("in_flush") is not None and now - float(rec.get("flush_entered") or now) >= 10:
        health = "waiting in flush"
    else:
        health = "alive"
    last_log = rec.get("last_log")
    return {
        "rank": rank, "health": health, "host": rec.get("host"), "pid": rec.get("pid"),
        "state": state, "beat_age": round(now - float(rec.get("time", now)), 3),
        "step": jsonable(rec.get("step")), "flushes": rec.get("flushes"),
        "in_flush_for": None if rec.get("in_flush") is None else round(now - float(rec.get("flush_entered") or now), 3),
        "last_log": None if not last_log else f"{last_log.get('level')} {last_log.get('message')}",
        "line": describe(rec, now), "telemetry": None,
    }


def chart_of(m: Matrix, width: int, slowest: int | None) -> dict[str, Any]:
    """One telemetry field for a chart: x (the step, or the wall time where the steps go back,
    as after a resume) cut into at most ``width`` buckets of consecutive flushes, each rank's
    mean over the finite values of each bucket; past ``LINES_UP_TO`` ranks the median over
    ranks, the min-max band and the ``slowest`` rank's line instead of a line per rank."""
    x_is_step = is_sorted(m.step) and np.isfinite(m.step).all()
    x = m.step if x_is_step else m.time
    values = m.values
    starts = bucket_starts(x, width) if len(x) > width else np.arange(len(x))
    xs = x[starts] if len(starts) else x[:0]
    fin = np.isfinite(values)
    if len(starts):
        sums = np.add.reduceat(np.where(fin, values, 0.0), starts, axis=0)
        counts = np.add.reduceat(fin.astype(np.int64), starts, axis=0)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    else:
        means = np.zeros((0, values.shape[1]))
    rows_per_point = (len(x) / len(starts)) if len(starts) else 0
    series: list[dict[str, Any]] = []
    band = None
    if m.ranks <= LINES_UP_TO:
        for r in range(m.ranks):
            series.append({"label": f"rank {r}", "rank": r, "values": _list(means[:, r])})
    else:
        with warnings.catch_warnings():  # (a bucket where no rank has a value: NaN, said nothing)
            warnings.simplefilter("ignore", RuntimeWarning)
            med, lo, hi = (np.nanmedian(means, axis=1), np.nanmin(means, axis=1), np.nanmax(means, axis=1))
        series.append({"label": f"median of {m.ranks} ranks", "rank": None, "values": _list(med)})
        band = {"min": _list(lo), "max": _list(hi)}
        if slowest is not None:
            series.append({"label": f"rank {slowest} (slowest)", "rank": slowest, "values": _list(means[:, slowest])})
    return {"x": "step" if x_is_step else "time", "xs": _list(xs), "series": series, "band": band,
            "flushes": int(len(x)), "per_point": round(rows_per_point, 2)}


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _list(a: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(a, dtype=np.float64)]
