"""A seeded campaign through the public API only: random but valid sequences of ``log``,
``collect``/``collector`` + ``flush``, namespaces, histograms, commits, reads while the run is
open, new attempts of the same run (``resume="allow"`` with and without ``resume_step``),
misuse that must raise without losing rows, and runs that end without ``close()`` (atexit)
or are killed with SIGKILL after a commit. What the readers return is compared with an
oracle computed in plain Python from the same inputs (README "What a flush guarantees",
docs/FORMAT.md "Row tables").

``run_case(seed, root)`` is importable: /tmp/c29/many.py runs many more seeds with it."""

import json
import math
import os
import pickle
import random
import signal
import subprocess
import sys

import numpy as np
import pytest

import distlog

RUN_ID = "r"
COLS = ("value", "mean", "min", "max", "sum", "count", "nonfinite")
NAMESPACES = (None, "train", "val/sub")
HERE = os.path.dirname(os.path.abspath(__file__))


# ---- the oracle -----------------------------------------------------------------------------
def log_row(v):
    if math.isfinite(v):
        return (v, v, v, v, v, 1.0, 0.0)
    return (v, math.nan, math.nan, math.nan, 0.0, 0.0, 1.0)


def window_row(vals):
    fin = [v for v in vals if math.isfinite(v)]
    n, bad = len(fin), len(vals) - len(fin)
    if n:
        s = math.fsum(fin)
        mean = s / n
        return (mean, mean, min(fin), max(fin), s, float(n), float(bad))
    return (math.nan, math.nan, math.nan, math.nan, 0.0, 0.0, float(bad))



def call_in_some_form(fn, d, s, rng):
    """``fn`` (``log`` or ``collect``) with values ``d`` at step ``s`` in one of its four forms,
    chosen by ``rng``: keywords, a dict, the step first, a dict holding ``"step"``."""
    form = rng.randrange(4)
    if form == 0:
        fn(step=s, **d)
    elif form == 1:
        fn(d, step=s)
    elif form == 2:
        fn(s, **d)
    else:
        fn({**d, "step": s})

class Oracle:
    """Every series as ``[(step, row)]``; histograms as ``[(step, edges, counts)]``."""

    def __init__(self):
        self.series = {}
        self.hist = {}
        self.written = set()  # keys (and ("h", name)) this attempt wrote

    def start_attempt(self, resume_step):
        self.written = set()
        if resume_step is not None:
            for table in (self.series, self.hist):
                for k in table:
                    table[k] = [r for r in table[k] if r[0] <= resume_step]

    def _put(self, table, tag, key, step, item):
        rows = table.setdefault(key, [])
        if (tag, key) not in self.written:  # rewound to before the first step this attempt writes
            self.written.add((tag, key))
            rows[:] = [r for r in rows if r[0] < step]
        assert not rows or rows[-1][0] < step, (key, step, rows[-1][0])
        rows.append((step,) + item)

    def put(self, key, step, row):
        self._put(self.series, "s", key, float(step), (row,))

    def put_hist(self, key, step, edges, counts):
        self._put(self.hist, "h", key, float(step), (edges, counts))

    def snapshot(self):
        return {"series": {k: list(v) for k, v in self.series.items()},
                "hist": {k: list(v) for k, v in self.hist.items()}}


def gen_value(rng):
    r = rng.random()
    if r < 0.03:
        return float("nan")
    if r < 0.05:
        return float("inf")
    if r < 0.06:
        return float("-inf")
    if r < 0.15:
        return rng.randint(-1000, 1000)
    if r < 0.20:
        return np.float32(rng.gauss(0, 10))
    if r < 0.23:
        return np.float64(rng.gauss(0, 1))
    if r < 0.24:
        return rng.random() < 0.5  # a bool is a number (1.0 / 0.0)
    if r < 0.25:
        return np.array(rng.uniform(-5, 5))  # a 0-d array
    return rng.gauss(0, 100) * 10.0 ** rng.randint(-3, 3)


def num(v):
    return float(v)


# ---- checking ---------------------------------------------------------------------------------
def _close(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        return _close_arrays(a, b)


def _close_arrays(a, b):
    both_nan = np.isnan(a) & np.isnan(b)
    same = (a == b) | both_nan
    tol = 1e-9 * np.maximum(1.0, np.maximum(np.abs(np.nan_to_num(a)), np.abs(np.nan_to_num(b))))
    near = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= tol)
    return bool((same | near).all())


