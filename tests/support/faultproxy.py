"""A loopback HTTP forwarder that fails a share of requests, for retry tests.

``FaultProxy(upstream)`` listens on 127.0.0.1 (a free port) and forwards each request to
``upstream`` (e.g. the moto server). A share ``fail_rate`` of requests fails instead, with a
kind drawn from ``kinds`` (name → weight):

* ``"503"``      answer 503 ``ServiceUnavailable`` without forwarding;
* ``"slowdown"`` answer 503 ``SlowDown`` without forwarding (s3fs retries this one itself);
* ``"reset"``    drop the connection (TCP RST) without forwarding;
* ``"lost"``     forward — the request takes effect upstream — then drop the connection
  instead of answering: the ambiguous failure that a retried exclusive create must survive.

Decisions come from ``random.Random(seed)`` in arrival order, so a run with the same request
order fails the same requests. ``requests`` counts requests by HTTP method, ``faults`` counts
injected faults by kind, ``faulted_methods`` by method; ``log`` lists ``(method, path)`` of
every request (the path without the query). With ``fail_rate=0`` it is a request counter;
``RecordingProxy(upstream)`` is that, recording ``(method, path, query keys, body bytes)``.
``delay`` (seconds, settable while running) holds every request that long before it is
forwarded, as the round trip to a real region does: ``LatencyProxy(upstream, 0.05)``.

Usage::

    with FaultProxy(moto_url, fail_rate=0.3, seed=1) as proxy:
        backend = open_storage(url, endpoint_url=proxy.url, ...)
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_KINDS = {"503": 4, "slowdown": 1, "reset": 2, "lost": 3}
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
        "trailers", "transfer-encoding", "upgrade", "expect", "content-length"}
_S3_ERROR = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
             "<Message>injected by faultproxy</Message><RequestId>faultproxy</RequestId>"
             "</Error>")


class FaultProxy:
    def __init__(self, upstream: str, fail_rate: float = 0.3, seed: int = 0,
                 kinds: dict[str, float] | None = None, delay: float = 0.0) -> None:
        u = urlsplit(upstream)
        if u.hostname not in ("127.0.0.1", "localhost") or u.scheme != "http":
            raise ValueError(f"FaultProxy forwards to http://127.0.0.1 only, got {upstream!r}")
        self.upstream = (u.hostname, u.port or 80)
        self.fail_rate = fail_rate
        self.delay = delay
        self.kinds = dict(kinds or DEFAULT_KINDS)
        unknown = set(self.kinds) - set(DEFAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; use {sorted(DEFAULT_KINDS)}")
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.faulted_methods: Counter[str] = Counter()
        self.log: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests held at once: > 1 only for concurrent clients
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> "FaultProxy":
        server = _Server(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.block_on_close = False
        server.proxy = self  # type: ignore[attr-defined]
        server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def count(self, method: str, contains: str = "") -> int:
        """Requests of ``method`` whose path contains ``contains``."""
        with self._lock:
            return sum(1 for m, p, *_ in self.log if m == method and contains in p)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- decisions ----------------------------------------------------------------------
    def record(self, method: str, target: str, body: bytes) -> None:
        """Log one request (``target``: the request line's path and query)."""
        with self._lock:
            self.log.append((method, target.split("?", 1)[0]))

    def decide(self, method: str) -> str | None:
        with self._lock:
            self.requests[method] += 1
            if self._rng.random() >= self.fail_rate:
                return None
            kind = self._rng.choices(list(self.kinds), weights=list(self.kinds.values()))[0]
            self.faults[kind] += 1
            self.faulted_methods[method] += 1
            return kind


class ScriptedProxy(FaultProxy):
    """A ``FaultProxy`` that fails requests by script: each request whose path contains
    ``match`` and whose method is in ``methods`` takes the next fault of ``script`` (None or
    "" passes it); the others, and all once the script is spent, pass."""

    def __init__(self, upstream: str, match: str = "", methods: tuple[str, ...] = ("PUT",),
                 script: list[str | None] | None = None) -> None:
        super().__init__(upstream, fail_rate=0.0)
        self.match, self.methods, self.script = match, set(methods), list(script or [])

    def decide(self, method: str) -> str | None:
        with self._lock:
            self.requests[method] += 1
            path = self.log[-1][1] if self.log else ""
            if method in self.methods and self.match in path and self.script:
                kind = self.script.pop(0)
                if kind:
                    self.faults[kind] += 1
                    self.faulted_methods[method] += 1
                return kind or None
            return None


class RecordingProxy(FaultProxy):
    """A ``FaultProxy`` that fails nothing and logs ``(method, path, query keys, body bytes)``
    of every request."""

    log: list[tuple[str, str, frozenset[str], int]]  # type: ignore[assignment]

    def __init__(self, upstream: str, delay: float = 0.0) -> None:
        super().__init__(upstream, fail_rate=0.0, delay=delay)

    def record(self, method: str, target: str, body: bytes) -> None:
        u = urlsplit(target)
        with self._lock:
            self._arrived()
            self.log.append((method, u.path,
                             frozenset(parse_qs(u.query, keep_blank_values=True)), len(body)))

    def _arrived(self) -> None:
        """Called under the lock as each request is logged."""

    def reset(self) -> None:
        """Forget the requests seen so far."""
        with self._lock:
            self.log.clear()
            self.requests.clear()
            self.max_in_flight = self.in_flight
            self._cleared()

    def _cleared(self) -> None:
        """Called under the lock by ``reset``."""


class LatencyProxy(RecordingProxy):
    """A ``RecordingProxy`` that holds every request ``delay`` seconds: a remote region.
    ``times`` has the arrival time (``time.monotonic()``) of each request in ``log``."""

    def __init__(self, upstream: str, delay: float = 0.0) -> None:
        self.times: list[float] = []
        super().__init__(upstream, delay=delay)

    def _arrived(self) -> None:
        self.times.append(time.monotonic())

    def _cleared(self) -> None:
        self.times.clear()


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # clients open hundreds of connections at once


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for Expect headers

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # no Nagle: headers and body go out in separate writes (delayed-ACK stalls)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _drop(self, rst: bool) -> None:
        self.close_connection = True
        try:
            if rst:  # SO_LINGER 0: close sends RST, the client sees "connection reset"
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response_only(status)
        for k, v in headers:
            if k.lower() not in _HOP:
                self.send_header(k, v)
        if self.command == "HEAD":
            length = next((v for k, v in headers if k.lower() == "content-length"), "0")
            self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)
        self.wfile.flush()

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self._body()
        proxy.record(self.command, self.path, body)
        with proxy._lock:
            proxy.in_flight += 1
            proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
        try:
            if proxy.delay:
                time.sleep(proxy.delay)
            self._answer(proxy, body)
        finally:
            with proxy._lock:
                proxy.in_flight -= 1

    def _answer(self, proxy: FaultProxy, body: bytes) -> None:
        fault = proxy.decide(self.command)
        if fault == "reset":
            return self._drop(rst=True)
        if fault in ("503", "slowdown"):
            code = "SlowDown" if fault == "slowdown" else "ServiceUnavailable"
            data = _S3_ERROR.format(code=code).encode()
            return self._reply(503, [("Content-Type", "application/xml"),
                                     ("Content-Length", str(len(data)))], data)
        status, headers, data = self._forward(body)
        if fault == "lost":
            return self._drop(rst=False)
        self._reply(status, headers, data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle
