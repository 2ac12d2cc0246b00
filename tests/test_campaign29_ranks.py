"""The campaign of test_campaign29_api.py with 2 real gloo ranks: every rank collects (some
keys on one rank only), flushes together, and logs its own values (rank 0: the run's series,
rank 1: its own); two attempts, the second resumed with or without ``resume_step``. The
parent computes the oracle from both ranks' inputs (README "What a flush guarantees")."""

import os
import random

import numpy as np
import pytest

import distlog
from support.ranks import run_ranks

import test_campaign29_api as C

pytestmark = pytest.mark.dist


def worker(rank, world, seed, root):
    srng = random.Random(seed)  # the structure: alike on every rank
    vrng = random.Random(seed * 1000 + rank + 1)  # the values: this rank's own
    chunk_rows = srng.choice([4, 16])
    keys = [f"c{j}" for j in range(srng.randint(1, 4))]
    only = {k: srng.choice([None, None, 0, 1]) for k in keys}  # a key one rank alone collects
    ns = srng.choice([None, "train"])
    calls = []  # ("collect", attempt, step, {key: value}) / ("flush", attempt, explicit) / ("log", ...)
    max_step, plan = -1, []
    for a in range(2):
        n = srng.randint(5, 30)
        if a == 0:
            resume_step, first = None, 0
        elif srng.random() < 0.5:
            resume_step = srng.randint(0, max_step)
            first = resume_step + 1
        else:
            resume_step, first = None, srng.randint(0, max_step + 1)
        plan.append((n, first, resume_step))
        max_step = max(max_step, first + 5 * n)
    for a, (n, first, resume_step) in enumerate(plan):
        exp = distlog.get_logger(root, chunk_rows=chunk_rows, commit_interval=0.05, heartbeat_interval=0)
        exp.start_run("r", resume_step=resume_step)
        calls.append(("start", a, resume_step))
        m = exp.metrics if ns is None else exp.metrics(ns)
        s = first
        for _ in range(n):
            if srng.random() < 0.8:
                for _ in range(srng.choice([1, 2])):
                    d = {k: C.gen_value(vrng) for k in keys
                         if only[k] in (None, rank) and vrng.random() < 0.8}
                    if d:
                        m.collect(d, step=s)
                        calls.append(("collect", a, s, {k: float(v) for k, v in d.items()}))
            if srng.random() < 0.5:
                d = {f"own{rank}": C.gen_value(vrng)}
                m.log(d, step=s)
                calls.append(("log", a, s, {k: float(v) for k, v in d.items()}))
            if srng.random() < 0.3:
                explicit = s if srng.random() < 0.2 else None
                m.flush(step=explicit)
                calls.append(("flush", a, explicit))
            if srng.random() < 0.1:
                m.commit(barrier=True)
            s += srng.choice([1, 1, 2, 5])
        exp.close()
        calls.append(("close", a, None))
    return calls


def oracle_of(per_rank):
    """(run's oracle, rank 1's oracle) from every rank's calls."""
    run, own1 = C.Oracle(), C.Oracle()
    pos = [0] * len(per_rank)
    while pos[0] < len(per_rank[0]):
        # every rank's calls up to its next collective (flush, close, start), in turn
        window = [{} for _ in per_rank]
        steps = [None] * len(per_rank)
        ends = []
        for r, calls in enumerate(per_rank):
            while True:
                c = calls[pos[r]]
                pos[r] += 1
                if c[0] == "collect":
                    for k, v in c[3].items():
                        window[r].setdefault(k, []).append(v)
                    steps[r] = c[2]
                elif c[0] == "log":
                    for k, v in c[3].items():
                        (run if r == 0 else own1).put(
                            _full(k), c[2], C.log_row(v))
                else:
                    ends.append(c)
                    break
        kind = ends[0][0]
        assert all(e[0] == kind for e in ends), ends
        if kind == "start":
            run.start_attempt(ends[0][2])
            own1.start_attempt(ends[0][2])
            continue
        explicit = ends[0][2] if kind == "flush" else None
        have = [s for s in steps if s is not None]
        if not have:
            continue
        step = explicit if explicit is not None else max(have)
        keys = sorted(set().union(*window))
        for k in keys:
            vals = [v for w in window for v in w.get(k, [])]
            run.put(_full(k), step, C.window_row(vals))
    return run, own1


_NS = {}


def _full(k):
    ns = _NS.get("ns")
    return k if ns is None else f"{ns}/{k}"


def run_rank_case(seed, tmp_path):
    root = str(tmp_path / "root")
    per_rank = run_ranks(worker, 2, tmp_path, seed, root, timeout=120)
    srng = random.Random(seed)
    srng.choice([4, 16])
    keys = [f"c{j}" for j in range(srng.randint(1, 4))]
    for k in keys:
        srng.choice([None, None, 0, 1])
    _NS["ns"] = srng.choice([None, "train"])
    run_o, own1 = oracle_of(per_rank)
    path = os.path.join(root, "default", "r")
    C.check_all(path, run_o.snapshot(), f"ranks seed {seed}")
    r = distlog.open_run(path)
    want1 = {k: v for k, v in own1.series.items() if v}
    if want1:
        assert r.metrics.keys(rank=1) == sorted(want1), (r.metrics.keys(rank=1), sorted(want1))
        for k, v in want1.items():
            s = r.metrics.read(k, rank=1)
            assert list(map(float, s["step"])) == [x[0] for x in v], (seed, k)
            assert C._close(s["value"], [x[1][0] for x in v]), (seed, k)
    assert r.info.status == "completed"


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.timeout(300)
def test_campaign29_two_ranks(tmp_path, seed):
    run_rank_case(seed, tmp_path)