def check_series(run, key, want, where=""):
    s = run.metrics.read(key)
    steps = [r[0] for r in want]
    ctx = f"{where} key {key!r}"
    assert list(map(float, s["step"])) == steps, f"{ctx}: steps {list(s['step'])} != {steps}"
    for j, c in enumerate(COLS):
        exp_col = [r[1][j] for r in want]
        assert _close(s[c], exp_col), f"{ctx}: column {c}: {list(s[c])} != {exp_col}"
    t = s["time"]
    assert np.isfinite(t).all(), f"{ctx}: time not finite"


def check_hist(run, key, want, where=""):
    h = run.metrics.histogram(key)
    assert list(map(float, h.step)) == [r[0] for r in want], f"{where} hist {key!r} steps"
    for i, (_, edges, counts) in enumerate(want):
        np.testing.assert_allclose(h.edges[i], edges, rtol=1e-12, err_msg=f"{where} hist {key!r} edges")
        np.testing.assert_array_equal(h.counts[i], counts, err_msg=f"{where} hist {key!r} counts")


def check_all(path, snap, where="", frames=False):
    run = distlog.open_run(path)
    want = {k: v for k, v in snap["series"].items() if v}
    assert run.metrics.keys() == sorted(want), f"{where}: keys {run.metrics.keys()} != {sorted(want)}"
    lengths = run.metrics.lengths()
    for k, v in want.items():
        assert lengths[k] == len(v), (where, k, lengths[k], len(v))
        check_series(run, k, v, where)
    hwant = {k: v for k, v in snap["hist"].items() if v}
    assert run.metrics.histogram_keys() == sorted(hwant), (where, run.metrics.histogram_keys(), sorted(hwant))
    for k, v in hwant.items():
        check_hist(run, k, v, where)
    if frames and want:
        many = run.metrics.read_many()
        assert sorted(many) == sorted(want)
        for k, v in want.items():
            df = run.metrics.frame(k)
            assert list(map(float, df["step"])) == [r[0] for r in v], (where, k)
            assert _close(df["value"].to_numpy(), [r[1][0] for r in v]), (where, k)
            assert list(df["count"]) == [int(r[1][5]) for r in v], (where, k)
        big = run.metrics.to_frame()
        assert len(big) == sum(len(v) for v in want.values())
    return run


# ---- the driver -------------------------------------------------------------------------------
class Driver:
    """One run's attempts, driven by ``rng``; every accepted call goes to ``oracle``."""

    def __init__(self, seed, root, rng=None):
        self.rng = rng or random.Random(seed)
        self.seed = seed
        self.root = root
        self.path = os.path.join(root, "default", RUN_ID)
        self.oracle = Oracle()
        rng = self.rng
        self.chunk_rows = rng.choice([4, 4, 16, 64])
        self.commit_interval = rng.choice([0.01, 0.2, 10.0])
        self.exp = None
        self.max_step = -1
        self.checks = 0
        # log call sites (disjoint key sets), collect call sites, histograms
        self.log_sites = []
        for i in range(rng.randint(1, 3)):
            ns = rng.choice(NAMESPACES)
            keys = [f"l{i}_{j}" for j in range(rng.randint(1, 3))]
            self.log_sites.append({"ns": ns, "keys": keys, "late": {f"l{i}_late": rng.randint(0, 60)}})
        self.col_sites = []
        for i in range(rng.randint(0, 3)):
            ns = rng.choice(NAMESPACES)
            keys = [f"c{i}_{j}" for j in range(rng.randint(1, 3))]
            self.col_sites.append({"ns": ns, "keys": keys, "late": {f"c{i}_late": rng.randint(0, 60)},
                                   "collector": rng.random() < 0.3})
        self.hists = {f"h{i}": rng.choice([1, 3, 8]) for i in range(rng.randint(0, 2))}
        # keys both logged and collected: one series (README: "A key rank 0 log()s and the
        # ranks also collect is one series")
        self.mixed = [(rng.choice(NAMESPACES), f"x{i}") for i in range(rng.choice([0, 0, 1, 2]))]
        self.use_with = rng.random() < 0.3

    def view(self, ns):
        return self.exp.metrics if ns is None else self.exp.metrics(ns)

    @staticmethod
    def full(ns, k):
        return k if ns is None else f"{ns}/{k}"

    # -- one attempt --
    def new_logger(self):
        return distlog.get_logger(self.root, chunk_rows=self.chunk_rows,
                                  commit_interval=self.commit_interval, heartbeat_interval=0,
                                  telemetry=self.rng.random() < 0.5)

    def attempt(self, n_steps, first_step, resume_step=None):
        rng = self.rng
        if self.exp is None or rng.random() < 0.5:
            self.exp = self.new_logger()
        kw = {"resume": "allow"}
        if resume_step is not None:
            kw["resume_step"] = resume_step
        self.logged_last = {}  # key -> last step logged in this attempt
        self.window = {}  # key -> values collected since the last flush
        self.window_step = None
        self.flush_step = None
        if self.use_with and rng.random() < 0.5:
            with self.exp.run(RUN_ID, **kw):
                self.oracle.start_attempt(resume_step)
                self.body(n_steps, first_step)
                self.close_oracle()
            self.closed = True
            return
        self.exp.start_run(RUN_ID, **kw)
        self.closed = False
        self.oracle.start_attempt(resume_step)
        self.body(n_steps, first_step)

    def body(self, n_steps, s):
        rng = self.rng
        for _ in range(n_steps):
            self.one_step(s)
            self.max_step = max(self.max_step, s)
            s += rng.choice([1, 1, 1, 2, 5])
        return s

    def do_flush(self, explicit=None):
        m = self.exp.metrics if self.rng.random() < 0.7 else self.view(self.rng.choice(NAMESPACES))
        if explicit is None:
            m.flush()
        else:
            m.flush(step=explicit)
        step = explicit if explicit is not None else self.window_step
        if any(self.window.values()):
            for k, vals in self.window.items():
                if vals:
                    self.oracle.put(k, step, window_row(vals))
            self.flush_step = step
        self.window = {}
        self.window_step = None

    def one_step(self, s):
        rng = self.rng
        # collect sites (possibly several values per key per step)
        for site in self.col_sites:
            if rng.random() < 0.7:
                keys = [k for k in site["keys"] if rng.random() < 0.8]
                keys += [k for k, at in site["late"].items() if s >= at and rng.random() < 0.8]
                for _ in range(rng.choice([1, 1, 2, 3])):
                    d = {k: gen_value(rng) for k in keys}
                    if not d:
                        continue
                    v = self.view(site["ns"])
                    if site["collector"] and rng.random() < 0.5:
                        for k, x in d.items():
                            v.collector(k)(x, s)
                    else:
                        call_in_some_form(v.collect, d, s, rng)
                    for k, x in d.items():
                        self.window.setdefault(self.full(site["ns"], k), []).append(num(x))
                    self.window_step = s
        # keys both logged and collected, never at a step the series has
        for ns, k in self.mixed:
            if rng.random() < 0.5:
                continue
            key = self.full(ns, k)
            rows = self.oracle.series.get(key, [])
            last = rows[-1][0] if rows and ("s", key) in self.oracle.written else -math.inf
            if rng.random() < 0.5:
                if not self.window.get(key) and last < s:
                    self.log(ns, {k: gen_value(rng)}, s)
            elif self.logged_last.get(key, -math.inf) < s:
                x = gen_value(rng)
                self.view(ns).collect({k: x}, step=s)
                self.window.setdefault(key, []).append(num(x))
                self.window_step = s
        # log sites
        for site in self.log_sites:
            if rng.random() < 0.6:
                keys = [k for k in site["keys"] if rng.random() < 0.8]
                keys += [k for k, at in site["late"].items() if s >= at and rng.random() < 0.7]
                d = {k: gen_value(rng) for k in keys}
                if d:
                    self.log(site["ns"], d, s)
        if self.hists and rng.random() < 0.15:
            name = rng.choice(sorted(self.hists))
            arr = np.array([gen_value(rng) for _ in range(rng.randint(0, 12))], dtype=float)
            bins = self.hists[name]
            self.view(None).log_histogram(name, arr, bins=bins, step=s)
            fin = arr[np.isfinite(arr)]
            counts, edges = np.histogram(fin, bins=bins)
            self.oracle.put_hist(name, s, edges, counts.astype(float))
        if rng.random() < 0.05:
            self.misuse(s)
        if rng.random() < 0.25 and self.window_step is not None:
            self.do_flush(s if rng.random() < 0.2 else None)
        if rng.random() < 0.04:
            self.exp.metrics.commit()
            check_all(self.path, self.oracle.snapshot(), f"seed {self.seed} open at step {s}")
            self.checks += 1

    def log(self, ns, d, s):
        call_in_some_form(self.view(ns).log, d, s, self.rng)
        for k, x in d.items():
            key = self.full(ns, k)
            self.oracle.put(key, s, log_row(num(x)))
            self.logged_last[key] = s

    def misuse(self, s):
        """A call that must raise; nothing of it is stored and no earlier row is lost."""
        rng = self.rng
        site = rng.choice(self.log_sites)
        v = self.view(site["ns"])
        kind = rng.randrange(6)
        fresh = f"m{rng.randrange(3)}"  # a key of its own, logged only by misuse
        if kind == 0:  # a repeated step
            pre = "" if site["ns"] is None else site["ns"] + "/"
            done = sorted((k[len(pre):], st) for k, st in self.logged_last.items()
                          if k.startswith(pre) and "/" not in k[len(pre):])
            if not done:
                return
            k, last = rng.choice(done)
            with pytest.raises(ValueError, match="step"):
                v.log({k: 1.0, fresh: 2.0}, step=last)
        elif kind == 1:  # a string value beside a good one
            with pytest.raises((TypeError, ValueError)):
                v.log(step=s + 1000, **{fresh: 1.0, site["keys"][0]: "abc"})
        elif kind == 2:  # a bad key name
            bad = rng.choice([".x", "a*b", "__x", "x.", "a//b", " y"])
            with pytest.raises(ValueError):
                v.log({bad: 1.0, fresh: 1.0}, step=s + 1000)
        elif kind == 3:  # a step that is no number
            with pytest.raises((TypeError, ValueError)):
                v.log({fresh: 1.0}, step=rng.choice([math.nan, math.inf]))
        elif kind == 4 and self.col_sites:  # collect with a string value
            cs = rng.choice(self.col_sites)
            with pytest.raises((TypeError, ValueError)):
                self.view(cs["ns"]).collect({cs["keys"][0]: 1.0, "mc": "x"}, step=s)
        elif kind == 5 and self.col_sites:  # collect with a bad key
            cs = rng.choice(self.col_sites)
            with pytest.raises(ValueError):
                self.view(cs["ns"]).collect({cs["keys"][0]: 1.0, "a*": 2.0}, step=s)

    def close_oracle(self):
        if self.window_step is not None:  # the closing flush
            for k, vals in self.window.items():
                if vals:
                    self.oracle.put(k, self.window_step, window_row(vals))
        self.window, self.window_step = {}, None

    def close(self):
        if self.closed:
            return
        how = self.rng.randrange(3)
        self.close_oracle()
        if how == 0:
            self.exp.close()
        elif how == 1:
            closed = distlog.close_open_runs()
            assert closed == ["default/" + RUN_ID], closed
        else:
            self.exp.close()
            self.exp = None
        self.window, self.window_step = {}, None


