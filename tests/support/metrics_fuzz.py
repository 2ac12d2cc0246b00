"""A seeded fuzz of ``exp.metrics`` across real gloo ranks, checked against a NumPy oracle.

``plan(seed)`` decides the structure of a run (alike on every rank): its attempts (world size,
first step, ``resume_step``), and per step which collective calls every rank makes (flush and
its form, ``commit(barrier=True)``), thread phases and bad input. Each rank draws its own
values, key presence, call forms (dict, keywords, the step first, a namespace view,
``collector()``) and value types (int, float, bool, NumPy scalars and 0-d arrays, 0-d torch
tensors, NaN/inf) from its own generator, and records every input as the float it is (never
through distlog) with every error a call raised. ``Oracle`` replays the records of every rank
(README "What a flush guarantees": mean = Σsum/Σcount over finite values, argmin/argmax = the
lowest rank holding the extreme, a step per flush, strictly increasing series, symmetric
errors, resumed attempts rewinding) and ``check`` compares every stored row and column with it.

``run_seeds(seeds, tmp)`` runs many seeds, each attempt of a world size in one process group.
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
from collections import defaultdict

import numpy as np

RUN = "r"
COLS = ("value", "mean", "min", "max", "sum", "count", "nonfinite", "argmin_rank", "argmax_rank")
KEY_POOL = ("a", "b", "c", "d/e", "d/f", "g/h/i")
AGGS = ("mean", "min", "max", "sum")
BAD = "BAD"  # a value recorded as refused (not a number)


# ---- the plan (alike on every rank) -----------------------------------------------------------
def plan(seed: int) -> dict:
    rng = random.Random(seed)
    worlds = [2] + [rng.choice([2, 2, 1]) for _ in range(rng.choice([0, 1, 1, 2]))]
    keys = rng.sample(KEY_POOL, rng.randint(1, 4))
    attempts, max_step = [], -1
    for a, world in enumerate(worlds):
        n = rng.randint(5, 40)
        if a == 0:
            resume_step, first = None, rng.choice([0, 0, 3])
        elif rng.random() < 0.5:
            resume_step = rng.randint(0, max(0, max_step))
            first = resume_step + 1
        else:
            resume_step, first = None, rng.randint(0, max_step + 1)
        # per key and rank: collected from step `start` to `stop` (late keys, keys a rank stops)
        life = {}
        for k in keys:
            for r in range(world):
                start = first + rng.randint(0, n) if rng.random() < 0.2 else first
                stop = first + rng.randint(0, n) if rng.random() < 0.2 else math.inf
                life[(k, r)] = (start, stop)
        steps, s = [], first
        threads = rng.random() < 0.25
        for i in range(n):
            st = {"s": s}
            if rng.random() < 0.35 or (threads and rng.random() < 0.3):
                f = {"explicit": rng.random() < 0.3 or threads}
                r = rng.random()
                f["agg"] = (None if r < 0.6 else rng.choice(AGGS) if r < 0.97 else "median")
                # a flush step that does not go past the last one (every present key refused)
                f["back"] = (not threads) and f["explicit"] and rng.random() < 0.1
                st["flush"] = f
                if rng.random() < 0.15:  # bad input on one rank, decided at this flush
                    st["bad"] = (rng.randrange(world), rng.choice(["value", "step", "clash", "name", "logclash"]))
            if rng.random() < 0.1:
                st["commit"] = True
            if threads and rng.random() < 0.3:
                st["thread"] = rng.choice(["join", "across"])  # joined before the flush, or not
            if rng.random() < 0.12:
                st["auto_log"] = True
            steps.append(st)
            s += rng.choice([1, 1, 1, 2, 7])
        attempts.append({"world": world, "first": first, "resume_step": resume_step, "steps": steps,
                         "life": life, "threads": threads})
        max_step = max(max_step, s)
    return {"seed": seed, "keys": keys, "attempts": attempts, "chunk_rows": rng.choice([4, 16, 8192]),
            "transport": rng.choice(["gather", "gather", "reduce"])}


# ---- values ------------------------------------------------------------------------------------
def gen_value(rng: random.Random):
    """(value as passed, value as a float)."""
    r = rng.random()
    if r < 0.04:
        return float("nan"), float("nan")
    if r < 0.06:
        v = rng.choice([float("inf"), float("-inf")])
        return v, v
    if r < 0.16:
        v = rng.randint(-50, 50)
        return v, float(v)
    if r < 0.19:
        v = np.float32(rng.randint(-8, 8) / 4)
        return v, float(v)
    if r < 0.22:
        v = np.int64(rng.randint(-5, 5))
        return v, float(v)
    if r < 0.24:
        v = rng.random() < 0.5
        return v, float(v)
    if r < 0.26:
        v = np.array(rng.uniform(-5, 5))
        return v, float(v)
    if r < 0.30:
        import torch

        v = torch.tensor(rng.randint(-20, 20) / 8, dtype=rng.choice([torch.float32, torch.float64]))
        return v, float(v.item())
    if r < 0.32:
        return -0.0, -0.0
    if r < 0.33:
        v = 2**62 + rng.randint(0, 9)  # an int float64 cannot hold exactly
        return v, float(v)
    if r < 0.55:
        v = float(rng.randint(-9, 9))  # ties between ranks (argmin/argmax: the lowest rank)
        return v, v
    v = rng.gauss(0, 10) * 10.0 ** rng.randint(-2, 2)
    return v, v


def _split(key: str):
    if "/" in key:
        ns, name = key.rsplit("/", 1)
        return ns, name
    return None, key


# ---- one rank ----------------------------------------------------------------------------------
def rank_attempt(rank: int, world: int, p: dict, a: int, root: str) -> list:
    """Run attempt ``a`` of plan ``p`` on this rank; return its records."""
    import distlog

    att = p["attempts"][a]
    vrng = random.Random(p["seed"] * 7919 + a * 101 + rank)
    rec: list = []
    exp = distlog.get_logger(root, chunk_rows=p["chunk_rows"], commit_interval=0.05, heartbeat_interval=0)
    exp.start_run(RUN, resume_step=att["resume_step"])
    rec.append(("start", att["resume_step"]))
    m = exp.metrics
    collectors: dict = {}
    thread = None
    thread_stop = threading.Event()
    thr_vals: list = []

    def thread_body(n, across):
        tv = exp.metrics("thr")
        trng = random.Random(p["seed"] * 31 + a * 7 + rank * 3 + len(thr_vals))
        i = 0
        while (i < n) if not across else not thread_stop.is_set() and i < 400:
            v = trng.randint(-100, 100)
            tv.collect({"x": v})
            thr_vals.append(float(v))
            i += 1

    def err(kind, e):
        import traceback

        rec.append(("error", kind, type(e).__name__, str(e), traceback.format_exc()))

    keys = p["keys"]
    for i, st in enumerate(att["steps"]):
        s = st["s"]
        last = i == len(att["steps"]) - 1
        # ---- collect: this rank's own choice of keys, forms and types
        bad = st.get("bad")
        for _ in range(vrng.choice([0, 1, 1, 2, 3])):
            d = {}
            for k in keys:
                lo, hi = att["life"][(k, rank)]
                if lo <= s <= hi and vrng.random() < 0.8:
                    d[k] = gen_value(vrng)
            if not d:
                continue
            form = vrng.randrange(6)
            with_step = vrng.random() < 0.9
            step = s if with_step else None
            if form == 5:  # collector(), one key at a time
                for k, (v, f) in d.items():
                    ns, name = _split(k)
                    c = collectors.get(k)
                    if c is None:
                        c = collectors[k] = (m(ns) if ns else m).collector(name)
                    c(v, step) if with_step else c(v)
                    rec.append(("collect", step, {k: f}))
                continue
            by_ns = defaultdict(dict)
            for k, vf in d.items():
                ns, name = _split(k)
                if form == 4 or ns is not None:
                    by_ns[ns][name] = vf
                else:
                    by_ns["/"][k] = vf
            for ns, dd in by_ns.items():
                view = m if ns in (None, "/") else m(ns)
                full = {(k if ns in (None, "/") else f"{ns}/{k}"): f for k, (v, f) in dd.items()}
                vals = {k: v for k, (v, f) in dd.items()}
                ok_kw = all(k.isidentifier() and k != "step" for k in vals)
                if form in (0, 4) or not ok_kw:
                    view.collect(vals, step=step) if with_step else view.collect(vals)
                elif form == 1:
                    view.collect(step=step, **vals) if with_step else view.collect(**vals)
                elif form == 2 and with_step:
                    view.collect(step, **vals)
                else:
                    view.collect({**vals, "step": step}) if with_step else view.collect(dict(vals))
                rec.append(("collect", step, full))
        # ---- bad input on one rank (decided at this step's flush, on every rank)
        if bad and bad[0] == rank:
            kind = bad[1]
            k, v, step = {"value": ("a", "nan?", s), "step": ("a", 1.0, float("nan")),
                          "clash": (keys[0] + "/sub", 2.0, s),  # under an agreed (or new) key
                          "name": ("bad*name", 3.0, s),
                          "logclash": ("L0/x", 4.0, s)}[kind]  # under the key rank 0 logs
            e = None
            try:
                m.collect({k: v}, step=step)
            except Exception as x:  # noqa: BLE001 - one process raises at the call
                e = (type(x).__name__, str(x))
            rec.append(("badcollect", step, {k: v}, e))
        # ---- log (local): rank 0's run series, the others' own (errors recorded with the call)
        if vrng.random() < 0.3:
            v, f = gen_value(vrng)
            e = None
            try:
                m.log({f"L{rank}": v}, step=s)
            except Exception as x:  # noqa: BLE001
                e = (type(x).__name__, str(x))
            rec.append(("log", s, {f"L{rank}": f}, e))
        if rank == 0 and vrng.random() < 0.08:
            # rank 0 logs a key the ranks also collect: one series (README): its flushes are
            # checked against the steps logged there, and its log() against the flushed ones
            v, f = gen_value(vrng)
            e = None
            try:
                m.log({keys[0]: v}, step=s)
            except Exception as x:  # noqa: BLE001
                e = (type(x).__name__, str(x))
            rec.append(("log", s, {keys[0]: f}, e))
        if st.get("auto_log") and not att["threads"]:
            e = None
            try:
                m("auto").log(v=float(s) / 2)
            except Exception as x:  # noqa: BLE001
                e = (type(x).__name__, str(x))
            rec.append(("autolog", {"auto/v": float(s) / 2}, e))
        if vrng.random() < 0.15:
            arr = np.array([vrng.gauss(0, 1) for _ in range(vrng.randint(0, 20))])
            if len(arr) and vrng.random() < 0.3:
                arr[0] = np.nan
            e = None
            try:
                m("h").log_histogram(f"w{rank}", arr, bins=5, step=s)
            except Exception as x:  # noqa: BLE001
                e = (type(x).__name__, str(x))
            rec.append(("hist", s, f"h/w{rank}", arr.tolist(), e))
        # ---- threads collecting beside the training thread
        t = st.get("thread")
        if t and thread is None:
            across = t == "across"
            thread_stop.clear()
            thread = threading.Thread(target=thread_body, args=(vrng.randint(1, 50), across))
            thread.across = across
            thread.start()
        if thread is not None and (not thread.across or last or vrng.random() < 0.3):
            thread_stop.set()
            thread.join()
            thread = None
        # ---- collectives, alike on every rank
        f = st.get("flush")
        if f:
            step = (s - 3 if f["back"] else s) if f["explicit"] else None
            try:
                if f["agg"] is None:
                    red = m.flush(step=step) if step is not None else m.flush()
                else:
                    red = m.flush(f["agg"], step=step)
                # flush()'s result on every rank (read now or not at all: computed on first use)
                got = None if vrng.random() < 0.3 else {
                    k: tuple(float(getattr(red, c)[i]) for c in COLS[1:]) for i, k in enumerate(red.keys)}
                rec.append(("flush", step, f["agg"], got))
            except Exception as e:  # noqa: BLE001
                rec.append(("flush", step, f["agg"], None))
                err("flush", e)
        if st.get("commit"):
            try:
                m.commit(barrier=True)
            except Exception as e:  # noqa: BLE001
                err("commit", e)
    if thread is not None:
        thread_stop.set()
        thread.join()
    try:
        exp.close()
        rec.append(("close",))
    except Exception as e:  # noqa: BLE001
        rec.append(("close",))
        err("close", e)
    rec.append(("thr", thr_vals))
    return rec


def _group_worker(rank, world, jobs):
    out = []
    if os.environ.get("FUZZ_SWITCH"):
        sys.setswitchinterval(float(os.environ["FUZZ_SWITCH"]))
    for p, a, root in jobs:
        if os.environ.get("FUZZ_VERBOSE"):
            print(f"[fuzz] rank {rank} seed {p['seed']} attempt {a}", file=sys.stderr, flush=True)
        try:
            out.append(rank_attempt(rank, world, p, a, root))
        except Exception as e:  # noqa: BLE001 - an unexpected error: reported by the checker
            import traceback

            out.append([("crash", type(e).__name__, traceback.format_exc())])
    return out


def run_seeds(seeds, tmp, timeout=600):
    """Run every seed's attempts (one process group per attempt number, world size and
    transport); return {seed: (plan, root, [per attempt: [per rank records]])}."""
    from support.ranks import run_ranks

    plans = {s: plan(s) for s in seeds}
    roots = {s: os.path.join(str(tmp), f"seed{s}") for s in seeds}
    recs = {s: [] for s in seeds}
    n_att = max(len(p["attempts"]) for p in plans.values())
    for a in range(n_att):
        groups = defaultdict(list)
        for s, p in plans.items():
            if a < len(p["attempts"]):
                groups[(p["attempts"][a]["world"], p["transport"])].append(s)
        for (world, transport), ss in sorted(groups.items()):
            env = {"DISTLOG_GATHER_MAX_BYTES": "0"} if transport == "reduce" else {}
            env["FUZZ_SWITCH"] = "1e-6"  # threads switch often (README "Threads")
            if os.environ.get("FUZZ_VERBOSE"):
                env["FUZZ_VERBOSE"] = "1"
            res = run_ranks(_group_worker, world, tmp, [(plans[s], a, roots[s]) for s in ss],
                            timeout=timeout, env=env)
            for j, s in enumerate(ss):
                recs[s].append([res[r][j] for r in range(world)])
    return {s: (plans[s], roots[s], recs[s]) for s in seeds}


# ---- the oracle ---------------------------------------------------------------------------------
def _namespaces(key):
    parts = key.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _clashes(key, known):
    """``key`` is a namespace of a known key, or one of its namespaces is a known key."""
    return any(x.startswith(key + "/") for x in known) or bool(set(_namespaces(key)) & known)


def _valid_name(key):
    return not any(c in key for c in "*?[]")


class Oracle:
    """Replays every rank's records: the stored series (``series[rank][key]``: rows of
    ``(step, *COLS)``; rank None is the run's), histograms, and the errors each collective
    must raise on every rank."""

    def __init__(self, p):
        self.p = p
        self.series = defaultdict(dict)  # owner (None: the run) -> key -> [(step, row)]
        self.hist = defaultdict(dict)
        self.errors = []  # (attempt, index of the collective, type)
        self.thr = []  # (steps of the thr/x rows, their sum, count, min, max)
        self.thr_vals = []
        self.result_problems = []  # flush() results that differ from the oracle
        self.stored = defaultdict(set)  # owner -> keys ever stored (commit records name them)

    # storage with rewinds
    def _start_attempt(self, owners, resume_step):
        self.written = set()
        if resume_step is not None:
            for table in (self.series, self.hist):
                for owner in owners:
                    for k in table[owner]:
                        table[owner][k] = [r for r in table[owner][k] if r[0] <= resume_step]

    def _put(self, table, owner, key, step, row):
        rows = table[owner].setdefault(key, [])
        tag = (id(table), owner, key)
        if tag not in self.written:
            self.written.add(tag)
            rows[:] = [r for r in rows if r[0] < step]
        assert not rows or rows[-1][0] < step, ("oracle: a repeated step", owner, key, step)
        rows.append((float(step), row))

    def replay(self, recs):
        p = self.p
        for a, (att, per_rank) in enumerate(zip(p["attempts"], recs)):
            world = att["world"]
            for r, rr in enumerate(per_rank):
                if rr and rr[0][0] == "crash":
                    raise AssertionError(f"seed {p['seed']} attempt {a} rank {r} crashed:\n{rr[0][2]}")
            owners = [None] + list(range(1, world))
            self._start_attempt(owners, att["resume_step"])
            self._attempt(a, att, per_rank)

    def _attempt(self, a, att, per_rank):
        world = att["world"]
        union: list[str] = []
        flushed = {}  # key -> last flushed step (this attempt)
        logged0 = set()  # keys rank 0 logged (this attempt's core)
        # per rank: keys it registered, logged or saw agreed; a resumed attempt starts with
        # the keys earlier attempts stored (the run's, and a rank's own)
        known = [set(self.stored[None]) | (self.stored[r] if r else set()) for r in range(world)]
        rs = att["resume_step"]
        flush_step = None if rs is None else float(rs)
        max_step = [None if rs is None else float(rs)] * world
        auto = [0] * world
        hist_last = [dict() for _ in range(world)]
        log_last = [dict() for _ in range(world)]
        pos = [1] * world  # after ("start", ...)
        ncoll = 0
        carry = False
        while True:
            if not carry:
                windows = [[] for _ in range(world)]  # (key, value) in order
                steps = [None] * world
            carry = False
            errs = []
            local_errs = [[] for _ in range(world)]
            ends = []
            for r in range(world):
                recs = per_rank[r]
                while True:
                    c = recs[pos[r]]
                    pos[r] += 1
                    kind = c[0]
                    if kind == "badcollect":
                        _, step, vals, e = c
                        (k, v), = vals.items()
                        if world == 1:  # one process: refused at the call (nothing kept, no step)
                            refused = (k not in known[r] and (not _valid_name(k) or _clashes(k, known[r]))) \
                                or isinstance(v, str)
                            want = ("ValueError" if not isinstance(v, str) or k not in known[r] and (
                                not _valid_name(k) or _clashes(k, known[r])) else "TypeError") if refused else None
                            if (e[0] if e else None) != want:
                                local_errs[r].append((kind, k, "raised", e, "expected", want))
                            if refused:
                                continue
                        elif e is not None:
                            local_errs[r].append((kind, k, "raised", e, "expected none"))
                        kind, c = "collect", ("collect", step, vals)
                    if kind == "collect":
                        _, step, vals = c
                        if step is not None and (steps[r] is None or not step <= steps[r]):
                            steps[r] = step  # the window's largest (a NaN taken too: named)
                        for k, v in vals.items():
                            # a key new to this rank is checked when it comes (its name, a
                            # clash with a key it knows): refused, it is this flush's error
                            if k not in known[r]:
                                if not _valid_name(k) or _clashes(k, known[r]):
                                    errs.append(("ValueError", r, k))
                                    continue
                                known[r].add(k)
                            if isinstance(v, str):
                                errs.append(("TypeError", r, k))
                                continue
                            windows[r].append((k, v))
                    elif kind in ("log", "autolog"):
                        if kind == "log":
                            _, step, vals, e = c
                        else:
                            _, vals, e = c
                            step = max(auto[r], 0 if max_step[r] is None else int(max_step[r]) + 1)
                        k, v = next(iter(vals.items()))
                        want = None
                        if k not in known[r] and _clashes(k, known[r]):
                            want = "ValueError"
                        elif step <= max(log_last[r].get(k, -math.inf),
                                         flushed.get(k, -math.inf) if r == 0 else -math.inf):
                            want = "ValueError"
                        got = e[0] if e else None
                        if got != want:
                            local_errs[r].append((kind, k, step, "raised", e, "expected", want))
                        if e is None:
                            if kind == "autolog":
                                auto[r] = step + 1
                            owner = None if r == 0 else r
                            self._put(self.series, owner, k, step, _log_row(v))
                            log_last[r][k] = step
                            if r == 0:
                                logged0.add(k)
                            known[r].add(k)
                            self.stored[owner].add(k)
                            max_step[r] = step if max_step[r] is None else max(max_step[r], step)
                    elif kind == "hist":
                        _, step, key, arr, e = c
                        if e is not None:
                            local_errs[r].append((kind, key, step, e))
                            continue
                        arr = np.asarray(arr, dtype=float)
                        counts, edges = np.histogram(arr[np.isfinite(arr)], bins=5)
                        self._put(self.hist, None if r == 0 else r, key, step, (edges, counts))
                        max_step[r] = step if max_step[r] is None else max(max_step[r], step)
                    elif kind == "error":  # (a flush's or close's error is read with it)
                        local_errs[r].append(c)
                    elif kind in ("flush", "close"):
                        ends.append((c, []))
                        # the error record (if any) follows directly
                        if pos[r] < len(recs) and recs[pos[r]][0] == "error" and recs[pos[r]][1] in ("flush", "close"):
                            ends[-1][1].append(recs[pos[r]])
                            pos[r] += 1
                        break
                    elif kind == "thr":
                        self.thr_vals.extend(c[1])
                    else:
                        raise AssertionError(c)
            assert all(e[0][0] == ends[0][0][0] for e in ends), ends
            # local errors are unexpected here (every call of the plan is valid locally)
            for r in range(world):
                assert not local_errs[r], (self.p["seed"], a, r, local_errs[r])
            closing = ends[0][0][0] == "close"
            explicit = None if closing else ends[0][0][1]
            agg = None if closing else ends[0][0][2]
            if agg == "median":
                errs.append(("ValueError", None, "agg"))
                agg = "mean"
                if world == 1:  # one process raises at once: the window stays for the next flush
                    self.errors.append((a, ncoll, closing, "ValueError", [e[1] for e in ends], errs))
                    ncoll += 1
                    carry = True
                    continue
            agg = agg or "mean"
            # steps: a rank's last collected step in the window (one that is no finite number:
            # an error, and none)
            for r in range(world):
                # (also when flush(step=) takes its own step: a bad collected one is bad input)
                if steps[r] is not None and not math.isfinite(steps[r]):
                    errs.append(("ValueError", r, "step"))
                    steps[r] = None
            # the union: agreed keys, then new keys with a value, sorted, without clashes
            present = sorted({k for w in windows for k, _ in w})
            new = [k for k in present if k not in union]
            seen = set(union) | logged0
            prefixes = {x for k in seen for x in _namespaces(k)}
            accepted = list(union)
            for k in new:
                own = _namespaces(k)
                if k in prefixes or any(x in seen for x in own):
                    errs.append(("ValueError", None, k))
                    continue
                accepted.append(k)
                seen.add(k)
                prefixes.update(own)
            union = sorted(accepted)
            for r in range(world):
                known[r].update(union)
            if explicit is not None:
                out = float(explicit)
            else:
                have = [x for x in steps if x is not None]
                out = float(max(have)) if have else (0.0 if flush_step is None else flush_step + 1)
            rows = {}
            for k in union:
                vals = [(r, v) for r in range(world) for kk, v in windows[r] if kk == k]
                if vals:
                    rows[k] = _window_row(vals, agg)
            if rows:
                flush_step = out if flush_step is None else max(flush_step, out)
                for r in range(world):
                    max_step[r] = out if max_step[r] is None else max(max_step[r], out)
            for r, (end, _) in enumerate(ends):  # flush()'s result on each rank
                red = end[3] if end[0] == "flush" else None
                if red is None:
                    continue
                for k in union:
                    want = rows[k][1:] if k in rows else None
                    have = red.get(k)
                    if have is None or (want is None and have[4] + have[5] > 0) or (
                            want is not None and not _close(have, want)):
                        self.result_problems.append((a, ncoll, r, k, have, want))
            for k, row in rows.items():
                if max(flushed.get(k, -math.inf), log_last[0].get(k, -math.inf)) >= out:
                    errs.append(("ValueError", None, f"repeat {k}"))
                    continue
                flushed[k] = out
                self._put(self.series, None, k, out, row)
                self.stored[None].add(k)
            got = [e[1] for e in ends]
            want = None
            if errs:
                want = "TypeError" if any(t == "TypeError" for t, _, _ in errs) else "ValueError"
            self.errors.append((a, ncoll, closing, want, got, errs))
            ncoll += 1
            if closing:
                break
        # what the thread collected: one key, checked in total (which window it went to is
        # the thread's timing)
        self.thr_rank_vals = None

    def thr_rows(self):
        return self.series[None].get("thr/x", [])


def _log_row(v):
    if math.isfinite(v):
        return (v, v, v, v, v, 1.0, 0.0, math.nan, math.nan)
    return (v, math.nan, math.nan, math.nan, 0.0, 0.0, 1.0, math.nan, math.nan)


def _window_row(vals, agg):
    """One reduced row from ``[(rank, value)]``."""
    fin = [(r, v) for r, v in vals if math.isfinite(v)]
    bad = float(len(vals) - len(fin))
    if not fin:
        return (math.nan, math.nan, math.nan, math.nan, 0.0, 0.0, bad, math.nan, math.nan)
    xs = [v for _, v in fin]
    s = math.fsum(xs)
    mean, lo, hi = s / len(xs), min(xs), max(xs)
    amin = float(min(r for r, v in fin if v == lo))
    amax = float(min(r for r, v in fin if v == hi))
    head = {"mean": mean, "min": lo, "max": hi, "sum": s}[agg]
    return (head, mean, lo, hi, s, float(len(xs)), bad, amin, amax)


# ---- checking -------------------------------------------------------------------------------------
def _close(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        both_nan = np.isnan(a) & np.isnan(b)
        same = (a == b) | both_nan
        tol = 1e-9 * np.maximum(1.0, np.maximum(np.abs(np.nan_to_num(a)), np.abs(np.nan_to_num(b))))
        near = np.isfinite(a) & np.isfinite(b) & (np.abs(a - b) <= tol)
        return bool((same | near).all())


def check(seed, p, root, recs, problems=None):
    """Compare what the readers return with the oracle; return a list of problems (strings)."""
    import distlog

    out = [] if problems is None else problems
    o = Oracle(p)
    try:
        o.replay(recs)
    except AssertionError as e:
        return out + [f"seed {seed}: {e}"]
    # errors: the same type and message on every rank, the type the oracle expects
    for a, n, closing, want, got, errs in o.errors:
        types = [g[0][2] if g else None for g in got]
        msgs = [g[0][3] if g else None for g in got]
        where = f"seed {seed} attempt {a} collective {n}{' (close)' if closing else ''}"
        if len(set(msgs)) > 1:
            out.append(f"{where}: ranks raised differently: {types} {msgs}")
        if types[0] != want:
            out.append(f"{where}: raised {types[0]} ({(msgs[0] or '')[:300]}), expected {want} {errs}")
        for g in got:
            if g and (g[0][2] not in ("TypeError", "ValueError") or types[0] != want):
                out.append(f"{where}: traceback:\n{g[0][4]}")
    for a, n, r, k, have, want in o.result_problems[:5]:
        out.append(f"seed {seed} attempt {a} collective {n} rank {r}: flush() result of {k!r} {have} != {want}")
    run = distlog.open_run(os.path.join(root, "default", RUN))
    st = run.info.status
    if st != "completed":
        errs_any = any(w for *_, w, _, _ in o.errors if w)
        if not errs_any:
            out.append(f"seed {seed}: status {st}")
    thr = o.series[None].pop("thr/x", None)
    for owner, table in o.series.items():
        want = {k: v for k, v in table.items() if v}
        try:
            keys = set(run.metrics.keys(rank=owner)) - {"thr/x"}
        except Exception as e:  # noqa: BLE001
            if want:
                out.append(f"seed {seed} owner {owner}: {type(e).__name__}: {e}")
            continue
        if keys != set(want):
            out.append(f"seed {seed} owner {owner}: keys {sorted(keys)} != {sorted(want)}")
        for k in sorted(set(want) & keys):
            s = run.metrics.read(k, rank=owner)
            steps = [r[0] for r in want[k]]
            got_steps = [float(x) for x in s["step"]]
            if got_steps != steps:
                out.append(f"seed {seed} owner {owner} key {k}: steps {got_steps} != {steps}")
                continue
            for j, c in enumerate(COLS):
                col = [r[1][j] for r in want[k]]
                if not _close(s[c], col):
                    bad = [i for i in range(len(col)) if not _close([s[c][i]], [col[i]])]
                    out.append(f"seed {seed} owner {owner} key {k} column {c}: rows {bad[:5]} "
                               f"got {[float(s[c][i]) for i in bad[:5]]} want {[col[i] for i in bad[:5]]} "
                               f"(steps {[steps[i] for i in bad[:5]]})")
                    break
    for owner, table in o.hist.items():
        want = {k: v for k, v in table.items() if v}
        try:
            hk = run.metrics.histogram_keys(rank=owner)
        except Exception as e:  # noqa: BLE001
            if want:
                out.append(f"seed {seed} hist owner {owner}: {type(e).__name__}: {e}")
            continue
        if sorted(hk) != sorted(want):
            out.append(f"seed {seed} hist owner {owner}: keys {hk} != {sorted(want)}")
            continue
        for k, rows in want.items():
            h = run.metrics.histogram(k, rank=owner)
            if [float(x) for x in h.step] != [r[0] for r in rows]:
                out.append(f"seed {seed} hist {owner} {k}: steps {list(h.step)} != {[r[0] for r in rows]}")
                continue
            for i, (_, (edges, counts)) in enumerate(rows):
                if not (_close(h.edges[i], edges) and np.array_equal(h.counts[i], counts)):
                    out.append(f"seed {seed} hist {owner} {k} row {i}: differs")
                    break
    # the thread's key: every value in exactly one row (sum, count, extremes), steps increasing
    tv = o.thr_vals
    if tv or thr:
        try:
            s = run.metrics.read("thr/x")
            n, total = float(np.sum(s["count"])), float(np.sum(s["sum"]))
            steps = np.asarray(s["step"], dtype=float)
            if len(p["attempts"]) == 1:
                if n != len(tv) or total != math.fsum(tv):
                    out.append(f"seed {seed}: thread values: count {n} sum {total}, collected {len(tv)} sum {math.fsum(tv)}")
            if len(steps) > 1 and not (np.diff(steps) > 0).all():
                out.append(f"seed {seed}: thr/x steps not increasing {steps}")
        except Exception as e:  # noqa: BLE001
            if len(p["attempts"]) == 1:
                out.append(f"seed {seed}: thr/x: {type(e).__name__}: {e}")
    return out
