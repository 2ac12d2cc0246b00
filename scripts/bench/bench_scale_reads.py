#!/usr/bin/env python
"""Reading at sweep scale: `distlog ls`, the sweep table and single-run reads on S3 (moto)
behind a proxy that holds every request a fixed time, as the round trip to a real region does.

    python scripts/bench/bench_scale_reads.py                       # 100 and 1,000 runs
    python scripts/bench/bench_scale_reads.py --runs 100 --delay-ms 50

The root: ``--runs`` small runs in 10 experiments, 2 keys (``loss``, ``acc``) x 50 flushes,
a few log lines each. Ten runs are written through the real write path (one per experiment)
and copied, each copy with its own run id and params; the local tree is cached under
``--cache`` (built once per run count) and uploaded to a moto server started here, in its own
process, behind ``tests/support/faultproxy.py``'s ``LatencyProxy``. Each operation runs once at 0 ms
and once at ``--delay-ms`` per request (after a warm-up); the proxy counts its requests.

Latency rounds = (t at delay - t at 0 ms) / delay: how many request times lie on the critical
path, whatever the machine's own speed. Targets (issue 16): ls of 100 runs <= 10 rounds and
<= 2 requests per run; sweep table with two keys' final values of 100 runs <= 40 rounds, of
1,000 runs <= 60, <= 6 requests per run; frame / show / logs of one run <= 6 rounds each.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from collections import Counter
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))

from bench_object_store import make_bucket, start_moto  # noqa: E402
from common import table  # noqa: E402

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
KEY, SECRET = "testing", "testing"
EXPERIMENTS, FLUSHES = 10, 50
BUCKET = "scale"


# ---- the root ----------------------------------------------------------------------------
def build_root(cache: str, runs: int, endpoint: str) -> str:
    """A local copy of a root of ``runs`` runs (cached): 10 runs written to S3 through the
    real write path (segmented logs, consolidated metadata), downloaded, copied."""
    import distlog
    import s3fs
    from distlog.layout import PARAMS_FILE, RUN_FILE

    root = os.path.join(cache, f"root-{runs}")
    if os.path.exists(os.path.join(root, ".complete")):
        return root
    shutil.rmtree(root, ignore_errors=True)
    tmpl = os.path.join(cache, "templates")
    if not os.path.exists(os.path.join(tmpl, ".complete")):
        shutil.rmtree(tmpl, ignore_errors=True)
        exp = distlog.get_logger(f"s3://{BUCKET}/templates", key=KEY, secret=SECRET,
                                 endpoint_url=endpoint)
        for e in range(EXPERIMENTS):
            with exp.experiment(f"exp-{e}"), exp.run("template", params={"lr": 0.1, "seed": 0}):
                for step in range(FLUSHES):
                    exp.metrics.log(step=step, loss=1.0 / (step + 1 + e), acc=step / (FLUSHES + e))
                    exp.metrics.flush()
                    if step % 10 == 0:
                        exp.info(f"step {step}", step=step)
        fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, endpoint_url=endpoint, skip_instance_cache=True)
        fs.get(f"{BUCKET}/templates/", tmpl + "/", recursive=True)
        open(os.path.join(tmpl, ".complete"), "w").close()
    for k in range(runs):
        e = k % EXPERIMENTS
        run_id = f"run-{k:05d}"
        dst = os.path.join(root, f"exp-{e}", run_id)
        shutil.copytree(os.path.join(tmpl, f"exp-{e}", "template"), dst)
        with open(os.path.join(dst, RUN_FILE)) as f:
            meta = json.load(f)
        meta["run_id"] = run_id
        with open(os.path.join(dst, RUN_FILE), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        with open(os.path.join(dst, PARAMS_FILE), "w") as f:
            json.dump({"lr": [0.1, 0.01, 0.001][k % 3], "seed": k}, f)
    open(os.path.join(root, ".complete"), "w").close()
    return root


# ---- the server process ----------------------------------------------------------------------
def serve(q: Any, conn: Any) -> None:
    """moto plus a latency proxy; answers ("delay", s), ("reset",), ("counts",) until ("stop",)."""
    from support.faultproxy import LatencyProxy

    server, endpoint = start_moto()
    make_bucket(endpoint, BUCKET)
    with LatencyProxy(endpoint) as proxy:
        q.put((endpoint, proxy.url))
        while True:
            cmd = conn.recv()
            if cmd[0] == "delay":
                proxy.delay = cmd[1]
            elif cmd[0] == "reset":
                proxy.reset()
            elif cmd[0] == "counts":
                conn.send(dict(Counter(m for m, *_ in list(proxy.log))))
                continue
            elif cmd[0] == "load":
                conn.send(load(*cmd[1:]))
                continue
            elif cmd[0] == "log":
                t0 = proxy.times[0] if proxy.times else 0.0
                conn.send([(t - t0, m, p) for t, (m, p, *_) in zip(list(proxy.times), list(proxy.log))])
                continue
            else:
                break
            conn.send("ok")
    server.stop()


class Server:
    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(q, child), daemon=True)
        self.proc.start()
        self.direct, self.url = q.get(timeout=120)

    def ask(self, *cmd: Any) -> Any:
        self.conn.send(cmd)
        return self.conn.recv()

    def stop(self) -> None:
        self.conn.send(("stop",))
        self.proc.join(30)


def load(local: str, prefix: str) -> int:
    """Put every file under ``local`` into the bucket at ``prefix`` straight into moto's
    in-memory backend (in the server process): 18,000 objects in seconds, where PUTs through
    HTTP take minutes on a loaded machine. The objects are the same either way."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    n = 0
    for d, _, names in os.walk(local):
        for name in names:
            if name == ".complete":
                continue
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                backend.put_object(BUCKET, f"{prefix}/{os.path.relpath(path, local)}", f.read())
            n += 1
    return n


