"""Deterministic per-rank inputs for the flush tests, and their NumPy oracle.

Each scenario is a list of flush windows; a window maps rank -> list of (key, value) in the
order that rank collects them. The oracle reduces the same inputs with NumPy directly.
"""

from __future__ import annotations

import numpy as np

NAN, INF = float("nan"), float("inf")


def scenario(name: str, world: int) -> list[dict[int, list[tuple[str, float]]]]:
    rng = np.random.default_rng(abs(hash((name, world))) % 2**32 if False else 1234 + world)
    if name == "uneven":
        return [{r: [("loss", float(v)) for v in rng.normal(r, 1.0, size=3 * (r + 1))] for r in range(world)}]
    if name == "one_rank_key":
        w = {r: [("loss", float(r))] for r in range(world)}
        w[world - 1].append(("only_last", 42.0))
        return [w]
    if name == "empty_rank":
        w = {r: [("loss", float(r + 1)), ("acc", 0.5)] for r in range(world)}
        if world > 1:
            w[1] = []
        return [w]
    if name == "nonfinite":
        w = {r: [("loss", float(r + 1))] * 2 for r in range(world)}
        w[0] = [("loss", NAN), ("loss", INF), ("loss", 5.0), ("loss", -INF)]
        w[0] += [("allbad", NAN)]
        return [w]
    if name == "many_keys":
        keys = [f"k{i:04d}" for i in range(1000)]
        return [{r: [(k, float(i * 0.001 + r)) for i, k in enumerate(keys)] for r in range(world)}]
    if name == "order":
        keys = [f"m{i}" for i in range(20)]
        out = {}
        for r in range(world):
            ks = list(keys)
            np.random.default_rng(r).shuffle(ks)
            out[r] = [(k, float(r * 100 + int(k[1:]))) for k in ks]
        return [out]
    if name == "changing":
        return [
            {r: [("a", 1.0 + r), ("b", 2.0)] for r in range(world)},
            {r: [("a", 3.0 * r)] for r in range(world)},  # same union, subset collected
            {r: [("c", float(r)), ("a", 1.0)] for r in range(world)},  # new key
        ]
    raise KeyError(name)


SCENARIOS = ["uneven", "one_rank_key", "empty_rank", "nonfinite", "many_keys", "order", "changing"]


def oracle(window: dict[int, list[tuple[str, float]]]) -> dict[str, dict[str, float]]:
    by_key: dict[str, list[float]] = {}
    for r in sorted(window):
        for k, v in window[r]:
            by_key.setdefault(k, []).append(v)
    out = {}
    for k, vals in by_key.items():
        a = np.array(vals, dtype=np.float64)
        fin = a[np.isfinite(a)]
        out[k] = {
            "mean": float(fin.mean()) if fin.size else NAN,
            "min": float(fin.min()) if fin.size else NAN,
            "max": float(fin.max()) if fin.size else NAN,
            "sum": float(fin.sum()),
            "count": float(fin.size),
            "nonfinite": float(a.size - fin.size),
        }
    return out
