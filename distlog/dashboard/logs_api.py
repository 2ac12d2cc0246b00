"""``/api/logs``: every rank's log merged by time, filtered, paged and followed.

Filters are those of ``run.logs.query`` (rank, level, regex, steps, since/until). Paging and
the live tail use time: ``tail=N`` gives the last N matching records, ``until=T`` pages
backwards, ``since=T`` asks for what came after T. A follower polls with ``since`` set a
little before its newest record (``lag``: ranks on an object store publish their lines in
segments, so an older line may arrive late) and drops the records it already holds; each
record carries its stored line as ``id`` for that. ``from_step=S`` jumps: the first records
at or after step S.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..logline import format_line
from ..query.run_reader import RunReader
from .api import Api, arg_int
from .encode import jsonable
from .paths import BadPath

MAX_RECORDS = 5000
GREP_SECONDS = 10.0  # what one request's grep may take over a run's logs


def _record(rec: Any) -> dict[str, Any]:
    # a field logged as NaN or inf reads "nan" / "inf" (JSON has neither; null would say no value)
    return {"t": round(rec.time, 6), "level": rec.level, "rank": rec.rank, "attempt": rec.attempt,
            "host": rec.host, "step": rec.step, "message": rec.message,
            "fields": jsonable(rec.fields) if rec.fields else None, "id": format_line(rec).rstrip("\n")}


def logs(api: Api, request: Request) -> dict[str, Any]:
    run: RunReader = api.run(request)
    q = request.query_params
    limit = arg_int(request, "limit", 1000, 1, MAX_RECORDS)
    ranks = [r for r in q.getlist("rank") if r != ""]
    filters = {
        "rank": ranks or None, "level": q.get("level") or None, "grep": q.get("grep") or None,
        "ignore_case": q.get("i") in ("1", "true"), "since": q.get("since") or None,
        "until": q.get("until") or None, "steps": q.get("steps") or None,
        "time_limit": GREP_SECONDS,  # a pattern that backtracks without end: a 400, not a stall
    }
    from_step = arg_int(request, "from_step", None)
    if from_step is not None:
        if filters["steps"]:
            raise BadPath("give steps=A:B or from_step=S, not both")
        # from the first record at that step or later, on: the records after it that carry no
        # step (a run's start, a warning) too — a step filter alone left them out unsaid
        merged = run.logs.query(**filters)
        first = next((i for i, r in enumerate(merged) if r.step is not None and r.step >= from_step), len(merged))
        merged = merged[first:]
        recs = merged[:limit]
        more = len(merged) > limit
    else:
        tail = arg_int(request, "tail", limit, 1, MAX_RECORDS)
        merged = run.logs.query(tail=tail + 1, **filters)
        more = len(merged) > tail
        recs = merged[max(0, len(merged) - tail):]
    sources = run.logs.sources()
    return {"records": [_record(r) for r in recs], "more": more,
            "ranks": sorted({r for _, r, _ in sources}), "status": run.info.status,
            "lag": 1.0 if run.storage.supports_append else 35.0}
