"""A seeded campaign on the READING side: a root written with the real public API (one process,
local disk), a plain-Python oracle of what a reader must return, and every reader compared with
it: the Python query API (``open_run``, ``open_root``), the CLI (``python -m distlog`` and
``distlog.cli.main``: ``ls``, ``show``, ``metrics`` in csv/json/table with ``--stat`` and
``--tail``, ``params``, ``logs`` with filters, ``files``, ``compare``, ``export``) and the
dashboard's JSON API (starlette's TestClient, no server). Reads happen while a run is open (after
a ``commit()``) and after it closed.

What each format promises (README "What a flush guarantees", docs/FORMAT.md "Row tables", the
CLI's renderers in ``distlog/query/render.py``): the Python API and CSV/JSON are exact (a step
a key has no row at is an empty cell / ``null``; NaN and the infinities are ``nan``, ``inf``,
``-inf``, strings in JSON); the CLI table prints ``%.6g`` but tells a NaN (``nan``) from a
missing row (``-``); the dashboard sends non-finite values as ``null`` (a gap) and names them
in ``columns.nonfinite``.

``run_case(seed, root)`` is importable: /tmp/c30/many.py runs many more seeds with it."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import random
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import distlog

HERE = os.path.dirname(os.path.abspath(__file__))
COLS = ("value", "mean", "min", "max", "sum", "count", "nonfinite")
NAMESPACES = (None, "train", "val/sub")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", 25, 35)
LEVELNO = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
MSG_PIECES = ("plain", "ünïcødé", "new\nline", "tab\there", "back\\slash", "loss=nan", "42",
              "  spaced  ", "emoji 🎉", "nan", "[x]")


# ---- values ---------------------------------------------------------------------------------
def gen_value(rng, huge):
    r = rng.random()
    if r < 0.04:
        return float("nan")
    if r < 0.07:
        return float("inf")
    if r < 0.09:
        return float("-inf")
    if r < 0.12:
        return -0.0
    if r < 0.15:
        return rng.choice((1.7e308, -1.7e308, 1e300)) if huge else rng.choice((1e300, -1e300))
    if r < 0.18:
        return rng.choice((5e-324, -5e-324, 2.2250738585072014e-308, 1e-300))
    if r < 0.30:
        return rng.randint(-1000, 1000)
    if r < 0.34:
        return float(np.float32(rng.gauss(0, 10)))
    if r < 0.36:
        return rng.random() < 0.5  # a bool is a number
    return rng.gauss(0, 100) * 10.0 ** rng.randint(-6, 6)


def log_row(v):
    if math.isfinite(v):
        return (v, v, v, v, v, 1.0, 0.0)
    return (v, math.nan, math.nan, math.nan, 0.0, 0.0, 1.0)


class Approx(float):
    """A sum (or mean) of floats: exact (``fsum``) here, added in float64 by the writer, so
    known only within rounding of its largest term (``scale``): 1e300 + x - 1e300 is 0.0 there."""

    def __new__(cls, value, scale):
        out = super().__new__(cls, value)
        out.scale = scale
        return out


def window_row(vals):
    fin = [v for v in vals if math.isfinite(v)]
    n, bad = len(fin), len(vals) - len(fin)
    if n:
        s = math.fsum(fin)
        big = max(map(abs, fin))
        return (Approx(s / n, big), Approx(s / n, big), min(fin), max(fin), Approx(s, big), float(n), float(bad))
    return (math.nan, math.nan, math.nan, math.nan, 0.0, 0.0, float(bad))


def gen_param(rng, depth=0):
    k = rng.randrange(14 if depth < 2 else 11)
    return [lambda: rng.randint(-5, 5), lambda: rng.random() < 0.5, lambda: rng.choice(("1", "1.0", "true", "None", "-0", "1e3", "")),
            lambda: rng.choice((0.1, -0.0, 1e-300, 2.5, 1e22)), lambda: None, lambda: 2 ** 60 + rng.randrange(9),
            lambda: rng.choice((1, 0)),  # ints beside the bools True/False
            lambda: "ünï " + str(rng.randrange(100)), lambda: rng.choice((1.0, 0.0)),
            lambda: rng.choice((float("inf"), float("nan"))) if rng.random() < 0.3 else 3,
            lambda: [],
            lambda: [gen_param(rng, depth + 1) for _ in range(rng.randrange(1, 4))],
            lambda: {rng.choice("abcd"): gen_param(rng, depth + 1) for _ in range(rng.randrange(0, 3))},
            lambda: {"lr": rng.random(), "flag": True, "n": 3}][k]()


def deep_merge(base, extra):
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def sorted_dicts(v):
    if isinstance(v, dict):
        return {k: sorted_dicts(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [sorted_dicts(x) for x in v]
    return v


def same(a, b, where):
    """Deep equality of params with types kept (True is not 1, "1" is not 1) and NaN == NaN."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (where, a, b)
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
        return
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and type(a) is type(b) and len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
        return
    assert type(a) is type(b), (where, a, b, type(a), type(b))
    if isinstance(a, float):
        assert bits(a) == bits(b), (where, a, b)
    else:
        assert a == b, (where, a, b)


def bits(v):
    """A float's identity: NaN is NaN, -0.0 is not 0.0."""
    v = float(v)
    return "nan" if v != v else v.hex()


ANY = object()  # a value the oracle does not check


def close(a, b, rel=1e-9):
    if b is ANY:
        return True
    scale = getattr(b, "scale", 0.0)
    a, b = float(a), float(b)
    if a != a or b != b:
        return a != a and b != b
    if a == b:
        return True
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rel * max(1.0, abs(a), abs(b), scale)


