#!/usr/bin/env python
"""Artifacts: hash-and-store throughput against ``sha256sum`` + ``cp``, and bytes uploaded when
N ranks save the same file to S3 (moto on 127.0.0.1).

    python scripts/bench/bench_artifacts.py                 # 256 MiB file, 8 ranks x 64 MiB
    python scripts/bench/bench_artifacts.py --size-gb 1     # the issue's 1 GB file

(a) One file on the same disk, in the page cache for every contender (each reads it warm):
    ``sha256sum f && cp f dst`` (two passes, as a shell user would do it) against
    ``ContentStore.put_file`` (hash, check, exclusive create by copy) and ``exp.files.log_file``
    (the same plus the manifest record; run start and close not timed). ``save_torch`` of a tensor that size is set against
    ``torch.save`` to a file followed by ``sha256sum`` + ``cp``. A second ``log_file`` of the
    same bytes is a deduplication hit (hash only).
(b) N processes save identical bytes to one S3 bucket at the same moment, through a proxy
    that counts request bodies: with the upload lease (distlog's default) and without it
    (every rank that misses the blob uploads; exclusive create still keeps one blob).
    "creates won" counts the ranks whose exclusive create reported True. On real S3 that is
    one; moto checks If-None-Match on CompleteMultipartUpload before completing, without a
    lock, so racing multipart completes (lease off, files over 16 MiB) may all "win" there.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

MB = 1e6


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [header] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in cells[1:]])


def median_time(fn: Callable[[int], Any], repeat: int) -> float:
    """Median seconds of ``fn(i)``; a float returned by ``fn`` is its own timing."""
    times = []
    for i in range(repeat):
        os.sync()  # earlier runs' dirty pages are written back untimed, not charged to this one
        t0 = time.perf_counter()
        own = fn(i)
        times.append(own if isinstance(own, float) else time.perf_counter() - t0)
    return statistics.median(times)


def in_run(root: str, action: Callable[[Any], Any]) -> float:
    """Seconds of ``action(exp)`` inside an open run (run start and close not counted)."""
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("bench"):
        t0 = time.perf_counter()
        action(exp)
        return time.perf_counter() - t0


def make_file(path: str, size: int) -> None:
    chunk = os.urandom(8 << 20)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        f.flush()
        os.fsync(f.fileno())


# ---- (a) throughput -------------------------------------------------------------------------
def bench_local(size: int, workdir: str, repeat: int) -> list[list[Any]]:
    import torch

    import distlog
    from distlog.cas import ContentStore, hash_file
    from distlog.storage.local import LocalBackend

    src = os.path.join(workdir, "src.bin")
    make_file(src, size)
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # warm the page cache

    def fresh(i: int, tag: str) -> str:
        d = os.path.join(workdir, f"{tag}-{i}")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    def clear(tag: str) -> None:  # keep at most one copy per contender on disk
        for i in range(repeat):
            shutil.rmtree(os.path.join(workdir, f"{tag}-{i}"), ignore_errors=True)

    def shell(i: int) -> None:
        d = fresh(i, "cp")
        subprocess.run(["sha256sum", src], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(["cp", src, os.path.join(d, "dst.bin")], check=True)

    def put_file(i: int) -> None:
        ContentStore(LocalBackend(fresh(i, "cas"))).put_file(src)

    def log_file(i: int) -> float:
        return in_run(fresh(i, "exp"), lambda exp: exp.files.log_file("data.bin", src))

    rows = []
    t = median_time(lambda i: subprocess.run(["sha256sum", src], stdout=subprocess.DEVNULL,
                                             check=True), repeat)
    rows.append(["sha256sum (hash only)", size / MB, t, size / MB / t, ""])
    t = median_time(lambda i: hash_file(src), repeat)
    rows.append(["cas.hash_file (hash only)", size / MB, t, size / MB / t, ""])
    t_shell = median_time(shell, repeat)
    clear("cp")
    rows.append(["sha256sum + cp", size / MB, t_shell, size / MB / t_shell, 1.0])
    for label, fn, tag in (("ContentStore.put_file", put_file, "cas"),
                           ("exp.files.log_file", log_file, "exp")):
        t = median_time(fn, repeat)
        clear(tag)
        rows.append([label, size / MB, t, size / MB / t, t_shell / t])

    exp = distlog.get_logger(fresh(0, "dedup"))
    with exp.run("bench"):
        exp.files.log_file("first.bin", src)
        t = median_time(lambda i: exp.files.log_file(f"again-{i}.bin", src), repeat)
    rows.append(["log_file, dedup hit", size / MB, t, size / MB / t, t_shell / t])

    for p in os.listdir(workdir):  # free the disk before the torch part
        if p != "src.bin":
            shutil.rmtree(os.path.join(workdir, p), ignore_errors=True)
    os.unlink(src)
    tensor = torch.randn(size // 4)

    def torch_shell(i: int) -> None:
        d = fresh(i, "tcp")
        p = os.path.join(d, "model.pt")
        torch.save({"w": tensor}, p)
        subprocess.run(["sha256sum", p], stdout=subprocess.DEVNULL, check=True)
        subprocess.run(["cp", p, os.path.join(d, "copy.pt")], check=True)

    def save_torch(i: int) -> float:
        return in_run(fresh(i, "texp"), lambda exp: exp.files.save_torch({"w": tensor}, "model.pt"))

    t_ts = median_time(torch_shell, repeat)
    rows.append(["torch.save + sha256sum + cp", size / MB, t_ts, size / MB / t_ts, 1.0])
    t = median_time(save_torch, repeat)
    rows.append(["exp.files.save_torch", size / MB, t, size / MB / t, t_ts / t])
    return rows


# ---- (b) bytes uploaded by N ranks ------------------------------------------------------------
def _rank(i: int, url: str, options: dict, src: str, lease: bool, barrier: Any, out: Any) -> None:
    from distlog.cas import ContentStore
    from distlog.storage import open_storage

    backend = open_storage(url, **options)
    backend.exists("warm-up")  # connect before the barrier
    store = ContentStore(backend, lease_min_bytes=(1 << 20) if lease else 1 << 62)
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    res = store.put_file(src)
    out.put((i, res.uploaded, time.perf_counter() - t0))


def bench_ranks(n: int, size: int, workdir: str) -> list[list[Any]]:
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    import logging
    import urllib.request

    from moto.server import ThreadedMotoServer
    from support.faultproxy import RecordingProxy

    # moto can answer 500 to racing conditional PUTs of one key (lease off); the client
    # retries and the proxy counts the retry. Keep its tracebacks off the report.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    src = os.path.join(workdir, "shared.bin")
    make_file(src, size)
    rows = []
    ctx = mp.get_context("spawn")
    try:
        for lease in (True, False):
            bucket = f"bench-{'lease' if lease else 'nolease'}-{os.getpid()}"
            with direct.open(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")) as r:
                r.read()
            with RecordingProxy(endpoint) as proxy:
                options = {"key": "k", "secret": "s", "endpoint_url": proxy.url}
                barrier, out = ctx.Barrier(n), ctx.Queue()
                procs = [ctx.Process(target=_rank, args=(i, f"s3://{bucket}/root", options, src,
                                                         lease, barrier, out)) for i in range(n)]
                for p in procs:
                    p.start()
                results = [out.get(timeout=600) for _ in range(n)]
                for p in procs:
                    p.join(60)
                sent = sum(b for m, _, _, b in proxy.log if m in ("PUT", "POST"))
            uploaders = sum(1 for _, up, _ in results if up)
            slowest = max(t for _, _, t in results)
            rows.append([f"{n} ranks, lease {'on' if lease else 'off'}", size / MB, sent / MB,
                         sent / size, uploaders, slowest])
    finally:
        server.stop()
        os.unlink(src)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gb", type=float, default=0.25, help="file size for (a), in GB (1e9 bytes)")
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--rank-mb", type=float, default=64, help="file size for (b), in MB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="work folder (default: a temp folder)")
    ap.add_argument("--skip-s3", action="store_true")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="bench-artifacts-", dir=args.dir)
    try:
        size = int(args.size_gb * 1e9)
        print(f"(a) hash and store {size / MB:.0f} MB on {workdir} (median of {args.repeat}, "
              f"page cache warm)\n")
        print(table(bench_local(size, workdir, args.repeat),
                    ["what", "MB", "seconds", "MB/s", "speed vs shell"]))
        if not args.skip_s3:
            print(f"\n(b) {args.ranks} processes save the same {args.rank_mb:.0f} MB to moto S3 at once\n")
            print(table(bench_ranks(args.ranks, int(args.rank_mb * MB), workdir),
                        ["case", "file MB", "MB sent (PUT/POST)", "copies sent", "creates won",
                         "slowest save s"]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
