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
from ..logline import step_text
from ..query.telemetry import Matrix
from .api import Api, arg_int, arg_str
from .downsample import bucket_starts, is_sorted
from .encode import jsonable

LINES_UP_TO = 16
DEFAULT_FIELD = "step_time"


#: the charted fields in the order a person looks for them (the raw ones they derive from last)
FIELD_ORDER = ("step_time", "wait", "cpu_percent", "rss", "gpu_allocated", "gpu_reserved", "gpu_peak",
               "gpu_util", "interval", "wait_prev")
#: seconds in a flush after which a rank is said to wait there (a flush takes milliseconds)
WAITING_AFTER = 10.0


def ranks(api: Api, request: Request) -> dict[str, Any]:
    run = api.run(request)
    info = run.info
    now = time.time()
    beats = run.heartbeats()
    tel = run.telemetry
    fields = sorted(tel.fields() if tel else [], key=lambda f: (FIELD_ORDER.index(f) if f in FIELD_ORDER else len(FIELD_ORDER), f))
    report = None
    if fields:
        try:
            report = tel.report()
        except KeyNotFound:  # (no interval stored: a run whose flushes all came before telemetry)
            report = None
    world = int(info.world_size or 0) or max(beats, default=-1) + 1
    told = len(report.ranks) if report is not None else 0
    rows = [_rank_row(r, beats.get(r), now, world) for r in range(max(world, told))]
    note = None
    columns = [c for c in report.ranks.columns if c != "rank"] if report is not None else []
    if report is not None:
        if world == 1 or report.flushes == 0:  # nobody to compare with, or nothing compared yet
            columns = [c for c in columns if c != "slowest_share"]
        if world == 1:  # (no peer to wait for)
            columns = [c for c in columns if not c.startswith("wait")]
        for rec in report.ranks.to_dict("records"):
            rows[int(rec["rank"])]["telemetry"] = {c: _number(rec[c]) for c in columns}
        if world and told != world:  # (a resumed attempt at another world size stores none)
            note = (f"The telemetry columns and chart are an earlier attempt's, of {told} rank"
                    f"{'s' if told != 1 else ''}: the run's last attempt ran {world} rank"
                    f"{'s' if world != 1 else ''}, whose telemetry is not stored. The heartbeat "
                    "columns are the last attempt's.")
    asked = arg_str(request, "field", required=False) or DEFAULT_FIELD
    field = asked if asked in fields or not fields else (DEFAULT_FIELD if DEFAULT_FIELD in fields else fields[0])
    width = arg_int(request, "width", 600, 10, 4000)
    chart = None
    if fields:
        chart = chart_of(tel.matrix(field), width, report.straggler if report else None)
    flushed = max((r.get("flushes") or 0 for r in rows), default=0)
    running = info.status == "running"
    lag = None
    if running and chart and flushed > chart["last_flush"]:
        lag = (f"the telemetry reaches flush #{chart['last_flush']}, the heartbeats report {flushed} "
               "flushes: a running run's rows are committed every few seconds")
    return {
        "status": info.status, "world_size": world, "ranks": rows, "note": note,
        "hang": _hang(rows), "lag": lag,
        "telemetry": None if report is None else {
            "columns": columns, "summary": report.summary(),
            "straggler": report.straggler, "flushes": report.flushes,
        },
        "fields": fields, "field": field,
        "field_error": None if asked == field else f"no telemetry field {asked!r} in this run: showing {field}",
        "chart": chart,
        "why_none": None if fields else (
            "no telemetry committed yet (a running run's rows are committed every few seconds), or the run "
            "was started with telemetry=False" if running else
            "no telemetry: the run was started with telemetry=False, or it committed no flush"),
    }


def _hang(rows: list[dict[str, Any]]) -> str | None:
    """Who waits for whom, when ranks have waited ``WAITING_AFTER`` s in a flush: those in it,
    and those not in it (where each is, from its heartbeat)."""
    waiting = [r for r in rows if r["health"] == "waiting in flush"]  # (alive: not a killed rank's last record)
    if not waiting:
        return None
    flush = max(r["in_flush"] for r in waiting)
    inside = [r for r in waiting if r["in_flush"] == flush]
    away = [r for r in rows if r.get("in_flush") != flush and "state" in r]  # (ranks of the last attempt)
    secs = max(r["in_flush_for"] for r in inside)
    text = (f"rank{'s' if len(inside) > 1 else ''} {', '.join(str(r['rank']) for r in inside)} "
            f"{'have' if len(inside) > 1 else 'has'} waited {secs:.0f} s in flush #{flush + 1}")
    if away:
        parts = []
        for r in away:
            where = r["health"] if r["health"] != "alive" else "alive, not in the flush"
            step = r.get("step")
            shown = step if isinstance(step, str) else step_text(step)  # (in full: 2**53 + 2 too)
            parts.append(f"rank {r['rank']} ({where}{'' if step is None else f', last step {shown}'})")
        text += "; not arrived: " + ", ".join(parts)
    return text


def _rank_row(rank: int, rec: dict[str, Any] | None, now: float, world: int) -> dict[str, Any]:
    if rec is None:
        if rank >= world:  # (an earlier attempt's rank: no fault of the run's last attempt)
            return {"rank": rank, "health": "not in last attempt", "telemetry": None,
                    "line": f"not in the run's last attempt (it ran {world} rank{'s' if world != 1 else ''})"}
        return {"rank": rank, "health": "no heartbeat", "telemetry": None,
                "line": "no heartbeat (heartbeat_interval=0, or the rank never started)"}
    state = rec.get("state", "running")
    in_flush = rec.get("in_flush")
    waited = None if in_flush is None else max(0.0, now - float(rec.get("flush_entered") or now))
    if state != "running":
        health = state  # its last record: completed, failed, interrupted ...
    elif process_gone(rec):
        health = "process gone"
    elif _stopped(rec, now):
        health = "heartbeats stopped"
    elif waited is not None and waited >= WAITING_AFTER:
        health = "waiting in flush"
    else:
        health = "alive"
    last_log = rec.get("last_log")
    return {
        "rank": rank, "health": health, "host": rec.get("host"), "pid": rec.get("pid"),
        "state": state, "beat_time": float(rec.get("time", now)),
        "step": jsonable(rec.get("step")), "flushes": rec.get("flushes"),
        "in_flush": in_flush, "in_flush_for": None if waited is None else round(waited, 3),
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
            "flushes": int(len(x)), "per_point": round(rows_per_point, 2),
            "last_flush": int(np.nanmax(m.flush)) + 1 if len(m.flush) else 0}


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _list(a: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(a, dtype=np.float64)]
