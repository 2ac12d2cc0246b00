"""NumPy float64 and float subclasses through log()/collect()/flush() (the hot path takes any
float instance since s33): stored rows equal a NumPy oracle computed from ``float(v)``, in one
process and on 2 gloo ranks (a key one rank alone collects included)."""

from __future__ import annotations

import numpy as np
import pytest

from support.ranks import run_ranks


class Custom(float):
    """A float subclass whose ``float()`` is not its own value (as a unit-carrying type may)."""

    def __float__(self) -> float:
        return float.__float__(self) * 10.0


class Plain(float):
    pass


def _value(rank: int, step: int, j: int):
    x = 0.5 * step + rank + 0.25 * j
    kind = (step + j + rank) % 7
    if kind == 0:
        return np.float64(x)
    if kind == 1:
        return Custom(x)
    if kind == 2:
        return Plain(x)
    if kind == 3:
        return np.float64("nan") if step % 2 else np.float64("-inf")
    if kind == 4:
        return Custom("nan")
    if kind == 5:
        return int(step)
    return x


KEYS = ("a", "b", "c")
STEPS, PER_STEP = 6, 3


def _collected(rank: int) -> dict[tuple[int, str], list]:
    out: dict[tuple[int, str], list] = {}
    for step in range(STEPS):
        for i in range(PER_STEP):
            for j, k in enumerate(KEYS):
                out.setdefault((step, k), []).append(_value(rank, step, i + j))
        if rank == 1 and step % 2:
            out.setdefault((step, "only1"), []).append(Custom(step))
    return out


def _drive(exp, rank: int) -> None:
    m = exp.metrics("t")
    col = _collected(rank)
    for step in range(STEPS):
        for i in range(PER_STEP):
            m.collect({k: _value(rank, step, i + j) for j, k in enumerate(KEYS)}, step=step)
        if rank == 1 and step % 2:
            m.collect({"only1": Custom(step)}, step=step)
        exp.metrics.flush()
        v = _value(rank, step, 1)
        exp.metrics("l").log({"x": v, "y": np.float64(step) / 3}, step=step)
    assert col  # (the oracle reads the same values)


def _oracle(world: int) -> dict[str, list[tuple]]:
    per: dict[str, dict[int, list[float]]] = {}
    for r in range(world):
        for (step, k), vs in _collected(r).items():
            per.setdefault(f"t/{k}", {}).setdefault(step, []).extend(float(v) for v in vs)
    out = {}
    for key, by_step in per.items():
        rows = []
        for step in sorted(by_step):
            a = np.array(by_step[step])
            fin = a[np.isfinite(a)]
            rows.append((step, fin.mean() if fin.size else np.nan, fin.min() if fin.size else np.nan,
                         fin.max() if fin.size else np.nan, fin.sum(), fin.size, a.size - fin.size))
        out[key] = rows
    out["l/x"] = [(s, float(_value(0, s, 1))) for s in range(STEPS)]
    out["l/y"] = [(s, float(np.float64(s) / 3)) for s in range(STEPS)]
    return out


def _check(url: str, world: int) -> None:
    import distlog

    run = distlog.open_run(url)
    want = _oracle(world)
    for key, rows in want.items():
        f = run.metrics.frame(key)
        if key.startswith("l/"):
            np.testing.assert_array_equal(f["step"].to_numpy(), [r[0] for r in rows], err_msg=key)
            np.testing.assert_allclose(f["value"].to_numpy(), [r[1] for r in rows], err_msg=key,
                                       equal_nan=True)
            continue
        got = f[["step", "mean", "min", "max", "sum", "count", "nonfinite"]].to_numpy(float)
        np.testing.assert_allclose(got, np.array(rows, dtype=float), rtol=1e-12, equal_nan=True,
                                   err_msg=key)


def test_one_process_against_numpy(tmp_path) -> None:
    import distlog

    exp = distlog.get_logger(str(tmp_path))
    with exp.experiment("e"), exp.run("r"):
        _drive(exp, 0)
    _check(str(tmp_path / "e" / "r"), 1)


def _rank(rank: int, world: int, root: str) -> None:
    import distlog

    exp = distlog.get_logger(root, flush_timeout=60)
    with exp.experiment("e"), exp.run("r"):
        _drive(exp, rank)


@pytest.mark.dist
@pytest.mark.timeout(120)
def test_two_ranks_against_numpy(tmp_path) -> None:
    root = str(tmp_path / "root")
    run_ranks(_rank, 2, tmp_path, root, timeout=90)
    _check(f"{root}/e/r", 2)
    import distlog
    per_rank = distlog.open_run(f"{root}/e/r").metrics  # rank 1's own logged values
    assert per_rank is not None
