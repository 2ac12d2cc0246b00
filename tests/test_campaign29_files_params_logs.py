"""A seeded campaign through the public API, for everything but metrics: files (artifacts),
params and logs. Each seed makes a plan (plain data: 1-3 attempts of one run, each a list of
calls), runs it (some attempts in a child process that exits without ``close()`` or is
SIGKILLed after a commit) and compares what the readers return with an oracle computed in
plain Python from the plan (README "Artifacts", "Running a run id that exists"; docs/FORMAT.md
"Files manifests and table", "params.json", "Text logs", "Logs table").

``run_case(seed, root)`` is importable: /tmp/c29b/many.py runs many more seeds with it."""

import json
import logging
import math
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

import distlog

RUN_ID = "r"


class _Any:
    def __eq__(self, other):
        return isinstance(other, str) and "Traceback" in other

    def __repr__(self):
        return "ANY traceback"


ANY = _Any()
RUN_PATH = ("default", RUN_ID)
HERE = os.path.dirname(os.path.abspath(__file__))
OWN = ("run default/r attempt ", "run ended: ", "params changed in attempt ", "run failed: ")

# ---- plan ------------------------------------------------------------------------------------
NAMESPACES = ("", "ckpt", "deep/ns", "ünï cøde", ".hydra")
NAMES = ("model.bin", "a b.dat", "ünï cødé.bin", "dir/sub/x.dat", "v1.2.3.tar", "config.yaml",
         "notes.txt", "CON", "日本語/ファイル.bin", "x" * 200 + ".bin", "ckpt", "weird[1]*?.bin",
         "deep/ns/model.bin", "trailing.dot.")
BAD_NAMES = ("", " lead.bin", "trail.bin ", "a/../b.bin", "a\\b.bin", "ctl\x01.bin", "/abs.bin",
             "a//b.bin", ".", "..", "x" * 256, "nl\n.bin")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", 15, 25, 35, 45)
PIECES = ("plain", "ünïcødé ✓ 日本語", "new\nline", "cr\rret", "tab\there", "back\\slash",
          "\\n literal", "nul\x00byte", "esc\x1b[31mred\x1b[0m", "vt\x0bff\x0c", "fs\x1cgs\x1d",
          "nel\x85", "ls\u2028ps\u2029", "emoji 🎉", "  lead and trail  ",
          "2026-11-28T07:00:00.123456+00:00 INFO node1 n0 r3 l1 a0 s120 fake line",
          '\t{"fake": "fields"}', "s- a0 r0", "", " ", "%s %d {x}", "lone \ud800 surrogate", "\r\n crlf", "x" * 70000)


def _bytes(rng, pool):
    k = rng.random()
    if k < 0.15 or not pool:
        data = b"" if rng.random() < 0.3 else bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    elif k < 0.4:
        data = rng.choice(pool)  # identical bytes again: one blob
    elif k < 0.45:
        data = ("big", rng.randrange(1 << 30), rng.randrange(1, 4) << 20)  # a few MB, made at run time
    else:
        data = rng.randbytes(rng.randrange(1, 5000))
    pool.append(data)
    return data


def materialize(data):
    if isinstance(data, tuple):
        return np.random.default_rng(data[1]).bytes(data[2])
    return data


def _message(rng):
    k = rng.random()
    if k < 0.05:
        return "L" + "ø" * rng.randrange(5000, 20000)
    n = rng.randrange(1, 4)
    return "".join(rng.choice(PIECES) for _ in range(n))


def _fields(rng):
    out = {}
    for i in range(rng.choice((0, 0, 1, 2, 4))):
        key = rng.choice(("k", "ünï", "with space", "nl\nkey", f"f{i}", "x.y"))
        out[key] = rng.choice((
            1, -7, 2 ** 70, 0.5, -1e300, True, None, "s", "ünï\n\t\u2028", [1, [2, "x"]],
            {"nested": {"deep": [None, 1.5]}}, "\x00\x1b", "\ud800"))
    return out


def _param_value(rng, depth=0):
    k = rng.randrange(15 if depth < 2 else 10)
    return [lambda: rng.randrange(-10, 10), lambda: 2 ** 64 + rng.randrange(5), lambda: rng.random(),
            lambda: None, lambda: float("nan"), lambda: float("-inf"), lambda: "ünï\n" + str(rng.random()),
            lambda: ("np.int64", rng.randrange(100)), lambda: ("np.float32", 0.25),
            lambda: True,
            lambda: [_param_value(rng, depth + 1) for _ in range(rng.randrange(3))],
            lambda: {rng.choice("abc"): _param_value(rng, depth + 1) for _ in range(rng.randrange(3))},
            lambda: ("tuple", rng.randrange(3)),
            lambda: {"lr": rng.random(), "betas": [0.9, 0.999]},
            lambda: ("extra", rng.randrange(6))][k]()


