"""Starting the dashboard: ``distlog serve ROOT`` and ``distlog.serve(root)``.

The root is opened (and listed) before the server starts, so a root that cannot be opened is
reported at once. The socket is bound here, before uvicorn starts, so port 0 gives a free
port whose URL is known immediately. Binding anything but loopback requires a token (one is
made when none is given) and prints it as part of the URL.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import time
from typing import Any

from ..query.root import RootReader, open_root


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}; "
                      "choose another --port (0 picks a free one)") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Dashboard(str):
    """The URL of a running dashboard (with its token when there is one); ``stop()`` ends it."""

    server: Any
    thread: threading.Thread | None
    sock: socket.socket

    def __new__(cls, url: str, server: Any, thread: threading.Thread | None,
                sock: socket.socket) -> "Dashboard":
        self = super().__new__(cls, url)
        self.server, self.thread, self.sock = server, thread, sock
        return self

    @property
    def url(self) -> str:
        return str.__str__(self)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Dashboard":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def prepare(root: Any, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
            storage_options: dict[str, Any] | None = None, ttl: float = 3.0) -> tuple[Any, socket.socket, str]:
    """Open the root, make the app, bind the socket: ``(uvicorn server, socket, url)``."""
    import uvicorn

    from .app import make_app

    reader = root if isinstance(root, RootReader) else open_root(root, allow_empty=True,
                                                                 **(storage_options or {}))
    loopback = is_loopback(host)
    if not loopback and not token:
        token = secrets.token_urlsafe(24)
    sock = bind(host, port)
    app = make_app(reader, token=token, loopback_only=loopback, ttl=ttl)
    threading.Thread(target=app.state.api.warm, name="distlog-warm", daemon=True).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    shown = host if host not in ("0.0.0.0", "::") else socket.gethostname()
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    if token:
        url += f"?token={token}"
    return server, sock, url


def serve(root: Any, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
          open_browser: bool = False, storage_options: dict[str, Any] | None = None,
          **more_storage_options: Any) -> Dashboard:
    """Serve the dashboard of ``root`` from a background thread and return its URL at once
    (a ``str``; ``.stop()`` ends the server).
    Storage options are given as ``storage_options={...}`` or as keywords, as for
    ``get_logger``. ``host`` other than loopback requires a token (made if not given).
    """
    opts = {**(storage_options or {}), **more_storage_options}
    server, sock, url = prepare(root, host, port, token, opts)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="distlog-dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError(f"the dashboard did not start within 10 s at {url}")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    return Dashboard(url, server, thread, sock)


def serve_forever(server: Any, sock: socket.socket) -> None:
    """Run in the calling thread until Ctrl-C (uvicorn handles SIGINT/SIGTERM)."""
    server.run(sockets=[sock])
