"""The ``distlog`` command: list, show and compare runs, read metrics and merged logs, plot.

    distlog ls ROOT                      experiments and runs
    distlog show RUN                     metadata, params, every metric's last/min/max
    distlog params RUN                   params (flattened, or --format json)
    distlog metrics RUN [KEY ...]        keys, or series (--stat, --rank, --format)
    distlog logs RUN [filters]           every rank's log merged by time (--tail, --follow)
    distlog files RUN                    the files table
    distlog ranks RUN [--plot out.png]   straggler report: step time, waits, memory per rank
    distlog compare ROOT/EXPERIMENT      the sweep table: runs x params x final metrics
    distlog compare RUN_A RUN_B ...      the same table for the runs named
    distlog plot RUN ... KEY ... -o out.png
    distlog export RUN --format csv|parquet
    distlog gc ROOT [--dry-run]          delete artifact blobs no run references
    distlog serve ROOT [--port N]        the web dashboard (read-only; 127.0.0.1 by default)

RUN is a run folder (path or URL); with ``--last``, the newest run below the given folder; a
unique prefix of a run id also works (``runs/mnist/2026``). Exit status: 0 ok, 1 nothing
matched, 2 usage error (bad arguments, or a run, key or rank that does not exist — the
message lists what does).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import re
import shlex
import sys
import time
import warnings
from typing import Any, Callable, Iterator, Sequence

from . import __version__
from .layout import RUN_STATUSES

OK, NOTHING, USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments found after parsing (exit status 2)."""


# ---- helpers ---------------------------------------------------------------------------------
def _out(text: str = "") -> None:
    sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))


def _err(text: str) -> None:
    sys.stderr.write(f"distlog: {text}\n")


def _progress() -> bool:
    return sys.stderr.isatty()


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """``-O key=value`` storage options (values read as JSON when they parse)."""
    opts: dict[str, Any] = {}
    for item in args.storage_option or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"storage option {item!r} is not KEY=VALUE (e.g. -O endpoint_url=http://...)")
        try:
            opts[key] = json.loads(value)
        except ValueError:
            opts[key] = value
    return opts


def _run(args: argparse.Namespace) -> Any:
    from .query.root import find_run

    return find_run(args.run, last=getattr(args, "last", False), **_options(args))


#: the summary's step columns (``metrics RUN``, ``show``)
SUMMARY_STEPS = ("first_step", "last_step")
#: the summary's columns of the chosen stat (``metrics RUN --stat time``: shown in full)
SUMMARY_VALUES = ("last", "min", "max", "mean")


def _summary_shown(summary: Any) -> Any:
    """A metrics summary as the CLI shows it: its ``nonfinite`` column only when a key had a
    NaN or ±inf value (a NaN loss on one rank shows, not only as a lower count)."""
    if len(summary) and not summary["nonfinite"].any():
        return summary.drop(columns="nonfinite")
    return summary


def _output_problem(path: str, option: str, example: str) -> str | None:
    """Why the local file ``path`` (given with ``option``, such as ``example``) cannot be
    written, or None."""
    if "://" in path:  # a URL: the writer (fsspec) says what is wrong
        return None
    if os.path.isdir(path):
        return (f"{option} {path} is a folder; expected a file to write, e.g. "
                f"{option} {os.path.join(path, example)}")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        return (f"{option} {path}: the folder {parent} does not exist; create it first "
                f"(mkdir -p {parent}) or give a file in an existing folder")
    return None


def _check_output(path: str, option: str, example: str = "out.png") -> None:
    """Before any work: a usage error (exit 2) for an output file that cannot be written."""
    problem = _output_problem(path, option, example)
    if problem:
        raise UsageError(problem)


def _check_image_output(path: str, option: str) -> None:
    """``_check_output`` for a chart: also a file type matplotlib writes (checked before any
    output, so that a table is not printed and then the command fails)."""
    if path == "-":  # (not a file named "-")
        raise UsageError(f"{option} -: a chart is an image file, not text for standard output; "
                         f"give a file name, e.g. {option} loss.png")
    _check_output(path, option)
    ext = os.path.splitext(path.rstrip("/").rpartition("/")[2])[1][1:].lower()
    if not ext:
        return  # (written as PNG)
    from matplotlib.backend_bases import FigureCanvasBase

    known = FigureCanvasBase.get_supported_filetypes()
    if ext not in known:
        stem = path[: len(path) - len(ext) - 1]
        raise UsageError(f"{option} {path}: a chart cannot be written as .{ext}; expected a file "
                         f"name ending in one of {', '.join('.' + k for k in sorted(known))}, "
                         f"e.g. {option} {stem}.png")


@contextlib.contextmanager
def _writing(path: str, option: str, example: str = "out.png") -> Any:
    """Writing ``path``: an OSError (no permission, the folder went) as a usage error."""
    try:
        yield
    except OSError as e:
        raise UsageError(_output_problem(path, option, example) or
                         f"cannot write {option} {path}: {e.strerror or e}; give a file you can write"
                         ) from None


@contextlib.contextmanager
def _output_file(path: str, option: str, args: argparse.Namespace,
                 example: str = "out.png") -> Iterator[str]:
    """A local path to write the output ``path`` at. A URL (``s3://bucket/loss.png``) is
    written to a temporary file of the same name, then stored through distlog's storage with
    the command's ``-O`` options (the endpoint and keys that read the run), never through a
    writer that knows nothing of them (pandas and matplotlib would reach the public endpoint)."""
    if "://" not in path:
        with _writing(path, option, example):
            yield path
        return
    import tempfile

    from .storage import open_storage

    parent, _, name = path.rstrip("/").rpartition("/")
    if not name or parent.endswith(":/") or parent.endswith("://"):
        raise UsageError(f"{option} {path}: expected a file URL below a bucket or folder, "
                         f"e.g. {option} s3://bucket/{example}")
    with tempfile.TemporaryDirectory(prefix="distlog-out-") as tmp:
        local = os.path.join(tmp, name)
        with _writing(path, option, example):
            yield local
        with open(local, "rb") as f:
            data = f.read()
        try:
            open_storage(parent, **_options(args)).write_bytes(name, data)
        except OSError as e:
            raise UsageError(f"cannot write {option}: {e}") from None


def _print_frame(df: Any, fmt: str, exact: Sequence[str] = (), steps: Sequence[str] = ()) -> int:
    """``exact``: columns (params) whose floats a table shows in full (``fmt_exact``);
    ``steps``: columns of steps (``fmt_step``: in full, never ``%.6g``)."""
    from .query.render import render_frame

    if df.empty and fmt == "table":
        return NOTHING
    _out(render_frame(df, fmt, exact, steps))
    return OK if not df.empty else NOTHING


# ---- commands --------------------------------------------------------------------------------
LS_DESCRIPTION = (
    "Experiments and runs under a root, one line per run, from each run's run.json (and a "
    "running run's commit record, for its last step): at most two requests per run on an "
    "object store. A run whose run.json is torn, foreign or missing is listed as damaged. A "
    "finished run's params.json and commit record are not read, so one whose params.json or "
    "commit record is torn is listed with the status its run.json records, where "
    "`distlog compare ROOT -m KEY`, open_root().table(metrics=...) and the dashboard, which "
    "read them, show it as damaged.")