def make_plan(seed):
    rng = random.Random(seed)
    attempts = []
    n = rng.randrange(1, 4)
    pool = []
    for a in range(n):
        ops = []
        for _ in range(rng.randrange(4, 30)):
            k = rng.random()
            if k < 0.35:
                ops.append(("save", rng.choice(NAMESPACES), rng.choice(NAMES), _bytes(rng, pool),
                            rng.choice((None, rng.randrange(100), 2.5)), rng.random() < 0.2))
            elif k < 0.37:
                ops.append(("save_text", rng.choice(NAMESPACES), rng.choice(("t.txt", "r.md", "c.csv", "l.log")),
                            _message(rng)))
            elif k < 0.4:
                ops.append(("save_json", rng.choice(NAMESPACES), f"d{rng.randrange(3)}.json",
                            {"a": [1, 2.5, None], "ü": rng.randrange(5)}))
            elif k < 0.45:
                ops.append(("bad_save", rng.choice(NAMESPACES + ("", "/abs", "a/../b", "bad\x07")),
                            rng.choice(BAD_NAMES)))
            elif k < 0.6:
                ops.append(("param", rng.choice(("set", "update", "extend")), rng.choice(("lr", "optim.lr", "model", "opt.b.c", "seed")),
                            _param_value(rng)))
            elif k < 0.9:
                ops.append(("log", rng.choice(LEVELS), _message(rng), _fields(rng),
                            rng.choice((None, None, rng.randrange(1000), 2.5, 10 ** 15, 1e-05,
                                                       2 ** 53 + rng.randrange(1, 9) if rng.random() < 0.1 else 7)),
                            rng.randrange(4)))
            elif k < 0.915:
                ops.append(("bad_log",))
            elif k < 0.92:
                ops.append(("bad_param", rng.randrange(4)))
            elif k < 0.93:
                ops.append(("exception", _message(rng)))
            elif k < 0.95:
                ops.append(("read",))
            elif k < 0.97:
                ops.append(("set_level", rng.choice(("DEBUG", "DEBUG", "INFO", "WARNING", 25))))
            else:
                # (no lone surrogate here: pytest's own log capture cannot send it between processes)
                ops.append(("stdlib", rng.choice((logging.INFO, logging.WARNING, logging.ERROR)),
                            re.sub("[\ud800-\udfff]", "?", _message(rng))))
        end = rng.choice(("close", "with", "close_open_runs", "close", "with", "exit", "kill", "kill_now", "with_raise"))
        resume_step = rng.choice((None, None, rng.randrange(50)))
        start_params = {"lr": _param_value(rng), "tag": "ü"} if rng.random() < 0.25 else None
        attempts.append({"ops": ops, "end": end, "resume_step": resume_step, "params": start_params})
    return attempts


# ---- values -----------------------------------------------------------------------------------
def pvalue(v):
    """A plan's param value as the Python value set."""
    if isinstance(v, tuple):
        if v[0] == "np.int64":
            return np.int64(v[1])
        if v[0] == "np.float32":
            return np.float32(v[1])
        if v[0] == "tuple":
            return tuple(range(v[1]))
        if v[0] == "extra":
            import datetime
            import pathlib
            return [b"\x00\xffbytes", {1, "a", (2, 3)}, datetime.datetime(2026, 1, 2, 3, 4, 5, 6),
                    pathlib.Path("/x/ü y"), np.array([[1.0, np.nan], [np.inf, -0.0]]), np.bool_(True)][v[1]]
    if isinstance(v, list):
        return [pvalue(x) for x in v]
    if isinstance(v, dict):
        return {k: pvalue(x) for k, x in v.items()}
    return v


