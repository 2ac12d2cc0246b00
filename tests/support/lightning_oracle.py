"""What Lightning hands its loggers, recorded beside distlog's: the oracle of the Lightning
tests (import it after ``pytest.importorskip("lightning.pytorch")``)."""

from __future__ import annotations

import lightning.pytorch as pl


class Recording(pl.loggers.Logger):
    """Each ``log_metrics`` call Lightning makes: ``(step, values)``, step by step."""

    name, version = "rec", "0"

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[int, dict]] = []

    def log_hyperparams(self, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.rows.append((step, dict(metrics)))

    def values(self, key: str) -> list[tuple[int, float]]:
        return [(s, float(m[key])) for s, m in self.rows if key in m]