def plan_attempts(rng, d):
    """Yield ``(n_steps, first_step, resume_step)`` for each attempt."""
    out = []
    for a in range(rng.choice([1, 2, 2, 3])):
        n = rng.randint(5, 60)
        if a == 0:
            out.append((n, rng.choice([0, 1]), None))
        else:
            out.append((n, None, rng.choice([None, "ckpt", "ckpt"])))
    return out


def run_case(seed, root):
    rng = random.Random(seed)
    d = Driver(seed, root, rng)
    for n, first, resume in plan_attempts(rng, d):
        resume_step = None
        if first is None:
            if resume == "ckpt" and d.max_step >= 0:
                resume_step = rng.randint(0, d.max_step)
                first = resume_step + 1
            else:
                first = rng.randint(0, d.max_step + 2)
        d.attempt(n, first, resume_step)
        d.max_step = max(d.max_step, first)
        d.close()
        check_all(d.path, d.oracle.snapshot(), f"seed {seed} after close", frames=rng.random() < 0.3)
        info = distlog.open_run(d.path).info
        assert info.status == "completed", (seed, info.status)
    return d


SEEDS = list(range(20))


@pytest.mark.parametrize("seed", SEEDS)
def test_campaign29_api(tmp_path, seed):
    run_case(seed, str(tmp_path / "root"))
    distlog.close_open_runs()