def same(a, b, where="params"):
    """Deep equality with NaN == NaN and types kept (np.float64 reads back as float)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(sorted(a)) == list(sorted(b)), (where, a, b)
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
        return
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, (where, a, b)
        assert np.array_equal(a, b, equal_nan=True), (where, a, b)
        return
    if isinstance(a, (set, frozenset)):
        assert type(a) is type(b) and a == b, (where, a, b)
        return
    if isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
        return
    ta = float if type(a) is np.float64 else type(a)
    assert ta is type(b), (where, a, b, type(a), type(b))
    if isinstance(a, (float, np.floating)) and math.isnan(a):
        assert math.isnan(b), (where, a, b)
    else:
        assert a == b, (where, a, b)


def flat_clash(d):
    """Whether two params flatten to one dotted key (README: refused with a ValueError)."""
    seen = set()

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict) and v:
                if walk(v, f"{prefix}{k}."):
                    return True
            else:
                if f"{prefix}{k}" in seen:
                    return True
                seen.add(f"{prefix}{k}")
        return False
    return walk(d, "")


def deep_merge(base, extra):
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def set_dotted(d, dotted, value):
    import copy
    out = copy.deepcopy(d)
    parts = dotted.split(".")
    node = out
    while True:
        key, parts = parts[0], parts[1:]
        for n in range(len(parts) + 1, 1, -1):  # a key stored with its dots
            cand = ".".join([key] + parts[:n - 1])
            if cand in node and (n - 1 == len(parts) or isinstance(node[cand], dict)):
                key, parts = cand, parts[n - 1:]
                break
        if not parts:
            node[key] = value
            return out
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]


def json_round(v):
    return json.loads(json.dumps(v))


def level_no(level):
    return level if isinstance(level, int) else getattr(logging, level)


def level_text(level):
    return f"LEVEL{level}" if isinstance(level, int) else level


# ---- executing one attempt (here or in a child process) ---------------------------------------
def run_attempt(root, plan_attempt, tmp, child=False):
    """Run one attempt's calls; returns what each call did (its records) for the oracle."""
    end = plan_attempt["end"]
    exp = distlog.get_logger(root)
    done = []
    kw = {} if plan_attempt["resume_step"] is None else {"resume_step": plan_attempt["resume_step"]}
    if plan_attempt.get("params") is not None:
        kw["params"] = pvalue(plan_attempt["params"])

    def body():
        bridge = None
        for i, op in enumerate(plan_attempt["ops"]):
            kind = op[0]
            if kind == "save":
                _, ns, name, data, step, as_file = op
                files = exp.files(ns) if ns else exp.files
                raw = materialize(data)
                if as_file:
                    p = os.path.join(tmp, f"f{i}.bin")
                    with open(p, "wb") as f:
                        f.write(raw)
                    rec = files.log_file(name, p, step=step)
                else:
                    rec = files.save(raw, name, step=step)
                done.append(("save", rec.path, rec.version, rec.sha256))
            elif kind in ("save_json", "save_text"):
                _, ns, name, obj = op
                files = exp.files(ns) if ns else exp.files
                if kind == "save_text" and re.search("[\ud800-\udfff]", obj):
                    with pytest.raises(ValueError, match="not valid UTF-8"):  # refused, nothing stored
                        files.save(obj, name)
                    continue
                rec = files.save(obj, name)
                done.append(("save", rec.path, rec.version, rec.sha256))
            elif kind == "bad_save":
                _, ns, name = op
                try:
                    files = exp.files(ns) if ns else exp.files
                    files.save(b"never", name)
                except (ValueError, TypeError) as e:
                    assert str(e), "a refused name must say why"
                    done.append(("refused",))
                else:
                    raise AssertionError(f"bad name {ns!r}/{name!r} was accepted")
            elif kind == "param":
                _, how, key, value = op
                v = pvalue(value)
                try:
                    if how == "set":
                        exp.params.set({key: v})
                    elif how == "update":
                        exp.params.update(key, v)
                    else:
                        exp.params.extend({key: v})
                except ValueError as e:
                    assert "flatten" in str(e), e  # the oracle checks it was a real clash
            elif kind == "log":
                _, level, msg, fields, step, form = op
                fkw = dict(fields)
                if step is not None:
                    fkw["step"] = step
                if form == 0 and isinstance(level, str):
                    getattr(exp, level.lower())(msg, **fkw) if level in ("DEBUG", "INFO", "WARNING", "ERROR") \
                        else exp.logs.critical(msg, **fkw)
                elif form == 1:
                    exp.logs.log(level, msg, **fkw)
                else:
                    exp.logs.log(level_text(level) if isinstance(level, str) else level, msg, **fkw)
            elif kind == "bad_param":  # refused: what was stored stays
                how = op[1]
                with pytest.raises((TypeError, ValueError)):
                    if how == 0:
                        exp.params.set({"x": 1j})
                    elif how == 1:
                        exp.params.extend({"y": {1: "non-str key"}})
                    elif how == 2:
                        exp.params.update("a..b", 1)
                    else:
                        exp.params.set([("lr", 1)])
            elif kind == "bad_log":
                try:
                    exp.logs.log("NOPE", "refused")
                except (ValueError, TypeError) as e:
                    assert str(e)
                else:
                    raise AssertionError("level NOPE was accepted")
            elif kind == "set_level":
                exp.logs.set_level(op[1])
            elif kind == "exception":
                try:
                    raise KeyError(op[1][:50])
                except KeyError:
                    exp.logs.exception(op[1], k=1)
            elif kind == "stdlib":
                _, lv, msg = op
                if bridge is None:
                    bridge = exp.logs.capture_logging("c29b", level="INFO")
                    logging.getLogger("c29b").propagate = False  # (to the run's log only)
                logging.getLogger("c29b").log(lv, "%s", msg)
            elif kind == "read" and not child:
                exp.metrics.commit()
                done.append(("read", len(done)))
                check_read_while_open(exp, root)

    if end == "with":
        with exp.run(RUN_ID, resume="allow", **kw):
            body()
    elif end == "with_raise":  # (in a child) the body fails: the run ends failed, nothing lost
        with exp.run(RUN_ID, resume="allow", **kw):
            body()
            raise RuntimeError("campaign: the training failed")
    else:
        exp.start_run(RUN_ID, resume="allow", **kw)
        body()
        if end == "close":
            exp.close()
        elif end == "close_open_runs":
            del exp
            distlog.close_open_runs()
        elif end == "kill":
            exp.metrics.commit()
            os.kill(os.getpid(), signal.SIGKILL)
        elif end == "kill_now":  # no commit: what was written before must still be there
            os.kill(os.getpid(), signal.SIGKILL)
        # "exit": nothing, atexit closes it
    return done


