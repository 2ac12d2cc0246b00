"""W1's background work and close, as medians of many short runs, optionally against another
checkout of distlog (an A/B in one invocation: this machine's speed swings by up to 1.5x
within minutes, so only interleaved runs compare).

Each run is its own process: 20,000 steps x 10 scalars in one of the README's patterns, then
``close()`` right after the loop (or ``--settle`` seconds later, once the writer caught up).
Reported per pattern: training-thread CPU per step, background CPU per step (process CPU
minus the training thread's: writer thread, encoders, close) and close time. The child imports
only distlog before its run opens, as a training script does (``--preimport zarr,numcodecs``
leaves out the import of what the writer needs, which a short run's close otherwise waits for).

    python scripts/bench/bench_close.py [--runs 12] [--settle 0] [--against /path/to/checkout]
                                        [--preimport zarr] [--modes ... "log(dict)+file" "resumed log(dict)"]

"first call ms": the run's first ``log``/``collect`` call (a resumed attempt reads and rewinds
its stored series there; the earlier attempt runs in a process of its own first).

``--against``: a second source tree (``git worktree add /tmp/base <rev>``); each child runs in
a fresh temporary folder with that tree first on ``PYTHONPATH`` (never the current folder,
which would shadow it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from common import file_create_ms, folder_note, table  # noqa: E402

STEPS, KEYS = 20_000, 10

CHILD = r"""
import importlib, json, sys, tempfile, time
import distlog
mode, settle, steps, keys = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for module in filter(None, sys.argv[5].split(",")):
    importlib.import_module(module)
root = sys.argv[6] or tempfile.mkdtemp()
resumed = mode.startswith("resumed ")  # a second attempt: steps..2*steps after an earlier one
mode = mode.removeprefix("resumed ")
first = steps if resumed else 0
names = [f"m{k:02d}" for k in range(keys)]
rows = [{k: j + (i % 512) / 512 + i * 1e-4 for j, k in enumerate(names)} for i in range(first + steps)]
exp = distlog.get_logger(root)
exp.start_run("bench", resume="must" if resumed else "allow")
m = exp.metrics
# the keyword modes call m.log(step=i, m00=v0, ...) with literal keyword arguments, as a
# training script does (bench_peers.keyword_step: a **row splat would cost the caller more)
local, kwargs = ", ".join(f"v{j}" for j in range(keys)), ", ".join(f"{k}=v{j}" for j, k in enumerate(names))
exec(f"def log_kw(i, row):\n    {local}, = row\n    m.log(step=i, {kwargs})\n"
     f"def collect_kw(i, row):\n    {local}, = row\n    m.collect(step=i, {kwargs})\n")
if mode in ("log", "collect"):  # their values as tuples, made untimed (a script has them in locals)
    rows = [r if i == first else tuple(r.values()) for i, r in enumerate(rows)]
if mode.endswith("+file"):
    exp.files("ckpt").save(b"weights", "model.bin")
    mode = mode.removesuffix("+file")
t0 = time.perf_counter()
m.log(rows[first], step=first) if mode.startswith("log") else m.collect(rows[first], step=first)
first_ms = (time.perf_counter() - t0) * 1e3  # a resumed attempt reads its stored series here
p0, c0 = time.process_time(), time.thread_time()
for i in range(first + 1, first + steps):
    if mode == "log":
        log_kw(i, rows[i])
    elif mode == "log(dict)":
        m.log(rows[i], step=i)
    elif mode == "collect":
        collect_kw(i, rows[i])
        if i % 10 == 9:
            m.flush()
    else:
        m.collect(rows[i], step=i)
        if i % 10 == 9:
            m.flush()
loop = time.thread_time() - c0
time.sleep(settle)
t0 = time.perf_counter()
exp.close()
close = time.perf_counter() - t0
background = (time.process_time() - p0) - (time.thread_time() - c0)
print(json.dumps({"loop_us": loop / steps * 1e6, "background_us": background / steps * 1e6,
                  "close_ms": close * 1e3, "first_ms": first_ms, "file": distlog.__file__,
                  "zarr": "zarr" in sys.modules}))
"""

MODES = ("log", "log(dict)", "collect", "collect(dict)")
# more patterns (--modes): a run that saved a file; a resumed attempt (the first one runs in a
# process of its own beforehand) whose first call reads and rewinds the stored series
EXTRA = ("log(dict)+file", "resumed log(dict)")


def run_one(tree: str, mode: str, settle: float, preimport: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory() as cwd:  # the current folder would shadow PYTHONPATH
        root = os.path.join(cwd, "root")

        def child(m: str) -> str:
            return subprocess.run([sys.executable, "-c", CHILD, m, str(settle), str(STEPS), str(KEYS), preimport, root],
                                  cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout

        if mode.startswith("resumed "):
            child(mode.removeprefix("resumed "))  # the earlier attempt
        os.sync()  # the earlier runs' files written back first: each close starts alike (a disk
        # still writing back their hundreds of files made creates 0.05 -> 0.25 ms, close +15 ms)
        out = child(mode)
    got = json.loads(out)
    if not os.path.realpath(got.pop("file")).startswith(os.path.realpath(tree) + os.sep):
        raise SystemExit(f"the child imported distlog from outside {tree}: check PYTHONPATH")
    got["zarr"] = float(got["zarr"])
    return got


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--settle", type=float, default=0.0, help="seconds between the loop and close")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES + EXTRA)
    ap.add_argument("--against", help="another distlog source tree, run interleaved with this one")
    ap.add_argument("--preimport", default="", help="modules the child imports before its run opens "
                    "(e.g. zarr,numcodecs; default: none but distlog, as a training script)")
    args = ap.parse_args()
    here = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    trees = {"this": here, **({"against": os.path.abspath(args.against)} if args.against else {})}
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    create_ms = file_create_ms()
    for _ in range(args.runs):
        for mode in args.modes:
            for name, tree in trees.items():
                results.setdefault((mode, name), []).append(run_one(tree, mode, args.settle, args.preimport))
    rows = []
    for (mode, name), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rows.append([mode, name, med["loop_us"], med["background_us"], med["close_ms"],
                     min(r["close_ms"] for r in runs), med["first_ms"], "yes" if med["zarr"] else "no"])
    print(f"{STEPS:,} steps x {KEYS} keys, close {args.settle:g} s after the loop, medians of {args.runs} runs; "
          f"imported before the run: distlog{',' + args.preimport if args.preimport else ''}")
    print(folder_note(create_ms))
    print(table(rows, ["pattern", "tree", "training CPU µs/step", "background CPU µs/step",
                       "close ms", "close ms (min)", "first call ms", "zarr imported"]))


if __name__ == "__main__":
    main()