# ---- the oracle -----------------------------------------------------------------------------
class RunOracle:
    def __init__(self, exp, rid):
        self.exp, self.rid = exp, rid
        self.series = {}  # key -> [(step, row)]
        self.logged = set()  # keys written by log() (rows are the values themselves)
        self.written = set()
        self.params = {}
        self.logs = []  # (level, levelno, message, fields, step, attempt)
        self.files = []  # dicts
        self.attempt = -1
        self.status = None

    @property
    def path(self):
        return f"{self.exp}/{self.rid}"

    def start_attempt(self, resume_step):
        self.attempt += 1
        self.written = set()
        if resume_step is not None:
            for k in self.series:
                self.series[k] = [r for r in self.series[k] if r[0] <= resume_step]

    def put(self, key, step, row):
        rows = self.series.setdefault(key, [])
        if key not in self.written:  # rewound to before the first step this attempt writes
            self.written.add(key)
            rows[:] = [r for r in rows if r[0] < step]
        assert not rows or rows[-1][0] < step, (key, step, rows[-1][0])
        rows.append((float(step), row))

    def nonempty(self):
        return {k: v for k, v in self.series.items() if v}

    def last_step(self):
        steps = [v[-1][0] for v in self.nonempty().values()]
        return max(steps) if steps else None

    def summary(self, key):
        """``run.metrics.summary()`` of ``key`` for stat ``value``."""
        rows = self.series[key]
        mins = [r[1][2] for r in rows if math.isfinite(r[1][2])]
        maxs = [r[1][3] for r in rows if math.isfinite(r[1][3])]
        n = sum(r[1][5] for r in rows)
        sums = [r[1][4] for r in rows]
        # (sums near float64's limit overflow in any order of addition: the mean is then not
        # checked, see ``close``)
        big = max([abs(x) for x in sums] + [getattr(x, "scale", 0.0) for x in sums], default=0.0)
        tot = Approx(math.fsum(sums), big) if big < 1e307 else math.nan
        return {"rows": len(rows), "first_step": rows[0][0], "last_step": rows[-1][0],
                "last": rows[-1][1][0], "min": min(mins) if mins else math.nan,
                "max": max(maxs) if maxs else math.nan, "mean": (Approx(tot / n, tot.scale) if n else math.nan) if tot == tot else ANY,
                "count": int(n)}

    def latest_file(self, path):
        """The newest version of ``path``: its first save (the same bytes saved again are the
        same version, and readers pick that version's first record)."""
        mine = [f for f in self.files if f["path"] == path]
        if not mine:
            return None
        return next(f for f in mine if f["version"] == mine[-1]["version"])

    def last_save(self, path):
        """The newest version's last save (what ``files.table(latest=True)`` shows: the last save
        of a path is always of its newest version)."""
        return [f for f in self.files if f["path"] == path][-1]


# ---- writing a root ---------------------------------------------------------------------------
class Writer:
    """Writes one root through the public API, keeping a RunOracle per run."""

    def __init__(self, seed, root, rng, check_open=None):
        self.seed, self.root, self.rng = seed, root, rng
        self.runs = {}  # path -> RunOracle
        self.check_open = check_open

    def view(self, exp, ns):
        return exp.metrics if ns is None else exp.metrics(ns)

    @staticmethod
    def full(ns, k):
        return k if ns is None else f"{ns}/{k}"

    def sites(self):
        rng = self.rng
        logs, cols = [], []
        for i in range(rng.randint(1, 3)):
            logs.append({"ns": rng.choice(NAMESPACES), "keys": [f"l{i}_{j}" for j in range(rng.randint(1, 3))],
                         "late": (f"l{i}_late", rng.randint(0, 20))})
        for i in range(rng.randint(0, 2)):
            cols.append({"ns": rng.choice(NAMESPACES), "keys": [f"c{i}_{j}" for j in range(rng.randint(1, 2))],
                         "late": (f"c{i}_late", rng.randint(0, 20))})
        return logs, cols

    def write_run(self, ename, rid):
        rng = self.rng
        o = self.runs.setdefault(f"{ename}/{rid}", RunOracle(ename, rid))
        logs, cols = self.sites()
        step_kind = rng.choice(("int", "int", "half", "tenth", "big", "huge", "neg"))
        incs = {"int": (1, 1, 2, 5), "half": (0.5, 1, 1.5), "tenth": (0.1, 0.1, 0.2), "big": (1, 3),
                "huge": (2, 4), "neg": (1, 3)}
        first = {"int": rng.choice((0, 1)), "half": 0.5, "tenth": 0.0, "big": 10 ** 15,
                 "huge": 2 ** 53 + 2, "neg": -20}[step_kind]
        max_step = None
        for a in range(rng.choice((1, 1, 2, 2, 3))):
            inc = incs[step_kind]
            if a and step_kind in ("int", "half", "neg") and rng.random() < 0.3:
                inc = (0.25, 1)  # a resumed attempt that steps by fractions
            resume_step = None
            if a and max_step is not None and rng.random() < 0.6:
                resume_step = rng.choice(sorted({r[0] for v in o.series.values() for r in v}) or [first])
                if step_kind != "tenth" and float(resume_step).is_integer():
                    resume_step = int(resume_step)
                s = resume_step + rng.choice(inc)
            elif a:
                s = first + rng.choice(inc) * rng.randint(0, 10)
            else:
                s = first
            max_step = self.attempt(o, ename, rid, resume_step, s, inc, logs, cols, max_step)

    def attempt(self, o, ename, rid, resume_step, s, inc, logs, cols, max_step):
        rng = self.rng
        exp = distlog.get_logger(self.root, chunk_rows=rng.choice((4, 8, 64)), heartbeat_interval=0,
                                 telemetry=False, commit_interval=rng.choice((0.05, 10.0)))
        kw = {"resume": "allow"}
        if resume_step is not None:
            kw["resume_step"] = resume_step
        window, window_step = {}, None
        opened_check = rng.random() < 0.5
        with exp.experiment(ename):
            params = None
            if rng.random() < 0.3:
                params = {"start": gen_param(rng), "seed": rng.randrange(3)}
                kw["params"] = params
            exp.start_run(rid, **kw)
            o.start_attempt(resume_step)
            if params is not None:
                o.params = params
            n_steps = rng.randint(4, 30)
            for i in range(n_steps):
                for site in cols:
                    if rng.random() < 0.7:
                        keys = [k for k in site["keys"] if rng.random() < 0.85]
                        if i >= site["late"][1] and rng.random() < 0.7:
                            keys.append(site["late"][0])
                        for _ in range(rng.choice((1, 1, 2, 3))):
                            d = {k: gen_value(rng, huge=False) for k in keys}
                            if not d:
                                continue
                            self.view(exp, site["ns"]).collect(d, step=s)
                            for k, x in d.items():
                                window.setdefault(self.full(site["ns"], k), []).append(float(x))
                            window_step = s
                for site in logs:
                    if rng.random() < 0.6:
                        keys = [k for k in site["keys"] if rng.random() < 0.8]
                        if i >= site["late"][1] and rng.random() < 0.7:
                            keys.append(site["late"][0])
                        d = {k: gen_value(rng, huge=True) for k in keys}
                        if d:
                            if rng.random() < 0.5:
                                self.view(exp, site["ns"]).log(d, step=s)
                            else:
                                self.view(exp, site["ns"]).log(step=s, **d)
                            for k, x in d.items():
                                o.put(self.full(site["ns"], k), s, log_row(float(x)))
                                o.logged.add(self.full(site["ns"], k))
                if window_step is not None and rng.random() < 0.3:
                    exp.metrics.flush()
                    for k, vals in window.items():
                        o.put(k, window_step, window_row(vals))
                    window, window_step = {}, None
                if rng.random() < 0.3:
                    self.log_record(exp, o, s)
                if rng.random() < 0.12:
                    self.save_file(exp, o, s)
                if rng.random() < 0.08:
                    self.param_op(exp, o)
                if opened_check and self.check_open and rng.random() < 0.08:
                    opened_check = False
                    exp.metrics.commit()
                    self.check_open(self, o)
                max_step = s if max_step is None else max(max_step, s)
                s = s + rng.choice(inc)
            if rng.random() < 0.3:  # a last commit, then a read of the open run (its
                exp.metrics.commit()  # window not flushed: not stored yet)
                if self.check_open:
                    self.check_open(self, o)
            # the closing flush stores the last window
            for k, vals in window.items():
                o.put(k, window_step, window_row(vals))
            exp.close()
        o.status = "completed"
        return max_step

    def log_record(self, exp, o, s):
        rng = self.rng
        level = rng.choice(LEVELS)
        msg = "u:" + "".join(rng.choice(MSG_PIECES) for _ in range(rng.randint(1, 3)))
        fields = {}
        for j in range(rng.choice((0, 0, 1, 2))):
            fields[rng.choice(("k", "ünï", f"f{j}"))] = rng.choice((1, -7, 0.5, "s", None, True, [1, "x"], {"d": [None]}, 2 ** 60))
        step = rng.choice((s, s, s, rng.randrange(50), 2.5, 10 ** 12 + 1))
        if isinstance(level, int) or rng.random() < 0.5:
            exp.logs.log(level, msg, step=step, **fields)
        else:
            getattr(exp.logs, level.lower())(msg, step=step, **fields)
        text = f"LEVEL{level}" if isinstance(level, int) else level
        no = level if isinstance(level, int) else LEVELNO[level]
        o.logs.append((text, no, msg, json.loads(json.dumps(fields)), step, o.attempt))

    def save_file(self, exp, o, s):
        rng = self.rng
        ns = rng.choice(("", "ckpt", "deep/ns"))
        name = rng.choice(("model.bin", "a b.dat", "ünï.bin", "x/y.dat", "v1.2.bin"))
        path = f"{ns}/{name}" if ns else name
        last = o.latest_file(path)
        if last is not None and rng.random() < 0.3:
            data = last["bytes"]  # the same bytes again: the same version
        else:
            data = rng.randbytes(rng.randrange(0, 300))
        step = rng.choice((s, None, 7, 2.5))
        files = exp.files(ns) if ns else exp.files
        rec = files.save(data, name, step=step)
        sha = hashlib.sha256(data).hexdigest()
        version = 1 if last is None else last["version"] if last["sha256"] == sha else last["version"] + 1
        assert (rec.sha256, rec.version) == (sha, version), (rec, sha, version)
        o.files.append(dict(path=path, name=name, namespace=ns, bytes=data, sha256=sha, step=step,
                            version=version, attempt=o.attempt))

    def param_op(self, exp, o):
        rng = self.rng
        how = rng.choice(("set", "extend", "update"))
        key = rng.choice(("lr", "opt", "model", "seed", "tags"))
        v = gen_param(rng)
        if how == "set":
            new = {key: v, "seed": rng.randrange(3)}
            exp.params.set(new)
        elif how == "extend":
            new = deep_merge(o.params, {key: v})
            exp.params.extend({key: v})
        else:
            new = dict(o.params)
            new[key] = v
            exp.params.update(key, v)
        o.params = new