READ_CHECKS = []  # (exp, root) -> None, set by run_case for reads while the run is open


def check_read_while_open(exp, root):
    for fn in READ_CHECKS:
        fn(exp, root)


# ---- the oracle ------------------------------------------------------------------------------
class Oracle:
    def __init__(self):
        self.files = []  # dicts: path, name, namespace, bytes, step, version, attempt
        self.params = {}
        self.logs = []  # (level, message, fields, step, attempt)
        self.changed = {}  # attempt -> whether its params differ from the earlier attempt's

    def latest(self, path):
        mine = [f for f in self.files if f["path"] == path]
        return mine[-1] if mine else None

    def apply(self, ops, attempt, cut=None, resume_step=None, start_params=None, closed=False):
        # a record without a step belongs to the metrics' latest step: resume_step, here
        # (no metrics are written), else none
        earlier = _flat(_enc(self.params)) if attempt > 0 else None
        floor = 10  # each attempt's log starts at DEBUG
        if start_params is not None:  # start_run(params=...): set at the start
            ops = [("param", "set_all", None, start_params)] + list(ops)
            cut = None if cut is None else cut + 1
        for i, op in enumerate(ops if cut is None else ops[:cut]):
            kind = op[0]
            if kind in ("save", "save_json", "save_text"):
                if kind == "save":
                    _, ns, name, data, step, _ = op
                    raw = materialize(data)
                elif kind == "save_text":  # str as UTF-8, as given
                    _, ns, name, text = op
                    step = None
                    if re.search("[\ud800-\udfff]", text):
                        continue
                    raw = text.encode("utf-8", "surrogatepass")
                else:
                    _, ns, name, obj = op
                    step = None
                    raw = json.dumps(obj, indent=1, sort_keys=True).encode()
                path = f"{ns}/{name}" if ns else name
                last = self.latest(path)
                import hashlib
                sha = hashlib.sha256(raw).hexdigest()
                version = 1 if last is None else last["version"] if last["sha256"] == sha else last["version"] + 1
                self.files.append(dict(path=path, name=name, namespace=ns, bytes=raw, sha256=sha, kind=kind,
                                       step=step, version=version, attempt=attempt))
            elif kind == "param":
                _, how, key, value = op
                v = pvalue(value)
                if how == "set_all":
                    new = v
                elif how == "set":
                    new = {key: v}
                elif how == "update":
                    new = set_dotted(self.params, key, v)
                else:
                    new = deep_merge(self.params, {key: v})
                if flat_clash(new):  # refused (ValueError): the params stay as they were
                    continue
                self.params = new
                now = _flat(_enc(self.params))
                # a value changed is said at once; a param dropped only if still gone when the
                # attempt closes (distlog settles at flushes too: this campaign makes none)
                if earlier and any(k in now and now[k] != v for k, v in earlier.items()):
                    self.changed[attempt] = True
            elif kind == "set_level":
                floor = level_no(op[1])
            elif kind == "log":
                _, level, msg, fields, step, form = op
                if level_no(level) < floor:
                    continue
                self.logs.append((level_text(level), str(msg), json_round(fields),
                                  resume_step if step is None else step, attempt))
            elif kind == "exception":
                if floor > 40:
                    continue
                self.logs.append(("ERROR", f"{op[1]}: KeyError: {KeyError(op[1][:50])}", {"k": 1, "traceback": ANY},
                                  resume_step, attempt))
            elif kind == "stdlib":
                _, lv, msg = op
                if lv < floor:
                    continue
                self.logs.append((logging.getLevelName(lv), msg, {"logger": "c29b"}, resume_step, attempt))
        if closed and earlier and any(k not in _flat(_enc(self.params)) for k in earlier):
            self.changed[attempt] = True  # a param dropped, said at the close


