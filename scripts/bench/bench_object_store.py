#!/usr/bin/env python
"""Flush throughput and requests per 1,000 flushes: S3 (moto server) against local disk.

One process, no process group (the laptop path). Each step collects ``--keys`` metrics,
flushes, logs one text line, then sleeps ``--step-ms`` (the "training"). The same loop runs
against a local directory and against ``s3://`` on a moto server started here, on 127.0.0.1 at
a free port, reached through a recording proxy (tests/support/faultproxy.py, failing nothing: each
request is counted at the server side, by HTTP method). On local disk the writes are counted instead: zarr store puts plus
distlog's file writes, creates and appends.

Reported per backend and flush count:

* flushes/s in the loop (the training thread's view: collect + flush + log line),
* end-to-end seconds including ``close`` (final commit, resize, consolidated metadata, logs
  table), since background I/O is only deferred, not free,
* requests (S3) or writes (local) in total and per 1,000 flushes, and PUTs per 1,000
  flushes; commits of the background writer.

Requests per 1,000 flushes are set by commits (time: ``--commit-interval``), chunks and
segments — not by steps: doubling the flushes at the same step time roughly halves the
per-1,000 figure of setup and close, and leaves the steady part per second unchanged.

    python scripts/bench/bench_object_store.py [--keys 100] [--flushes 1000 8000]
        [--step-ms 1] [--commit-interval 1.0]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests"))
from common import table  # noqa: E402
from support.faultproxy import FaultProxy  # noqa: E402
from distlog.layout import is_chunk_key  # noqa: E402

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # never probe 169.254.169.254
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---- servers -----------------------------------------------------------------------------------
def kind_of(method: str, path: str) -> list[str]:
    """Count labels of one request: its method, plus ``chunk`` / ``segment`` for PUTs."""
    out = [method]
    if method == "PUT" and ".zarr/" in path and is_chunk_key(path):
        out.append("chunk")
    if method == "PUT" and ".log.seg/" in path:
        out.append("segment")
    return out


def counts_of(proxy: FaultProxy) -> Counter[str]:
    """The requests ``proxy`` has seen so far, counted by ``kind_of``."""
    return Counter(label for method, path in list(proxy.log) for label in kind_of(method, path))


class RemoteCounts:
    """The counts of the proxy running in the server process (asked over a pipe)."""

    def __init__(self, url: str, conn: Any) -> None:
        self.url, self.conn = url, conn

    def snapshot(self) -> Counter[str]:
        self.conn.send("counts")
        return Counter(self.conn.recv())


def serve(bucket: str, q: Any, conn: Any) -> None:
    """The server process: moto plus a recording proxy (fail rate 0) in front of it; answers
    "counts" on ``conn`` until "stop". Kept out of the benchmark's process so that its Python
    threads do not compete for the GIL with the loop."""
    server, endpoint = start_moto()
    make_bucket(endpoint, bucket)
    with FaultProxy(endpoint, fail_rate=0.0) as proxy:
        q.put(proxy.url)
        while conn.recv() == "counts":
            conn.send(dict(counts_of(proxy)))
    server.stop()


def start_moto() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with _direct.open(url + "/moto-api/", timeout=2) as r:
                r.read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not answer at {url}") from None
            time.sleep(0.05)
    return server, url


def make_bucket(endpoint: str, bucket: str) -> None:
    req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")  # moto: no signature check
    with _direct.open(req, timeout=30) as r:
        r.read()


# ---- counting local writes ---------------------------------------------------------------------
class LocalWriteCounter:
    """Counts writes on local disk: zarr LocalStore puts (``chunk`` for chunk keys) and
    deletes, distlog's file writes and exclusive creates (``PUT``), and text-log flushes,
    each a file append (``segment``, so that the column lines up with S3's log segments)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._undo: list[tuple[Any, str, Any]] = []

    def _wrap(self, owner: Any, name: str, labels: Any, is_async: bool = False) -> None:
        orig = getattr(owner, name)
        counts = self.counts

        def count(a: tuple) -> None:
            for label in labels(a) if callable(labels) else [labels]:
                counts[label] += 1

        if is_async:
            async def wrapped(*a: Any, **k: Any) -> Any:
                count(a)
                return await orig(*a, **k)
        else:
            def wrapped(*a: Any, **k: Any) -> Any:
                count(a)
                return orig(*a, **k)
        setattr(owner, name, wrapped)
        self._undo.append((owner, name, orig))

    def __enter__(self) -> "LocalWriteCounter":
        import zarr.storage

        from distlog.storage import local

        # LocalStore.set(self, key, value): key is relative to the table's .zarr folder
        self._wrap(zarr.storage.LocalStore, "set", lambda a: kind_of("PUT", f"/t.zarr/{a[1]}"),
                   is_async=True)
        self._wrap(zarr.storage.LocalStore, "delete", "DELETE", is_async=True)
        self._wrap(local.LocalBackend, "write_bytes", "PUT")
        self._wrap(local.LocalBackend, "create_bytes", "PUT")
        self._wrap(local.LocalBackend, "create_file", "PUT")
        self._wrap(local.LocalAppender, "flush", "segment")
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, orig in reversed(self._undo):
            setattr(owner, name, orig)

    def snapshot(self) -> Counter[str]:
        return Counter(self.counts)


# ---- the loop ----------------------------------------------------------------------------------
def run_loop(url: str, options: dict[str, Any], counter: Any, keys: int, flushes: int,
             step_s: float, commit_interval: float) -> dict[str, Any]:
    import distlog

    names = [f"k{i:03d}" for i in range(keys)]
    exp = distlog.get_logger(url, commit_interval=commit_interval, **options)
    t_start = time.perf_counter()
    with exp.experiment("bench"), exp.run(f"f{flushes}-{uuid.uuid4().hex[:6]}"):
        run = exp.current_run
        ns = exp.metrics("train")
        before = counter.snapshot()
        t0 = time.perf_counter()
        spent_sleeping = 0.0
        for step in range(flushes):
            ns.collect(step=step, **{n: step * 1e-3 + i for i, n in enumerate(names)})
            exp.metrics.flush()
            exp.info(f"step {step}", loss=step * 1e-3)
            if step_s:
                s0 = time.perf_counter()
                time.sleep(step_s)
                spent_sleeping += time.perf_counter() - s0
        loop_s = time.perf_counter() - t0
        during = counter.snapshot() - before
        w = run.writers.main_writer
        commits_in_loop = w.commits if w else 0
        last_commit_s = w.last_commit_seconds if w else 0.0
    total_s = time.perf_counter() - t_start
    writer = run.writers.main_writer
    return {
        "loop_s": loop_s, "busy_s": loop_s - spent_sleeping, "total_s": total_s,
        "during": during, "commits": writer.commits if writer else 0,
        "commits_in_loop": commits_in_loop, "last_commit_s": last_commit_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--flushes", type=int, nargs="+", default=[1000, 8000])
    ap.add_argument("--step-ms", type=float, default=1.0, help="simulated compute per step")
    ap.add_argument("--commit-interval", type=float, default=1.0)
    args = ap.parse_args()

    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    q = ctx.Queue()
    conn, child_conn = ctx.Pipe()
    server = ctx.Process(target=serve, args=(bucket, q, child_conn), daemon=True)
    server.start()
    proxy = RemoteCounts(q.get(timeout=120), conn)
    s3_opts = {"key": "bench", "secret": "bench", "endpoint_url": proxy.url}
    tmp = tempfile.mkdtemp(prefix="bench-objstore-")
    rows = []
    try:
        for flushes in args.flushes:
            for label in ("local", "s3 (moto)"):
                if label == "local":
                    with LocalWriteCounter() as counter:
                        before = counter.snapshot()
                        r = run_loop(os.path.join(tmp, "root"), {}, counter, args.keys, flushes,
                                     args.step_ms / 1e3, args.commit_interval)
                        total = counter.snapshot() - before
                else:
                    before = proxy.snapshot()
                    r = run_loop(f"s3://{bucket}/root", s3_opts, proxy, args.keys, flushes,
                                 args.step_ms / 1e3, args.commit_interval)
                    total = proxy.snapshot() - before
                methods = sum(v for k, v in total.items() if k.isupper())
                per_k = 1000 / flushes
                rows.append([
                    label, flushes, round(flushes / r["busy_s"]), round(flushes / r["loop_s"]),
                    round(r["total_s"], 1), f"{r['commits_in_loop']}+{r['commits'] - r['commits_in_loop']}",
                    round(r["last_commit_s"], 2), methods, round(methods * per_k),
                    round(total["PUT"] * per_k), round(total["chunk"] * per_k),
                    round(total["segment"] * per_k),
                    round((total["GET"] + total["HEAD"]) * per_k),
                    round(sum(v for k, v in r["during"].items() if k.isupper()) * per_k),
                ])
                print(f"  done: {label}, {flushes} flushes", file=sys.stderr, flush=True)
    finally:
        try:
            conn.send("stop")
        except OSError:
            pass
        server.join(30)
        if server.is_alive():
            server.kill()
    print(f"\n{args.keys} keys per flush, {args.step_ms:g} ms simulated compute per step, "
          f"commit_interval {args.commit_interval:g} s, one text log line per step.\n"
          "commits: during the loop + at close; commit s: the last commit in the loop (the "
          "writer waits at least 5x that before the next, so slow stores commit less often).\n"
          "S3: HTTP requests counted at the server. Local: writes counted in-process "
          "(zarr puts, file writes; 'log' = file appends); local reads are not counted.\n")
    print(table(rows, ["backend", "flushes", "flushes/s busy", "flushes/s loop", "end-to-end s",
                       "commits", "commit s", "requests", "req/1k", "PUT/1k", "chunk PUT/1k", "log writes/1k",
                       "GET+HEAD/1k", "req/1k in loop"]))


if __name__ == "__main__":
    main()