# ---- a run that ends without close(): exit (atexit closes it) or SIGKILL after a commit --------
def child_main(seed, root, mode, out):
    """Run in a subprocess: attempts as ``run_case``, then a last attempt that commits, goes on,
    and ends by ``mode``: "exit" (no close: atexit) or "kill" (SIGKILL)."""
    rng = random.Random(seed)
    d = Driver(seed, root, rng)
    plan = plan_attempts(rng, d)[:2]
    for n, first, resume in plan[:-1]:
        d.attempt(n, first if first is not None else rng.randint(0, d.max_step + 2))
        d.max_step = max(d.max_step, d.max_step)
        d.close()
    n, first, _ = plan[-1]
    d.use_with = False  # the last attempt stays open
    first = first if first is not None else rng.randint(0, d.max_step + 2)
    d.attempt(n, first)
    s = d.body(rng.randint(0, 10), d.max_step + 1)
    d.exp.metrics.commit()
    committed = d.oracle.snapshot()
    d.body(rng.randint(0, 20), s)
    if d.window_step is not None:  # what the closing flush at exit stores
        for k, vals in d.window.items():
            if vals:
                d.oracle.put(k, d.window_step, window_row(vals))
        d.window, d.window_step = {}, None
    state = {k: v for k, v in vars(d).items() if k != "exp"}
    with open(out, "wb") as f:
        pickle.dump({"committed": committed, "final": d.oracle.snapshot(), "state": state}, f)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    # "exit": the run stays open; atexit closes it


def _is_prefix(rows, want):
    return len(rows) <= len(want) and all(
        a[0] == b[0] and _close(a[1], b[1]) for a, b in zip(rows, want))


def run_exit_case(seed, root, mode, tmpdir):
    out = os.path.join(tmpdir, f"child-{seed}.pkl")
    code = ("import sys; sys.path[:0] = [%r, %r]; import test_campaign29_api as C; "
            "C.child_main(%d, %r, %r, %r)" % (HERE, os.path.dirname(HERE), seed, root, mode, out))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if mode == "kill":
        assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr[-3000:])
    else:
        assert p.returncode == 0, p.stderr[-3000:]
    with open(out, "rb") as f:
        got = pickle.load(f)
    d = Driver.__new__(Driver)
    d.__dict__.update(got["state"])
    d.exp = None
    path = d.path
    if mode == "exit":
        check_all(path, got["final"], f"seed {seed} after exit", frames=True)
        assert distlog.open_run(path).info.status == "completed"
    else:
        run = distlog.open_run(path)
        final, committed = got["final"]["series"], got["committed"]["series"]
        kept = {}
        for k in set(final) | set(committed):
            fin, com = final.get(k, []), committed.get(k, [])
            n = run.metrics.lengths().get(k, 0)
            rows = []
            if n:
                s = run.metrics.read(k)
                rows = [(float(st), tuple(float(s[c][i]) for c in COLS)) for i, st in enumerate(s["step"])]
            if _is_prefix(com, fin):  # no rewind after the commit: every committed row is there
                assert _is_prefix(rows, fin) and len(rows) >= len(com), (seed, k, rows, com, fin)
            else:
                assert _is_prefix(rows, fin) or _is_prefix(rows, com), (seed, k, rows, com, fin)
            kept[k] = rows
        # histograms: committed ones survive
        hfinal, hcom = got["final"]["hist"], got["committed"]["hist"]
        hl = run.metrics.histogram_lengths()
        for k, com in hcom.items():
            fin = hfinal.get(k, [])
            if len(com) and [r[0] for r in com] == [r[0] for r in fin[:len(com)]]:
                assert hl.get(k, 0) >= len(com), (seed, k, hl, len(com))
        # the next attempt starts at once (the killed process is gone) and continues the run
        d.oracle.series = kept
        h = {}
        for k, n in hl.items():
            hh = run.metrics.histogram(k)
            h[k] = [(float(hh.step[i]), hh.edges[i], hh.counts[i]) for i in range(n)]
        d.oracle.hist = h
        rng = d.rng
        resume_step = rng.randint(0, d.max_step) if rng.random() < 0.5 and d.max_step >= 0 else None
        first = resume_step + 1 if resume_step is not None else rng.randint(0, d.max_step + 2)
        d.attempt(rng.randint(3, 30), first, resume_step)
        d.close()
        check_all(path, d.oracle.snapshot(), f"seed {seed} after kill and resume", frames=True)
        info = distlog.open_run(path).info
        assert info.status == "completed"
        assert info.attempts[-2]["status"] == "interrupted", info.attempts[-2]


@pytest.mark.parametrize("seed,mode", [(s, m) for s in (0, 1, 2) for m in ("exit", "kill")])
@pytest.mark.timeout(200)
def test_campaign29_run_not_closed(tmp_path, seed, mode):
    run_exit_case(seed, str(tmp_path / "root"), mode, str(tmp_path))