def _flat(encoded, prefix=""):
    out = {}
    for k, v in encoded.items():
        if isinstance(v, dict) and v and "$t" not in v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True)
    return out


def _enc(params):
    from distlog.serdes import serialize
    return serialize(params, "params")


def _diff(got, want):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return ("first difference at", i, g, w)
    return ("lengths", len(got), len(want), got[len(want):][:3], want[len(got):][:3])


# ---- comparing -------------------------------------------------------------------------------
def user_records(recs):
    return [r for r in recs if not (r.message.startswith(OWN) and (r.fields == {} or (
        r.message.startswith("run failed: RuntimeError: campaign") and "traceback" in r.fields)))]


def as_tuples(recs):
    return [(r.level, r.message, r.fields, r.step, r.attempt) for r in recs]


def expected_logs(oracle):
    out = []
    for level, msg, fields, step, attempt in oracle.logs:
        # (a lone surrogate is written as its Python escape: logline.utf8_safe)
        msg = re.sub("[\ud800-\udfff]", lambda m: "\\u%04x" % ord(m.group()), msg)
        out.append((level, msg, fields, step, attempt))
    return out


def check_logs(run, oracle, rng, tag):
    every = run.logs.query(source="text")
    got = as_tuples(user_records(every))
    want = expected_logs(oracle)
    if got != want:
        for i, (g, w) in enumerate(zip(got, want)):
            assert g == w, (tag, "record", i, g, w)
        assert len(got) == len(want), (tag, "records", len(got), len(want), got[len(want):], want[len(got):])
    auto = run.logs.query()
    assert as_tuples(auto) == as_tuples(every), (tag, "auto/table source differs from the text")
    # filters, against the text records in plain Python
    for _ in range(3):
        level = rng.choice((None, "INFO", "WARNING", 35, "ERROR"))
        grep = rng.choice((None, "ünï", r"\n", "^plain", "line$", "fake", "L", "ø{3}", "\t"))
        tail = rng.choice((None, None, 1, 3, 50))
        icase = rng.random() < 0.2
        steps = rng.choice((None, None, "10:500", "2.5", ":40", "18:"))
        attempt = rng.choice((None, None, 0, sorted({r.attempt for r in every})[-1] if every else None))
        lo, hi = {None: (None, None), "10:500": (10, 500), "2.5": (2.5, 2.5), ":40": (None, 40), "18:": (18, None)}[steps]
        exp_recs = [r for r in every if (level is None or r.levelno >= level_no(level))
                    and (grep is None or re.search(grep, r.message, re.I if icase else 0))
                    and (steps is None or (r.step is not None and (lo is None or r.step >= lo)
                                           and (hi is None or r.step <= hi)))
                    and (attempt is None or r.attempt == attempt)]
        if tail is not None:
            exp_recs = exp_recs[max(0, len(exp_recs) - tail):]
        for source in ("text", "auto"):
            q = run.logs.query(level=level, grep=grep, tail=tail, source=source, steps=steps,
                               attempt=attempt, ignore_case=icase)
            assert as_tuples(q) == as_tuples(exp_recs), (tag, source, level, grep, tail, steps, attempt, icase,
                                                         _diff(as_tuples(q), as_tuples(exp_recs)))


