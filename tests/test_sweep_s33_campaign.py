"""A seeded campaign on reading a SWEEP (stop 33): many runs written the way users make them, on
local disk and on S3 (moto), then read through ``open_root().runs()``/``table()`` with their
filters, ``distlog ls``/``compare`` (formats, ``--status``, ``--sort``/``--desc``) and the
dashboard's ``/api/runs``, ``/api/keys`` and ``/api/compare``, every answer checked against an
oracle built from what was written.

The sweep: three experiments (one nested), params of mixed types (nested dicts, lists, bools,
None, NaN, 5,000-character strings, keys in some runs only), runs that completed, were killed
(``kill -9`` after a commit: ``stale`` once their heartbeats stop), are live (a writer open in
another process), were resumed (a second attempt rewinding what it rewrites; one at world size
2 with real gloo ranks), have no metrics, have keys of different names and lengths and
non-finite values. The single-run readers were the subject of tests/test_campaign30_readers.py
and tests/test_read_fuzz32.py; their oracle helpers are reused here.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import pathlib
import random
import subprocess
import sys
import time
import warnings

import pytest

import distlog
from test_campaign30_readers import deep_merge, flat, gen_param, peq, same

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STALE_AFTER = "4"  # a killed run's heartbeats (every 0.5 s) are stale after 4 s (2 s: a live run's
# beat to moto, in this busy worker, came late once in a full run on 2 cores and read stale)

LONG = "L" * 5000

def gen_params(rng, i):
    p = {"seed": rng.randrange(4), "lr": rng.choice([0.1, 0.01, 1e-3, float("nan"), 1, True, None, "0.1"]),
         "optim": {"name": rng.choice(["adam", "sgd"]), "betas": [0.9, rng.choice([0.99, 0.999])]}}
    if rng.random() < 0.5:
        p["extra"] = gen_param(rng)
    if rng.random() < 0.3:
        p["note"] = LONG + str(i)
    if rng.random() < 0.3:
        p["flag"] = rng.choice([True, False, 0, 1, None])
    if rng.random() < 0.2:
        p["only_some"] = {"deep": {"x": rng.randrange(3)}}
    if rng.random() < 0.2:
        p["mixed"] = rng.choice([1, "1", 1.5, "b", None, False, [1, 2]])
    return p

def gen_series(rng):
    keys = rng.sample(["loss", "acc", "train/loss", "val/acc", "lr"], rng.randrange(0, 4))
    out = {}
    for k in keys:
        n = rng.randrange(1, 30)
        start = rng.randrange(0, 5)
        steps = list(range(start, start + n * rng.choice([1, 3]), 1))[:n]
        vals = []
        for _ in steps:
            r = rng.random()
            vals.append(float("nan") if r < 0.08 else float("inf") if r < 0.12 else -float("inf") if r < 0.14 else rng.gauss(0, 5))
        out[k] = list(zip(steps, vals))
    return out

class O:
    def __init__(self, exp, rid):
        self.exp, self.rid = exp, rid
        self.params = {}
        self.series = {}
        self.status = None
        self.attempts = 0
        self.world = 1
    @property
    def path(self): return f"{self.exp}/{self.rid}"
    def last_step(self):
        st = [s[-1][0] for s in self.series.values() if s]
        return max(st) if st else None
    def apply(self, series):
        for k, rows in series.items():
            if not rows: continue
            first = rows[0][0]
            old = [r for r in self.series.get(k, []) if r[0] < first]
            self.series[k] = old + rows

def write_attempt(exp, o, params, series, **runkw):
    with exp.experiment(o.exp), exp.run(o.rid, **runkw):
        if params:
            exp.params.set(**params)
        for k, rows in series.items():
            for st, v in rows:
                exp.metrics.log(step=st, **{k: v}) if "/" not in k else exp.metrics(k.split("/")[0]).log(step=st, **{k.split("/")[1]: v})
    o.attempts += 1
    o.params = dict(params)
    o.apply(series)

CRASH = r'''
import os, sys, json
sys.path.insert(0, sys.argv[7])
import distlog
root, e, rid, params, series, opts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5]), json.loads(sys.argv[6])
exp = distlog.get_logger(root, heartbeat_interval=0.5, **opts)
with exp.experiment(e), exp.run(rid):
    if params: exp.params.set(**params)
    for k, rows in series.items():
        for st, v in rows:
            exp.metrics.log({k: v}, step=st)
    exp.metrics.commit()
    os.kill(os.getpid(), 9)
'''

def jsafe(series):
    return {k: [(s, v) for s, v in rows if math.isfinite(v)] for k, rows in series.items()}

def write_sweep(seed, root, n=40, opts=None, crash=True):
    rng = random.Random(seed)
    kw = dict(opts) if opts else {}
    exp = distlog.get_logger(root, heartbeat_interval=0.5, **kw)
    runs = {}
    exps = ["alpha", "beta/sub", "gamma"]
    for i in range(n):
        e = rng.choice(exps)
        o = O(e, f"r{i:03d}")
        p = gen_params(rng, i)
        s = gen_series(rng)
        kind = rng.random()
        if crash and (kind < 0.1 or i == 1):
            s = jsafe(s)
            env = {**os.environ}
            subprocess.run([sys.executable, "-c", CRASH, root, e, o.rid, json.dumps(json_params(p)), json.dumps(s), json.dumps(opts or {}), REPO], env=env, timeout=120)
            o.params = json_params(p); o.apply(s); o.attempts = 1
            o.status = "stale"
        else:
            write_attempt(exp, o, p, s)
            o.status = "completed"
            if kind > 0.8 or i == 2:  # resumed: a second attempt rewinds what it writes
                p2 = {"lr": rng.choice([0.5, "x", None]), "resumed": True}
                s2 = gen_series(rng)
                write_attempt(exp, o, p2, s2)
        runs[o.path] = o
    return runs

def json_params(p):
    def f(v):
        if isinstance(v, float) and not math.isfinite(v): return 0.5
        if isinstance(v, dict): return {k: f(x) for k, x in v.items()}
        if isinstance(v, list): return [f(x) for x in v]
        return v
    return f(p)

def rank_worker(rank, world, root, e, rid, steps, opts):
    kw = dict(opts) if opts else {}
    exp = distlog.get_logger(root, heartbeat_interval=0.5, **kw)
    with exp.experiment(e), exp.run(rid):
        exp.params.set(world=world, lr=0.25)
        for st in steps:
            exp.metrics.collect(step=st, loss=float(st * 10 + rank))
            exp.metrics.flush()
    return True

def write_ranked(root, o, steps, tmp, opts=None):
    from support.ranks import run_ranks
    import pathlib
    run_ranks(rank_worker, 2, pathlib.Path(tmp), root, o.exp, o.rid, steps, opts, timeout=120)
    o.attempts += 1; o.world = 2
    o.params = {"world": 2, "lr": 0.25}
    o.apply({"loss": [(st, st * 10 + 0.5) for st in steps]})

def _live(root, e, rid, ready, stop, opts):
    kw = dict(opts) if opts else {}
    exp = distlog.get_logger(root, heartbeat_interval=0.3, commit_interval=0.05, **kw)
    with exp.experiment(e), exp.run(rid):
        exp.params.set(live=True, lr=float("nan"))
        for st in range(5):
            exp.metrics.log(step=st, loss=float(st) + 0.25)
        exp.metrics.commit()
        open(ready, "w").write("x")
        while not os.path.exists(stop):
            time.sleep(0.05)

def start_live(root, o, tmp, opts=None):
    import multiprocessing as mp
    ready, stop = os.path.join(tmp, o.rid + ".ready"), os.path.join(tmp, "stop")
    p = mp.get_context("spawn").Process(target=_live, args=(root, o.exp, o.rid, ready, stop, opts))
    p.start()
    t = time.time()
    while not os.path.exists(ready):
        assert p.is_alive() and time.time() - t < 60
        time.sleep(0.05)
    o.attempts = 1; o.status = "running"; o.params = {"live": True, "lr": float("nan")}
    o.apply({"loss": [(st, st + 0.25) for st in range(5)]})
    return p


def peq_(a, b):
    """``peq`` without its relative tolerance at infinity (|2.5 - inf| <= 1e-12 * inf)."""
    if isinstance(a, float) and isinstance(b, float) and (math.isinf(a) or math.isinf(b)):
        return a == b
    return peq(a, b)


def sort_rank(v):
    """``compare --sort``'s documented order: numbers, then booleans, then text; no value last."""
    if v is None or v == "nan":
        return (3,)
    if isinstance(v, bool):
        return (1, v)
    if isinstance(v, (int, float)):
        return (0, v)
    return (2, str(v))


