"""Rolling statistics over the values this process saw (the design document's ScalarCache)."""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

#: the design document's percentiles
PERCENTILES = (0, 1, 5, 10, 20, 25, 40, 50, 60, 75, 80, 90, 95, 99, 100)


def summary_frequencies(up_to: int = 10**7) -> list[int]:
    """1, 5, 10, 15, 20, 25, 30, 40, 50, 75, 80, 100, 120, 150, 200, 250, 300, 400, 500, 600,
    1000, 1200, ... — the design document's list, continued by decades."""
    out = [1, 5, 10, 15, 20, 25, 30, 40, 50, 75, 80]
    decade = 100
    while decade <= up_to:
        out += [int(decade * m) for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6)]
        decade *= 10
    return [f for f in out if f <= up_to]


@dataclass(frozen=True)
class Stats:
    mean: float
    var: float
    std: float
    min: float
    max: float
    count: int


class ScalarCache:
    """Keeps the last ``window`` (step, value) points per key."""

    def __init__(self, window: int = 10_000) -> None:
        self.window = window
        self._data: dict[str, collections.deque] = {}
        # flush results wait here until a query needs them; at most `window` flushes matter
        self._pending: collections.deque = collections.deque(maxlen=window)

    def add_batch(self, keys: tuple[str, ...], step: float, values: np.ndarray) -> None:
        """Many keys at one step (a flush); kept as one item until a query needs them."""
        self._pending.append((keys, step, values))

    def _materialize(self) -> None:
        pending = list(self._pending)
        self._pending.clear()
        for keys, step, values in pending:
            for k, v in zip(keys, values.tolist()):
                self.add(k, step, v)

    def add(self, key: str, step: float, value: float) -> None:
        d = self._data.get(key)
        if d is None:
            d = self._data[key] = collections.deque(maxlen=self.window)
        d.append((step, value))

    def keys(self) -> list[str]:
        self._materialize()
        return sorted(self._data)

    def _values(self, key: str, window: int | None) -> np.ndarray:
        self._materialize()
        if key not in self._data:
            raise KeyError(f"no values for metric {key!r}; known: {', '.join(self.keys()) or 'none yet'}")
        pts = list(self._data[key])
        if window is not None:
            pts = pts[-window:]
        v = np.array([p[1] for p in pts], dtype=np.float64)
        return v[np.isfinite(v)]

    def stats(self, key: str, window: int | None = None) -> Stats:
        v = self._values(key, window)
        if v.size == 0:
            nan = float("nan")
            return Stats(nan, nan, nan, nan, nan, 0)
        return Stats(float(v.mean()), float(v.var()), float(v.std()), float(v.min()), float(v.max()), int(v.size))

    def percentile(self, key: str, p: float, window: int | None = None) -> float:
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be within 0..100, got {p!r}")
        v = self._values(key, window)
        return float(np.percentile(v, p)) if v.size else float("nan")

    def summary(self, key: str, frequency: int) -> list[dict[str, float]]:
        """Per-window summaries: one entry per ``frequency`` consecutive steps."""
        allowed = summary_frequencies(max(frequency, 1))
        if frequency not in allowed:
            raise ValueError(f"frequency must be one of {allowed[:20]}...; got {frequency!r}")
        self._materialize()
        if key not in self._data:
            raise KeyError(f"no values for metric {key!r}; known: {', '.join(self.keys()) or 'none yet'}")
        pts = np.array(list(self._data[key]), dtype=np.float64).reshape(-1, 2)
        out = []
        bins = np.floor(pts[:, 0] / frequency)
        for b in np.unique(bins):
            v = pts[bins == b, 1]
            v = v[np.isfinite(v)]
            out.append({
                "step": float(b * frequency), "count": int(v.size),
                "mean": float(v.mean()) if v.size else float("nan"),
                "min": float(v.min()) if v.size else float("nan"),
                "max": float(v.max()) if v.size else float("nan"),
            })
        return out
