"""distlog where people already train: one argument away in their framework.

    from distlog.integrations.lightning import DistlogLogger          # pip install distlog[lightning]
    from distlog.integrations.transformers import DistlogCallback     # pip install distlog[transformers]
    from distlog.integrations.accelerate import DistlogTracker        # pip install distlog[accelerate]

Each module imports its framework when it is imported itself (never on ``import distlog``); a
missing framework raises ``ImportError`` naming the extra to install.
"""

from __future__ import annotations

from .progress import tqdm_postfix

__all__ = ["tqdm_postfix"]
