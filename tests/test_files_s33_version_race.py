"""Ranks racing to save one name with different bytes each get their own version number:
``load(name, version=N)`` names one content, whichever rank or process asks (local disk and
S3 on moto). Identical bytes saved at once stay one version."""

from __future__ import annotations

import hashlib

import pytest

from support.ranks import run_ranks

pytestmark = pytest.mark.dist

ROUNDS = 6


def _racer(rank, world, url, options):
    import torch.distributed as dist

    import distlog

    exp = distlog.get_logger(url, **options)
    mine = []
    with exp.run("race"):
        url = exp.run_url
        files = exp.files("ckpt")
        for k in range(ROUNDS):
            data = f"rank {rank} round {k}".encode()
            dist.barrier()  # every rank saves at the same moment
            mine.append((files.save(data, "model.bin").version, hashlib.sha256(data).hexdigest()))
            dist.barrier()
            # the same bytes on every rank at once: one version
            same = files.save(f"shared {k}".encode(), "shared.bin")
            mine.append((same.version, same.sha256))
        exp.flush()
        seen = {r.version: hashlib.sha256(files.read_bytes("model.bin", version=r.version)).hexdigest()
                for r in files.versions("model.bin")}
    return mine, seen, url


def _check(results, url, options):
    import distlog

    by_version: dict[tuple[str, int], set[str]] = {}
    for mine, _, _ in results:
        for i, (v, sha) in enumerate(mine):
            by_version.setdefault(("model.bin" if i % 2 == 0 else "shared.bin", v), set()).add(sha)
    clashes = {k: s for k, s in by_version.items() if len(s) > 1}
    assert not clashes, f"one version number given to different bytes: {clashes}"
    world = len(results)
    model = sorted(v for (n, v) in by_version if n == "model.bin")
    assert len(model) == world * ROUNDS  # every distinct content its own number
    shared = sorted(v for (n, v) in by_version if n == "shared.bin")
    assert shared == list(range(1, ROUNDS + 1))  # identical bytes at once: one version each
    oracle = {v: next(iter(s)) for (n, v), s in by_version.items() if n == "model.bin"}
    run = distlog.open_run(results[0][2], **options)
    for v, sha in oracle.items():
        assert hashlib.sha256(run.files.read_bytes("ckpt/model.bin", version=v)).hexdigest() == sha, v
    for _, seen, _ in results:  # what each rank read back during the run
        assert all(oracle[v] == sha for v, sha in seen.items())


@pytest.mark.timeout(240)
def test_racing_ranks_get_distinct_versions_on_local_disk(tmp_path):
    root = str(tmp_path / "root")
    env = {r: {"DISTLOG_HOSTNAME": "nodeA" if r < 2 else "nodeB"} for r in range(4)}
    results = run_ranks(_racer, 4, tmp_path, root, {}, env=env, timeout=180)
    _check(results, root, {})


@pytest.mark.timeout(300)
def test_racing_ranks_get_distinct_versions_on_s3(tmp_path, s3_bucket):
    env = {r: {**s3_bucket["env"], "DISTLOG_HOSTNAME": "nodeA" if r < 2 else "nodeB"} for r in range(3)}
    results = run_ranks(_racer, 3, tmp_path, s3_bucket["url"], s3_bucket["storage_options"],
                        env=env, timeout=240)
    _check(results, s3_bucket["url"], s3_bucket["storage_options"])