def check_files(run, oracle, tag, exp_files=None):
    recs = run.files.records()
    got = sorted(((r.path, r.version, r.sha256, r.attempt, r.step, r.name, r.namespace, r.size)
                  for r in recs), key=str)
    want = sorted(((f["path"], f["version"], f["sha256"], f["attempt"], f["step"], f["name"],
                    f["namespace"], len(f["bytes"])) for f in oracle.files), key=str)
    assert got == want, (tag, "file records")
    # per path: the version order, and each version's bytes
    seen = {}
    for f in oracle.files:
        seen[(f["path"], f["version"])] = f["bytes"]
    for (path, version), data in seen.items():
        assert run.files.read_bytes(path, version=version) == data, (tag, path, version)
    for path in {f["path"] for f in oracle.files}:
        last = oracle.latest(path)
        assert run.files.read_bytes(path) == last["bytes"], (tag, path, "latest")
        assert run.files.find(path).version == last["version"]
    assert run.files.paths() == sorted({f["path"] for f in oracle.files})
    for path in {f["path"] for f in oracle.files}:
        last = oracle.latest(path)
        if last["kind"] == "save":
            continue
        if path.endswith(".json"):
            assert run.files.load(path) == json.loads(last["bytes"]), (tag, path)
        elif path.endswith((".txt", ".md", ".log")):
            assert run.files.load(path) == last["bytes"].decode("utf-8"), (tag, path)
    assert len(run.files.table(latest=True)) == len({f["path"] for f in oracle.files})
    paths_of = {}
    for f in oracle.files:
        paths_of.setdefault(f["name"], set()).add(f["path"])
    for name, paths in paths_of.items():
        all_paths = {f["path"] for f in oracle.files}
        if name in all_paths:  # a path of its own: that file
            assert run.files.read_bytes(name) == oracle.latest(name)["bytes"], (tag, name)
        elif len(paths) == 1:  # a name without its namespace works when it is unique
            (path,) = paths
            assert run.files.read_bytes(name) == oracle.latest(path)["bytes"], (tag, name)
        elif name not in {f["path"] for f in oracle.files}:
            with pytest.raises(Exception):
                run.files.find(name)
    table = run.files.table()
    assert len(table) == len(oracle.files), tag
    if exp_files is not None:
        assert [r.path for r in exp_files.list()] == sorted({f["path"] for f in oracle.files}), tag
        for path in {f["path"] for f in oracle.files}:
            ns = next(f["namespace"] for f in oracle.files if f["path"] == path)
            name = next(f["name"] for f in oracle.files if f["path"] == path)
            view = exp_files(ns) if ns else exp_files
            want_v = sorted({f["version"] for f in oracle.files if f["path"] == path})
            assert [r.version for r in view.versions(name)] == want_v, (tag, path)
            assert view.read_bytes(name) == oracle.latest(path)["bytes"], (tag, path)


def check_files_table(run_dir, oracle, tag):
    """files.zarr (merged at close) as docs/FORMAT.md describes it: every save of every attempt."""
    import zarr
    if not os.path.exists(os.path.join(run_dir, "files.commit.json")):
        assert not oracle.files, (tag, "no files.commit.json, yet files were saved")  # (optional part)
        return
    commit = json.load(open(os.path.join(run_dir, "files.commit.json")))
    n = commit["length"]
    assert n == len(oracle.files), (tag, "files.zarr length", n, len(oracle.files))
    if not n:
        return
    g = zarr.open_group(os.path.join(run_dir, "files.zarr"), mode="r")
    rows = sorted(zip([str(x) for x in g["path"][:n]], g["version"][:n].tolist(), [str(x) for x in g["sha256"][:n]],
                      g["attempt"][:n].tolist(), g["size"][:n].tolist()), key=str)
    want = sorted(((f["path"], f["version"], f["sha256"], f["attempt"], len(f["bytes"])) for f in oracle.files), key=str)
    assert rows == want, (tag, "files.zarr rows")
    steps = g["step"][:n]
    want_steps = sorted(float("nan") if f["step"] is None else float(f["step"]) for f in oracle.files)
    got_steps = sorted(steps.tolist())
    assert np.array_equal(np.array(got_steps), np.array(want_steps), equal_nan=True), (tag, "files.zarr steps")


def check_params(run, oracle, tag):
    same(oracle.params, run.params, tag)