def cmd_ls(args: argparse.Namespace) -> int:
    import pandas as pd

    from .query.render import fmt_duration, fmt_time
    from .query.root import hidden_holding_runs, keep_ints, nonfinite_text, open_root, run_rows

    root = open_root(args.root, **_options(args))
    hidden: list[str] = []
    with warnings.catch_warnings():  # (an experiment none has: _check_experiment says it)
        warnings.filterwarnings("ignore", message=r"experiment=", category=RuntimeWarning)
        runs = root.runs(args.experiment, status=args.status, progress=_progress(), skipped=hidden)
    hidden = hidden_holding_runs(root.storage, hidden)  # (not a checkpoint folder or .git)
    if hidden:
        _err(f"note: hidden folders hold runs not listed: {', '.join(map(repr, hidden[:5]))}"
             f"{' ...' if len(hidden) > 5 else ''} (names starting with '.' are not experiments "
             "or runs; rename them to list their runs)")
    rows = run_rows(runs)  # (running runs' last steps read together)
    if not rows and args.experiment:
        _check_experiment(root, args.experiment)
    if not rows:
        filtered = " matching the filters" if args.experiment or args.status else ""
        _err(f"no runs under {root.url}{filtered}")
        return NOTHING
    df = pd.DataFrame(rows)
    # a run without metrics has no last step: "-" (null), not 0 (a step that exists) nor NaN;
    # 3 beside another run's 0.5 stays 3 (and a damaged run's world size "-", not nan)
    df["last_step"] = pd.Series([r["last_step"] for r in rows], dtype=object, index=df.index)
    for c in ("world_size", "started", "duration"):  # (None, not NaN: "nan" is a value)
        keep_ints(df, c, [r[c] for r in rows])
    if args.format == "table":
        df["started"] = [fmt_time(t) for t in df["started"]]
        df["duration"] = [fmt_duration(d) for d in df["duration"]]
    shown = ["experiment", "run_id", "status", "started", "duration", "world_size", "last_step"]
    # the metrics whose value went NaN/inf, and from which step (a run that diverged): a table
    # shows the column when a run has one; JSON and CSV always have it
    nonfinite = [r["nonfinite_from"] for r in rows]
    if args.format != "table" or any(nonfinite):
        # (a table shows the first three of a run's; CSV all of them; JSON the mapping)
        df["nonfinite_from"] = pd.Series(
            nonfinite if args.format == "json" else
            [nonfinite_text(n, most=3 if args.format == "table" else None) for n in nonfinite],
            dtype=object, index=df.index)
        shown.append("nonfinite_from")
    # why a run failed (its first cause): a table shows the column when a run has one, cut
    # to a line's worth (`distlog show` has all of it); JSON and CSV always have it
    failures = [r["failure"] for r in rows]
    if args.format != "table" or any(failures):
        df["error"] = pd.Series([f if f is None or args.format != "table" or len(f) <= 60 else f[:57] + "..."
                                 for f in failures], dtype=object, index=df.index)
        shown.append("error")
    df = df[shown].copy()
    if args.format == "table":
        df.columns = ["experiment", "run", "status", "started (UTC)", "duration", "world", "last step",
                      *(["NaN/inf from"] if "nonfinite_from" in shown else []), *(["error"] if "error" in shown else [])]
    return _print_frame(df, args.format, steps=["last step"])


def cmd_show(args: argparse.Namespace) -> int:
    from .query.render import fmt_duration, fmt_exact, fmt_step, fmt_time, fmt_value, frame_table, one_line
    from .query.root import live_last_step, needs_live_step, nonfinite_text, run_nonfinite
    from .errors import DamagedRecord
    from .storage.aio import run_all

    run = _run(args)
    info = run.info
    damaged: list[DamagedRecord] = []  # (a torn record: the rest of the run is shown, then it)

    def readable(read: Callable[[], Any], instead: Any) -> Callable[[], Any]:
        def part() -> Any:
            try:
                return read()
            except DamagedRecord as e:
                damaged.append(e)
                return instead
        return part

    # everything below at once: params, metrics, logs and files do not depend on each other
    last, params, summary, sources, files, hists, own = run_all([
        readable(lambda: live_last_step(run) if needs_live_step(run) else info.last_step, info.last_step),
        readable(lambda: run.flat_params, None), readable(run.metrics.summary, None),
        readable(run.logs.sources, []), readable(run.files.paths, []),
        readable(run.metrics.histogram_lengths, {}), readable(run.metrics.ranks, [])])
    folder = _folder_path(run)
    lines = [
        f"run         {folder}", f"url         {run.url}", f"status      {info.status}",
        f"started     {fmt_time(info.first_start_time)} UTC",
        f"ended       {fmt_time(info.end_time)}{' UTC' if info.end_time else ''}",
        f"duration    {fmt_duration(info.duration())}{_running_note(info)}",
        f"world size  {fmt_value(info.world_size)}",
        f"hosts       {', '.join(info.hosts) or '-'}", f"attempts    {_attempts_line(info.attempts)}",
        f"last step   {fmt_step(last)}",
    ]
    if folder != info.path:
        lines.append(f"recorded    {info.path} (run.json's experiment/run id: this folder is a "
                     "copy of that run, or was renamed)")
    if info.tags:
        lines.append(f"tags        {', '.join(info.tags)}")
    changed = params_changed_text(info.attempts)
    if changed:  # (a run id run again with another config: its rows mix both)
        lines.append(f"params      changed by a later attempt: {changed}; rows of earlier attempts "
                     "were written with the earlier values")
    nonfinite = nonfinite_text(run_nonfinite(run), most=8)
    if nonfinite:  # (a run that diverged: "completed" alone would not say it)
        lines.append(f"NaN/inf     {nonfinite} (metric@step of its first NaN/inf value)")
    if info.error:
        err = info.error
        where = ", ".join(f"{k} {err[k]}" for k in ("attempt", "host") if err.get(k) is not None)
        on = "" if err.get("rank") is None else f" on rank {err['rank']}"
        message = str(err.get("message")).replace("\n", "\n" + " " * 12)  # (its later lines under the first)
        lines.append(f"error       {err.get('type')}{on}{f' ({where})' if where else ''}: {message}")
        if err.get("traceback"):
            lines.append(f"            its traceback: distlog logs {shlex.quote(run.url)} --level ERROR --fields")
    _out("\n".join(lines))
    _out("\nparams")
    _out("  (cannot be read: see below)" if params is None else
         "\n".join(f"  {k} = {fmt_exact(v)}" for k, v in params.items()) if params else "  (none)")
    _out("\nmetrics")
    summary = None if summary is None else _summary_shown(summary)
    _out("  (cannot be read: see below)" if summary is None else
         "  " + frame_table(summary, steps=SUMMARY_STEPS).replace("\n", "\n  ") if len(summary) else "  (none)")
    if hists:  # (read them with run.metrics.histogram(key), or plot them)
        _out("\nhistograms  " + ", ".join(f"{one_line(k)} ({n} step{'s' * (n != 1)})" for k, n in hists.items()))
    others = [r for r in own if r != 0]
    if others:  # values ranks other than 0 log()ged themselves: not in the summary above
        who = (f"rank {others[0]} has series of its own (what it" if len(others) == 1 else
               f"ranks {', '.join(map(str, others))} have series of their own (what each")
        _out(f"\nrank series {who} log()ged itself): "
             f"distlog metrics {shlex.quote(run.url)} --rank {others[0]}")
    ranks = sorted({r for _, r, _ in sources})
    _out(f"\nlogs        {len(sources)} file(s) from rank(s) {', '.join(map(str, ranks))}"
         if sources else "\nlogs        none")
    nfiles = len(files)
    if nfiles:
        _out(f"files       {nfiles}")
    if getattr(args, "ranks", False):
        _show_ranks(run)
    for e in dict.fromkeys(map(str, damaged)):
        _err(f"error: {e}")
    return USAGE if damaged else OK


