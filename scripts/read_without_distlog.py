"""Read a distlog run with json + numpy + zarr only, following docs/FORMAT.md (no `import distlog`).
Usage: python scripts/read_without_distlog.py RUN_FOLDER (prints a summary). Local folders only.

`read_run(folder)` returns a dict: info (run.json, status judged from heartbeats), claims,
failures, params (decoded), scalars / histograms / telemetry ({key: {column: array}}, committed
rows only), ranks ({rank: {"scalars": ..., "histograms": ...}}), files (manifest records),
files_table, and logs (every rank's text log, parsed, merged by time).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import zarr

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _text(path: Path) -> str | None:
    """An appendable file: in place, or as `F.seg/` segments concatenated in name order."""
    if path.is_file():
        return path.read_bytes().decode("utf-8")
    seg = path.with_name(path.name + ".seg")
    if seg.is_dir():
        return b"".join(p.read_bytes() for p in sorted(seg.iterdir())).decode("utf-8")
    return None


# ---- params.json ($t / $s)

def decode(v):
    if isinstance(v, list):
        return [decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "$t" not in v:
        return {k: decode(x) for k, x in v.items()}
    t, data = v["$t"], v.get("data")
    if t == "dict":
        return {k: decode(x) for k, x in data.items()}
    if t == "float":  # non-finite float; "np.float64(nan)" from older files
        return float(re.sub(r"^np\.float64\((.*)\)$", r"\1", data))
    if t == "ndarray":
        dtype = np.dtype(v["dtype"])
        if dtype.kind in "Mm":
            return np.array(data, dtype=dtype).reshape(v["$s"])
        return np.array(decode(data), dtype=dtype).reshape(v["$s"])
    if t == "tuple":
        return tuple(decode(data))
    if t == "set":
        return {frozenset(x) if isinstance(x, set) else x for x in decode(data)}
    if t == "bytes":
        return base64.b64decode(data)
    if t == "Path":
        return Path(data)
    if t == "datetime":
        return dt.datetime.fromisoformat(data)
    if t == "date":
        return dt.date.fromisoformat(data)
    if t in ("np.datetime64", "np.timedelta64"):
        return np.array(data, dtype=v["dtype"])[()]
    if t.startswith("np."):  # a numpy scalar: its Python value, itself serialised
        return getattr(np, t[3:])(decode(data))
    if set(v) - {"$t", "data", "$s", "dtype"}:  # a dict written before the wrapper existed
        return {k: decode(x) for k, x in v.items()}
    raise ValueError(f"unknown $t {t!r}")


# ---- row tables (scalars, histograms, telemetry)

def _steps(col: np.ndarray) -> np.ndarray:
    ok = np.all(np.isfinite(col)) and np.all(col == np.round(col)) and np.all(np.abs(col) <= 2**53)
    return col.astype(np.int64) if ok else col


def read_table(folder: Path, table: str) -> dict[str, dict[str, np.ndarray]]:
    """Committed rows `[0, n)` of every series named in `<table>.commit.json`; nothing else."""
    commit = _json(folder / f"{table}.commit.json")
    if commit is None:
        return {}
    out = {}
    for key, n in sorted(commit["lengths"].items()):
        arr = zarr.open_array(str(folder / f"{table}.zarr" / key), mode="r", zarr_format=3)
        rows = np.asarray(arr[:n])
        cols = list(arr.attrs["columns"])
        series = {c: rows[:, i] for i, c in enumerate(cols)}
        series["step"] = _steps(series["step"])
        out[key] = series
    return out


def histogram(series: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
    """Row i of a histogram series: (edges, counts); columns past step, time are bins+1 edges, bins counts."""
    rest = np.array([series[f"c{j}"][i] for j in range(2, len(series))])
    bins = (len(rest) - 1) // 2
    return rest[:bins + 1], rest[bins + 1:]


# ---- text logs

UNESCAPE = {"\\\\": "\\", "\\n": "\n", "\\r": "\r", "\\t": "\t"}


def parse_line(line: str) -> dict | None:
    parts = line.split(" ", 8)  # time level host nN rR lL aA sS message[\tfields]
    t = parts[0]
    try:
        when = dt.datetime.fromisoformat(t).timestamp()
    except ValueError:
        return None
    level = parts[1] if len(parts) > 1 else ""
    lv = LEVELS.get(level) or (int(level[5:]) if re.fullmatch(r"LEVEL-?\d+", level) else 0)
    host = parts[2] if len(parts) > 2 else "-"
    message, _, fields = (parts[8] if len(parts) > 8 else "").partition("\t")
    try:
        parsed = json.loads(fields) if fields else {}
    except ValueError:  # cut by a partial write: the text kept whole (FORMAT.md)
        parsed = None
    fields = parsed if isinstance(parsed, dict) else {"unparsed_fields": fields}
    m = re.fullmatch(r"n(-?\d+) r(-?\d+) l(-?\d+) a(-?\d+) s(-|-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)",
                     " ".join(parts[3:8])) if len(parts) >= 8 else None
    if m:
        node, rank, local, attempt = (int(x) for x in m.groups()[:4])
        st = m.group(5)
        st = None if st == "-" else (int(st) if re.fullmatch(r"-?\d+", st) else float(st))
    else:  # a header cut (or a line cut short) whose time reads: numbers -1, the text kept (FORMAT.md)
        if len(t) != 32 or not t.endswith("+00:00") or len(parts) < 2:
            return None
        fields = {"unparsed_header": " ".join(parts[2:8]), **fields}
        st, node, rank, local, attempt = None, -1, -1, -1, -1
    return {"time": when, "iso": t, "level": lv, "level_name": level,
            "host": None if host == "-" else host, "node": node, "rank": rank, "local_rank": local,
            "attempt": attempt, "step": st,
            "message": re.sub(r"\\[\\nrt]", lambda m: UNESCAPE[m.group()], message),
            "fields": fields}


def read_logs(folder: Path) -> list[dict]:
    records = []
    names = set()
    if (folder / "logs").is_dir():
        names = {p.name[:-4] if p.name.endswith(".seg") else p.name for p in (folder / "logs").iterdir()}
    for name in sorted(names):
        m = re.fullmatch(r"rank-(\d+)\.attempt-(\d+)\.log", name)
        if not m:
            continue
        text = _text(folder / "logs" / name) or ""
        lines = text.split("\n")
        for line in lines[:-1]:  # the last piece has no "\n": empty, or a torn line (skipped)
            rec = parse_line(line)
            if rec is not None:
                records.append(rec)
    records.sort(key=lambda r: (r["time"], r["rank"], r["attempt"]))
    return records


# ---- files

def read_manifests(folder: Path) -> list[dict]:
    out = []
    files = folder / "files"
    names = sorted({p.name.removesuffix(".seg") for p in files.iterdir()}) if files.is_dir() else []
    for name in names:
        if re.fullmatch(r"manifest-rank-\d+\.jsonl", name):
            text = _text(files / name) or ""
            for line in text.split("\n")[:-1]:  # a torn last line is skipped
                out.append(json.loads(line))
    return out


def read_files_table(folder: Path) -> dict[str, np.ndarray] | None:
    commit = _json(folder / "files.commit.json")
    if commit is None:
        return None
    group = zarr.open_group(str(folder / "files.zarr"), mode="r", zarr_format=3)
    return {c: np.asarray(group[c][: commit["length"]]) for c in commit["columns"]}


def store_root(folder: Path, info: dict) -> Path:
    """The root: the run folder less `<experiment>/<run_id>`."""
    return folder.parents[len(info["experiment"].split("/"))]


def file_bytes(root: Path, sha256: str) -> bytes:
    return (root / ".distlog" / "cas" / "sha256" / sha256[:2] / sha256).read_bytes()


# ---- the run

def judge_status(info: dict, heartbeats: list[dict], failures: list[dict], now: float) -> dict:
    """A `running` run none of whose heartbeats of its attempt is fresh is stale (or failed, with
    its earliest failure record as error); its end time is then its newest heartbeat."""
    out = dict(info)
    if info["status"] != "running":
        return out
    beats = [h for h in heartbeats if h.get("attempt") == info["attempt"]]
    stale_after = float(os.environ.get("DISTLOG_STALE_AFTER", 300))
    fresh = [h for h in beats if h.get("state") != "failed"
             and now - h["time"] < max(stale_after, 2 * float(h.get("interval") or 0))]
    if beats and not fresh:
        mine = sorted((f for f in failures if f["attempt"] == info["attempt"]), key=lambda f: (f["time"], f["rank"]))
        out["status"], out["error"] = ("failed", mine[0]) if mine else ("stale", info["error"])
        newest = max(h["time"] for h in beats)
        out["ended"] = dt.datetime.fromtimestamp(newest, dt.timezone.utc).isoformat(timespec="microseconds")
    return out


def read_run(folder: str | os.PathLike, now: float | None = None) -> dict:
    folder = Path(folder)
    raw = _json(folder / "run.json")
    glob = lambda d, pat: [_json(p) for p in sorted((folder / d).glob(pat))]  # noqa: E731
    heartbeats, failures = glob("heartbeats", "rank-*.json"), glob("failures", "attempt-*-rank-*.json")
    ranks = {}
    if (folder / "ranks").is_dir():
        for p in sorted((folder / "ranks").iterdir()):
            m = re.fullmatch(r"rank-(\d+)", p.name)
            if m:
                ranks[int(m.group(1))] = {t: read_table(p, t) for t in ("scalars", "histograms")}
    root = store_root(folder, raw)
    return {
        "raw": raw,
        "info": judge_status(raw, heartbeats, failures, time.time() if now is None else now),
        "claims": glob("attempts", "attempt-*.json"),
        "heartbeats": heartbeats,
        "failures": failures,
        "params": decode(_json(folder / "params.json") or {}),
        "readme": (folder / "README.md").read_text() if (folder / "README.md").exists() else None,
        "scalars": read_table(folder, "scalars"),
        "histograms": read_table(folder, "histograms"),
        "telemetry": read_table(folder, "telemetry"),
        "ranks": ranks,
        "files": read_manifests(folder),
        "files_table": read_files_table(folder),
        "root": root,
        "logs": read_logs(folder),
    }


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isfile(os.path.join(sys.argv[1], "run.json")):
        sys.exit(f"usage: {sys.argv[0]} RUN_FOLDER (a folder holding run.json, e.g. runs/default/run-1)"
                 + (f"; {sys.argv[1]!r} holds no run.json" if len(sys.argv) == 2 else ""))
    run = read_run(sys.argv[1])
    info = run["info"]
    print(f"{info['experiment']}/{info['run_id']}: {info['status']}, attempt {info['attempt']}")
    print("params:", run["params"])
    for key, s in run["scalars"].items():
        print(f"  {key}: {len(s['step'])} rows, last step {s['step'][-1] if len(s['step']) else None}, "
              f"last value {s['value'][-1] if len(s['step']) else None}")
    for rec in run["files"]:
        print(f"  file {rec['path']} v{rec['version']}: {len(file_bytes(run['root'], rec['sha256']))} bytes")
    for rec in run["logs"][-5:]:
        print(f"  [{rec['level_name']} r{rec['rank']}] {rec['message']}")
