"""The ASGI app: JSON routes, the static front-end, errors as JSON, and the access rules.

Access: with a token (required whenever the server listens on anything but loopback) every
request must carry it — ``?token=`` (the URL printed at start; it then sets a same-site,
HTTP-only cookie so that images and videos load), the ``X-Distlog-Token`` header, or that
cookie. Without a token the server listens on loopback only and checks the ``Host`` header,
so a web page on another site cannot reach it through DNS rebinding. Every route is GET or
HEAD: nothing writes to the store.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from http.cookies import SimpleCookie
from typing import Any, Callable
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..query.errors import KeyNotFound, QueryError
from ..query.root import RootReader
from . import files_api, logs_api, ranks_api
from .api import Api
from .encode import dumps
from .paths import BadPath, UnknownRun

STATIC = os.path.join(os.path.dirname(__file__), "static")
COOKIE = "distlog_token"
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
            "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def _cookie_name(scope: dict) -> str:
    """The token cookie of the server on this port (browsers keep cookies per host, not per
    port: two dashboards on one host must not overwrite each other's)."""
    server = scope.get("server")
    return f"{COOKIE}_{server[1]}" if server and server[1] is not None else COOKIE


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


def error(status: int, reason: str) -> Response:
    return json_response({"error": reason, "status": status}, status)


def _handler(fn: Callable[[Request], Any]) -> Callable[[Request], Response]:
    """A sync endpoint (run in Starlette's thread pool) whose errors become JSON."""

    def endpoint(request: Request) -> Response:
        try:
            out = fn(request)
        except (UnknownRun, QueryError, KeyError, FileNotFoundError) as e:
            return error(404, _reason(e) or "not found")
        except (BadPath, ValueError) as e:
            return error(400, str(e))
        except OSError as e:  # the store failed (network, permissions): say so, do not crash
            return error(502, f"reading the store failed: {type(e).__name__}: {e}")
        return out if isinstance(out, Response) else json_response(out)

    return endpoint


def _reason(e: BaseException) -> str:
    text = str(e)
    if isinstance(e, KeyError) and not isinstance(e, KeyNotFound) and len(e.args) == 1:
        text = str(e.args[0])
    return text


def index(request: Request) -> Response:
    return FileResponse(os.path.join(STATIC, "index.html"), headers={"Cache-Control": "no-cache"})


def make_app(root: RootReader, token: str | None = None, loopback_only: bool = True,
             ttl: float = 3.0) -> Any:
    """The dashboard for ``root``. ``token``: required on every request when set."""
    api = Api(root, ttl=ttl)
    routes = [
        Route("/", index),
        Route("/favicon.ico", lambda r: Response(status_code=204)),
        Route("/api/meta", _handler(api.meta)),
        Route("/api/runs", _handler(api.runs)),
        Route("/api/run", _handler(api.run_detail)),
        Route("/api/status", _handler(api.status)),
        Route("/api/series", _handler(api.series)),
        Route("/api/histogram", _handler(api.histogram)),
        Route("/api/keys", _handler(api.keys)),
        Route("/api/compare", _handler(api.compare)),
        Route("/api/bands", _handler(api.bands)),
        Route("/api/logs", _handler(lambda r: logs_api.logs(api, r))),
        Route("/api/ranks", _handler(lambda r: ranks_api.ranks(api, r))),
        Route("/api/files", _handler(lambda r: files_api.files(api, r))),
        Route("/api/file", _handler(lambda r: files_api.file_bytes(api, r)), methods=["GET", "HEAD"]),
        Route("/api/{rest:path}", lambda r: error(404, f"no API endpoint {r.url.path!r}")),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.api = api
    return Guard(app, token=token, loopback_only=loopback_only)


class Guard:
    """ASGI middleware: token check, Host check, read-only methods, security headers."""

    def __init__(self, app: Any, token: str | None, loopback_only: bool) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only

    @property
    def state(self) -> Any:
        return self.app.state

    def _token_of(self, scope: dict) -> tuple[str | None, bool]:
        """The token the request carries, and whether it came in the query string."""
        q = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        if q:
            return q[0], True
        headers = dict(scope.get("headers") or [])
        h = headers.get(b"x-distlog-token")
        if h:
            return h.decode("latin-1"), False
        cookie = headers.get(b"cookie")
        if cookie:
            c = SimpleCookie()
            try:
                c.load(cookie.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed cookie is no token
                return None, False
            name = _cookie_name(scope)
            if name in c:
                return c[name].value, False
        return None, False

    def _host_ok(self, scope: dict) -> bool:
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name in LOOPBACK_HOSTS or host in LOOPBACK_HOSTS:
            return True
        try:  # any loopback address written as one (127.0.0.2, [0:0:0:0:0:0:0:1]): no name
            return ipaddress.ip_address(name.strip("[]")).is_loopback  # to rebind
        except ValueError:
            return False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] not in ("GET", "HEAD"):
            return await error(405, "the dashboard is read-only: only GET and HEAD")(scope, receive, send)
        set_cookie = False
        if self.token is not None:
            given, in_query = self._token_of(scope)
            if given is None or not secrets.compare_digest(given.encode(), self.token.encode()):
                return await error(401, "this dashboard needs its token: open the URL printed "
                                   "at start (…/?token=…)")(scope, receive, send)
            set_cookie = in_query
        elif self.loopback_only and not self._host_ok(scope):
            return await error(403, "Host header is not a loopback name; open the URL printed "
                               "at start")(scope, receive, send)
        token = self.token

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {k.lower() for k, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                for name, value in ((b"x-content-type-options", b"nosniff"),
                                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")):
                    if name not in names:
                        headers.append((name, value))
                if set_cookie and token:
                    headers.append((b"set-cookie", f"{_cookie_name(scope)}={token}; HttpOnly; "
                                    "SameSite=Strict; Path=/".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
