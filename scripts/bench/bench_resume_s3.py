#!/usr/bin/env python
"""A requeued job's resume on S3 (moto) behind a proxy that holds every request a fixed time,
as the round trip to a real region does: how long ``start_run(..., resume_step=)`` takes, and
how many requests it makes, before the attempt's first step.

    python scripts/bench/bench_resume_s3.py [--keys 100] [--rows 20000] [--delay-ms 50]
                                            [--against /path/to/other/checkout]

The first attempt (``--keys`` series of ``--rows`` logged rows, 8,192-row chunks) is written
straight to moto, then closed (a preemption: consolidated metadata) or killed after a commit,
and copied to a fresh bucket for each measurement. The resumed attempt's start runs in a child
process with this tree (and ``--against``'s, an A/B in one invocation) first on ``PYTHONPATH``,
once at 0 ms and once at ``--delay-ms`` per request. Latency rounds = (t at delay - t at 0 ms)
/ delay: how many request times lie on the start's critical path, whatever the machine's own
speed (t at 0 ms includes imports: zarr and the S3 client).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TREE, "tests"))

from bench_object_store import make_bucket, start_moto  # noqa: E402
from common import table  # noqa: E402

os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
KEY, SECRET = "testing", "testing"

FIRST = r"""
import os, sys, distlog, numpy as np
url, endpoint, keys, rows, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
exp = distlog.get_logger(url, key="testing", secret="testing", endpoint_url=endpoint, telemetry=False,
                         heartbeat_interval=0)
exp.start_run("resumed")
names = [f"train/k{i:03d}" for i in range(keys)]
for step in range(rows):
    exp.metrics.log(dict(zip(names, np.full(keys, step * 0.5).tolist())), step=step)
if end == "closed":
    exp.close()
else:
    exp.metrics.commit()
    os._exit(0)
"""

RESUME = r"""
import json, sys, time, distlog
url, endpoint, cut = sys.argv[1], sys.argv[2], float(sys.argv[3])
exp = distlog.get_logger(url, key="testing", secret="testing", endpoint_url=endpoint, telemetry=False,
                         heartbeat_interval=0)
t0 = time.perf_counter()
exp.start_run("resumed", resume="must", resume_step=cut)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def child(code: str, tree: str, *args: object) -> str:
    env = {**os.environ, "PYTHONPATH": tree}
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True,
                         text=True, timeout=1800, cwd="/")
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return out.stdout


def main() -> None:
    from support.faultproxy import LatencyProxy

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--delay-ms", type=float, default=50.0)
    ap.add_argument("--against", default=None, help="another checkout of distlog to compare with")
    args = ap.parse_args()
    import s3fs

    server, endpoint = start_moto()
    fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, client_kwargs={"endpoint_url": endpoint})
    trees = [("this", TREE)] + ([("against", os.path.abspath(args.against))] if args.against else [])
    rows, n = [], 0
    try:
        for end in ("closed", "killed"):
            template = f"resume-{end}"
            make_bucket(endpoint, template)
            child(FIRST, TREE, f"s3://{template}/root", endpoint, args.keys, args.rows, end)
            for name, tree in trees:
                took, requests, most = {}, 0, 0
                for delay in (0.0, args.delay_ms / 1000):
                    n += 1
                    bucket = f"resume-copy-{n}"
                    make_bucket(endpoint, bucket)
                    fs.copy(f"{template}/root", f"{bucket}/root", recursive=True)
                    with LatencyProxy(endpoint, delay=delay) as proxy:
                        proxy.reset()
                        out = child(RESUME, tree, f"s3://{bucket}/root", proxy.url, args.rows * 0.75)
                        took[delay] = json.loads(out.splitlines()[-1])["seconds"]
                        requests, most = len(proxy.log), proxy.max_in_flight  # (start and close)
                t0, t = took[0.0], took[args.delay_ms / 1000]
                rows.append([end, name, f"{t0:.2f}", f"{t:.2f}", f"{(t - t0) / (args.delay_ms / 1000):.0f}",
                             requests, most])
    finally:
        server.stop()
    print(f"{args.keys} series x {args.rows} rows, resumed at step {args.rows * 0.75:g}, "
          f"{args.delay_ms:g} ms per request")
    print(table(rows, ["first attempt", "tree", "start s at 0 ms", f"at {args.delay_ms:g} ms", "latency rounds",
                       "requests (start and close)", "most at once"]))


if __name__ == "__main__":
    main()
