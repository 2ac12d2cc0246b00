"""The library's one voice for problems that must not stop training.

Everything distlog reports without raising (a failed write that will be retried, a refused
row, a suspicious flush) goes through ``warn``: the stdlib logger ``"distlog"`` at WARNING,
so users can silence or route it (``logging.getLogger("distlog").setLevel(logging.ERROR)``).
With no handler configured, Python's last-resort handler prints it to stderr. Repeats of one
message kind are rate-limited, so a failing store cannot flood a training log.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("distlog")

_lock = threading.Lock()
_last: dict[str, tuple[float, int]] = {}  # kind -> (time last shown, repeats suppressed since)


def warn(message: str, *, kind: str | None = None, every: float = 60.0) -> bool:
    """Report ``message`` unless a message of the same ``kind`` was shown less than ``every``
    seconds ago (then it is counted, and the count shown with the next one). True if shown."""
    kind = kind or message
    now = time.monotonic()
    with _lock:
        shown, suppressed = _last.get(kind, (-float("inf"), 0))
        if now - shown < every:
            _last[kind] = (shown, suppressed + 1)
            return False
        _last[kind] = (now, 0)
    more = f" ({suppressed} similar message(s) suppressed)" if suppressed else ""
    logger.warning("distlog: %s%s", message, more)
    return True