def check_sorted(vals, desc, where):
    present = [v for v in vals if sort_rank(v)[0] != 3]
    assert all(sort_rank(v)[0] == 3 for v in vals[len(present):]), ("missing last", where, vals)
    keys = [sort_rank(v) for v in present]
    assert keys == sorted(keys, reverse=desc), ("order", where, vals)


def cli(*a):
    from distlog.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(x) for x in a])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def check_sweep(root, runs, OPTS):
    """Every reader against the oracle ``runs`` (path -> ``O``)."""
    from distlog.dashboard.encode import jsonable
    def cli(*a):
        from distlog.cli import main
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try: code = main([str(x) for x in a])
            except SystemExit as e: code = e.code
        return code, out.getvalue(), err.getvalue()
    problems = []
    def bad(*a):
        problems.append(a); print("BAD", *[str(x)[:400] for x in a])
    rr = distlog.open_root(root, **OPTS)
    OARGS = [x for k, v in OPTS.items() for x in ('-O', f'{k}={v}')]
    got = rr.runs()
    paths = [r.info.path for r in got]
    if sorted(paths) != sorted(runs): bad("runs set", sorted(set(paths) ^ set(runs)), len(paths), len(runs))
    if len(paths) != len(set(paths)): bad("dup")
    for r in got:
        o = runs[r.info.path]
        if r.info.status != o.status: bad("status", r.info.path, r.info.status, o.status)
        same(r.flat_params, flat(o.params), r.info.path) if True else None
        if len(r.info.attempts) != o.attempts: bad("attempts", r.info.path, len(r.info.attempts), o.attempts)
    # statuses filter
    for st in ("completed", "stale", "running"):
        g = sorted(r.info.path for r in rr.runs(status=st)); w = sorted(p for p, o in runs.items() if o.status == st)
        if g != w: bad("status filter", st, g, w)
    # table
    keys = sorted({k for o in runs.values() for k in o.series})
    df = rr.table(metrics=keys)
    rows = {f"{e}/{r}": i for i, (e, r) in enumerate(zip(df["experiment"], df["run_id"]))}
    for p, o in runs.items():
        i = rows[p]
        for k in keys:
            w = o.series.get(k); g = df[k].iloc[i]
            if not w:
                if g is not None: bad("table absent", p, k, g)
            else:
                wv = w[-1][1]
                if not (g is not None and (g == wv or (g != g and wv != wv))): bad("table last", p, k, g, wv)
        ls = o.last_step(); g = df["last_step"].iloc[i]
        if (ls is None and g is not None) or (ls is not None and g != ls): bad("table last_step", p, g, ls)
        fp = flat(o.params)
        from distlog.query.root import param_columns, RUN_COLUMNS
        allp = sorted({k for x in runs.values() for k in flat(x.params)})
        pc = param_columns(allp, (*RUN_COLUMNS, *keys))
        if sorted(df.columns) != sorted([*RUN_COLUMNS, *keys, *pc.values()]): bad("table cols", sorted(df.columns))
        for c0 in allp:
            c = pc[c0]
            g = df[c].iloc[i]
            c = c0
            if c in fp:
                try: same(g, fp[c], (p, c))
                except AssertionError as e: bad("table param", p, c, repr(g)[:80], repr(fp[c])[:80])
            elif g is not None:
                bad("table param present", p, c, g)
    # params filter
    import random
    rng = random.Random(5)
    for _ in range(30):
        o = rng.choice(list(runs.values())); fp = flat(o.params)
        if not fp: continue
        k = rng.choice(sorted(fp)); v = fp[k]
        w = sorted(p for p, x in runs.items() if k in flat(x.params) and (peq_(flat(x.params)[k], v) or isinstance(v, list) and any(peq_(flat(x.params)[k], y) for y in v)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = sorted(r.info.path for r in rr.runs(params={k: v}))
        if g != w: bad("params filter", k, repr(v)[:50], g, w)
    # CLI ls
    code, out, err = cli("ls", root, "--format", "json", *OARGS)
    ls = json.loads(out)
    if sorted(f"{r['experiment']}/{r['run_id']}" for r in ls) != sorted(runs): bad("ls set")
    for r in ls:
        o = runs[f"{r['experiment']}/{r['run_id']}"]
        if r["status"] != o.status: bad("ls status", r, o.status)
        ls_ = o.last_step()
        if (ls_ is None) != (r["last_step"] is None) or (ls_ is not None and float(r["last_step"]) != ls_): bad("ls last", r, ls_)
    for st in ("completed", "stale"):
        code, out, err = cli("ls", root, "--status", st, "--format", "csv", *OARGS)
        import csv
        g = sorted(f"{r['experiment']}/{r['run_id']}" for r in csv.DictReader(io.StringIO(out)))
        w = sorted(p for p, o in runs.items() if o.status == st)
        if g != w: bad("ls --status", st, g, w)
    # compare per experiment, sort
    for e in ("alpha", "beta", "beta/sub", "gamma"):
        mine = {p: o for p, o in runs.items() if o.exp == e or o.exp.startswith(e + "/")}
        code, out, err = cli("compare", root, *OARGS, "-e", e, "--format", "json", "--all-params", "-m", "loss") 
        if code == 2 and "has the metric 'loss'" in err and not any(o.series.get("loss") for o in mine.values()): continue
        if code not in (0, 1): bad("compare code", e, code, err); continue
        if code == 1 and not mine: continue
        rs = json.loads(out)
        one = {o.exp for o in mine.values()}
        for r in rs: r.setdefault("experiment", next(iter(one)))
        if sorted(f"{e if 'experiment' not in r else r['experiment']}/{r['run_id']}" for r in rs) != sorted(mine): bad("compare set", e, [r['run_id'] for r in rs], sorted(mine))
        for r in rs:
            p = f"{r['experiment']}/{r['run_id']}"; o = runs[p]
            w = o.series.get("loss")
            g = r.get("loss")
            wv = None if not w else w[-1][1]
            if wv is None: 
                if g is not None: bad("compare loss absent", p, g)
            elif isinstance(g, str):
                if str(wv) != g: bad("compare loss ns", p, g, wv)
            elif g is None or abs(g - wv) > 1e-12 * abs(wv): bad("compare loss", p, g, wv)
        for col in ("loss", "lr", "flag", "mixed", "seed"):
            for desc in (False, True):
                code, out, err = cli("compare", root, *OARGS, "-e", e, "--format", "json", "--all-params", "-m", "loss", "--sort", col, *(["--desc"] if desc else []))
                if code != 0: 
                    if "is not a column" not in err: bad("compare sort code", e, col, code, err)
                    continue
                vals = [r.get(col) for r in json.loads(out)]
                check_sorted(vals, desc, (e, col))
    # ---- dashboard
    from starlette.testclient import TestClient
    from distlog.dashboard.app import make_app
    client = TestClient(make_app(distlog.open_root(root, **OPTS)), base_url="http://127.0.0.1")
    d = client.get("/api/runs").json()
    rows = {r["path"]: r for r in d["runs"]}
    if sorted(rows) != sorted(runs) or len(d["runs"]) != len(rows): bad("dash set", sorted(set(rows) ^ set(runs)))
    for p, o in runs.items():
        r = rows.get(p)
        if r is None: continue
        if r["status"] != o.status: bad("dash status", p, r["status"], o.status)
        if r["attempts"] != o.attempts: bad("dash attempts", p, r["attempts"], o.attempts)
        if r["world_size"] != o.world: bad("dash world", p, r["world_size"], o.world)
        ls_ = o.last_step()
        if (ls_ is None) != (r["last_step"] is None) or (ls_ is not None and float(r["last_step"]) != ls_): bad("dash last", p, r["last_step"], ls_)
        wp = {k: jsonable(v) for k, v in flat(o.params).items()}
        if json.dumps(r["params"], sort_keys=True) != json.dumps(wp, sort_keys=True): bad("dash params", p, r["params"], wp)
    allp = sorted({k for o in runs.values() for k in flat(o.params)})
    if d["param_keys"] != allp: bad("dash param_keys", d["param_keys"], allp)
    # compare endpoints
    ps = sorted(runs)
    for i in range(0, len(ps), 7):
        sel = ps[i:i + 7]
        q = [("run", p) for p in sel]
        k = client.get("/api/keys", params=q).json()
        wk = sorted({x for p in sel for x, rws in runs[p].series.items() if rws})
        if k["keys"] != wk: bad("dash keys", sel, k["keys"], wk)
        for p in sel:
            if k["status"][p] != runs[p].status: bad("dash keys status", p, k["status"][p])
            wp = {a: jsonable(v) for a, v in flat(runs[p].params).items()}
            if json.dumps(k["params"][p], sort_keys=True) != json.dumps(wp, sort_keys=True): bad("dash keys params", p)
        for key in wk:
            c = client.get("/api/compare", params=q + [("key", key), ("width", 8192)])
            if c.status_code != 200: bad("dash compare", c.status_code, c.text); continue
            c = c.json()
            got = {s["run"]: s for s in c["series"]}
            if sorted(got) != sorted(sel) or len(c["series"]) != len(sel): bad("dash compare runs", sorted(got), sel)
            for p in sel:
                s = got[p]; w = runs[p].series.get(key)
                if not w:
                    if not s.get("missing"): bad("dash compare missing", p, key)
                    continue
                st = [float(x) for x in s["columns"]["step"]]
                if st != [float(a) for a, _ in w]: bad("dash compare steps", p, key, st, [a for a, _ in w])
                vals = s["columns"]["value"]
                for g, (_, v) in zip(vals, w):
                    if (g is None) != (not math.isfinite(v)) or (g is not None and abs(g - v) > 1e-12 * abs(v)): bad("dash compare val", p, key, g, v); break
    assert not problems, problems[:10]


def _sweep(tmp_path, monkeypatch, seed, n, root, opts=None, ranked=True):
    monkeypatch.setenv("DISTLOG_STALE_AFTER", STALE_AFTER)
    tmp = str(tmp_path / "work")
    os.makedirs(tmp, exist_ok=True)
    runs = write_sweep(seed, root, n=n, opts=opts)
    if ranked:  # resumed at another world size, and a run two ranks wrote
        o = O("alpha", "ranked_resumed")
        write_attempt(distlog.get_logger(root, **(opts or {})), o, {"lr": 1},
                      {"loss": [(s, s * 1.0) for s in range(10)], "acc": [(0, 0.5)]})
        o.status = "completed"
        write_ranked(root, o, [5, 6, 7], tmp, opts)
        runs[o.path] = o
    o = O("gamma", "empty")
    write_attempt(distlog.get_logger(root, **(opts or {})), o, {}, {})
    o.status = "completed"
    runs[o.path] = o
    o = O("alpha", "live")
    proc = start_live(root, o, tmp, opts)
    runs[o.path] = o
    try:
        time.sleep(float(STALE_AFTER) + 0.5)  # the killed runs' heartbeats are stale now
        assert proc.is_alive()
        check_sweep(root, runs, opts or {})
    finally:
        open(os.path.join(tmp, "stop"), "w").close()
        proc.join(60)
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0


@pytest.mark.dist
@pytest.mark.timeout(400)
@pytest.mark.parametrize("seed", [3301])  # (3302 passed too: one seed keeps the suite's time)
def test_sweep_campaign_local(seed, tmp_path, monkeypatch):
    _sweep(tmp_path, monkeypatch, seed, 22, str(tmp_path / "root"))


@pytest.mark.timeout(400)
def test_sweep_campaign_s3(s3_bucket, tmp_path, monkeypatch):
    root = f"s3://{s3_bucket['bucket']}/sweep"
    _sweep(tmp_path, monkeypatch, 3303, 6, root, s3_bucket["storage_options"], ranked=False)