def _running_note(info: Any) -> str:
    """With several attempts: how much of the duration they ran (the rest is time between
    them: a requeued job waiting in the queue)."""
    from .query.render import fmt_duration

    if len(info.attempts) < 2:
        return ""
    now = time.time()
    ran, whole = info.running_time(now), info.duration(now)
    if ran is None or whole is None:
        return f" (from the first attempt's start; {len(info.attempts)} attempts)"
    return f" ({fmt_duration(ran)} running in {len(info.attempts)} attempts, {fmt_duration(max(0.0, whole - ran))} between them)"


def params_changed_text(attempts: Sequence[Any]) -> str:
    """``attempt 1: lr 0.1 -> 0.001; ...`` of the attempts that changed params an earlier one
    stored (``run.json``'s ``params_changed``), "" if none did."""
    parts = []
    for a in attempts:
        changed = a.get("params_changed") if isinstance(a, dict) else None
        if isinstance(changed, dict) and changed:
            parts.append(f"attempt {a.get('attempt', '?')}: " + ", ".join(
                f"{k} {v[0]} -> {v[1]}" if isinstance(v, list) and len(v) == 2 else str(k) for k, v in changed.items()))
    return "; ".join(parts)


def _attempts_line(attempts: list[dict[str, Any]]) -> str:
    """How many attempts, and with several how each ended: the run's status is its latest
    attempt's, so a training attempt that failed before an evaluation that completed would
    otherwise read "completed" alone."""
    from .query.render import one_line

    if len(attempts) < 2:
        return "1"
    parts = []
    for a in attempts:
        part = f"#{a.get('attempt', '?')} {a.get('status') or 'unknown'}"
        err = a.get("error")
        if isinstance(err, dict) and err.get("type"):
            why = one_line(f"{err['type']}: {err.get('message', '')}")
            part += f" ({why[:77] + '...' if len(why) > 80 else why})"
        parts.append(part)
    return f"{len(attempts)}: " + ", ".join(parts)


def _folder_path(run: Any) -> str:
    """``experiment/run`` as the folder read names the run (``RunReader.folder_name``)."""
    experiment, run_id = run.folder_name
    return f"{experiment}/{run_id}" if experiment else run_id


def _show_ranks(run: Any) -> None:
    """``show --ranks``: each rank's last heartbeat."""
    from .heartbeat import describe

    beats = run.heartbeats()
    _out("\nranks")
    if not beats:
        _out("  (no heartbeats: written before they existed, or heartbeat_interval=0)")
        return
    world = run.info.world_size or (max(beats) + 1)
    if run.info.status != "running":  # (a record's state is the rank's when it beat last)
        _out(f"  (the run is {run.info.status}: each rank's last heartbeat before it ended)")
    for r in range(world):
        _out(f"  rank {r}: " + (describe(beats[r]) if r in beats else "no heartbeat"))


def cmd_ranks(args: argparse.Namespace) -> int:
    from .query.render import fmt_value, frame_table

    if args.plot:
        _check_image_output(args.plot, "--plot")
    elif args.field:
        raise UsageError(f"--field {args.field} chooses the field of the --plot heat map; "
                         "add --plot OUT.png (the table takes no --field)")
    field = args.field or "step_time"
    run = _run(args)
    tel = run.telemetry
    if not tel:
        _err(f"run {run.info.path} has no telemetry (telemetry=False, or no flush committed yet)")
        return NOTHING
    matrix = tel.matrix(field) if args.plot else None  # a field it lacks: before any output
    rep = tel.report()
    df = rep.ranks.copy()
    hosts: dict[int, str] = {}  # each rank's host, from the attempts' records (the latest's first)
    for attempt in run.info.attempts:
        for r in attempt.get("ranks") or []:
            if isinstance(r, dict) and "rank" in r and r.get("host"):
                hosts[int(r["rank"])] = str(r["host"])
    df["host"] = [hosts.get(int(r)) for r in df["rank"]]
    if args.format == "table":
        shown = df.copy()
        for c in shown.columns:
            if c == "slowest_share":
                shown[c] = [f"{v:.0%}" for v in shown[c]]
            elif c == "host":
                shown[c] = [v or "-" for v in shown[c]]
            elif c != "rank":
                shown[c] = [fmt_value(float(v)) for v in shown[c]]
        _out(frame_table(shown))
        _out("\n" + rep.summary())
        world = run.info.world_size
        if world and world != len(df):  # (a resumed attempt at another world size stores none)
            _out(f"(telemetry of {len(df)} ranks, from an earlier attempt: the run's last attempt "
                 f"ran {world} rank{'s' if world != 1 else ''}, whose telemetry is not stored; see the run's log)")
    else:  # a NaN here is a statistic without samples (one flush: no step time), no value
        _print_frame(df.astype(object).where(df.notna(), None), args.format)
    if args.plot:
        from .charts import telemetry_heatmap

        with _output_file(args.plot, "--plot", args) as out:
            telemetry_heatmap(matrix, field).save(out)
        _err(f"wrote {args.plot} ({field}, {len(df)} rank(s))")
    return OK


def cmd_params(args: argparse.Namespace) -> int:
    from .query.render import fmt_exact

    run = _run(args)
    params = run.params
    if args.format == "json":
        from .serdes import serialize

        _out(json.dumps(serialize(params), indent=2, sort_keys=True))
    else:
        flat = run.flat_params
        if not flat:
            _err(f"run {run.info.path} has no params")
            return NOTHING
        width = max(map(len, flat))
        _out("\n".join(f"{k.ljust(width)}  {fmt_exact(v)}" for k, v in flat.items()))
    return OK if params else NOTHING