def make_root(seed, root, check_open=None):
    rng = random.Random(seed)
    w = Writer(seed, root, rng, check_open)
    exps = ["e0"] if rng.random() < 0.5 else ["e0", "grp/e1"]
    for e in exps:
        for r in range(rng.randint(1, 3)):
            w.write_run(e, f"r{r}")
    return w


# ---- the readers: Python -----------------------------------------------------------------------
def user_logs(recs):
    return [(r.level, r.levelno, r.message, r.fields, r.step, r.attempt) for r in recs if r.message.startswith("u:")]


def want_logs(o, level=None, lo=None, hi=None, grep=None, attempt=None, tail=None):
    out = []
    for rec in o.logs:
        text, no, msg, fields, step, att = rec
        if level is not None and no < level:
            continue
        if lo is not None and step < lo or hi is not None and step > hi:
            continue
        if grep is not None and not re.search(grep, msg):
            continue
        if attempt is not None and att != attempt:
            continue
        out.append(rec)
    return out


def check_series_rows(got_step, got_cols, want, where, exact_value):
    assert [float(x) for x in got_step] == [r[0] for r in want], (where, "steps", list(got_step), [r[0] for r in want])
    for j, c in enumerate(COLS):
        for i, r in enumerate(want):
            g = got_cols[c][i]
            assert close(g, r[1][j]), (where, c, "row", i, "step", r[0], g, r[1][j])
            if c == "value" and exact_value:
                assert bits(g) == bits(r[1][j]), (where, "value", i, g, r[1][j])


