"""A seeded read-side fuzz (campaign 32): runs written with known inputs through the public API
(one process, local disk), a plain-Python oracle of every stored row, log record and file, and
the readers compared with it and with each other where campaign 30 did not look: log time
filters (``since``/``until``) and ``tail`` with filters over the text and the logs table,
``read_metrics`` bins and reductions, the dashboard's ``/api/series`` (zoom by step and by time,
M4 downsampling, smoothing), ``/api/bands`` (zoomed, smoothed), ``/api/logs`` paging,
``distlog metrics`` with several keys whose step types differ, and ``table(final=...)``.

``write(seed, root)`` returns the oracle; ``check(seed, root, oracle)`` raises AssertionError
naming the reader and the seed at the first disagreement.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import warnings

import numpy as np

import distlog

KEYS = ("loss", "train/acc", "val/x y", "a/b/c", "Привет", "lr")
STEP_KINDS = ("int", "half", "tenth", "mixed")


class Boom(RuntimeError):
    pass


def _value(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.08:
        return math.nan
    if r < 0.12:
        return rng.choice((math.inf, -math.inf))
    if r < 0.2:
        return float(rng.randint(-3, 3))
    if r < 0.25:
        return rng.choice((1e-300, -0.0, 1e300, 2.0 ** 60 + 1))
    return rng.uniform(-10, 10)


class Run:
    def __init__(self, exp: str, rid: str) -> None:
        self.exp, self.rid = exp, rid
        self.series: dict[str, list[tuple[float, tuple]]] = {}
        self.written: set[str] = set()
        self.logs: list[dict] = []
        self.params: dict = {}
        self.files: list[dict] = []
        self.attempt = -1

    @property
    def path(self) -> str:
        return f"{self.exp}/{self.rid}"

    def start(self, resume_step):
        self.attempt += 1
        self.written = set()
        if resume_step is not None:
            for k in self.series:
                self.series[k] = [r for r in self.series[k] if r[0] <= resume_step]

    def put(self, key, step, row):
        rows = self.series.setdefault(key, [])
        if key not in self.written:
            self.written.add(key)
            rows[:] = [r for r in rows if r[0] < step]
        rows.append((float(step), row))

    def nonempty(self):
        return {k: v for k, v in self.series.items() if v}


def logged_row(v: float) -> tuple:
    """(value, mean, min, max, sum, count, nonfinite) of a ``log()`` row (FORMAT.md)."""
    if math.isfinite(v):
        return (v, v, v, v, v, 1.0, 0.0)
    return (v, math.nan, math.nan, math.nan, 0.0, 0.0, 1.0)


def reduced_row(vals: list[float]) -> tuple:
    fin = [v for v in vals if math.isfinite(v)]
    nf = float(len(vals) - len(fin))
    if not fin:
        return (math.nan, math.nan, math.nan, math.nan, 0.0, 0.0, nf)
    s = math.fsum(fin)
    m = s / len(fin)
    return (m, m, min(fin), max(fin), s, float(len(fin)), nf)


def _steps(rng: random.Random, kind: str, start: float, n: int) -> list:
    out, s = [], start
    for _ in range(n):
        if kind == "int":
            s = int(s) + rng.choice((1, 1, 2, 7))
        elif kind == "half":
            s = s + rng.choice((0.5, 1, 1.5))
        elif kind == "tenth":
            s = round(s + rng.choice((0.1, 0.2, 0.3)), 10)
        else:
            s = s + rng.choice((1, 0.25, 2))
        if isinstance(s, float) and s.is_integer() and rng.random() < 0.5:
            s = int(s)
        out.append(s)
    return out


def write(seed: int, root: str) -> dict[str, Run]:
    rng = random.Random(seed)
    runs: dict[str, Run] = {}
    n_runs = rng.randint(1, 3)
    exps = ["e0", "grp/e1"]
    for i in range(n_runs):
        exp, rid = rng.choice(exps), f"r{i}"
        o = Run(exp, rid)
        runs[o.path] = o
        kind = rng.choice(STEP_KINDS)
        keys = rng.sample(KEYS, rng.randint(1, 4))
        params = {"seed": rng.randint(0, 2), "lr": rng.choice((0.1, 0.01, 1, True, None, 2 ** 60 + 1)),
                  "optim": {"name": rng.choice(("adam", "sgd")), "betas": [0.9, rng.choice((0.99, 0.999))]}}
        step = rng.choice((0, 1, 0.5)) if kind != "int" else rng.choice((0, 1))
        for a in range(rng.choice((1, 1, 2, 3))):
            resume_step = None
            stored = sorted({r[0] for v in o.series.values() for r in v})
            if a and stored and rng.random() < 0.5:
                resume_step = rng.choice(stored)
                if float(resume_step).is_integer():
                    resume_step = int(resume_step)
                step = resume_step
            elif a and stored:
                step = rng.choice(stored)  # rewinds from the first step written
            fail = a < 2 and rng.random() < 0.25
            exp = distlog.get_logger(root, telemetry=False, heartbeat_interval=0)
            kw = {} if resume_step is None else {"resume_step": resume_step}
            o.start(resume_step)
            try:
                with exp.experiment(o.exp), exp.run(rid, **kw):
                    if a == 0 or rng.random() < 0.3:
                        exp.params.set(**params)
                        o.params = json.loads(json.dumps(params))
                    steps = _steps(rng, kind, step, rng.randint(2, 14))
                    pending: dict[str, list[float]] = {}
                    coll = [k for k in keys if rng.random() < 0.4]
                    for s in steps:
                        for k in keys:
                            if rng.random() < 0.25:
                                continue  # this key skips the step
                            v = _value(rng)
                            if k in coll:
                                exp.metrics.collect({k: v}, step=s)
                                pending.setdefault(k, []).append(v)
                            else:
                                exp.metrics.log({k: v}, step=s)
                                o.put(k, s, logged_row(v))
                        if pending and rng.random() < 0.5:
                            exp.metrics.flush(step=s)
                            for k, vals in pending.items():
                                o.put(k, s, reduced_row(vals))
                            pending = {}
                        if rng.random() < 0.4:
                            lvl = rng.choice(("DEBUG", "INFO", "WARNING", "ERROR", 35, 25))
                            msg = rng.choice(("step done", "a\tb", "x\\ny", "ünï", "loss=nan", "[x]"))
                            fields = {"k": rng.choice((1, 0.5, "s", None))} if rng.random() < 0.5 else {}
                            lstep = rng.choice((s, s, None))
                            exp.logs.log(lvl, msg, step=lstep, **fields) if lstep is not None else exp.logs.log(lvl, msg, **fields)
                            rec = exp.logs.last_record
                            o.logs.append({"level": rec.level, "message": msg, "step": rec.step, "time": rec.time,
                                           "attempt": o.attempt, "fields": fields})
                        if rng.random() < 0.15:
                            name = rng.choice(("m.json", "ck/w.txt"))
                            data = rng.choice(("aa", "bb", "cc"))
                            rec = exp.files("out").save(data if name.endswith(".txt") else {"d": data}, name, step=s)
                            o.files.append({"path": rec.path, "version": rec.version, "sha256": rec.sha256, "step": s})
                    if pending:
                        exp.metrics.flush(step=steps[-1])
                        for k, vals in pending.items():
                            o.put(k, steps[-1], reduced_row(vals))
                    step = steps[-1]
                    if fail:
                        raise Boom("planned failure")
            except Boom:
                pass
    return runs


# ---- checking ----------------------------------------------------------------------------------
def same(a, b) -> bool:
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or a == b


def close(a, b) -> bool:
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def want_step(s: float):
    """A step as readers give it: int where integral (and exact), else the float."""
    return int(s) if float(s).is_integer() and abs(s) <= 2 ** 53 else float(s)


def cli(*argv):
    from distlog.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _rows_of(o: Run, key: str):
    return o.series[key]


def ema_oracle(vals, w):
    out, s, k = [], 0.0, 0
    for v in vals:
        if math.isfinite(v):
            k += 1
            s = w * s + (1 - w) * v
            out.append(s / (1 - w ** k))
        else:
            out.append(math.nan)
    return out


def check(seed: int, root: str, runs: dict[str, Run]) -> None:
    rng = random.Random(seed * 7919 + 1)
    tag = f"seed {seed}"
    from starlette.testclient import TestClient

    from distlog.dashboard.app import make_app

    client = TestClient(make_app(distlog.open_root(root)), base_url="http://127.0.0.1:8765")

    def get(url, params):
        r = client.get(url, params=params)
        assert r.status_code == 200, (tag, url, params, r.status_code, r.text[:300])
        return r.json()

    for path, o in runs.items():
        run = distlog.open_run(f"{root}/{path}")
        ne = o.nonempty()
        assert run.metrics.keys() == sorted(ne), (tag, path, "keys", run.metrics.keys(), sorted(ne))
        times = {}
        for key, rows in ne.items():
            s = run.metrics.read(key)
            steps = [r[0] for r in rows]
            assert len(s) == len(rows), (tag, path, key, "rows", s["step"].tolist(), steps)
            allint = all(float(x).is_integer() for x in steps)
            assert (s.step.dtype.kind == "i") == allint, (tag, key, "step dtype", s.step.dtype, steps)
            assert [want_step(x) for x in steps] == s.step.tolist(), (tag, key, s.step.tolist(), steps)
            for j, c in enumerate(("value", "mean", "min", "max", "sum", "count", "nonfinite")):
                for i, r in enumerate(rows):
                    ok = close if c in ("value", "mean", "sum") and r[1][5] > 1 else same
                    assert ok(s[c][i], r[1][j]), (tag, path, key, c, i, s[c][i], r[1][j])
            times[key] = s["time"]
            # a slice
            a, b = sorted(rng.randint(-len(rows) - 1, len(rows) + 1) for _ in range(2))
            sl = run.metrics.read(key, start=a, stop=b)
            assert sl["step"].tolist() == s["step"][a:b].tolist(), (tag, key, "slice", a, b)

            # ---- dashboard series: whole, zoomed by step and by time, downsampled, smoothed
            vals = [r[1][0] for r in rows]
            d = get("/api/series", {"run": path, "key": key, "width": 8192})
            cols = d["columns"]
            assert cols["step"] == [want_step(x) for x in steps], (tag, "dash steps", key, cols["step"], steps)
            assert [v if v is not None else math.nan for v in cols["value"]] == [
                v if math.isfinite(v) else math.nan for v in vals] or all(
                (g is None and not math.isfinite(v)) or (g is not None and close(g, v))
                for g, v in zip(cols["value"], vals)), (tag, "dash values", key, cols["value"], vals)
            marks = d["columns"].get("nonfinite")
            want_marks = [None if math.isfinite(v) else ("NaN" if v != v else ("inf" if v > 0 else "-inf")) for v in vals]
            assert (marks or [None] * len(vals)) == want_marks, (tag, "dash marks", key, marks, want_marks)
            for _ in range(2):
                i, j = sorted(rng.randrange(len(rows)) for _ in range(2))
                x0, x1 = steps[i], steps[j]
                if rng.random() < 0.3:
                    x0 = x0 - 0.01
                z = get("/api/series", {"run": path, "key": key, "width": 8192, "x0": repr(float(x0)), "x1": repr(float(x1))})
                inside = [k for k, st in enumerate(steps) if x0 <= st <= x1]
                lo = max(0, inside[0] - 1) if inside else None
                hi = min(len(steps), inside[-1] + 2) if inside else None
                if inside:
                    assert z["columns"]["step"] == [want_step(x) for x in steps[lo:hi]], (
                        tag, "dash zoom", key, x0, x1, z["columns"]["step"], steps)
                # by time
                tt = times[key].tolist()
                t0, t1 = tt[i], tt[j]
                zt = get("/api/series", {"run": path, "key": key, "width": 8192, "x": "time",
                                         "x0": repr(t0), "x1": repr(t1)})
                inside = [k for k, t in enumerate(tt) if t0 <= t <= t1]
                lo, hi = max(0, inside[0] - 1), min(len(tt), inside[-1] + 2)
                assert zt["columns"]["step"] == [want_step(x) for x in steps[lo:hi]], (
                    tag, "dash zoom time", key, t0, t1, zt["columns"]["step"], steps, tt)
            if len(rows) > 4:
                w = 1
                ds = get("/api/series", {"run": path, "key": key, "width": w})
                got = list(zip(ds["columns"]["step"], ds["columns"]["value"]))
                allrows = list(zip([want_step(x) for x in steps], vals))
                stepset = [want_step(x) for x in steps]
                assert all(g[0] in stepset for g in got), (tag, "ds rows", got)
                fin = [v for v in vals if math.isfinite(v)]
                gv = [v for v in ds["columns"]["value"] if v is not None]
                if fin:
                    assert min(fin) in gv and max(fin) in gv, (tag, "ds minmax", key, got, vals)
                assert got[0][0] == stepset[0] and got[-1][0] == stepset[-1], (tag, "ds first/last", got)
                bad = [k for k, v in enumerate(vals) if not math.isfinite(v)]
                if bad:
                    assert stepset[bad[0]] in [g[0] for g in got], (tag, "ds first nonfinite", got, vals)
                if "min" in ds["columns"]:
                    mins = [r[1][2] for r in rows if math.isfinite(r[1][2])]
                    gmin = [v for v in ds["columns"]["min"] if v is not None]
                    if mins:
                        assert min(gmin) == min(mins), (tag, "ds band min", key, gmin, mins)
            wgt = rng.choice((0.5, 0.9, 0.3))
            sm = get("/api/series", {"run": path, "key": key, "width": 8192, "smooth": wgt})
            want = ema_oracle(vals, wgt)
            got = sm["columns"]["smooth"]
            assert all((g is None and not math.isfinite(x)) or (g is not None and close(g, x))
                       for g, x in zip(got, want)) and len(got) == len(want), (tag, "smooth", key, got, want)
            k0 = rng.randrange(len(rows) + 1)
            lv = get("/api/series", {"run": path, "key": key, "start": k0})
            assert lv["columns"]["step"] == [want_step(x) for x in steps[k0:]], (tag, "live start", k0)

        # ---- CLI metrics of several keys (json): one row per step of any key, null where absent
        if len(ne) >= 2:
            ks = rng.sample(sorted(ne), 2)
            code, out, err = cli("metrics", f"{root}/{path}", *ks, "--format", "json")
            assert code == 0, (tag, err)
            rows = json.loads(out)
            allsteps = sorted({r[0] for k in ks for r in ne[k]})
            got_steps = [r["step"] for r in rows]
            assert got_steps == [want_step(x) for x in allsteps], (tag, "cli metrics steps", ks, got_steps, allsteps)
            for r in rows:
                for k in ks:
                    have = {st: row[0] for st, row in ne[k]}
                    if float(r["step"]) not in have:
                        assert r[k] is None, (tag, "cli absent", k, r)
                    else:
                        v = have[float(r["step"])]
                        g = r[k]
                        gv = float(g) if isinstance(g, str) else g
                        assert same(gv, v) or close(gv, v), (tag, "cli value", k, r, v)
            code, out, err = cli("metrics", f"{root}/{path}", *ks, "--format", "csv")
            assert code == 0
            lines = out.splitlines()[1:]
            assert [float(l.split(",")[0]) for l in lines] == [float(x) for x in allsteps], (
                tag, "cli csv steps", lines, allsteps)

        # ---- logs: text and table against the oracle, with random filters
        mine = {(round(r["time"], 6), r["message"]) for r in o.logs}
        full_text = run.logs.query(source="text")
        has_table = True
        try:
            run.logs.query(source="table")
        except FileNotFoundError:
            has_table = False
        ltimes = sorted({round(r.time, 6) for r in full_text})
        for _ in range(4):
            f = {}
            if rng.random() < 0.4:
                f["level"] = rng.choice(("DEBUG", "INFO", "WARNING", "ERROR", 25, 35, "LEVEL35"))
            if rng.random() < 0.4 and ltimes:
                t = rng.choice(ltimes)
                f["since"] = rng.choice((t, t + 2e-6, t - 2e-6))
            if rng.random() < 0.4 and ltimes:
                t = rng.choice(ltimes)
                f["until"] = rng.choice((t, t + 2e-6, t - 2e-6))
            if rng.random() < 0.3:
                f["steps"] = rng.choice(("1:3", "2.5:", ":2", "0.5:1.5", "3"))
            if rng.random() < 0.3:
                f["grep"] = rng.choice(("step", "a\tb", "x\\\\ny", "nan", r"\[x\]", "ü"))
            if rng.random() < 0.2:
                f["attempt"] = rng.randrange(o.attempt + 1)
            tail = rng.choice((None, None, 1, 3))
            text = run.logs.query(source="text", **f)
            want = [r for r in full_text if _passes(r, f)]
            assert [_sig(r) for r in text] == [_sig(r) for r in want], (tag, path, "logs text", f,
                                                                         [_sig(r) for r in text], [_sig(r) for r in want])
            if has_table:
                tb = run.logs.query(source="table", **f)
                assert [_sig(r) for r in tb] == [_sig(r) for r in text], (tag, path, "logs table", f,
                                                                         [_sig(r) for r in tb], [_sig(r) for r in text])
            if tail is not None:
                for src in ("text", "table") if has_table else ("text",):
                    tl = run.logs.query(source=src, tail=tail, **f)
                    assert [_sig(r) for r in tl] == [_sig(r) for r in text][max(0, len(text) - tail):], (
                        tag, path, "logs tail", src, tail, f)
                api = {"run": path, "tail": tail}
                for k2, v2 in f.items():
                    if k2 in ("level", "grep", "since", "until", "steps"):
                        api[k2] = repr(v2) if isinstance(v2, float) else v2
                if "attempt" not in f:
                    lg = get("/api/logs", api)
                    assert [(r["t"], r["message"]) for r in lg["records"]] == [
                        (round(r.time, 6), r.message) for r in text][max(0, len(text) - tail):], (tag, "api logs", api)
            # the oracle's own records among them
            got_mine = [(round(r.time, 6), r.message) for r in text if (round(r.time, 6), r.message) in mine]
            want_mine = [(round(r["time"], 6), r["message"]) for r in o.logs if _passes_o(r, f)]
            assert sorted(got_mine) == sorted(want_mine), (tag, path, "logs oracle", f, got_mine, want_mine)

        # ---- files
        latest = {}
        for fr in o.files:
            latest[fr["path"]] = fr
        for p_, fr in latest.items():
            rec = run.files.find(p_)
            assert rec.sha256 == fr["sha256"] and rec.version == fr["version"], (tag, "files find", p_)
            vs = run.files.versions(p_)
            want_v = []
            for x in o.files:
                if x["path"] == p_ and x["version"] not in [w["version"] for w in want_v]:
                    want_v.append(x)
            assert [(v.version, v.sha256) for v in vs] == [(w["version"], w["sha256"]) for w in want_v], (tag, "versions")
            assert want_step(vs[0].step) == want_step(want_v[0]["step"]), (tag, "file step", vs[0].step, want_v[0]["step"])

    # ---- the sweep table and read_metrics over every run
    rr = distlog.open_root(root)
    allkeys = sorted({k for o in runs.values() for k in o.nonempty()})
    if allkeys:
        key = rng.choice(allkeys)
        stat = rng.choice(("value", "mean", "min", "max", "sum", "count"))
        final = rng.choice(("last", "min", "max", "mean"))
        ci = ("value", "mean", "min", "max", "sum", "count", "nonfinite").index(stat)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = rr.table(metrics=[key], stat=stat, final=final)
        col = df.columns[-1]
        for _, row in df.iterrows():
            o = runs[f"{row['experiment']}/{row['run_id']}"]
            rows = o.nonempty().get(key)
            g = row[col]
            if not rows:
                assert g is None, (tag, "table absent", g)
                continue
            v = [r[1][ci] for r in rows]
            if final == "last":
                want = v[-1]
            else:
                fin = [x for x in v if math.isfinite(x)]
                want = math.nan if not fin else {"min": min, "max": max, "mean": lambda a: math.fsum(a) / len(a)}[final](fin)
            assert close(g, want), (tag, "table", key, stat, final, g, want, v)
            ls = row["last_step"]
            allst = [r[0] for rows_ in o.nonempty().values() for r in rows_]
            if allst:
                assert same(ls, max(allst)), (tag, "table last_step", ls, max(allst))

        # read_metrics, one bin per distinct step, no groups
        wk = [o for o in runs.values() if key in o.nonempty()]
        readers = [distlog.open_run(f"{root}/{o.path}") for o in wk]
        agg = rng.choice(("mean", "min", "max", "sum", "median", "first", "last", "count"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                bd = distlog.query.read_metrics(readers, f"{key}@{agg}", group_by=[])
            except KeyError:
                bd = None
        per = {}
        for o in wk:
            for st, row in o.nonempty()[key]:
                if math.isfinite(row[0]):
                    per.setdefault(st, []).append(1.0 if agg == "count" else row[0])
        allsteps = sorted({st for o in wk for st, _ in o.nonempty()[key]})
        gaps = np.diff(allsteps) if len(allsteps) > 1 else np.array([1.0])
        gap = float(gaps.min())
        lo0 = allsteps[0]
        on_grid = all(abs((s - lo0) / gap - round((s - lo0) / gap)) < 1e-9 for s in allsteps)
        if bd is not None:
            want_steps = sorted(per)
            assert [float(x) for x in bd["step"]] == want_steps, (tag, "bands steps", agg, bd["step"].tolist(), want_steps)
            for st, m, mx, mn, n in zip(bd["step"], bd["mean"], bd["max"], bd["min"], bd["runs"]):
                vals = per[float(st)]
                assert n == len(vals) and close(m, math.fsum(vals) / len(vals)) and close(mx, max(vals)) and close(mn, min(vals)), (
                    tag, "bands", st, vals, m)
            # the dashboard's bands: the same
            # (and a step where runs had NaN/inf: counted in nonfinite, a row of its own if no
            # run had a number there)
            bb = get("/api/bands", [("key", key)] + [("run", o.path) for o in wk]) if agg == "mean" else None
            bad = {}
            for o in wk:
                for st, row in o.nonempty()[key]:
                    if not math.isfinite(row[0]):
                        bad[st] = bad.get(st, 0) + 1
            if bb is not None and bb["groups"]:
                g = bb["groups"][0]
                api_steps = sorted(set(per) | set(bad))
                assert [float(x) for x in g["step"]] == api_steps, (tag, "api bands steps", g["step"], api_steps)
                for st, m, n, nf in zip(g["step"], g["mean"], g["runs"], g["nonfinite"]):
                    vals = per.get(float(st), [])
                    assert n == len(vals) and nf == bad.get(float(st), 0), (tag, "api bands counts", st, n, nf)
                    assert (close(m, math.fsum(vals) / len(vals)) if vals else m is None), (tag, "api bands", st, m, vals)
            # zoomed bands: the rows inside [x0, x1] of each run (a run with none: in no bin)
            if len(allsteps) > 2 and agg == "mean":
                x0, x1 = sorted(rng.sample(allsteps, 2))
                zb = get("/api/bands", [("key", key), ("x0", repr(float(x0))), ("x1", repr(float(x1)))] + [("run", o.path) for o in wk])
                zper, zbad = {}, set()
                for o in wk:
                    for st, row in o.nonempty()[key]:
                        if x0 <= st <= x1 and math.isfinite(row[0]):
                            zper.setdefault(st, []).append(row[0])
                        elif x0 <= st <= x1:
                            zbad.add(st)
                zg = zb["groups"][0] if zb["groups"] else {"step": [], "mean": []}
                if len({st for o in wk for st, _ in o.nonempty()[key] if x0 <= st <= x1}) <= 300:  # a bin per step
                    assert [float(x) for x in zg["step"]] == sorted(set(zper) | zbad), (tag, "zoom bands steps", x0, x1, zg["step"])
                    for st, m in zip(zg["step"], zg["mean"]):
                        vals = zper.get(float(st))
                        assert (close(m, math.fsum(vals) / len(vals)) if vals else m is None), (tag, "zoom bands", st)

    # runs(params=...)
    for o in runs.values():
        if not o.params:
            continue
        lr = o.params["lr"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sel = rr.runs(params={"lr": lr})
        got = sorted(r.info.path for r in sel)
        want = sorted(x.path for x in runs.values() if x.params and _peq(x.params["lr"], lr))
        assert got == want, (tag, "runs params", lr, got, want)
        break


def _peq(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _sig(r):
    return (round(r.time, 6), r.level, r.rank, r.attempt, r.step, r.message)


def _levelno(level):
    from distlog.logline import level_number, levelno_of

    return levelno_of(level) if isinstance(level, str) else level


def _passes_o(r, f):
    class R:
        pass
    x = R()
    x.time, x.level, x.message, x.step, x.attempt = r["time"], r["level"], r["message"], r["step"], r["attempt"]
    return _passes(x, f)


def _passes(r, f):
    """The oracle's filter (README: level a minimum; since/until inclusive, microsecond times as
    the text holds them; steps inclusive; grep a regex search of the message)."""
    import re

    from distlog.logline import level_number, levelno_of
    from distlog.query.logfilter import parse_steps

    if "level" in f and levelno_of(r.level) < level_number(f["level"]):
        return False
    t = round(r.time, 6)
    if "since" in f and t < round(f["since"], 6) - 1e-7:
        return False
    if "until" in f and t > round(f["until"], 6) + 1e-7:
        return False
    if "steps" in f:
        lo, hi = parse_steps(f["steps"])
        if r.step is None or (lo is not None and r.step < lo) or (hi is not None and r.step > hi):
            return False
    if "grep" in f and not re.search(f["grep"], r.message):
        return False
    if "attempt" in f and r.attempt != f["attempt"]:
        return False
    return True