# ---- one case --------------------------------------------------------------------------------
def run_case(seed, root, cli=False):
    plan = make_plan(seed)
    rng = random.Random(seed * 7919 + 1)
    oracle = Oracle()
    run_dir = os.path.join(root, *RUN_PATH)
    tmp = os.path.join(root, "_tmp")
    os.makedirs(tmp, exist_ok=True)
    state = {"attempt": 0, "ops": None, "n_read": 0}

    def while_open(exp, root_):
        # the oracle as of this read: everything planned up to this "read" op
        o = Oracle()
        o.files, o.params, o.logs = list(oracle.files), oracle.params, list(oracle.logs)
        ops = state["ops"]
        idx = [i for i, op in enumerate(ops) if op[0] == "read"][state["n_read"]]
        state["n_read"] += 1
        o.apply(ops, state["attempt"], cut=idx, resume_step=state["resume_step"], start_params=state["params"])
        run = distlog.open_run(run_dir)
        tag = f"seed {seed} attempt {state['attempt']} read while open"
        check_files(run, o, tag, exp.files)
        check_params(run, o, tag)
        same(o.params, exp.params.read(), tag + " exp.params.read")
        got = as_tuples(user_records(run.logs.query()))
        assert got == expected_logs(o), (tag, _diff(got, expected_logs(o)))
        mine = as_tuples(user_records(exp.logs.get_logs(limit=None)))
        assert mine == expected_logs(o), (tag + " get_logs", _diff(mine, expected_logs(o)))
        allrecs = exp.logs.get_logs(limit=None)
        for level, limit in (("WARNING", 3), ("INFO", 50), (35, 0), ("DEBUG", 1)):
            want = [r for r in allrecs if r.levelno >= level_no(level)]
            want = want[len(want) - min(limit, len(want)):]
            assert as_tuples(exp.logs.get_logs(level=level, limit=limit)) == as_tuples(want), (tag, level, limit)

    READ_CHECKS[:] = [while_open]
    try:
        for a, att in enumerate(plan):
            state.update(attempt=a, ops=att["ops"], n_read=0, resume_step=att["resume_step"], params=att["params"])
            if att["end"] in ("exit", "kill", "kill_now", "with_raise"):
                spec = os.path.join(tmp, f"plan{a}.pkl")
                with open(spec, "wb") as f:
                    pickle.dump((root, att, tmp), f)
                p = subprocess.run([sys.executable, "-c", CHILD, spec], cwd=HERE, timeout=120,
                                   capture_output=True, text=True,
                                   env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)})
                want_rc = -signal.SIGKILL if att["end"].startswith("kill") else 1 if att["end"] == "with_raise" else 0
                assert p.returncode == want_rc, (seed, a, p.returncode, p.stderr[-3000:])
            else:
                run_attempt(root, att, tmp)
            oracle.apply(att["ops"], a, resume_step=att["resume_step"], start_params=att["params"],
                         closed=not att["end"].startswith("kill"))
            run = distlog.open_run(run_dir)
            tag = f"seed {seed} after attempt {a} ({att['end']})"
            check_files(run, oracle, tag)
            check_params(run, oracle, tag)
            check_logs(run, oracle, rng, tag)
            if oracle.changed.get(a):
                assert any(r.message.startswith("params changed in attempt") and r.attempt == a
                           for r in run.logs.query(level="WARNING")), (tag, "no params-changed warning")
            info = run.info
            if not att["end"].startswith("kill"):
                want = "failed" if att["end"] == "with_raise" else "completed"
                if want == "failed":
                    assert any(r.message == "run failed: RuntimeError: campaign: the training failed"
                               and r.attempt == a for r in run.logs.query(level="ERROR")), tag
                assert info.status == want, (tag, info.status)
                check_files_table(run_dir, oracle, tag)
                # the logs table is current after a close: it answers as the text does
                # (none when a step is an int float64 cannot hold: docs/FORMAT.md "Logs table")
                if all(not isinstance(r[3], int) or float(r[3]) == r[3] for r in oracle.logs):
                    tab = run.logs.query(source="table")
                    assert as_tuples(tab) == as_tuples(run.logs.query(source="text")), (tag, "logs table")
                else:
                    with pytest.raises(FileNotFoundError):
                        run.logs.query(source="table")
        if cli:
            from distlog.logline import parse_line
            run = distlog.open_run(run_dir)
            for args in ([], ["--level", "WARNING"], ["--grep", "ünï", "--tail", "3"], ["--source", "text"]):
                p = subprocess.run([sys.executable, "-m", "distlog", "logs", run_dir, "--raw", *args],
                                   timeout=120, capture_output=True, text=True, cwd=HERE,
                                   env={**os.environ, "PYTHONPATH": os.path.dirname(HERE)})
                kw = {"level": "WARNING"} if "--level" in args else {"grep": "ünï", "tail": 3} if "--grep" in args else {}
                # (like grep: status 1 when nothing matched)
                assert p.returncode == (0 if len(run.logs.query(**kw)) else 1), p.stderr[-2000:]
                lines = [ln for ln in p.stdout.split("\n") if ln]
                got = as_tuples([parse_line(ln) for ln in lines])
                assert got == as_tuples(run.logs.query(**kw)), (f"seed {seed} CLI logs {args}", _diff(got, as_tuples(run.logs.query(**kw))))
                if not args:
                    assert as_tuples(user_records([parse_line(ln) for ln in lines])) == expected_logs(oracle)
    finally:
        READ_CHECKS[:] = []