def check_python(root, o, rng, tag):
    run = distlog.open_run(os.path.join(root, o.exp, o.rid))
    want = o.nonempty()
    m = run.metrics
    assert m.keys() == sorted(want), (tag, m.keys(), sorted(want))
    lengths = m.lengths()
    for k, rows in want.items():
        assert lengths[k] == len(rows), (tag, k, lengths[k], len(rows))
        s = m.read(k)
        where = f"{tag} {o.path} read {k}"
        check_series_rows(s["step"], {c: s[c] for c in COLS}, rows, where, k in o.logged)
        assert np.isfinite(s["time"]).all(), where
        st = s.step
        whole = all(r[0].is_integer() and abs(r[0]) <= 2 ** 53 for r in rows)
        assert st.dtype == (np.int64 if whole else np.float64), (where, st.dtype)
        a = rng.randrange(len(rows))
        b = rng.randrange(a, len(rows) + 1)
        part = m.read(k, start=a, stop=b)
        check_series_rows(part["step"], {c: part[c] for c in COLS}, rows[a:b], where + f" [{a}:{b}]", k in o.logged)
    if want:
        last = m.last()
        assert sorted(last) == sorted(want), tag
        for k, rows in want.items():
            assert last[k]["step"] == rows[-1][0], (tag, k, last[k]["step"], rows[-1][0])
            for j, c in enumerate(COLS):
                assert close(last[k][c], rows[-1][1][j]), (tag, "last", k, c)
        assert m.last_step() == o.last_step(), (tag, m.last_step(), o.last_step())
        summ = m.summary()
        assert list(summ["key"]) == sorted(want), tag
        for _, row in summ.iterrows():
            exp_ = o.summary(row["key"])
            for c, v in exp_.items():
                assert close(row[c], v), (tag, "summary", row["key"], c, row[c], v)
        df = m.to_frame()
        assert len(df) == sum(len(v) for v in want.values()), tag
        k = rng.choice(sorted(want))
        fr = m.frame(k)
        assert [float(x) for x in fr["step"]] == [r[0] for r in want[k]], (tag, "frame", k)
        assert list(fr["count"]) == [int(r[1][5]) for r in want[k]], (tag, "frame count", k)
    else:
        assert m.last_step() is None, tag
    same(o.params, run.params, f"{tag} {o.path} params")
    fp = run.flat_params
    assert sorted(fp) == sorted(flat(o.params)), (tag, sorted(fp), sorted(flat(o.params)))
    # logs: every user record, then filters, from the text and from auto (the table when current)
    got = user_logs(run.logs.query(source="text"))
    assert got == [(t, n, msg, f, step, a) for t, n, msg, f, step, a in o.logs], (tag, o.path, "logs", _diff(got, o.logs))
    assert user_logs(run.logs.query()) == got, (tag, "auto source")
    for _ in range(3):
        level = rng.choice((None, 20, 25, 30, 35, 50))
        lo, hi = rng.choice(((None, None), (5, 20), (2.5, 2.5), (None, 10), (10 ** 12, None), (0.5, 3.5)))
        grep = rng.choice((None, None, "ünï", "^u:plain", "nan", r"\n", "42$"))
        att = rng.choice((None, None, 0, o.attempt))
        steps = None if lo is None and hi is None else f"{'' if lo is None else lo}:{'' if hi is None else hi}"
        w = want_logs(o, level, lo, hi, grep, att)
        for source in ("text", "auto"):
            q = run.logs.query(level=level, steps=steps, grep=grep, attempt=att, source=source)
            assert user_logs(q) == [tuple(r) for r in w], (tag, o.path, source, level, steps, grep, att,
                                                           _diff(user_logs(q), w))
    # files
    recs = run.files.records()
    got = sorted(((r.path, r.version, r.sha256, r.attempt, r.step, r.name, r.namespace, r.size)
                  for r in recs), key=repr)
    exp_files = sorted(((f["path"], f["version"], f["sha256"], f["attempt"], f["step"], f["name"],
                         f["namespace"], len(f["bytes"])) for f in o.files), key=repr)
    assert got == exp_files, (tag, o.path, "files", got, exp_files)
    for f in o.files:
        assert run.files.read_bytes(f["path"], version=f["version"]) == f["bytes"], (tag, f["path"])
    for p in {f["path"] for f in o.files}:
        assert run.files.read_bytes(p) == o.latest_file(p)["bytes"], (tag, p)
    return run


