"""``distlog serve ROOT``: a local, read-only web dashboard over a root.

    url = distlog.serve("runs")      # a notebook: the server runs in a thread
    $ distlog serve runs --port 8000

Modules: ``app`` (routes, access rules), ``api`` / ``logs_api`` / ``files_api`` (JSON over
``distlog.query``), ``downsample`` (M4: spikes survive), ``paths`` (what a request may
read), ``seriescache``, ``server`` (binding and threads), ``static/`` (the front-end, with
uPlot vendored from npm; no CDN). Starlette and uvicorn are imported only when serving
(``pip install distlog[dashboard]``).
"""

from __future__ import annotations

from typing import Any


def serve(root: Any, host: str = "127.0.0.1", port: int = 0, **kw: Any) -> Any:
    """Serve the dashboard of ``root`` in a background thread; returns its URL (a ``str``
    whose ``.stop()`` ends the server). See ``distlog.dashboard.server.serve``."""
    try:
        from .server import serve as _serve
    except ImportError as e:  # starlette/uvicorn are an extra
        raise ImportError(f"the dashboard needs starlette and uvicorn ({e}); "
                                  "pip install 'distlog[dashboard]'") from None
    return _serve(root, host, port, **kw)