# ---- operations ------------------------------------------------------------------------------
def quiet_cli(argv: list[str]) -> str:
    from distlog.cli import main

    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(argv)
    assert code == 0, (argv, code)
    return out.getvalue()


def operations(url: str, opts: dict[str, Any], runs: int) -> dict[str, Callable[[], Any]]:
    import distlog

    o = [a for k, v in opts.items() for a in ("-O", f"{k}={v}")]
    one = f"{url}/exp-0/run-00000"

    def ls() -> Any:
        out = quiet_cli(["ls", url, *o])
        assert out.count("\n") == runs + 2, out[:300]
        return out

    def sweep() -> Any:
        df = distlog.open_root(url, **opts).table(metrics=["loss", "acc"])
        assert len(df) == runs and df["loss"].notna().all()
        return df.to_csv()

    return {
        "`distlog ls`": ls,
        "sweep table: open_root + table(metrics=[2 keys])": sweep,
        "`open_run(...).metrics.frame(key)`": lambda: distlog.open_run(one, **opts).metrics.frame("loss").to_csv(),
        "`distlog show RUN`": lambda: quiet_cli(["show", one, *o]),
        "`distlog logs RUN`": lambda: quiet_cli(["logs", one, *o]),
    }


def measure(server: Server, fn: Callable[[], Any], delay: float, repeat: int = 1,
            trace: bool = False) -> tuple[float, int, Any]:
    """Best of ``repeat`` (other load only ever adds time); requests of the last one."""
    server.ask("delay", delay)
    best = float("inf")
    for _ in range(repeat):
        server.ask("reset")
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    if trace:
        for t, m, p in server.ask("log"):
            print(f"    {t * 1000:8.1f} ms  {m} {p}")
    return best, sum(server.ask("counts").values()), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--cache", default="/tmp/distlog-bench-scale")
    ap.add_argument("--skip-single", action="store_true", help="only ls and the sweep table")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the single-run reads")
    ap.add_argument("--trace", action="store_true", help="print every request of each operation")
    args = ap.parse_args()
    import logging

    logging.getLogger("distlog").setLevel(logging.ERROR)
    os.makedirs(args.cache, exist_ok=True)
    server = Server()
    opts = {"key": KEY, "secret": SECRET, "endpoint_url": server.url}
    rows = []
    delay = args.delay_ms / 1000
    header = ["operation", "runs", "0 ms", f"{args.delay_ms:g} ms per request", "latency rounds",
              "requests", "requests/run"]
    try:
        for n in args.runs:
            t0 = time.perf_counter()
            local = build_root(args.cache, n, server.direct)
            built = time.perf_counter() - t0
            t0 = time.perf_counter()
            objects = server.ask("load", local, f"root-{n}")
            up = time.perf_counter() - t0
            print(f"{n} runs: built in {built:.1f} s, {objects} objects loaded into moto in "
                  f"{up:.1f} s", flush=True)
            ops = operations(f"s3://{BUCKET}/root-{n}", opts, n)
            if args.skip_single or n != args.runs[0]:
                ops = dict(list(ops.items())[:2])
            for name, fn in ops.items():
                measure(server, fn, 0.0)  # warm-up: connections, imports
                rep = args.repeat if n <= 100 or "RUN" in name or "open_run" in name else 1
                t_fast, requests, out0 = measure(server, fn, 0.0, rep, args.trace)
                t_slow, _, out1 = measure(server, fn, delay, rep)
                assert out0 == out1, f"{name}: a different answer with latency"
                rounds = (t_slow - t_fast) / delay
                per_run = f"{requests / n:.2f}" if "RUN" not in name and "open_run" not in name else "-"
                rows.append([name, n if per_run != "-" else "1", f"{t_fast:.2f} s", f"{t_slow:.2f} s",
                             f"{rounds:.1f}", requests, per_run])
                print(table(rows[-1:], header), flush=True)
    finally:
        server.stop()
    print()
    print(table(rows, header))

if __name__ == "__main__":
    main()
