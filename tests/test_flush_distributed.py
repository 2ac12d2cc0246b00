"""collect/flush on real gloo ranks, compared with a NumPy oracle over the same inputs."""

import math
import os

import pytest

from support.ranks import run_ranks
from support.flush_scenarios import SCENARIOS, oracle, scenario

pytestmark = pytest.mark.dist

STATS = ("mean", "min", "max", "sum", "count", "nonfinite")


def _worker(rank, world, root, names, as_tensors):
    import torch

    import distlog

    exp = distlog.get_logger(root)
    out = {}
    with exp.experiment("flush"), exp.run("r"):
        comm = exp.current_run.comm
        for name in names:
            results = []
            for i, window in enumerate(scenario(name, world)):
                ns = exp.metrics(name)
                for key, value in window.get(rank, []):
                    v = torch.tensor(value, dtype=torch.float32 if key == "loss" else torch.float64) if as_tensors else value
                    ns.collect(step=10 * i + rank, **{key: v})
                before = comm.calls
                red = exp.metrics.flush()
                calls = comm.calls - before
                results.append(({k: red[k] for k in red.keys}, calls))
            out[name] = results
    return out


def _close(a, b, rel=1e-12):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=rel, abs=1e-12)


@pytest.mark.parametrize("world", [1, 2, 4])
@pytest.mark.timeout(240)
def test_flush_matches_numpy_oracle(tmp_path, world):
    root = str(tmp_path / "root")
    if world == 1:
        res = [_worker(0, 1, root, SCENARIOS, False)]  # no process group: the laptop path
    else:
        # 2 ranks: small buckets go in one all_gather; 4 ranks: forced onto two all_reduces
        env = {"DISTLOG_GATHER_MAX_BYTES": "0"} if world == 4 else {}
        res = run_ranks(_worker, world, tmp_path, root, SCENARIOS, False, timeout=180, env=env)
    from distlog.storage import open_storage
    from distlog.layout import SCALARS_TABLE
    from distlog.writers.rowstore import read_commit, read_series

    store = open_storage(os.path.join(root, "flush", "r"))
    commit = read_commit(store, SCALARS_TABLE)
    for name in SCENARIOS:
        windows = scenario(name, world)
        stored_rows: dict[str, list] = {}
        for i, window in enumerate(windows):
            want = oracle(window)
            for rank in range(world):
                got, calls = res[rank][name][i]
                prefixed = {f"{name}/{k}": v for k, v in want.items()}
                # every rank gets the same reduced values, for every key of the union
                for key, stats in prefixed.items():
                    for s in STATS:
                        assert _close(got[key][s], stats[s]), (name, i, rank, key, s, got[key][s], stats[s])
                if world > 1:
                    # steady state: one all_gather (2 ranks) or three all_reduces (4 ranks:
                    # SUM, MAX, MAX of the argmin/argmax ranks); a new key set costs one more
                    assert calls <= (4 if world == 4 else 2), (name, i, calls)
            for key, stats in want.items():
                stored_rows.setdefault(f"{name}/{key}", []).append((max(10 * i + r for r in window if window[r]) if any(window.values()) else None, stats))
        for key, expected in stored_rows.items():
            rows = read_series(store, SCALARS_TABLE, key, commit)
            assert len(rows) == len(expected), (key, rows)
            for row, (step, stats) in zip(rows, expected):
                assert row[0] == step
                assert _close(row[2], stats["mean"])  # headline = mean
                for j, s in enumerate(STATS):
                    assert _close(row[3 + j], stats[s]), (key, s, row[3 + j], stats[s])
    # a flush that adds no key costs 1 collective (gather) or 3 (all_reduces: SUM, MAX, and MAX
    # of the argmin/argmax ranks); a new key one more
    if world > 1:
        steady = 1 if world == 2 else 3
        assert res[0]["changing"][1][1] == steady
        assert res[0]["changing"][2][1] == steady + 1


@pytest.mark.timeout(180)
def test_cpu_tensors_and_namespaces(tmp_path):
    root = str(tmp_path / "root")
    res = run_ranks(_worker, 2, tmp_path, root, ["uneven", "one_rank_key"], True, timeout=120)
    for name in ("uneven", "one_rank_key"):
        want = oracle(scenario(name, 2)[0])
        got = res[1][name][0][0]
        for k, stats in want.items():
            rel = 1e-6 if k == "loss" else 1e-12  # float32 inputs
            for s in STATS:
                assert _close(got[f"{name}/{k}"][s], stats[s], rel), (k, s)


def _nested_ns_worker(rank, world, root):
    import distlog

    exp = distlog.get_logger(root)
    with exp.run("ns"):
        exp.metrics("train")("inner").collect(step=1, loss=float(rank))
        exp.metrics("val").collect(step=1, acc=1.0)
        red = exp.metrics.flush(_aggregation="max")
        return sorted(red.keys), red["train/inner/loss"]["max"]


@pytest.mark.timeout(120)
def test_nested_namespaces_and_headline(tmp_path):
    root = str(tmp_path / "root")
    res = run_ranks(_nested_ns_worker, 2, tmp_path, root, timeout=90)
    assert res[0] == res[1] == (["train/inner/loss", "val/acc"], 1.0)
    from distlog.storage import open_storage
    from distlog.layout import SCALARS_TABLE
    from distlog.writers.rowstore import read_series

    rows = read_series(open_storage(os.path.join(root, "default", "ns")), SCALARS_TABLE, "train/inner/loss")
    assert rows[0, 2] == 1.0 and rows[0, 3] == 0.5  # value = max (headline), mean kept too