def _as_browser(v):
    """A log record's fields as the dashboard sends them: ints past 2**53 as their digits."""
    if isinstance(v, dict):
        return {k: _as_browser(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_as_browser(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53:
        return str(v)
    return v


def _diff(got, want):
    want = [tuple(w) for w in want]
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return ("first difference at", i, g, w)
    return ("lengths", len(got), len(want))


def check_root_python(root, w, rng, tag):
    rr = distlog.open_root(root)
    runs = rr.runs()
    assert sorted(r.info.path for r in runs) == sorted(p for p, o in w.runs.items() if o.status), tag
    for r in runs:
        o = w.runs[r.info.path]
        assert r.info.status == "completed", (tag, r.info.path, r.info.status)
        assert r.info.attempt == o.attempt, (tag, r.info.path, r.info.attempt, o.attempt)
    for e, mine, key, stat, final in table_choices(w, rng):
        df = rr.table(e, metrics=[key], stat=stat, final=final)
        from distlog.query.root import metric_column

        col = metric_column(key, stat, final)
        got = dict(zip(df["run_id"], df[col]))
        for o in mine:
            want = final_of(o, key, stat, final)
            g = got[o.rid]
            if want is None:
                assert g is None, (tag, "table", o.path, key, g)
            else:
                assert g is not None and close(g, want), (tag, "table", o.path, key, stat, final, g, want)
        # the last step of each run (ls and the table)
        steps = dict(zip(df["run_id"], df["last_step"]))
        for o in mine:
            ls = o.last_step()
            assert (steps[o.rid] is None or steps[o.rid] != steps[o.rid]) if ls is None else float(steps[o.rid]) == ls, \
                (tag, "table last_step", o.path, steps[o.rid], ls)


def peq(a, b):
    """Param equality as ``runs(params=...)`` documents it: 1 is 1.0, True is not 1, NaN is NaN,
    lists item by item."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) \
            and all(peq(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if a != a or b != b:
            return a != a and b != b
        return a == b or (isinstance(a, float) and abs(a - b) <= 1e-12 * abs(b))
    if isinstance(a, (int, float)) or isinstance(b, (int, float)):
        return False
    return type(a) is type(b) and a == b


def check_where(root, w, rng, cli, tag):
    """``open_root().runs(params=)`` and ``distlog compare --where``: the runs whose flat param
    equals a value another run has."""
    for e in sorted({o.exp for o in w.runs.values()}):
        mine = [o for o in w.runs.values() if o.exp == e]
        cands = [(k, v) for o in mine for k, v in flat(o.params).items() if not isinstance(v, dict)]
        if len(mine) < 2 or not cands:
            continue
        k, v = rng.choice(cands)
        # (a list selects the runs whose value is that list or one of its items)
        want = sorted(o.rid for o in mine if k in flat(o.params) and (
            peq(flat(o.params)[k], v) or isinstance(v, list) and any(peq(flat(o.params)[k], x) for x in v)))
        got = sorted(r.info.run_id for r in distlog.open_root(root).runs(e, params={k: v}))
        assert got == want, (tag, "runs(params=)", k, v, got, want)
        if isinstance(v, float) and not math.isfinite(v):
            continue
        text = json.dumps(v)
        parsed = json.loads(text)
        want = sorted(o.rid for o in mine if k in flat(o.params) and (
            peq(flat(o.params)[k], parsed) or flat(o.params)[k] == text))
        code, out = cli("compare", os.path.join(root, e), "--where", f"{k}={text}", "--format", "json",
                        "--all-params")
        got = sorted(r["run_id"] for r in json.loads(out)) if code == 0 else []
        assert got == want, (tag, "compare --where", k, text, got, want)


def final_of(o, key, stat, final):
    rows = o.series.get(key)
    if not rows:
        return None
    v = [r[1][COLS.index(stat)] for r in rows]
    if final == "last":
        return v[-1]
    v = [x for x in v if not math.isnan(x)]  # ±inf kept: a diverged run's max is inf
    if not v:
        return math.nan
    infs = {x for x in v if math.isinf(x)}
    if final == "mean" and infs:
        return math.nan if len(infs) == 2 else infs.pop()
    if final == "mean":
        big = max([abs(x) for x in v] + [getattr(x, "scale", 0.0) for x in v])
        return Approx(math.fsum(v) / len(v), big) if big < 1e307 else ANY
    return {"min": min, "max": max}[final](v)


def bands_oracle(mine, key, bins):
    """``read_metrics(runs, key@mean, group_by=[], bins=bins)`` of whole steps, in plain
    Python: each run's finite values binned (``ceil((hi - lo + 1) / bins)`` steps a bin, or one
    step a bin without ``bins``) and averaged, then across runs: runs, mean, min, max per bin."""
    series = [o.series[key] for o in mine if o.series.get(key)]
    lo = min(r[0] for rows in series for r in rows)
    hi = max(r[0] for rows in series for r in rows)
    size = 1 if bins is None else max(1, math.ceil((hi - lo + 1) / bins))
    per_bin = {}
    for rows in series:
        mine_bins = {}
        for st, row in rows:
            if math.isfinite(row[0]):
                mine_bins.setdefault(int((st - lo) // size), []).append(row[0])
        for b, vals in mine_bins.items():
            per_bin.setdefault(b, []).append(Approx(math.fsum(vals) / len(vals), max(map(abs, vals))))
    out = []
    for b in sorted(per_bin):
        v = per_bin[b]
        big = max(max(abs(x), x.scale) for x in v)
        out.append((lo + b * size, len(v), Approx(math.fsum(v) / len(v), big) if big < 1e307 else ANY, min(v), max(v)))
    return out


def check_bands(root, w, rng, tag, client=None):
    for e in sorted({o.exp for o in w.runs.values()}):
        mine = [o for o in w.runs.values() if o.exp == e]
        keys = sorted({k for o in mine for k in o.nonempty()
                       if all(r[0].is_integer() and abs(r[0]) < 2 ** 53 for x in mine for r in x.series.get(k, []))})
        if not keys:
            continue
        key = rng.choice(keys)
        bins = rng.choice((None, 5, 300))
        want = bands_oracle(mine, key, bins)
        runs = distlog.open_root(root).runs(e)
        df = distlog.query.read_metrics(runs, f"{key}@mean", group_by=[], bins=bins)
        got = list(zip(df["step"], df["runs"], df["mean"], df["min"], df["max"]))
        assert [float(g[0]) for g in got] == [float(x[0]) for x in want], (tag, "bands steps", key, bins, got, want)
        for g, x in zip(got, want):
            assert g[1] == x[1] and close(g[2], x[2]) and close(g[3], x[3]) and close(g[4], x[4]), \
                (tag, "bands", key, bins, g, x)
        if client is not None and bins is not None:
            r = client.get("/api/bands", params=[("key", key), ("bins", bins)] + [("run", o.path) for o in mine])
            assert r.status_code == 200, (tag, r.text)
            (grp,) = r.json()["groups"]
            assert [float(x) for x in grp["step"]] == [float(x[0]) for x in want], (tag, "dash bands steps")
            for i, x in enumerate(want):
                assert grp["runs"][i] == x[1] and close(grp["mean"][i], x[2]) and close(grp["min"][i], x[3]), \
                    (tag, "dash bands", key, bins, i, x)


# ---- the readers: CLI ---------------------------------------------------------------------------
class Cli:
    def __init__(self, subprocess_every=0):
        self.subprocess_every = subprocess_every
        self.calls = 0

    def __call__(self, *args):
        """``(exit status, stdout)`` of ``distlog ARGS``: every ``subprocess_every``-th call as
        ``python -m distlog`` in a process of its own, the others through ``distlog.cli.main``."""
        args = [str(a) for a in args]
        self.calls += 1
        if self.subprocess_every and self.calls % self.subprocess_every == 1:
            p = subprocess.run([sys.executable, "-m", "distlog", *args], capture_output=True,
                               text=True, timeout=120, env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)})
            assert p.returncode in (0, 1), (args, p.returncode, p.stderr[-2000:])
            return p.returncode, p.stdout
        from distlog.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        assert code in (0, 1), (args, code, err.getvalue()[-2000:])
        return code, out.getvalue()


def csv_rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def table_choices(w, rng):
    """Per experiment with metrics: its runs, and a random key, stat and final to compare."""
    for e in sorted({o.exp for o in w.runs.values()}):
        mine = [o for o in w.runs.values() if o.exp == e]
        keys = sorted({k for o in mine for k in o.nonempty()})
        if keys:
            yield (e, mine, rng.choice(keys), rng.choice(("value", "mean", "min", "max", "sum", "count")),
                   rng.choice(("last", "min", "max", "mean")))


def cell_float(text):
    return None if text == "" else float(text)


def json_float(v):
    if v is None or isinstance(v, float) or isinstance(v, int) and not isinstance(v, bool):
        return v
    assert v in ("nan", "inf", "-inf"), v
    return float(v)


def check_cli(root, o, rng, cli, tag):
    path = os.path.join(root, o.exp, o.rid)
    run = distlog.open_run(path)
    want = o.nonempty()
    # metrics RUN: the summary
    fmt = rng.choice(("csv", "json"))
    code, out = cli("metrics", path, "--format", fmt)
    assert code == (0 if want else 1), (tag, code, out)
    if want:
        rows = csv_rows(out) if fmt == "csv" else json.loads(out)
        assert [r["key"] for r in rows] == sorted(want), (tag, out)
        for r in rows:
            exp_ = o.summary(r["key"])
            for c, v in exp_.items():
                g = cell_float(r[c]) if fmt == "csv" else json_float(r[c])
                if g is None:
                    g = math.nan
                assert close(g, v), (tag, "cli summary", fmt, r["key"], c, r[c], v)
    # metrics RUN K... : rows by step, every format
    if want:
        keys = rng.sample(sorted(want), min(len(want), rng.choice((1, 2, 3))))
        stat = rng.choice(COLS + ("time",))
        tail = rng.choice((None, None, 1, 5))
        extra = ["--stat", stat] + ([] if tail is None else ["--tail", tail])
        api = {k: run.metrics.read(k) for k in keys}
        steps = sorted({float(x) for k in keys for x in api[k]["step"]})
        if tail is not None:
            steps = steps[max(0, len(steps) - tail):]
        at = {k: {float(st): api[k][stat][i] for i, st in enumerate(api[k]["step"])} for k in keys}
        # the API itself against the oracle first
        for k in keys:
            for st, row in want[k]:
                g = at[k][st]
                if stat != "time":
                    assert close(g, row[COLS.index(stat)]), (tag, k, st, stat)
        for fmt in ("csv", "json", "table"):
            code, out = cli("metrics", path, *keys, *extra, "--format", fmt)
            assert code == 0, (tag, fmt, out)
            if fmt == "table":
                lines = out.rstrip("\n").split("\n")
                assert lines[0].split() == ["step", *keys], (tag, lines[0])
                body = [ln.split() for ln in lines[2:]]
                assert [float(c[0]) for c in body] == steps, (tag, "table steps", [c[0] for c in body], steps)
                for cells, st in zip(body, steps):
                    for k, cell in zip(keys, cells[1:]):
                        v = at[k].get(st)
                        if v is None:
                            assert cell == "-", (tag, "absent shown as", cell, k, st)
                        elif v != v:
                            assert cell == "nan", (tag, "NaN shown as", cell, k, st)
                        elif math.isinf(v):
                            assert cell == ("inf" if v > 0 else "-inf"), (tag, cell, k, st)
                        elif stat == "time":
                            assert float(cell) == v, (tag, "time", cell, v)
                        else:
                            assert close(float(cell), v, 1e-5), (tag, "table value", cell, v, k, st)
                continue
            rows = csv_rows(out) if fmt == "csv" else json.loads(out)
            got_steps = [float(r["step"]) for r in rows]
            assert got_steps == steps, (tag, fmt, "steps", got_steps, steps)
            for r, st in zip(rows, steps):
                for k in keys:
                    v = at[k].get(st)
                    g = cell_float(r[k]) if fmt == "csv" else json_float(r[k])
                    if v is None:  # absent: an empty cell / null
                        assert g is None, (tag, fmt, k, st, r[k], v)
                    elif v != v:  # a NaN: "nan" (told from an absent row)
                        assert g is not None and g != g, (tag, fmt, "NaN", k, st, r[k])
                    else:
                        assert g is not None and bits(g) == bits(v), (tag, fmt, "not exact", k, st, r[k], v)
    # export: every series, exact
    if want:
        code, out = cli("export", path)
        rows = csv_rows(out)
        assert len(rows) == sum(len(v) for v in want.values()), tag
        by_key = {}
        for r in rows:
            by_key.setdefault(r["key"], []).append(r)
        for k, rs in by_key.items():
            s = run.metrics.read(k)
            for i, r in enumerate(rs):
                assert float(r["step"]) == float(s["step"][i]), (tag, "export step", k, i)
                for c in COLS + ("time",):
                    g = cell_float(r[c])
                    v = s[c][i]
                    assert (g is None and v != v) or (g is not None and bits(g) == bits(v)), (tag, "export", k, c, r[c], v)
    # params
    code, out = cli("params", path, "--format", "json")
    from distlog.serdes import deserialize

    same(o.params, deserialize(json.loads(out)) if out.strip() else {}, f"{tag} cli params json")
    code, out = cli("params", path)
    if o.params:
        from distlog.query.render import fmt_exact

        fl = flat(o.params)
        lines = out.rstrip("\n").split("\n")
        assert len(lines) == len(fl), (tag, out)
        width = max(map(len, fl))
        # (params.json keeps its keys sorted: a dict inside a list prints in that order)
        assert sorted(lines) == sorted(f"{k.ljust(width)}  {fmt_exact(sorted_dicts(v))}" for k, v in fl.items()), \
            (tag, "params flat", out)
    # logs, raw lines parsed back
    from distlog.logline import parse_line

    for _ in range(2):
        args, level, lo, hi, grep, att, tail = [], None, None, None, None, None, None
        if rng.random() < 0.5:
            level = rng.choice((20, 30, 35, "WARNING"))
            args += ["--level", level]
        if rng.random() < 0.4:
            lo, hi = rng.choice(((5, 20), (2.5, 2.5), (None, 10), (10 ** 12, None)))
            args += [f"--step={'' if lo is None else lo}:{'' if hi is None else hi}"]
        if rng.random() < 0.3:
            grep = rng.choice(("ünï", "^u:plain", "nan"))
            args += ["--grep", grep]
        if rng.random() < 0.3:
            att = rng.choice((0, o.attempt))
            args += ["--attempt", att]
        if rng.random() < 0.3:
            tail = rng.choice((1, 3))
            args += ["--tail", tail]
        code, out = cli("logs", path, "--raw", *args)
        lv = LEVELNO.get(level, level)
        recs = [parse_line(ln) for ln in out.split("\n") if ln]
        api = run.logs.query(level=lv, steps=None if lo is None and hi is None else
                             f"{'' if lo is None else lo}:{'' if hi is None else hi}", grep=grep,
                             attempt=att, tail=tail)
        assert [(r.level, r.message, r.fields, r.step, r.attempt) for r in recs] == \
            [(r.level, r.message, r.fields, r.step, r.attempt) for r in api], (tag, "cli logs", args)
        if tail is None:
            w = want_logs(o, lv, lo, hi, grep, att)
            assert user_logs(recs) == [tuple(x) for x in w], (tag, "cli logs", args, _diff(user_logs(recs), w))
    # files
    code, out = cli("files", path, "--all-versions", "--format", "json")
    if o.files:
        rows = json.loads(out)
        got = sorted(((r["path"], r["version"], r["sha256"], r["attempt"], r["step"], r["size"]) for r in rows), key=repr)
        wantf = sorted(((f["path"], f["version"], f["sha256"], f["attempt"], f["step"], len(f["bytes"])) for f in o.files), key=repr)
        assert got == wantf, (tag, "cli files json", got, wantf)
        code, out = cli("files", path, "--format", "csv")
        rows = csv_rows(out)
        latest = {p: o.last_save(p) for p in {f["path"] for f in o.files}}
        assert sorted(r["path"] for r in rows) == sorted(latest), tag
        for r in rows:
            f = latest[r["path"]]
            assert int(r["version"]) == f["version"] and r["sha256"] == f["sha256"], (tag, r)
            want_step = "" if f["step"] is None else str(f["step"])
            assert r["step"] == want_step or (r["step"] and f["step"] is not None and float(r["step"]) == f["step"]
                                              and (not isinstance(f["step"], int) or "." not in r["step"])), \
                (tag, "files csv step", r["step"], f["step"])
    else:
        assert code == 1, (tag, out)
    # show: runs, names the last step in full
    code, out = cli("show", path)
    ls = o.last_step()
    line = next(ln for ln in out.split("\n") if ln.startswith("last step"))
    from distlog.query.render import fmt_step

    assert line.split()[-1] == ("-" if ls is None else fmt_step(ls)), (tag, line, ls)


def check_root_cli(root, w, rng, cli, tag):
    code, out = cli("ls", root, "--format", "json")
    rows = json.loads(out)
    assert sorted(f"{r['experiment']}/{r['run_id']}" for r in rows) == sorted(w.runs), tag
    for r in rows:
        o = w.runs[f"{r['experiment']}/{r['run_id']}"]
        assert r["status"] == o.status, (tag, r)
        ls = o.last_step()
        assert (r["last_step"] is None) if ls is None else float(r["last_step"]) == ls, (tag, "ls last_step", r, ls)
    for e, mine, key, stat, final in table_choices(w, rng):
        fmt = rng.choice(("csv", "json"))
        code, out = cli("compare", os.path.join(root, e), "-m", key, "--stat", stat, "--final", final,
                        "--format", fmt)
        from distlog.query.root import metric_column

        col = metric_column(key, stat, final)
        rows = csv_rows(out) if fmt == "csv" else json.loads(out)
        got = {r["run_id"]: r[col] for r in rows}
        assert sorted(got) == sorted(o.rid for o in mine), (tag, out)
        for o in mine:
            want = final_of(o, key, stat, final)
            g = got[o.rid]
            if fmt == "csv":
                g = cell_float(g)
            else:
                g = json_float(g)
            if want is None:  # absent: empty / null
                assert g is None, (tag, "compare", fmt, o.path, g, want)
            elif want != want:  # a NaN: "nan"
                assert g is not None and g != g, (tag, "compare", fmt, o.path, g)
            else:
                assert g is not None and close(g, want), (tag, "compare", fmt, o.path, key, stat, final, g, want)


# ---- the readers: dashboard -------------------------------------------------------------------
def dash_value(v):
    """What the dashboard sends for a value: non-finite as null."""
    return v if math.isfinite(v) else None


def dashboard_client(root):
    from starlette.testclient import TestClient

    from distlog.dashboard.app import make_app

    return TestClient(make_app(distlog.open_root(root)), base_url="http://127.0.0.1")


def check_dashboard(client, w, rng, tag, only=None):
    """The dashboard's answers about every run (``only``: that run, and not the runs table,
    which a dashboard that is already up may serve one listing late: ``RunIndex``)."""
    from distlog.dashboard.encode import jsonable

    def get(url, **params):
        r = client.get(url, params=params)
        assert r.status_code == 200, (tag, url, params, r.status_code, r.text[:2000])
        return r.json()

    if only is None:
        data = get("/api/runs")
        rows = {r["path"]: r for r in data["runs"]}
        assert sorted(rows) == sorted(w.runs), (tag, sorted(rows))
        for path, o in w.runs.items():
            row = rows[path]
            ls = o.last_step()
            assert (row["last_step"] is None) if ls is None else float(row["last_step"]) == ls, \
                (tag, "dash last_step", row, ls)
            assert row["params"] == {k: jsonable(v) for k, v in flat(o.params).items()}, (tag, "dash params", row["params"])
            assert row["status"] == o.status and row["attempts"] == o.attempt + 1, (tag, row)
    for path, o in w.runs.items():
        if only is not None and path != only:
            continue
        d = get("/api/run", run=path)
        want = o.nonempty()
        assert d["keys"] == sorted(want), (tag, d["keys"])
        assert d["params"] == jsonable(o.params), (tag, "dash run params")
        st = get("/api/status", run=path)
        assert {k: n for k, n in st["lengths"]["0"].items() if n} == {k: len(v) for k, v in want.items()}, \
            (tag, st["lengths"])
        for k, rows_ in want.items():
            s = get("/api/series", run=path, key=k, width=8192)
            assert s["rows"] == len(rows_) and not s["downsampled"], (tag, k, s["rows"])
            assert [float(x) for x in s["columns"]["step"]] == [r[0] for r in rows_], (tag, "dash steps", k)
            got = s["columns"]["value"]
            for g, r in zip(got, rows_):
                v = dash_value(r[1][0])
                assert (g is None and v is None) or (g is not None and v is not None and close(g, v)), \
                    (tag, "dash value", k, r[0], g, r[1][0])
            if "min" in s["columns"]:
                for g, r in zip(s["columns"]["min"], rows_):
                    v = dash_value(r[1][2])
                    assert (g is None and v is None) or close(g, v), (tag, "dash min", k, r[0], g, r[1][2])
            # a zoomed window: the rows with steps in [x0, x1], and one either side
            if len(rows_) > 2:
                i, j = sorted(rng.sample(range(len(rows_)), 2))
                x0, x1 = rows_[i][0], rows_[j][0]
                z = get("/api/series", run=path, key=k, width=8192, x0=repr(x0), x1=repr(x1))
                lo, hi = max(0, i - 1), min(len(rows_), j + 2)
                assert [float(x) for x in z["columns"]["step"]] == [r[0] for r in rows_[lo:hi]], \
                    (tag, "dash zoom", k, x0, x1, z["columns"]["step"], [r[0] for r in rows_[lo:hi]])
                if len(rows_) > 8:  # downsampled (M4): real rows, the extremes and a gap kept
                    ds = get("/api/series", run=path, key=k, width=2)
                    at = {r[0]: dash_value(r[1][0]) for r in rows_}
                    pts = list(zip(ds["columns"]["step"], ds["columns"]["value"]))
                    assert ds["downsampled"] == (len(pts) < len(rows_)) and pts[0][0] == rows_[0][0] and pts[-1][0] == rows_[-1][0], (tag, "m4 ends", k, ds["rows"], len(rows_), pts, [r[0] for r in rows_])
                    for st_, v in pts:
                        assert float(st_) in at and ((v is None and at[float(st_)] is None) or close(v, at[float(st_)])), \
                            (tag, "m4 row not stored", k, st_, v)
                    fin = [v for v in at.values() if v is not None]
                    if fin:
                        shown = [v for _, v in pts if v is not None]
                        assert any(close(v, max(fin)) for v in shown) and any(close(v, min(fin)) for v in shown), \
                            (tag, "m4 extremes", k, pts, max(fin), min(fin))
                    if any(v is None for v in at.values()):
                        assert any(v is None for _, v in pts), (tag, "m4 gap lost", k)
                start = rng.randrange(len(rows_))
                live = get("/api/series", run=path, key=k, start=start)
                assert [float(x) for x in live["columns"]["step"]] == [r[0] for r in rows_[start:]], (tag, "dash start", k)
        # logs
        for _ in range(2):
            params = {"run": path, "tail": 5000}
            level = rng.choice((None, 25, "WARNING"))
            lo, hi = rng.choice(((None, None), (5, 20), (2.5, 2.5), (None, 10)))
            grep = rng.choice((None, "ünï", "^u:plain"))
            if level is not None:
                params["level"] = level
            if lo is not None or hi is not None:
                params["steps"] = f"{'' if lo is None else lo}:{'' if hi is None else hi}"
            if grep is not None:
                params["grep"] = grep
            lg = get("/api/logs", **params)
            got = [(r["level"], r["message"], r["fields"] or {}, r["step"], r["attempt"])
                   for r in lg["records"] if r["message"].startswith("u:")]
            wl = want_logs(o, LEVELNO.get(level, level), lo, hi, grep)
            # (an int past 2**53 comes as its digits: a browser's numbers would round it)
            want = [(t, m, _as_browser(f), s, a) for t, _, m, f, s, a in wl]
            assert got == want, (tag, "dash logs", params, _diff(got, want))
        # files
        fl = get("/api/files", run=path)
        got = sorted(((r["path"], r["version"], r["sha256"], r["attempt"], r["step"]) for r in fl["files"]), key=repr)
        wantf = sorted(((f["path"], f["version"], f["sha256"], f["attempt"], f["step"]) for f in o.files), key=repr)
        assert got == wantf, (tag, "dash files", got, wantf)
        for f in o.files[-3:]:
            r = client.get("/api/file", params={"run": path, "path": f["path"], "version": f["version"]})
            assert r.status_code == 200 and r.content == f["bytes"], (tag, "dash file bytes", f["path"], r.status_code)
    # compare across the runs of an experiment
    if only is None:
        for e in sorted({o.exp for o in w.runs.values()}):
            mine = [o for o in w.runs.values() if o.exp == e]
            keys = sorted({k for o in mine for k in o.nonempty()})
            if not keys:
                continue
            key = rng.choice(keys)
            r = client.get("/api/compare", params=[("key", key), ("width", 8192)] + [("run", o.path) for o in mine])
            assert r.status_code == 200, (tag, r.text)
            by = {s["run"]: s for s in r.json()["series"]}
            for o in mine:
                rows_ = o.series.get(key) or []
                if not rows_:
                    assert by[o.path].get("missing"), (tag, "compare missing", o.path)
                    continue
                assert [float(x) for x in by[o.path]["columns"]["step"]] == [x[0] for x in rows_], (tag, "dash compare", o.path)


# ---- one case ---------------------------------------------------------------------------------
def run_case(seed, root, cli_subprocess_every=0, dashboard=True):
    rng = random.Random(seed * 7919 + 3)
    cli = Cli(cli_subprocess_every)
    # a dashboard kept up while a run is written (one per run: one up before the run started may
    # answer 404 for a second, ``RunIndex``): its series cache follows the run's commits and rewinds
    live = {}

    def while_open(w, o):
        tag = f"seed {seed} open {o.path} attempt {o.attempt}"
        check_python(root, o, rng, tag)
        if rng.random() < 0.5:
            check_cli(root, o, rng, cli, tag)
        if dashboard and rng.random() < 0.7:
            if o.path not in live:
                live[o.path] = dashboard_client(root)
            check_dashboard(live[o.path], w, rng, tag, only=o.path)

    w = make_root(seed, root, check_open=while_open)
    tag = f"seed {seed} closed"
    for o in w.runs.values():
        check_python(root, o, rng, tag)
        check_cli(root, o, rng, cli, tag)
    check_root_python(root, w, rng, tag)
    check_root_cli(root, w, rng, cli, tag)
    check_where(root, w, rng, cli, tag)
    if dashboard:
        for path, client in live.items():
            check_dashboard(client, w, rng, tag + " (dashboard up since the run was open)", only=path)
        fresh = dashboard_client(root)
        check_dashboard(fresh, w, rng, tag)
        check_bands(root, w, rng, tag, fresh)
    else:
        check_bands(root, w, rng, tag)
    return w


SEEDS = [1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 16, 18]


@pytest.mark.parametrize("seed", SEEDS)
def test_campaign30_readers(seed, tmp_path, monkeypatch):
    from distlog import report

    monkeypatch.setattr(report.ECHO, "disabled", True)
    monkeypatch.setattr(logging.getLogger("distlog"), "propagate", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_case(seed, str(tmp_path / "root"), cli_subprocess_every=40 if seed in (4, 16) else 0)