CHILD = """
import pickle, sys
sys.path.insert(0, '.')
from test_campaign29_files_params_logs import run_attempt
root, att, tmp = pickle.load(open(sys.argv[1], 'rb'))
run_attempt(root, att, tmp, child=True)
"""


@pytest.mark.parametrize("seed", range(15))
def test_campaign(seed, tmp_path, capsys, monkeypatch):
    from distlog import report

    monkeypatch.setattr(report.ECHO, "disabled", True)
    monkeypatch.setattr(logging.getLogger("distlog"), "propagate", False)
    try:
        with warnings.catch_warnings():  # (warnings: the same; recorded ones go to the controller)
            warnings.simplefilter("ignore")
            run_case(seed, str(tmp_path), cli=seed % 5 == 0)
    finally:
        # distlog echoes WARNING records (stderr, logging), lone surrogates included: pytest-xdist
        # cannot send such captured text to the controller (its worker dies)
        capsys.readouterr()


# ---- two gloo ranks ---------------------------------------------------------------------------
def rank_worker(rank, world, seed, root):
    srng = random.Random(seed)  # the structure: alike on every rank
    vrng = random.Random(seed * 1000 + rank + 1)  # the values: this rank's own
    exp = distlog.get_logger(root)
    out = {"logs": [], "files": []}
    for a in range(2):
        resume_step = srng.choice((None, 7))
        kw = {} if resume_step is None else {"resume_step": resume_step}
        with exp.run(RUN_ID, resume="allow", **kw):
            exp.params.set({"lr": 0.1 * (a + 1), "nested": {"x": [a, None]}})  # alike on every rank
            for i in range(srng.randrange(3, 12)):
                k = srng.random()
                if k < 0.5:
                    msg, fields = _message(vrng), _fields(vrng)
                    step = vrng.choice((None, vrng.randrange(100)))
                    exp.logs.log("INFO", msg, **fields, **({} if step is None else {"step": step}))
                    out["logs"].append(("INFO", msg, json_round(fields),
                                        resume_step if step is None else step, a))
                elif k < 0.75:  # identical bytes from every rank: one blob, a record each
                    data = srng.randbytes(srng.randrange(0, 300))
                    rec = exp.files("shared").save(data, "same.bin")
                    out["files"].append(("shared/same.bin", data, rec.sha256, a))
                else:
                    data = vrng.randbytes(vrng.randrange(1, 300))
                    rec = exp.files.save(data, f"own-{i % 2}.bin")
                    out["files"].append((f"own-{i % 2}.bin", data, rec.sha256, a))
            exp.metrics.commit(barrier=True)
    return out


@pytest.mark.dist
@pytest.mark.parametrize("seed", [0, 1])
def test_two_ranks(seed, tmp_path):
    from support.ranks import run_ranks

    root = str(tmp_path / "root")
    results = run_ranks(rank_worker, 2, tmp_path, seed, root, timeout=120)
    run = distlog.open_run(os.path.join(root, *RUN_PATH))
    assert run.info.status == "completed"
    assert run.params == {"lr": 0.2, "nested": {"x": [1, None]}}
    every = run.logs.query()
    assert [r.time for r in every] == sorted(r.time for r in every), "merged logs out of time order"
    assert as_tuples(every) == as_tuples(run.logs.query(source="text"))
    for rank, out in enumerate(results):
        o = Oracle()
        o.logs = out["logs"]
        got = as_tuples(user_records(run.logs.query(rank=rank)))
        assert got == expected_logs(o), (rank, _diff(got, expected_logs(o)))
        mine = [r for r in run.files.records() if r.rank == rank]
        assert [(r.path, r.sha256, r.attempt) for r in mine] == \
            [(p, sha, a) for p, _, sha, a in out["files"]], rank
        for path, data, sha, a in out["files"]:
            assert run.files.read_bytes(path, rank=rank, version=next(
                r.version for r in mine if r.sha256 == sha and r.path == path)) == data
        latest = {}
        for path, data, _, _ in out["files"]:
            latest[path] = data
        for path, data in latest.items():
            assert run.files.read_bytes(path, rank=rank) == data, (rank, path)
