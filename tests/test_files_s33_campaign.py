"""A user's campaign of the files API across real gloo ranks on two pretend nodes, on local
disk and on S3 (moto): the same and different bytes under one name from every rank, large
files (the upload lease), hostile names, then every answer — ``exp.files`` during the run,
``open_run(...).files``, ``distlog files`` and the dashboard's files API — compared with an
oracle of what each save stored (sha256 of its bytes)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from contextlib import redirect_stdout

import pytest

from support.hostile_names import FIXED, seeded_names
from support.ranks import run_ranks

pytestmark = pytest.mark.dist

ROUNDS = 3
BIG = 3 << 20  # over the CAS lease threshold (1 MiB): N ranks upload it once
NAMES = FIXED[::3] + seeded_names(n=4)  # a spread of hostile names, a third of them


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _campaign(rank, world, url, options, tmp, names):
    import numpy as np
    import torch.distributed as dist

    import distlog

    exp = distlog.get_logger(url, **options)
    saves, refused = [], []

    def note(rec, data):
        assert rec.sha256 == _sha(data) and rec.size == len(data), (rec, len(data))
        saves.append((rec.path, rec.version, rec.sha256, rank, rec.step))

    with exp.run("camp"):
        run_url = exp.run_url
        f = exp.files("c")
        for k in range(ROUNDS):
            dist.barrier()  # every rank saves at once
            d = f"shared {k}".encode()
            note(f.save(d, "shared.bin", step=k), d)
            d = f"race {rank} {k}".encode()
            note(f.save(d, "race.bin", step=k), d)
            d = f"rank {rank} own {k}".encode()
            note(f.save(d, f"rank{rank}/own.bin", step=k), d)
        # large files from a local path: the same bytes on every rank, and each rank's own
        same = np.random.default_rng(0).bytes(BIG)
        mine = np.random.default_rng(100 + rank).bytes(BIG)
        for name, data in (("big/same.bin", same), ("big/mine.bin", mine)):
            p = os.path.join(tmp, f"{name.replace('/', '_')}.{rank}")
            with open(p, "wb") as out:
                out.write(data)
            dist.barrier()
            note(f.log_file(name, p, step=10), data)
        # hostile names, each rank its own bytes under each accepted name
        odd = exp.files("odd")
        for name in names:
            data = f"{rank}:{name!r}".encode()
            try:
                rec = odd.save(data, name, step=20)
            except ValueError:
                refused.append(name)
                continue
            note(rec, data)
        exp.flush()  # a barrier: every rank's records are on the store
        # what this rank reads back while the run is open, every version of every path
        seen = {}
        for rec in exp.files.list():
            for v in exp.files.versions(rec.path):
                with exp.files.open(rec.path, version=v.version) as fh:
                    seen[(rec.path, v.version)] = _sha(fh.read())
                assert exp.files.info(rec.path, version=v.version).sha256 == v.sha256
    return saves, refused, seen, run_url


def _verify(results, url, options, cli_opts, names, every=1):
    """``every``: read the bytes of every ``every``-th (path, version) through each reader (on
    S3 each read of a run reader lists and reads every manifest segment again)."""
    import distlog

    saves = [s for r in results for s in r[0]]
    refused = {n for r in results for n in r[1]}
    assert all(set(r[1]) == refused for r in results)  # every rank refuses the same names
    assert len(refused) < len(names)
    contents: dict[tuple[str, int], set[str]] = {}
    for path, v, sha, _, _ in saves:
        contents.setdefault((path, v), set()).add(sha)
    clash = {k: s for k, s in contents.items() if len(s) > 1}
    assert not clash, f"one version, several contents: {clash}"
    oracle = {k: next(iter(s)) for k, s in contents.items()}
    newest = {}
    for (path, v) in oracle:
        newest[path] = max(v, newest.get(path, 0))
    # distinct contents saved at once under one name: one version each
    for path in ("c/race.bin", "c/big/mine.bin") + tuple(f"c/odd/{n}" for n in names if n not in refused):
        got = {oracle[k] for k in oracle if k[0] == path}
        want = {s[2] for s in saves if s[0] == path}
        assert got == want and len([k for k in oracle if k[0] == path]) == len(want), path
    assert {k: v for k, v in oracle.items() if k[0] in ("c/shared.bin", "c/big/same.bin")} == {
        **{("c/shared.bin", k + 1): _sha(f"shared {k}".encode()) for k in range(ROUNDS)},
        ("c/big/same.bin", 1): oracle[("c/big/same.bin", 1)]}

    for _, _, seen, _ in results:  # during the run, on every rank
        assert seen == oracle

    run = distlog.open_run(results[0][3], **options)
    recs = run.files.records()
    assert Counter((r.path, r.version, r.sha256, r.rank) for r in recs) == Counter(s[:4] for s in saves)
    sample = sorted(oracle.items())[::every]
    for (path, v), sha in sample:
        assert _sha(run.files.read_bytes(path, version=v)) == sha, (path, v)
        assert run.files.find(path, version=v).sha256 == sha
    for path in sorted(newest)[::every]:
        assert [r.version for r in run.files.versions(path)] == sorted(v for p, v in oracle if p == path)
        with run.files.open(path) as fh:
            assert _sha(fh.read()) == oracle[(path, newest[path])], path
    latest = run.files.table(latest=True)
    assert sorted(latest["path"]) == sorted(newest)
    for _, row in latest.iterrows():
        assert (row["version"], row["sha256"]) == (newest[row["path"]], oracle[(row["path"], newest[row["path"]])])
        last = max((r for r in recs if r.path == row["path"] and r.version == row["version"]),
                   key=lambda r: r.time)
        assert row["time"] == last.time and row["rank"] == last.rank

    from distlog.cli import main as cli

    for extra, want in (([], {(p, newest[p], oracle[(p, newest[p])]) for p in newest}),
                        (["--all-versions"], Counter((s[0], s[1], s[2]) for s in saves))):
        out = io.StringIO()
        with redirect_stdout(out):
            assert cli(["files", results[0][3], "--format", "json", *cli_opts, *extra]) == 0
        rows = json.loads(out.getvalue())
        got = [(r["path"], r["version"], r["sha256"]) for r in rows]
        assert (set(got) if not extra else Counter(got)) == want, extra

    from starlette.testclient import TestClient

    from distlog.dashboard.app import make_app

    client = TestClient(make_app(distlog.open_root(url, **options)), base_url="http://127.0.0.1")
    listing = client.get("/api/files", params={"run": "default/camp"})
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert Counter((r["path"], r["version"], r["sha256"], r["rank"]) for r in body["files"]) == Counter(
        s[:4] for s in saves)
    assert body["latest"] == sorted(newest) and body["count"] == len(newest)
    for (path, v), sha in sample:
        r = client.get("/api/file", params={"run": "default/camp", "path": path, "version": v})
        assert r.status_code == 200 and _sha(r.content) == sha, (path, v, r.status_code)
    r = client.get("/api/file", params={"run": "default/camp", "path": "c/big/same.bin"},
                   headers={"Range": "bytes=1048570-1048579"})
    assert r.status_code == 206 and len(r.content) == 10


def _env(extra, world):
    return {r: {**extra, "DISTLOG_HOSTNAME": "nodeA" if r < world // 2 else "nodeB"} for r in range(world)}


@pytest.mark.timeout(300)
def test_files_campaign_on_local_disk(tmp_path):
    root = str(tmp_path / "root")
    results = run_ranks(_campaign, 4, tmp_path, root, {}, str(tmp_path), NAMES, env=_env({}, 4), timeout=240)
    _verify(results, root, {}, [], NAMES)


@pytest.mark.timeout(540)
def test_files_campaign_on_s3(tmp_path, s3_bucket):
    opts = s3_bucket["storage_options"]
    names = NAMES[::4]  # (2 ranks, a few names: the race on S3 has its own test with 3 ranks;
    # 3 ranks and half the names took ~130 s of the suite)
    results = run_ranks(_campaign, 2, tmp_path, s3_bucket["url"], opts, str(tmp_path), names,
                        env=_env(s3_bucket["env"], 2), timeout=360)
    _verify(results, s3_bucket["url"], opts, [f"-O{k}={v}" for k, v in opts.items()], names, every=5)