def cmd_metrics(args: argparse.Namespace) -> int:
    import pandas as pd

    from .query.series import exact_ints

    run = _run(args)
    # times (seconds since the epoch) in full: %.6g would show rows minutes apart alike
    timed = args.stat == "time"
    if not args.keys:
        return _print_frame(_summary_shown(run.metrics.summary(rank=args.rank, stat=args.stat)), args.format,
                            exact=SUMMARY_VALUES if timed else (), steps=SUMMARY_STEPS)
    frames = []
    for key in args.keys:
        s = run.metrics.read(key, args.rank)
        # (a metric named "step", as a framework's tracker may log it, is not the row's step)
        # (counts are whole numbers: int64, as frame() gives them, not 4.0)
        values = exact_ints(s[args.stat]) if args.stat in ("count", "nonfinite") else s[args.stat]
        df = pd.DataFrame({key if key != "step" else "step (metric)": values},
                          index=pd.Index(s.step, name="step"))
        frames.append(df[~df.index.duplicated(keep="last")])
    out = pd.concat(frames, axis=1, sort=True) if len(frames) > 1 else frames[0]
    for i, df in enumerate(frames if len(frames) > 1 else ()):
        # a step this key has no row at: None ("-"), kept apart from a NaN it logged ("nan"),
        # as `compare` keeps a metric a run lacks apart from NaN
        absent = ~out.index.isin(df.index)
        if absent.any():
            col = out.iloc[:, i].astype(object)
            col[absent] = None
            if df.dtypes.iloc[0].kind == "i":  # (the outer join made the counts floats)
                col[~absent] = [int(v) for v in col[~absent]]
            out.isetitem(i, col)
    out = out.reset_index()
    if args.tail is not None:
        out = out.tail(args.tail)
    return _print_frame(out, args.format, exact=args.keys if timed else (), steps=["step"])


def cmd_histogram(args: argparse.Namespace) -> int:
    """One row per bin (step, bin, from, to, count) of the chosen steps of a histogram key
    (``log_histogram``): the last step unless ``--step`` or ``--all`` says otherwise; in a
    table, each count also as a bar."""
    import numpy as np
    import pandas as pd

    from .query.render import fmt_step

    run = _run(args)
    hg = run.metrics.histogram(args.key, args.rank)
    if args.all:
        rows = np.arange(len(hg.step))
    elif args.step:
        rows = np.flatnonzero(np.isin(hg.step, args.step))
        missing = [fmt_step(s) for s in args.step if s not in set(hg.step[rows].tolist())]
        if missing:
            shown = ", ".join(fmt_step(s) for s in hg.step[-5:])
            n = len(hg.step)
            which = f"its {n} steps are {shown}" if n <= 5 else f"it has {n} steps, the last {shown}"
            raise UsageError(f"histogram {args.key!r} has no step {', '.join(missing)}; {which} "
                             "(--all lists every step)")
    else:
        rows = np.array([len(hg.step) - 1])
    bins = hg.counts.shape[1]
    df = pd.DataFrame({"step": np.repeat(hg.step[rows], bins), "bin": np.tile(np.arange(bins), len(rows)),
                       "from": hg.edges[rows, :-1].ravel(), "to": hg.edges[rows, 1:].ravel(),
                       "count": hg.counts[rows].ravel().astype(np.int64)})
    if args.format == "table":
        top = max(float(df["count"].max()), 1.0)
        df["bars"] = ["█" * int(round(40 * c / top)) or ("▏" if c else "") for c in df["count"]]
        if not args.all and not args.step:
            _err(f"{args.key}: the last of {len(hg.step)} steps (--all for every step, --step S for one)")
    return _print_frame(df, args.format, steps=["step"])


def _log_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {"rank": args.rank, "level": args.level, "grep": args.grep, "since": args.since,
            "until": args.until, "steps": args.step, "attempt": args.attempt, "host": args.host,
            "ignore_case": args.ignore_case}


def cmd_logs(args: argparse.Namespace) -> int:
    from .query.render import format_record

    run = _run(args)
    if args.raw and args.json:
        raise UsageError("--raw prints the stored lines, --json one JSON object a record: give one of them")
    show: Callable[[Any], str] = ((lambda r: r) if args.raw else _record_json if args.json
                                  else (lambda r: format_record(r, args.fields)))
    if args.follow:
        n = 0
        try:
            for rec in run.logs.follow(tail=10 if args.tail is None else args.tail, poll=args.poll,
                                       lag=args.lag, **_log_filters(args)):
                if args.raw:
                    from .logline import format_line

                    _out(format_line(rec).rstrip("\n"))
                else:
                    _out(show(rec))
                sys.stdout.flush()
                n += 1
        except KeyboardInterrupt:
            pass
        if not n:
            _err("no log records matched")
        return OK if n else NOTHING
    try:
        merged = run.logs.query(tail=args.tail, source=args.source, progress=_progress(), **_log_filters(args))
    except FileNotFoundError:
        if args.source != "table":
            raise
        raise UsageError(f"--source table: {run.info.path} has no current logs table (its last attempt "
                         "writes it at close; a running or killed run has none); read the text "
                         "logs with --source text, or leave --source out") from None
    if not len(merged):
        if not run.logs.sources():
            _err(_no_logs(run))
            return NOTHING
        hosts = run.info.hosts
        unknown = sorted(set(args.host or ()) - set(hosts))
        if unknown and hosts:  # (as --rank and --attempt name what there is)
            _err(f"no log records matched: no rank of this run ran on host {', '.join(unknown)}; "
                 f"its hosts: {', '.join(hosts)}")
        else:
            _err("no log records matched")
        return NOTHING
    if args.raw:
        _out("\n".join(merged.lines))
    else:
        _out("\n".join(show(r) for r in merged))
        hidden = 0 if args.fields or args.json else sum(1 for r in merged if r.fields)
        if hidden:
            _err(f"{hidden} record(s) have structured fields or a traceback; add --fields to "
                 "show them (--raw prints the stored lines)")
    return OK


def _record_json(rec: Any) -> str:
    """``logs --json``: one record as one line of JSON (NaN and ±inf fields as text, as the
    dashboard sends them)."""
    from .dashboard.encode import jsonable

    return json.dumps({"time": rec.time, "level": rec.level, "rank": rec.rank, "attempt": rec.attempt,
                       "host": rec.host, "step": jsonable(rec.step), "message": rec.message,
                       "fields": jsonable(rec.fields) if rec.fields else {}}, ensure_ascii=False)


def _no_logs(run: Any) -> str:
    """Why a run shows no log record. On an object store a running rank publishes its log as
    a segment every ``segment_max_age`` s (30 by default) and at close, so a run that started
    less than that ago, or was killed before its first segment, has none there yet."""
    if run.storage.supports_append or run.info.status not in ("running", "stale"):
        return f"run {run.info.path} has no logs"
    return (f"run {run.info.path} has no logs yet: on an object store each rank publishes its "
            "log every segment_max_age seconds (30 by default) and when the run closes")


def cmd_files(args: argparse.Namespace) -> int:
    run = _run(args)
    if args.name is not None:
        return _file_bytes(run, args)
    if args.output or args.version is not None or args.rank is not None:
        raise UsageError("-o, --version and --rank choose the bytes of one file: name it, "
                         "distlog files RUN NAME -o OUT")
    df = run.files.table(latest=not args.all_versions)
    if df.empty:
        _err(f"run {run.info.path} has no files")
        return NOTHING
    if args.format == "table":
        df = df[["path", "version", "size", "media_type", "sha256", "rank", "host", "step"]].copy()
        df["sha256"] = [str(s)[:12] for s in df["sha256"]]
    return _print_frame(df, args.format, steps=["step"])


