"""4 gloo ranks on two pretend nodes: the same checkpoint is one blob with four records (one
version); per-rank bytes are distinct blobs; rank 0's files table holds every rank's records."""

from __future__ import annotations

import json
import os

import pytest

from distlog.cas import BLOB_DIR
from distlog.layout import FILES_TABLE, MANIFEST_DIR, manifest_path, table_commit, table_zarr
from support.ranks import run_ranks

pytestmark = pytest.mark.dist


def _worker(rank, world, root):
    import torch

    import distlog

    exp = distlog.get_logger(root)
    with exp.experiment("dedup"), exp.run("r"):
        torch.manual_seed(0)  # every rank builds the same model
        model = torch.nn.Linear(64, 64)
        with exp.step(10):
            shared = exp.files("checkpoints").save(model.state_dict(), "model.pt")
        own = exp.files.save(torch.full((8,), float(rank)), f"rank-{rank}.pt")
        ev = exp.files.save({"rank": rank}, "eval.json")  # one name, each rank's own bytes
        exp.flush()  # a collective: after it, every rank's first records are on the store
        seen = exp.files("checkpoints").records("model.pt")
        back = exp.files("checkpoints").load_torch("model.pt")
        ok = torch.equal(back["weight"], model.state_dict()["weight"])
        other = exp.files.load_torch(f"rank-{(rank + 1) % world}.pt")
        return shared, own, len(seen), ok, float(other[0]), exp.run_url, ev


@pytest.mark.timeout(240)
def test_same_checkpoint_on_four_ranks_two_nodes_is_one_blob(tmp_path):
    root = str(tmp_path / "root")
    env = {r: {"DISTLOG_HOSTNAME": "nodeA" if r < 2 else "nodeB"} for r in range(4)}
    results = run_ranks(_worker, 4, tmp_path, root, env=env, timeout=180)
    shared = [r[0] for r in results]
    assert len({s.sha256 for s in shared}) == 1
    assert [s.version for s in shared] == [1, 1, 1, 1]  # one logical file, four records
    assert [s.host for s in shared] == ["nodeA", "nodeA", "nodeB", "nodeB"]
    assert [s.rank for s in shared] == [0, 1, 2, 3] and {s.step for s in shared} == {10}
    assert all(r[2] == 4 and r[3] for r in results)
    own = [r[1] for r in results]
    assert len({o.sha256 for o in own}) == 4  # different bytes, distinct blobs
    assert [r[4] for r in results] == [1.0, 2.0, 3.0, 0.0]  # any rank reads another's file

    blobs = [n for d in os.listdir(os.path.join(root, BLOB_DIR))
             for n in os.listdir(os.path.join(root, BLOB_DIR, d))]
    assert sorted(blobs) == sorted({shared[0].sha256} | {o.sha256 for o in own} | {r[6].sha256 for r in results})

    run_dir = os.path.join(root, "dedup", "r")
    assert sorted(os.listdir(os.path.join(run_dir, MANIFEST_DIR))) == [
        os.path.basename(manifest_path(r)) for r in range(4)]
    commit = json.load(open(os.path.join(run_dir, table_commit(FILES_TABLE))))
    assert commit["length"] == 12
    import zarr

    g = zarr.open_group(os.path.join(run_dir, table_zarr(FILES_TABLE)), mode="r")
    rows = list(zip(g["path"][:], g["rank"][:].tolist(), g["host"][:], g["version"][:].tolist()))
    assert sorted(r for r in rows if r[0] == "checkpoints/model.pt") == [
        ("checkpoints/model.pt", 0, "nodeA", 1), ("checkpoints/model.pt", 1, "nodeA", 1),
        ("checkpoints/model.pt", 2, "nodeB", 1), ("checkpoints/model.pt", 3, "nodeB", 1)]
    assert sorted(r[0] for r in rows if r[0] not in ("checkpoints/model.pt", "eval.json")) == [
        f"rank-{r}.pt" for r in range(4)]

    # a file every rank saved under one name: its newest version by default, a rank's by rank=
    import distlog

    files = distlog.open_run(run_dir).files
    assert len([r for r in files.records() if r.path == "eval.json"]) == 4
    # (saves racing on several ranks may share a version number: no order among them is asked)
    assert files.load("eval.json") == {"rank": files.find("eval.json").rank}
    assert [files.load("eval.json", rank=r) for r in range(4)] == [{"rank": r} for r in range(4)]
    assert json.loads(files.read_bytes("eval.json", rank=3)) == {"rank": 3}
    with files.open("eval.json", rank=2) as f:
        assert json.loads(f.read()) == {"rank": 2}
    with pytest.raises(KeyError, match=r"rank 7 saved no file 'eval.json'; ranks: 0, 1, 2, 3"):
        files.load("eval.json", rank=7)
