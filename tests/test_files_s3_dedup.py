"""8 ranks on two pretend nodes save the same checkpoint to S3 (moto) at once: the blob is
uploaded once — one (multipart) upload counted at the server — and every rank records it."""

from __future__ import annotations

import http.client
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from distributed import run_ranks

pytest_plugins = ["servers"]

pytestmark = [pytest.mark.s3]

_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailers", "upgrade",
        "proxy-authorization", "proxy-authenticate", "expect", "content-length"}


class RecordingProxy:
    """Forwards HTTP to ``upstream`` (127.0.0.1 only) and records every request:
    ``(method, path, query keys, body bytes)``."""

    def __init__(self, upstream: str) -> None:
        u = urlsplit(upstream)
        assert u.hostname == "127.0.0.1", upstream
        self.upstream = (u.hostname, u.port)
        self.log: list[tuple[str, str, frozenset[str], int]] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def __enter__(self) -> "RecordingProxy":
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # no Nagle: headers and body go out in separate writes (delayed-ACK stalls)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    out = bytearray()
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        out += self.rfile.read(size)
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _handle(self) -> None:
                body = self._body()
                u = urlsplit(self.path)
                with proxy.lock:
                    proxy.log.append((self.command, u.path,
                                      frozenset(parse_qs(u.query, keep_blank_values=True)), len(body)))
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    headers["Content-Length"] = str(len(body))
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response_only(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data))
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


SIZE_FLOATS = (17 << 20) // 4  # 17 MiB: over two 8 MiB parts, so s3fs uploads it in parts


def _worker(rank, world, url, options):
    import torch
    import torch.distributed as dist

    import distlog

    exp = distlog.get_logger(url, **options)
    with exp.run("s3dedup"):
        g = torch.Generator().manual_seed(1)
        ckpt = {"w": torch.randn(SIZE_FLOATS, generator=g)}  # identical on every rank
        dist.barrier()  # save at the same moment
        rec = exp.files("checkpoints").save_torch(ckpt, "model.pt")
        exp.flush()
        n_records = len(exp.files("checkpoints").records("model.pt"))
        same = torch.equal(exp.files("checkpoints").load_torch("model.pt")["w"], ckpt["w"])
    return rec, n_records, same


@pytest.mark.timeout(300)
def test_eight_ranks_upload_the_same_checkpoint_once(tmp_path, s3_bucket):
    from distlog.cas import blob_path

    with RecordingProxy(s3_bucket["endpoint_url"]) as proxy:
        options = dict(s3_bucket["storage_options"], endpoint_url=proxy.url)
        env = {r: {**s3_bucket["env"], "AWS_ENDPOINT_URL_S3": proxy.url,
                   "DISTLOG_HOSTNAME": "nodeA" if r < 4 else "nodeB"} for r in range(8)}
        results = run_ranks(_worker, 8, tmp_path, s3_bucket["url"], options, env=env, timeout=240)
        log = list(proxy.log)

    recs = [r[0] for r in results]
    digest = recs[0].sha256
    assert {r.sha256 for r in recs} == {digest} and {r.version for r in recs} == {1}
    assert {r.host for r in recs} == {"nodeA", "nodeB"}
    assert all(n == 8 and same for _, n, same in results)

    key = f"/{s3_bucket['bucket']}/run/{blob_path(digest)}"
    to_blob = [(m, q, n) for m, p, q, n in log if p == key and m in ("PUT", "POST")]
    starts = [e for e in to_blob if (e[0] == "POST" and "uploads" in e[1])
              or (e[0] == "PUT" and "partNumber" not in e[1])]
    parts = [e for e in to_blob if e[0] == "PUT" and "partNumber" in e[1]]
    assert len(starts) == 1, to_blob  # one upload of the blob, by one rank
    assert len(parts) == 3 and sum(n for _, _, n in parts) == recs[0].size  # multipart, once
    uploaded = sum(n for m, p, q, n in log if m in ("PUT", "POST"))
    assert uploaded < recs[0].size + (1 << 20)  # everything else is small (leases, manifests)