def _file_bytes(run: Any, args: argparse.Namespace) -> int:
    """``distlog files RUN NAME``: the file's bytes, streamed, to ``-o OUT`` (a path or URL)
    or to standard output (a terminal gets no binary: ``-o`` is asked for)."""
    import shutil

    with run.files.open(args.name, version=args.version, rank=args.rank) as src:
        if not args.output:
            if sys.stdout.isatty():
                raise UsageError(f"distlog files RUN {args.name}: write the bytes to a file with -o OUT "
                                 "(or pipe them: | head)")
            sys.stdout.flush()
            shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
            return OK
        with _output_file(args.output, "-o", args, example=args.name.rpartition("/")[2]) as local:
            with open(local, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    _err(f"wrote {args.output} ({args.name})")
    return OK


def _where(items: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        compared = re.match(r"^([^<>!=]+?)\s*(<=|>=|==|!=|<|>)", item)
        if compared and (not sep or key.endswith(("<", ">", "!")) or value.startswith("=")):
            k = compared.group(1)
            raise UsageError(f"--where {item!r}: --where selects by equality only, KEY=VALUE "
                             f"(--where {k}=0.1), or any of several values, KEY=A,B (--where {k}=0.1,0.01); "
                             f"for a range use the Python API: open_root(ROOT).runs(params={{{k!r}: lambda v: v < 0.01}})")
        if not sep or not key:
            raise UsageError(f"--where {item!r} is not KEY=VALUE (e.g. --where optim.lr=0.001)")
        if key in given:
            raise UsageError(f"--where {key} given twice ({given[key]} and {item}): a run has one {key}; "
                             f"for runs with any of several values give them at once: --where "
                             f"{key}={given[key].partition('=')[2]},{value}")
        given[key] = item
        # the whole text (a JSON list, a name with a comma) and, if it has commas, each part
        # ("several: a,b")
        values = where_values(value) + ([w for v in value.split(",") for w in where_values(v)]
                                        if "," in value else [])
        out[key] = values if len(values) > 1 else values[0]
    return out


#: how distlog prints True, False and None (``show``, ``params``, ``compare``): ``--where``
#: takes these as well as the JSON spellings
_AS_PRINTED = {"True": True, "False": False, "None": None}


def where_values(text: str) -> list[Any]:
    """What ``--where KEY=text`` selects: the JSON value (``42``, ``true``, ``"x"``; also
    ``True``, ``False``, ``None`` and ``nan``, ``inf``, ``-inf`` as distlog prints them) and the
    text itself, so that a str param that looks like a number (``"42"``) is selected too."""
    if text in _AS_PRINTED:
        return [_AS_PRINTED[text], text]
    if text.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
        return [float(text), text]
    try:
        parsed = json.loads(text)
    except ValueError:
        if text.startswith("(") and text.endswith(")"):  # a tuple as distlog prints it
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return [text]
            return [parsed, text] if isinstance(parsed, tuple) else [text]
        return [text]
    return [parsed] if isinstance(parsed, str) else [parsed, text]


def _compare_runs(args: argparse.Namespace) -> tuple[list[Any], Any]:
    """One ROOT[/EXPERIMENT]: its runs, filtered. Several arguments: exactly the runs named
    (a folder of runs contributes all of them), filtered by --status only."""
    from .query.root import RootReader, listed_statuses, open_root, read_runs, status_set

    # (the table keeps the runs whose shown status is asked for: a torn params.json or commit
    # record shows as damaged, which the listing cannot tell)
    listed = listed_statuses(status_set(args.status))
    if len(args.root) == 1:
        root = open_root(args.root[0], **_options(args))
        where = _where(args.where)
        with warnings.catch_warnings():  # (a param no run has: the error below says it)
            warnings.filterwarnings("ignore", message=r"params=\{", category=RuntimeWarning)
            warnings.filterwarnings("ignore", message=r"experiment=", category=RuntimeWarning)
            runs = root.runs(args.experiment, status=listed, params=where, progress=_progress())
        if not runs and args.experiment:
            _check_experiment(root, args.experiment)
        if not runs and where:
            _check_where_keys(root, args, where)
        return runs, root
    if args.experiment or args.where:
        raise UsageError("--experiment and --where select runs under one ROOT; with several runs "
                         "named, name only the runs to compare")
    runs = read_runs(args.root, **_options(args))
    root = RootReader(runs[0].storage) if runs else None
    if listed:
        runs = [r for r in runs if r.info.status in listed]
    return runs, root


def _check_experiment(root: Any, experiment: str) -> None:
    """No run matched ``--experiment``: one that names no experiment (a typo) is an error
    listing those there are, not "no runs matching" (read only when nothing matched)."""
    from .query.errors import KeyNotFound, did_you_mean, listing
    from .query.root import _experiment_ok

    known = root.experiments(relative=True)  # (the names --experiment takes below this folder)
    if not any(_experiment_ok(name, experiment) for name in known + root.experiments()):
        raise KeyNotFound(f"--experiment {experiment!r}: no experiment of that name under {root.url}"
                          f"{did_you_mean(experiment, known)} (experiments: {listing(known)})")


def _check_where_keys(root: Any, args: argparse.Namespace, where: dict[str, Any]) -> None:
    """No run matched ``--where``: a KEY that no run has (a typo: ``lrr=0.1``) is an error
    naming the params the runs have, not "no runs matching" (read only when nothing matched)."""
    from .query.batch import read_run_data
    from .query.errors import KeyNotFound, did_you_mean, listing

    with warnings.catch_warnings():  # (an experiment none has: _check_experiment says it)
        warnings.filterwarnings("ignore", message=r"experiment=", category=RuntimeWarning)
        runs = root.runs(args.experiment, status=args.status)
    data = read_run_data(runs, params=True)
    known = sorted({k for d in data for k in d.flat_params or ()})
    absent = [k for k in where if k not in known]
    if runs and absent:
        raise KeyNotFound("; ".join(f"--where {k}=...: no run of the {len(runs)} selected has the "
                                    f"param {k!r}{did_you_mean(k, known)}" for k in absent)
                          + f" (params: {listing(known)})")
    if runs:  # every key is some run's: the values they hold (a case or a spelling apart)
        from .query.render import fmt_exact

        for k in where:
            held = sorted({fmt_exact(v) for d in data for key, v in (d.flat_params or {}).items() if key == k})
            _err(f"--where {k}: the {len(runs)} run(s) selected hold {k} = {listing(held)}")


def cmd_compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from .query.render import fmt_duration, fmt_time
    from .query.root import RUN_COLUMNS, metric_column, nonfinite_text, runs_nonfinite

    if args.desc and not args.sort:  # (before any read)
        raise UsageError("--desc orders by the --sort column; add --sort COLUMN")
    runs, root = _compare_runs(args)
    if not runs:
        _err(f"no runs under {root.url} matching the filters")
        return NOTHING
    metrics = args.metric
    if not metrics:
        keys = _metric_keys(runs)
        metrics = keys[: args.max_metrics]
        if len(keys) > args.max_metrics:
            _err(f"showing {args.max_metrics} of {len(keys)} metrics; choose with --metric KEY")
    # (a key no run has, a typo, is an error there, as in `metrics` and `plot`)
    df, shown_runs = root._table(runs=runs, metrics=metrics, stat=args.stat, final=args.final,
                                 varying_only=not args.all_params, status=args.status)
    if df.empty:
        _err(f"no runs under {root.url} matching the filters")
        return NOTHING
    # the metrics shown that went NaN/inf in a run, from which step: a diverged run's last or
    # smallest finite value would rank it among the healthy ones without a word (by the row's
    # run: one experiment/run id in two roots is two runs)
    got = [{k: v for k, v in n.items() if k in metrics} for n in runs_nonfinite(shown_runs)]
    if any(got):  # (beside the run's columns: the metric columns stay last)
        df.insert(list(df.columns).index("last_step") + 1, "nonfinite_from", pd.Series(
            got if args.format == "json" else [nonfinite_text(n, most=3 if args.format == "table" else None)
                                               for n in got], dtype=object, index=df.index))
    remade = [(r, params_changed_text(r.info.attempts)) for r in shown_runs]
    remade = [(r, t) for r, t in remade if t]
    if remade:  # (a run id run again with another config: its metric columns mix both)
        _err(f"{len(remade)} run(s) had params changed by a later attempt (rows of earlier attempts "
             "were written with the earlier values): " + "; ".join(f"{_folder_path(r)} {t}" for r, t in remade[:5])
             + (f"; and {len(remade) - 5} more" if len(remade) > 5 else ""))
    if len({r.folder_name for r in shown_runs}) < len(shown_runs):  # (runs of several roots)
        df.insert(0, "run", [r.url for r in shown_runs])
    if args.sort:  # (numbers, booleans, text, then NaN, then none: distlog/query/order.py)
        from .query.order import sorted_order

        column = _sort_column(args.sort, df, root, shown_runs)
        if column is not None:
            df = df.iloc[sorted_order(df[column].tolist(), args.desc)]
    drop = ["ended", "attempts", "tags"] + (["experiment"] if df["experiment"].nunique() == 1 else [])
    df = df.drop(columns=drop)
    if args.format == "table":
        df["started"] = [fmt_time(t) for t in df["started"]]
        df["duration"] = [fmt_duration(d) for d in df["duration"]]
        df = df.rename(columns={"nonfinite_from": "NaN/inf from"})
    shown = set(RUN_COLUMNS) | {metric_column(k, args.stat, args.final) for k in metrics} | {
        "nonfinite_from", "NaN/inf from"}
    return _print_frame(df, args.format, exact=[c for c in df.columns if c not in shown],
                        steps=["last_step"])


def _sort_column(sort: str, df: Any, root: Any, runs: Sequence[Any]) -> Any:
    """The column ``--sort NAME`` orders by: a column, or a metric named without its --final
    suffix (``val/loss`` for ``val/loss@min``); a param every run has alike (not shown) keeps
    the order, said; anything else is a usage error naming the columns."""
    from .query.batch import read_run_data
    from .query.errors import did_you_mean

    if sort in df.columns:
        return sort
    near = [c for c in df.columns if isinstance(c, str) and c.rpartition("@")[0] == sort]
    if len(near) == 1:
        return near[0]
    values = [(d.flat_params or {}).get(sort, _UNSET) for d in read_run_data(runs, params=True)]
    if values and all(v is not _UNSET for v in values):
        _err(f"--sort {sort!r}: every run shown has the same {sort} (a column only with --all-params); "
             "the order is unchanged")
        return None
    columns = [str(c) for c in df.columns]
    raise UsageError(f"--sort {sort!r} is not a column{did_you_mean(sort, columns)}; columns: {', '.join(columns)}")


_UNSET = object()


def _metric_keys(runs: Sequence[Any]) -> list[str]:
    """Every metric key with rows in any of ``runs`` (one batch of reads)."""
    from .query.batch import read_run_data

    return sorted({k for d in read_run_data(runs, lengths=True) for k, n in d.lengths.items() if n})


def _split_runs_and_keys(items: Sequence[str], options: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """Leading arguments that name runs (or folders of runs) are runs; the rest are keys."""
    from .query.errors import RunNotFound
    from .query.root import read_runs

    runs: list[Any] = []
    i = 0
    while i < len(items):
        try:  # (storage options are a bucket's: a local path or a key takes none)
            runs.extend(read_runs([items[i]], **(options if "://" in items[i] else {})))
        except (RunNotFound, ValueError, OSError):
            break
        i += 1
    if not runs:
        raise UsageError(f"{items[0]!r} is not a run or a folder of runs; give RUN... KEY...")
    keys = list(items[i:])
    if not keys:
        raise UsageError("name at least one metric key after the runs (see `distlog metrics RUN`)")
    return runs, keys


def cmd_plot(args: argparse.Namespace) -> int:
    from .charts import ChartBuilder

    _check_image_output(args.output, "-o")
    runs, keys = _split_runs_and_keys(args.items, _options(args))
    labels = [r.folder_name[1] for r in runs]
    if len(set(labels)) < len(labels):
        labels = [_folder_path(r) for r in runs]
    if len(set(labels)) < len(labels):  # (one experiment/run id in several roots)
        labels = [r.url for r in runs]
    panels: dict[str, dict[str, Any]] = {}
    for key in keys:
        series = {}
        for label, run in zip(labels, runs):  # runs without rows of key (or the rank) are left out
            if run.metrics.lengths(args.rank, missing_ok=True).get(key):
                series[label] = run.metrics.frame(key, args.rank)
        if not series:
            known = sorted({k for r in runs for k, n in r.metrics.lengths(args.rank, missing_ok=True).items() if n})
            from .query.errors import KeyNotFound, listing

            raise KeyNotFound(f"no run has the metric {key!r}; keys: {listing(known)}")
        panels[key] = series
    band = None if args.no_band else ("min", "max")
    frames = [df for p in panels.values() for df in p.values()]
    if band and not (all({"min", "max"} <= set(df.columns) for df in frames)
                     and any((df["min"] < df["max"]).any() for df in frames)):
        band = None  # (logged series: min = max = value, a band of no width and a caption)
    chart = ChartBuilder(width=args.width, height=args.height).line_charts(
        panels, x=args.x, y=args.stat, band=band, logy=args.logy)  # y axes: the keys
    if args.title:
        chart.figure.suptitle(args.title)
    with _output_file(args.output, "-o", args) as out:
        chart.save(out)
    _err(f"wrote {args.output} ({len(runs)} run(s), {len(keys)} key(s))")
    return OK


def cmd_export(args: argparse.Namespace) -> int:
    if args.output and args.output != "-":
        _check_output(args.output, "-o", "out.csv")
    run = _run(args)
    df = run.metrics.to_frame(args.keys or None, rank=args.rank)
    if df.empty:
        _err(f"run {run.info.path} has no metrics")
        return NOTHING
    fmt = args.format or ("parquet" if str(args.output or "").lower().endswith((".parquet", ".pq")) else "csv")
    if fmt == "parquet":
        if not args.output or args.output == "-":
            raise UsageError("parquet is binary: give a file with -o out.parquet")
        with _output_file(args.output, "-o", args, "out.parquet") as out:
            df.to_parquet(out, index=False)
    else:  # (as every CSV of the CLI: a NaN the store holds reads "nan", not an empty cell)
        from .query.render import frame_csv

        if not args.output or args.output == "-":
            sys.stdout.write(frame_csv(df))
            return OK
        with _output_file(args.output, "-o", args, "out.csv") as out:
            frame_csv(df, out)
    _err(f"wrote {args.output} ({len(df)} rows, {df['key'].nunique()} key(s))")
    return OK


_DRY_RUN_NAMES = {"removed": "would_remove", "bytes_freed": "would_free"}


def cmd_gc(args: argparse.Namespace) -> int:
    try:
        from .gc import collect_garbage
    except ImportError as e:
        _err(f"gc is not available in this install ({e}); it needs distlog.gc (artifacts)")
        return USAGE
    from .query.root import open_root

    open_root(args.root, **_options(args))  # a root that is not there (a typo): "nothing at ..."
    result = collect_garbage(args.root, grace_seconds=args.grace, dry_run=args.dry_run,
                             storage_options=_options(args))
    fields = _fields(result)
    _out(f"gc {args.root}" + (" (dry run: nothing deleted)" if args.dry_run else ""))
    for k, v in fields.items():
        shown = len(v) if isinstance(v, (list, tuple, set)) else v
        if args.dry_run:  # (what a run without --dry-run does)
            k = _DRY_RUN_NAMES.get(k, k)
        _out(f"  {k:<16} {shown}")
    return OK


def cmd_serve(args: argparse.Namespace) -> int:
    from .errors import DistlogError

    try:
        from .dashboard.server import prepare, serve_forever
    except ImportError as e:
        _err(f"error: the dashboard needs starlette and uvicorn ({e}); "
             "pip install 'distlog[dashboard]'")
        return USAGE
    try:
        server, sock, url = prepare(args.root, args.host, args.port, args.token, _options(args))
    except OSError as e:  # the port is taken, or the store cannot be reached
        if isinstance(e, DistlogError):
            raise
        _err(f"error: {e}")
        return USAGE
    _out(f"distlog dashboard of {args.root} at {url}")
    _out("(read-only; press Ctrl-C to stop)")
    sys.stdout.flush()
    if args.open:  # once uvicorn is listening (the socket is bound already: no race)
        import threading
        import webbrowser

        opener = threading.Timer(0.5, webbrowser.open, args=(url,))
        opener.daemon = True
        opener.start()
    try:
        serve_forever(server, sock)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return OK


def _fields(result: Any) -> dict[str, Any]:
    """The public fields of whatever ``collect_garbage`` returns (dict, dataclass, object)."""
    import dataclasses

    if isinstance(result, dict):
        return result
    if dataclasses.is_dataclass(result):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    if hasattr(result, "_asdict"):
        return dict(result._asdict())
    return {k: v for k, v in vars(result).items() if not k.startswith("_")}


# ---- parser ----------------------------------------------------------------------------------
def _numbers(text: str) -> str:
    """argparse type of ``--rank``/``--attempt`` of ``logs``: ``0`` or ``0,2`` (checked here,
    split by ``LogFilter``)."""
    try:
        [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or numbers separated by commas "
                                         f"(0 or 0,2), got {text!r}") from None
    return text


def _count(text: str) -> int:
    """argparse type of ``--tail``/``-n``: a whole number >= 0 (0: none)."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 (how many of the last to "
                                         f"show; 0 shows none), got {text!r}")
    return n


def _status(text: str) -> str:
    """argparse type of ``--status``: one of ``RUN_STATUSES`` (a typo would match no run and
    read as "no runs", exit status 1, rather than as the mistake it is)."""
    if text not in RUN_STATUSES:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(RUN_STATUSES)}, got {text!r}")
    return text


def _fmt(p: argparse.ArgumentParser, choices: Sequence[str] = ("table", "csv", "json"),
         help: str = "output format (csv/json: exact values; no value is an empty cell / null, "
                     "a NaN reads nan, infinities inf and -inf)") -> None:
    p.add_argument("--format", choices=choices, default=choices[0], help=help)


def _run_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="run folder (path or URL)")
    p.add_argument("--last", action="store_true", help="the newest run below RUN")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-O", "--storage-option", action="append", metavar="KEY=VALUE",
                        help="storage backend option, e.g. -O endpoint_url=http://127.0.0.1:9000")
    parser = argparse.ArgumentParser(prog="distlog", description=__doc__.split("\n\n")[0].replace("``", ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Exit status: 0 ok, 1 nothing matched, 2 usage error.")
    parser.add_argument("--version", action="version", version=f"distlog {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("ls", parents=[common], help="experiments and runs under a root",
                       description=LS_DESCRIPTION)
    p.add_argument("root", metavar="ROOT")
    p.add_argument("--experiment", "-e", help="only this experiment: its name below ROOT (or as "
                   "run.json records it), a parent, or a glob")
    p.add_argument("--status", action="append", type=_status,
                   help=f"only runs with this status (repeatable): {', '.join(RUN_STATUSES)}")
    _fmt(p)
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("show", parents=[common], help="metadata, params and a metrics summary")
    _run_arg(p)
    p.add_argument("--ranks", action="store_true", help="also each rank's last heartbeat")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("ranks", parents=[common], help="straggler report: per-rank step time, waits, memory")
    _run_arg(p)
    p.add_argument("--plot", metavar="OUT.png", help="also a rank x flush heat map of --field")
    p.add_argument("--field",
                   help="field of the --plot heat map: step_time (default), wait, interval, cpu_percent, "
                        "rss, gpu_allocated, gpu_reserved, gpu_peak, gpu_util")
    _fmt(p)
    p.set_defaults(func=cmd_ranks)

    p = sub.add_parser("params", parents=[common], help="the run's params")
    _run_arg(p)
    _fmt(p, ("flat", "json"), help="flat: one dotted key and its value a line; json: the params "
                                    "as params.json stores them")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("metrics", parents=[common], help="metric keys, or series by step")
    _run_arg(p)
    p.add_argument("keys", nargs="*", metavar="KEY")
    p.add_argument("--stat", default="value",
                   choices=["value", "mean", "min", "max", "sum", "count", "nonfinite", "time"])
    p.add_argument("--rank", type=int, help="a rank's own series (values it logged itself)")
    p.add_argument("--tail", type=_count, metavar="N", help="only the last N steps")
    _fmt(p)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("histogram", parents=[common], help="a histogram key's bins and counts (log_histogram)")
    _run_arg(p)
    p.add_argument("key", metavar="KEY")
    p.add_argument("--step", action="append", type=float, metavar="S",
                   help="these steps (repeatable; default: the last)")
    p.add_argument("--all", action="store_true", help="every step")
    p.add_argument("--rank", type=int, help="a rank's own histograms (logged by that rank itself)")
    _fmt(p)
    p.set_defaults(func=cmd_histogram)

    p = sub.add_parser("logs", parents=[common], help="every rank's log merged by time")
    _run_arg(p)
    p.add_argument("--rank", "-r", action="append", type=_numbers,
                   help="only these ranks (repeatable, or 0,2)")
    p.add_argument("--level", "-l", help="minimum level: DEBUG, INFO, WARNING, ERROR, CRITICAL or a number (35)")
    p.add_argument("--grep", "-g", metavar="RE", help="regular expression searched in messages")
    p.add_argument("--ignore-case", "-i", action="store_true")
    p.add_argument("--since", metavar="T", help="ISO time (UTC), epoch seconds, or an age: 10m, 2h")
    p.add_argument("--until", metavar="T")
    p.add_argument("--step", metavar="A:B", help="step range, inclusive (A:B, A:, :B or N)")
    p.add_argument("--attempt", "-a", action="append", type=_numbers,
                   help="only these restart attempts (repeatable, or 0,2)")
    p.add_argument("--host", action="append", help="only these hosts")
    p.add_argument("--tail", "-n", type=_count, metavar="N", help="only the last N records")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new records until the run ends and every rank "
                   "has written its last line (a rank silent for 10 s after the end is not waited for)")
    p.add_argument("--poll", type=float, default=0.5, help="--follow: seconds between reads")
    p.add_argument("--lag", type=float, help="--follow: hold records this long to order them")
    p.add_argument("--raw", action="store_true", help="print stored lines unchanged")
    p.add_argument("--json", action="store_true",
                   help="one JSON object a record, a line each (time, level, rank, attempt, host, step, message, fields)")
    p.add_argument("--fields", action="store_true",
                   help="print structured fields (exp.info(msg, key=value)) and tracebacks")
    p.add_argument("--source", choices=["auto", "text", "table"], default="auto",
                   help="read the Zarr logs table or the text files (default: table when current)")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("files", parents=[common], help="the run's files table, or one file's bytes")
    _run_arg(p)
    p.add_argument("name", nargs="?", metavar="NAME", help="a saved file: its bytes to -o OUT, or to standard output")
    p.add_argument("--version", type=int, help="NAME's version (1, 2, ...; -1 the newest, the default)")
    p.add_argument("--rank", type=int, help="NAME as this rank saved it (several ranks saved one name)")
    p.add_argument("-o", "--output", metavar="OUT", help="write NAME's bytes here (a path or URL)")
    p.add_argument("--all-versions", action="store_true")
    _fmt(p)
    p.set_defaults(func=cmd_files)

    p = sub.add_parser("compare", parents=[common],
                       help="the sweep table of an experiment, or of the runs named")
    p.add_argument("root", nargs="+", metavar="ROOT[/EXPERIMENT] | RUN RUN ...",
                   help="a root or experiment folder (its runs), or several runs (those runs)")
    p.add_argument("--experiment", "-e", help="only this experiment: its name below ROOT (or as "
                   "run.json records it), a parent, or a glob")
    p.add_argument("--metric", "-m", action="append", metavar="KEY", help="metric column (repeatable)")
    p.add_argument("--stat", default="value", choices=["value", "mean", "min", "max", "sum", "count"])
    p.add_argument("--final", default="last", choices=["last", "min", "max", "mean"],
                   help="reduce each series to its last, min, max or mean (NaN skipped, ±inf kept)")
    p.add_argument("--status", action="append", type=_status,
                   help=f"only runs with this status (repeatable): {', '.join(RUN_STATUSES)}")
    p.add_argument("--where", "-w", action="append", metavar="KEY=VALUE",
                   help="only runs whose param KEY is VALUE: its JSON value (a list too: [1,2]; also True, False and "
                        "None, as Python spells them; None is shown as -) or the text; "
                        "several: a,b (also selects a param that is the text a,b itself)")
    p.add_argument("--all-params", action="store_true", help="also params equal in every run")
    p.add_argument("--sort", help="sort by this column: numbers (smallest first), then booleans, then "
                   "text, then NaN, then runs without a value")
    p.add_argument("--desc", action="store_true", help="with --sort: largest first (the best run by "
                   "accuracy on top); NaN and runs without a value stay last")
    p.add_argument("--max-metrics", type=int, default=8, help=argparse.SUPPRESS)
    _fmt(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("plot", parents=[common], help="line chart of metrics of one or more runs")
    p.add_argument("items", nargs="+", metavar="RUN... KEY...")
    p.add_argument("-o", "--output", required=True, help="image file (.png, .svg, .pdf), or a URL written with the -O options")
    p.add_argument("--stat", default="value", choices=["value", "mean", "min", "max", "sum", "count"])
    p.add_argument("--x", default="step", choices=["step", "time"])
    p.add_argument("--no-band", action="store_true", help="no min/max band")
    p.add_argument("--rank", type=int, help="a rank's own series")
    p.add_argument("--logy", action="store_true")
    p.add_argument("--title")
    p.add_argument("--width", type=float, default=8.0)
    p.add_argument("--height", type=float, default=4.5)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("export", parents=[common], help="every series as one table")
    _run_arg(p)
    p.add_argument("keys", nargs="*", metavar="KEY")
    p.add_argument("--format", choices=["csv", "parquet"],
                   help="default: parquet for an output file named *.parquet or *.pq, else csv")
    p.add_argument("-o", "--output", help="file (or URL, written with the -O options) to write (csv: standard output by default)")
    p.add_argument("--rank", type=int)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("gc", parents=[common], help="delete artifact blobs that no run references")
    p.add_argument("root", metavar="ROOT")
    p.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    p.add_argument("--grace", type=float, default=86400.0, metavar="SECONDS",
                   help="keep blobs younger than this (default 1 day)")
    p.set_defaults(func=cmd_gc)

    # ``dashboard`` is ``serve`` under its own name (not an alias: its usage line says
    # "distlog dashboard"); listed once, under serve
    for name, kw in (("serve", {"help": "the web dashboard of a root (read-only; also: distlog dashboard)"}),
                     ("dashboard", {})):
        p = sub.add_parser(name, parents=[common], description="The web dashboard of a root (read-only).",
                           **kw)
        p.add_argument("root", metavar="ROOT")
        p.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1; any other needs a token)")
        p.add_argument("--port", "-p", type=int, default=8765, help="port (0: a free one; default 8765)")
        p.add_argument("--token", help="access token (made and printed when --host is not loopback)")
        p.add_argument("--open", action="store_true", help="open the dashboard in a web browser")
        p.set_defaults(func=cmd_serve)

    # handed whole to distlog.slurm's own parser (see main)
    sub.add_parser("slurm", add_help=False, help="sbatch helpers: `distlog slurm grid --param lr=0.1,0.01 "
                   "-o grid.txt`, `distlog slurm render TEMPLATE NAME=VALUE...`")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    from .errors import DistlogError
    from .query.errors import QueryError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["slurm"]:
        from . import slurm

        try:
            return slurm.main(argv[1:], prog="distlog slurm")
        except SystemExit as e:  # --help, or a usage error argparse reported (as below)
            return int(e.code or 0)
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # positionals after an option (`metrics RUN --last KEY`): argparse leaves them over
        target = "keys" if hasattr(args, "keys") else "items" if hasattr(args, "items") else None
        if extra and (target is None or any(e.startswith("-") for e in extra)):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if extra:
            setattr(args, target, list(getattr(args, target)) + extra)
    except SystemExit as e:  # --help, --version, or a usage error argparse reported
        return int(e.code or 0)
    try:
        return args.func(args)
    except (UsageError, QueryError, ValueError) as e:
        _err(f"error: {e}")
        return USAGE
    except DistlogError as e:
        _err(f"error: {e}")
        return USAGE
    except BrokenPipeError:  # `distlog logs ... | head`
        sys.stderr.close()
        return OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
