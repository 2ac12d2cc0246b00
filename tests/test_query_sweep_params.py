"""Sweep queries over params that look alike or are damaged: what ``read_metrics`` groups,
``table`` shows and ``distlog ls``/``compare`` list equals a plain-Python oracle over the
values that were written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import distlog


def _runs(root: Path, params: dict[str, dict], loss) -> None:
    exp = distlog.get_logger(str(root))
    with exp.experiment("e"):
        for rid, p in params.items():
            with exp.run(rid, params=p):
                for step, v in enumerate(loss(rid)):
                    exp.metrics.log(step=step, loss=v)
    exp.close()


# ---- list and array params group by value, as runs(params=...) selects them ---------------
@pytest.mark.timeout(120)
def test_list_and_array_params_group_by_their_values(tmp_path):
    big = np.arange(2000.0)  # NumPy prints it cut: "[0.000e+00 1.000e+00 ... 1.999e+03]"
    other = big.copy()
    other[1000] = -1.0  # the same printed text, another value
    params = {
        "a": {"milestones": [30, 60], "w": big, "seed": 0},
        "b": {"milestones": [30.0, 60.0], "w": big, "seed": 1},  # equal to a's
        "c": {"milestones": [30, 90], "w": big, "seed": 2},
        "d": {"milestones": [30, 60], "w": other, "seed": 3},
    }
    values = {rid: [float(i), 10.0 + i] for i, rid in enumerate(params)}
    _runs(tmp_path, params, lambda rid: values[rid])
    root = distlog.open_root(tmp_path)

    # the oracle: runs meet when their values are equal (Python's ==, elementwise for arrays)
    def same(p, q):
        return p["milestones"] == q["milestones"] and np.array_equal(p["w"], q["w"])

    groups: list[list[str]] = []
    for rid, p in params.items():
        for g in groups:
            if same(params[g[0]], p):
                g.append(rid)
                break
        else:
            groups.append([rid])
    assert groups == [["a", "b"], ["c"], ["d"]]
    want = sorted((len(g), float(np.mean([values[r][1] for r in g]))) for g in groups)

    df = root.read_metrics("loss", "e")
    last = df[df["step"] == 1]
    assert sorted(zip(last["runs"].tolist(), last["mean"].tolist())) == want
    assert set(df.columns) >= {"milestones", "w"}  # both vary between the groups

    # as the filter selects them
    assert [r.info.run_id for r in root.runs("e", params={"milestones": [30, 60]})] == ["a", "b", "d"]
    # the sweep table shows both params as varying
    t = root.table("e", varying_only=True)
    assert {"milestones", "w", "seed"} <= set(t.columns)
