"""8 ranks on two pretend nodes save the same checkpoint to S3 (moto) at once: the blob is
uploaded once — one (multipart) upload counted at the server — and every rank records it."""

from __future__ import annotations

import pytest

from support.ranks import run_ranks
from support.faultproxy import RecordingProxy


pytestmark = [pytest.mark.dist, pytest.mark.s3]

SIZE_FLOATS = (17 << 20) // 4  # 17 MiB: over two 8 MiB parts, so s3fs uploads it in parts


def _worker(rank, world, url, options):
    import torch
    import torch.distributed as dist

    import distlog

    exp = distlog.get_logger(url, **options)
    with exp.run("s3dedup"):
        g = torch.Generator().manual_seed(1)
        ckpt = {"w": torch.randn(SIZE_FLOATS, generator=g)}  # identical on every rank
        dist.barrier()  # save at the same moment
        rec = exp.files("checkpoints").save_torch(ckpt, "model.pt")
        exp.flush()
        n_records = len(exp.files("checkpoints").records("model.pt"))
        same = torch.equal(exp.files("checkpoints").load_torch("model.pt")["w"], ckpt["w"])
    return rec, n_records, same


@pytest.mark.timeout(300)
def test_eight_ranks_upload_the_same_checkpoint_once(tmp_path, s3_bucket):
    from distlog.cas import blob_path

    with RecordingProxy(s3_bucket["endpoint_url"]) as proxy:
        options = dict(s3_bucket["storage_options"], endpoint_url=proxy.url)
        env = {r: {**s3_bucket["env"], "AWS_ENDPOINT_URL_S3": proxy.url,
                   "DISTLOG_HOSTNAME": "nodeA" if r < 4 else "nodeB"} for r in range(8)}
        results = run_ranks(_worker, 8, tmp_path, s3_bucket["url"], options, env=env, timeout=240)
        log = list(proxy.log)

    recs = [r[0] for r in results]
    digest = recs[0].sha256
    assert {r.sha256 for r in recs} == {digest} and {r.version for r in recs} == {1}
    assert {r.host for r in recs} == {"nodeA", "nodeB"}
    assert all(n == 8 and same for _, n, same in results)

    key = f"/{s3_bucket['bucket']}/run/{blob_path(digest)}"
    to_blob = [(m, q, n) for m, p, q, n in log if p == key and m in ("PUT", "POST")]
    starts = [e for e in to_blob if (e[0] == "POST" and "uploads" in e[1])
              or (e[0] == "PUT" and "partNumber" not in e[1])]
    parts = [e for e in to_blob if e[0] == "PUT" and "partNumber" in e[1]]
    assert len(starts) == 1, to_blob  # one upload of the blob, by one rank
    assert len(parts) == 3 and sum(n for _, _, n in parts) == recs[0].size  # multipart, once
    uploaded = sum(n for m, p, q, n in log if m in ("PUT", "POST"))
    assert uploaded < recs[0].size + (1 << 20)  # everything else is small (leases, manifests)
