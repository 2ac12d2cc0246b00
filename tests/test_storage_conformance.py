"""One conformance suite, run against every storage backend (local, memory, S3, GCS).

``StorageConformance`` holds the behaviour every backend owes the rest of distlog; each
``Test<Backend>`` subclass only says how to make a fresh root. Below it: S3 through a
fault-injecting proxy, permanent errors, and the retry classifier.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import pickle
import threading
import time
import urllib.request
import uuid
from typing import Any

import pytest

from distlog.errors import StorageError
from distlog.storage import StorageBackend, open_storage
from distlog.storage.base import SEGMENT_SUFFIX

pytest_plugins = ["servers"]

pytestmark = [
    # aiohttp warns when gcsfs hands it a large bytes body (upload chunks); harmless here
    pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning"),
]

RACERS = 8


# ---- helpers shared with spawned processes (keep importable and light) --------------------
def _race_worker(url: str, options: dict[str, Any], env: dict[str, str], key: str, i: int,
                 barrier: Any, results: Any) -> None:
    os.environ.update(env)
    try:
        backend = open_storage(url, **options)
        backend.exists("warm-up")  # connect before the barrier so all creates start together
        barrier.wait(timeout=120)
        results.put((i, backend.create_bytes(key, f"writer-{i}".encode())))
    except BaseException as e:  # report, never hang the parent
        results.put((i, f"{type(e).__name__}: {e}"))


def race_processes(url: str, options: dict[str, Any], env: dict[str, str], key: str,
                   n: int = RACERS) -> dict[int, Any]:
    """``n`` spawned processes exclusively create ``key`` at once; ``{i: result}``."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_race_worker, args=(url, options, env, key, i, barrier, results))
             for i in range(n)]
    for p in procs:
        p.start()
    out: dict[int, Any] = {}
    try:
        deadline = time.monotonic() + 150
        while len(out) < n:
            i, r = results.get(timeout=max(1.0, deadline - time.monotonic()))
            out[i] = r
    finally:
        for p in procs:
            p.join(timeout=20)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
    return out


def race_threads(fn: Any, n: int = RACERS) -> dict[int, Any]:
    barrier = threading.Barrier(n)
    out: dict[int, Any] = {}

    def run(i: int) -> None:
        barrier.wait(timeout=60)
        try:
            out[i] = fn(i)
        except BaseException as e:
            out[i] = f"{type(e).__name__}: {e}"

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    return out


def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any name lookup or connection to an address outside 127.0.0.0/8 fail."""
    import socket

    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("localhost", None) and not str(host).startswith("127."):
            raise AssertionError(f"test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(sock: Any, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not str(address[0]).startswith(
            "127."
        ):
            raise AssertionError(f"test tried to connect to {address!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)


def sha256_stream(f: Any) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def make_file(path: Any, size: int) -> str:
    with open(path, "wb") as f:
        left, seed = size, 0
        while left:  # reproducible, incompressible-ish, written in blocks
            block = hashlib.sha256(str(seed).encode()).digest() * 32768  # 1 MiB
            f.write(block[: min(left, len(block))])
            left -= min(left, len(block))
            seed += 1
    with open(path, "rb") as f:
        return sha256_stream(f)


# ---- the suite -------------------------------------------------------------------------------
class StorageConformance:
    """Subclasses provide the ``spec`` fixture: ``{"url", "storage_options", "env"}``."""

    #: the exclusive-create race runs in processes (False: threads, for in-process stores)
    race_in_processes = True
    #: size of the file streamed by create_file (large enough for multipart where it exists)
    big_file_size = 3 << 20
    #: whether appends are stored as segments
    segmented = True

    @pytest.fixture
    def spec(self, tmp_path: Any) -> dict[str, Any]:
        raise NotImplementedError

    @pytest.fixture
    def backend(self, spec: dict[str, Any]) -> StorageBackend:
        return open_storage(spec["url"], **spec["storage_options"])

    # bytes, text, json ------------------------------------------------------------------
    def test_bytes_roundtrip(self, backend: StorageBackend) -> None:
        payload = bytes(range(256)) * 10
        backend.write_bytes("a/b/c.bin", payload)
        assert backend.read_bytes("a/b/c.bin") == payload
        backend.write_bytes("empty", b"")
        assert backend.read_bytes("empty") == b""
        with backend.open_read("a/b/c.bin") as f:
            assert f.read(5) == payload[:5]
            assert f.read() == payload[5:]

    def test_text_and_json(self, backend: StorageBackend) -> None:
        backend.write_text("t.txt", "héllo ✓\nline 2\n")
        assert backend.read_text("t.txt") == "héllo ✓\nline 2\n"
        obj = {"loss": 0.25, "steps": [1, 2, 3], "name": "run-1", "bad": float("nan")}
        backend.write_json("meta/run.json", obj)
        back = backend.read_json("meta/run.json")
        assert math.isnan(back.pop("bad")) and back == {k: v for k, v in obj.items() if k != "bad"}

    def test_overwrite_replaces_whole_object(self, backend: StorageBackend) -> None:
        backend.write_bytes("x", b"a much longer first version")
        backend.write_bytes("x", b"short")
        assert backend.read_bytes("x") == b"short"

    def test_exists(self, backend: StorageBackend) -> None:
        backend.write_bytes("dir/file", b"1")
        assert backend.exists("dir/file")
        assert backend.exists("dir")
        assert not backend.exists("nope")
        assert not backend.exists("dir/nope")

    def test_missing_file_raises_file_not_found(self, backend: StorageBackend) -> None:
        for call in (backend.read_bytes, backend.read_text, backend.read_json, backend.open_read):
            with pytest.raises(FileNotFoundError) as info:
                call("no/such/file")
            assert not isinstance(info.value, StorageError)

    def test_list_dir(self, backend: StorageBackend) -> None:
        for p in ("a", "b", "sub/c", "sub/deeper/d"):
            backend.write_bytes(p, b"x")
        backend.append_text("log.txt", "one\n")
        assert backend.list_dir() == ["a", "b", "log.txt", "sub"]
        assert backend.list_dir("") == backend.list_dir()
        assert backend.list_dir("sub") == ["c", "deeper"]
        assert backend.list_dir("sub/") == ["c", "deeper"]
        assert backend.list_dir("sub/deeper") == ["d"]
        assert backend.list_dir("missing") == []
        assert backend.list_dir("a") == []  # a file is no folder

    def test_walk_lists_every_file_once(self, backend: StorageBackend) -> None:
        for p in ("a", "sub/c", "sub/deeper/d", "x.seg/plain"):
            backend.write_bytes(p, b"x")
        with backend.open_appender("sub/log.txt", max_bytes=4) as app:
            for i in range(5):  # several segments on object stores, one file here
                app.write(f"line {i}\n")
                app.flush()
        assert backend.walk() == ["a", "sub/c", "sub/deeper/d", "sub/log.txt", "x.seg/plain"]
        assert backend.walk("sub") == ["sub/c", "sub/deeper/d", "sub/log.txt"]
        assert backend.walk("missing") == []

    def test_delete(self, backend: StorageBackend) -> None:
        backend.write_bytes("f", b"1")
        backend.write_bytes("tree/x", b"1")
        backend.write_bytes("tree/sub/y", b"1")
        backend.delete("f")
        assert not backend.exists("f")
        with pytest.raises(FileNotFoundError):
            backend.read_bytes("f")
        with pytest.raises(IsADirectoryError):
            backend.delete("tree")
        assert backend.read_bytes("tree/sub/y") == b"1"
        backend.delete("tree", recursive=True)
        assert backend.list_dir() == []
        assert not backend.exists("tree/sub/y")
        backend.delete("never-existed")  # no error

    def test_delete_appended_file(self, backend: StorageBackend) -> None:
        backend.append_text("app.log", "a\n")
        backend.append_text("app.log", "b\n")
        backend.delete("app.log")
        assert backend.list_dir() == []
        with pytest.raises(FileNotFoundError):
            backend.read_text("app.log")

    def test_child_and_recursive_root_delete(self, backend: StorageBackend) -> None:
        child = backend.child("runs/r1")
        assert type(child) is type(backend)
        assert child.url.rstrip("/").endswith("runs/r1")
        child.write_bytes("m.json", b"{}")
        assert backend.read_bytes("runs/r1/m.json") == b"{}"
        assert child.list_dir() == ["m.json"]
        backend.write_bytes("runs/r2/keep", b"k")
        child.delete("", recursive=True)
        assert child.list_dir() == []
        assert backend.read_bytes("runs/r2/keep") == b"k"  # siblings untouched

    def test_same_url_same_data(self, backend: StorageBackend, spec: dict[str, Any]) -> None:
        backend.write_bytes("shared", b"seen")
        again = open_storage(spec["url"], **spec["storage_options"])
        assert again.read_bytes("shared") == b"seen"

    def test_pickled_backend_sees_same_data(self, backend: StorageBackend) -> None:
        backend.write_bytes("p", b"pickled")
        copy = pickle.loads(pickle.dumps(backend))
        assert type(copy) is type(backend) and copy.url == backend.url
        assert copy.read_bytes("p") == b"pickled"

    def test_modified_time(self, backend: StorageBackend) -> None:
        backend.write_bytes("m", b"1")
        t = backend.modified_time("m")
        assert t is not None and abs(t - time.time()) < 600
        assert backend.modified_time("missing") is None

    # exclusive create ---------------------------------------------------------------------
    def test_create_bytes_is_exclusive(self, backend: StorageBackend) -> None:
        assert backend.create_bytes("cas/ab/cdef", b"first") is True
        assert backend.create_bytes("cas/ab/cdef", b"second") is False
        assert backend.read_bytes("cas/ab/cdef") == b"first"
        backend.write_bytes("plain", b"w")
        assert backend.create_bytes("plain", b"c") is False
        assert backend.read_bytes("plain") == b"w"

    @pytest.mark.timeout(200)
    def test_exclusive_create_race(self, backend: StorageBackend, spec: dict[str, Any]) -> None:
        key = f"race/{uuid.uuid4().hex}"
        if self.race_in_processes:
            results = race_processes(spec["url"], spec["storage_options"], spec["env"], key)
        else:
            results = race_threads(lambda i: backend.create_bytes(key, f"writer-{i}".encode()))
        assert sorted(results) == list(range(RACERS)), results
        assert all(isinstance(r, bool) for r in results.values()), results
        winners = [i for i, r in results.items() if r]
        assert len(winners) == 1, results
        assert backend.read_bytes(key) == f"writer-{winners[0]}".encode()

    @pytest.mark.timeout(120)
    def test_create_file_streams_and_is_exclusive(self, backend: StorageBackend,
                                                  tmp_path: Any) -> None:
        big = tmp_path / "big.bin"
        digest = make_file(big, self.big_file_size)
        assert backend.create_file("artifacts/big.bin", str(big)) is True
        with backend.open_read("artifacts/big.bin") as f:
            assert sha256_stream(f) == digest
        other = tmp_path / "other.bin"
        other.write_bytes(b"different")
        assert backend.create_file("artifacts/big.bin", str(other)) is False
        with backend.open_read("artifacts/big.bin") as f:
            assert sha256_stream(f) == digest

    @pytest.mark.timeout(120)
    def test_create_file_race_threads(self, backend: StorageBackend, tmp_path: Any) -> None:
        srcs = []
        for i in range(4):
            p = tmp_path / f"src{i}"
            p.write_bytes(f"content {i}".encode() * 100)
            srcs.append(p)
        results = race_threads(lambda i: backend.create_file("one", str(srcs[i])), n=4)
        assert sorted(results.values(), key=str) == [False, False, False, True], results
        winner = next(i for i, r in results.items() if r)
        assert backend.read_bytes("one") == srcs[winner].read_bytes()

    # appends --------------------------------------------------------------------------------
    def test_many_appends_read_in_order(self, backend: StorageBackend) -> None:
        lines = [f"line {i:03d} ✓\n" for i in range(40)]
        for line in lines:
            backend.append_text("logs/rank0.log", line)
        assert backend.read_text("logs/rank0.log") == "".join(lines)
        assert backend.is_file("logs/rank0.log")
        assert backend.list_dir("logs") == ["rank0.log"]
        if self.segmented:
            assert len(backend.segment_names("logs/rank0.log")) == len(lines)

    def test_appender_small_segments(self, backend: StorageBackend) -> None:
        lines = [f"record {i} " + "x" * (i % 17) + "\n" for i in range(300)]
        with backend.open_appender("logs/app.log", max_bytes=256) as app:
            for i, line in enumerate(lines):
                app.write(line)
                if i == 150:
                    app.flush()
                    assert backend.read_text("logs/app.log") == "".join(lines[:151])
        assert backend.read_text("logs/app.log") == "".join(lines)
        if self.segmented:
            names = backend.segment_names("logs/app.log")
            assert len(names) > 10
            got = b"".join(data for _, data in backend.iter_segments("logs/app.log"))
            assert got.decode() == "".join(lines)
            assert backend.list_dir("logs") == ["app.log"]
            assert backend.list_dir(f"logs/app.log{SEGMENT_SUFFIX}") == names

    # urls and zarr --------------------------------------------------------------------------
    def check_url(self, backend: StorageBackend, url: str, spec: dict[str, Any]) -> None:
        raise NotImplementedError

    def test_get_url(self, backend: StorageBackend, spec: dict[str, Any]) -> None:
        backend.write_bytes("share/plot.png", b"PNG...")
        url = backend.get_url("share/plot.png", expires=600)
        assert isinstance(url, str)
        self.check_url(backend, url, spec)

    @pytest.mark.timeout(120)
    def test_zarr_store_roundtrip(self, backend: StorageBackend) -> None:
        np = pytest.importorskip("numpy")
        zarr = pytest.importorskip("zarr")
        arr = zarr.create_array(store=backend.zarr_store("metrics/loss"), shape=(10,),
                                chunks=(4,), dtype="float64", fill_value=float("nan"))
        arr[:] = np.arange(10.0)
        assert "zarr.json" in backend.list_dir("metrics/loss")
        back = zarr.open_array(store=backend.zarr_store("metrics/loss", read_only=True))
        assert back.shape == (10,)
        np.testing.assert_array_equal(back[:], np.arange(10.0))
        same = open_storage(backend.url, **getattr(backend, "storage_options", {}))
        np.testing.assert_array_equal(
            zarr.open_array(store=same.zarr_store("metrics/loss", read_only=True))[:],
            np.arange(10.0))


class TestLocal(StorageConformance):
    segmented = False

    @pytest.fixture
    def spec(self, tmp_path: Any) -> dict[str, Any]:
        return {"url": str(tmp_path / "root"), "storage_options": {}, "env": {}}

    def check_url(self, backend: StorageBackend, url: str, spec: dict[str, Any]) -> None:
        assert url.startswith("file:///") and url.endswith("share/plot.png")
        with urllib.request.urlopen(url) as r:  # file:// only
            assert r.read() == b"PNG..."


class TestMemory(StorageConformance):
    race_in_processes = False  # memory:// lives in one process

    @pytest.fixture
    def spec(self, tmp_path: Any) -> Any:
        from distlog.storage.memory import discard_store

        name = f"t-{uuid.uuid4().hex[:12]}"
        yield {"url": f"memory://{name}/root", "storage_options": {}, "env": {}}
        discard_store(name)

    def check_url(self, backend: StorageBackend, url: str, spec: dict[str, Any]) -> None:
        assert url == spec["url"] + "/share/plot.png"

    def test_stores_are_isolated(self, backend: StorageBackend) -> None:
        backend.write_bytes("k", b"v")
        other = open_storage(f"memory://t-{uuid.uuid4().hex[:12]}/root")
        assert other.list_dir() == [] and not other.exists("k")
        import fsspec

        assert not fsspec.filesystem("memory").exists(backend.url)  # not the global store


@pytest.mark.s3
@pytest.mark.timeout(120)
class TestS3(StorageConformance):
    big_file_size = 17 << 20  # > 2 parts of 8 MiB: a streamed multipart upload

    @pytest.fixture
    def spec(self, s3_bucket: dict[str, Any]) -> dict[str, Any]:
        return s3_bucket

    def check_url(self, backend: StorageBackend, url: str, spec: dict[str, Any]) -> None:
        assert url.startswith(f"{spec['endpoint_url']}/{spec['bucket']}/run/share/plot.png?")
        assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url) as r:
            assert r.read() == b"PNG..."

    @pytest.mark.timeout(120)
    def test_multipart_create_is_conditional(self, backend: Any, tmp_path: Any) -> None:
        """Without create_file's exists() pre-check, CompleteMultipartUpload's If-None-Match
        alone refuses the second upload."""
        src = tmp_path / "src"
        make_file(src, self.big_file_size)
        put = lambda full, marker: backend._put_new_file(full, str(src), marker)  # noqa: E731
        assert backend._exclusive("mp", put) is True
        assert backend._exclusive("mp", put) is False

    def test_env_credentials_and_endpoint(self, s3_bucket: dict[str, Any],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
        for k, v in s3_bucket["env"].items():
            monkeypatch.setenv(k, v)
        backend = open_storage(s3_bucket["url"], skip_instance_cache=True)
        backend.write_bytes("from-env", b"ok")
        assert backend.read_bytes("from-env") == b"ok"

    def test_client_kwargs_endpoint(self, s3_bucket: dict[str, Any]) -> None:
        opts = dict(s3_bucket["storage_options"])
        opts["client_kwargs"] = {"endpoint_url": opts.pop("endpoint_url")}
        backend = open_storage(s3_bucket["url"], **opts)
        backend.write_bytes("ck", b"ok")
        assert backend.read_bytes("ck") == b"ok"


@pytest.mark.gcs
@pytest.mark.timeout(120)
class TestGCS(StorageConformance):
    big_file_size = 6 << 20  # > 5 MiB: gcsfs streams a resumable upload

    @pytest.fixture
    def spec(self, gcs_bucket: dict[str, Any]) -> dict[str, Any]:
        return gcs_bucket

    def check_url(self, backend: StorageBackend, url: str, spec: dict[str, Any]) -> None:
        # anonymous credentials cannot sign: the gs:// URL comes back
        assert url == f"gs://{spec['bucket']}/run/share/plot.png"

    @pytest.mark.xfail(strict=True, reason="fake-gcs-server ignores ifGenerationMatch=0 on "
                       "resumable uploads (real GCS honours it); create_file's exists() "
                       "pre-check covers the sequential case")
    @pytest.mark.timeout(120)
    def test_resumable_create_is_conditional(self, backend: Any, tmp_path: Any) -> None:
        src = tmp_path / "src"
        make_file(src, self.big_file_size)
        put = lambda full, marker: backend._put_new_file(full, str(src), marker)  # noqa: E731
        assert backend._exclusive("mp", put) is True
        assert backend._exclusive("mp", put) is False

    def test_storage_emulator_host_env(self, gcs_bucket: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_bucket["endpoint_url"])
        backend = open_storage(gcs_bucket["url"].replace("gs://", "gcs://"), project="test")
        backend.write_bytes("from-env", b"ok")
        assert backend.read_bytes("from-env") == b"ok"
        assert backend.url.startswith("gcs://")

    def test_signed_url_with_service_account(self, gcs_bucket: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
        # a throwaway service-account key: signing is local; token_uri points at a closed
        # loopback port so that nothing could ever leave the machine
        rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
        from cryptography.hazmat.primitives import serialization

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        token = {"type": "service_account", "project_id": "test", "private_key_id": "k1",
                 "private_key": pem, "client_email": "distlog@test.iam.gserviceaccount.com",
                 "client_id": "1", "token_uri": "http://127.0.0.1:9/token"}
        monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
        loopback_only(monkeypatch)  # this backend points at the real GCS: prove no I/O
        backend = open_storage(f"gs://{gcs_bucket['bucket']}/run", token=token, project="test")
        url = backend.get_url("share/plot.png", expires=600)
        bucket = gcs_bucket["bucket"]
        assert url.startswith(f"https://storage.googleapis.com/{bucket}/run/share/plot.png?")
        assert "X-Goog-Signature=" in url and "X-Goog-Expires=600" in url


# ---- S3 through a fault-injecting proxy ---------------------------------------------------
FAULTY = {"retry_attempts": 12, "retry_base_delay": 0.01, "retry_max_delay": 0.2}


@pytest.fixture
def faulty_s3(s3_bucket: dict[str, Any]) -> Any:
    from faultproxy import FaultProxy

    with FaultProxy(s3_bucket["endpoint_url"], fail_rate=0.3, seed=20260) as proxy:
        opts = {**s3_bucket["storage_options"], "endpoint_url": proxy.url, **FAULTY}
        yield proxy, opts, s3_bucket


@pytest.mark.s3
@pytest.mark.timeout(180)
def test_s3_through_faults_reads_and_writes_correctly(faulty_s3: Any, tmp_path: Any) -> None:
    proxy, opts, bucket = faulty_s3
    b = open_storage(bucket["url"], **opts)
    for i in range(15):
        b.write_bytes(f"obj/{i}", f"value {i}".encode())
    for i in range(15):
        assert b.read_bytes(f"obj/{i}") == f"value {i}".encode()
    assert b.list_dir("obj") == sorted(str(i) for i in range(15))
    assert b.create_bytes("once", b"1") is True
    assert b.create_bytes("once", b"2") is False
    lines = [f"{i}\n" for i in range(20)]
    with b.open_appender("log", max_bytes=8) as app:
        for line in lines:
            app.write(line)
    assert b.read_text("log") == "".join(lines)
    big = tmp_path / "big"
    digest = make_file(big, 17 << 20)
    assert b.create_file("big", str(big)) is True
    with b.open_read("big") as f:
        assert sha256_stream(f) == digest
    b.delete("obj", recursive=True)
    assert b.list_dir("obj") == []
    # the proxy really failed requests, of every kind, and the backend got through
    assert sum(proxy.faults.values()) >= 20, proxy.faults
    assert set(proxy.faults) == {"503", "slowdown", "reset", "lost"}, proxy.faults
    assert proxy.requests["PUT"] and proxy.requests["GET"] and proxy.requests["HEAD"]


@pytest.mark.s3
@pytest.mark.timeout(200)
def test_s3_exclusive_create_race_through_faults(faulty_s3: Any) -> None:
    proxy, opts, bucket = faulty_s3
    key = "race/through-faults"
    results = race_processes(bucket["url"], opts, bucket["env"], key)
    assert all(isinstance(r, bool) for r in results.values()), results
    winners = [i for i, r in results.items() if r]
    assert len(winners) == 1, (results, proxy.faults)
    direct = open_storage(bucket["url"], **bucket["storage_options"])
    assert direct.read_bytes(key) == f"writer-{winners[0]}".encode()
    assert proxy.faulted_methods["PUT"] > 0, proxy.faults


@pytest.mark.s3
@pytest.mark.timeout(60)
def test_lost_response_on_exclusive_create_still_counts_as_ours(s3_bucket: dict[str, Any]) -> None:
    """Every PUT takes effect but its answer is lost once: the retry meets 412 and the
    marker says the object is ours."""
    from faultproxy import FaultProxy

    with FaultProxy(s3_bucket["endpoint_url"], fail_rate=1.0, seed=1,
                    kinds={"lost": 1}) as proxy:
        b = open_storage(s3_bucket["url"], **{**s3_bucket["storage_options"],
                                              "endpoint_url": proxy.url, **FAULTY})
        state = {"n": 0}
        orig = proxy.decide

        def first_put_only(method: str) -> str | None:  # lose only the first PUT's answer
            if method == "PUT" and state["n"] == 0:
                state["n"] += 1
                return orig(method)
            proxy.requests[method] += 1
            return None

        proxy.decide = first_put_only  # type: ignore[method-assign]
        assert b.create_bytes("k", b"mine") is True
        assert proxy.faults["lost"] == 1 and proxy.requests["PUT"] >= 2
        assert b.create_bytes("k", b"theirs") is False


@pytest.mark.s3
@pytest.mark.timeout(120)
def test_s3_streaming_read_resumes_after_faults(s3_bucket: dict[str, Any], tmp_path: Any) -> None:
    """Half of the ranged GETs of an open stream fail with 503: reads resume at the offset."""
    from faultproxy import FaultProxy

    src = tmp_path / "src"
    digest = make_file(src, 17 << 20)  # 3 ranged GETs of 8 MiB
    direct = open_storage(s3_bucket["url"], **s3_bucket["storage_options"])
    assert direct.create_file("big", str(src))
    with FaultProxy(s3_bucket["endpoint_url"], fail_rate=0.5, seed=7, kinds={"503": 1}) as px:
        b = open_storage(s3_bucket["url"], **{**s3_bucket["storage_options"],
                                              "endpoint_url": px.url, **FAULTY})
        with b.open_read("big") as f:
            assert sha256_stream(f) == digest
            f.seek(5)
            assert f.read(3) == src.read_bytes()[5:8]
        assert px.faults["503"] >= 1 and px.requests["GET"] >= 4, (px.requests, px.faults)


# ---- permanent errors -----------------------------------------------------------------------
@pytest.mark.s3
@pytest.mark.timeout(60)
def test_s3_missing_bucket_is_storage_error(moto_server: dict[str, Any]) -> None:
    from servers import s3_options

    url = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/run"
    b = open_storage(url, **s3_options(moto_server["endpoint_url"]))
    t0 = time.monotonic()
    for call in (lambda: b.write_bytes("x", b"1"), lambda: b.read_bytes("x"),
                 lambda: b.create_bytes("x", b"1")):
        with pytest.raises(StorageError) as info:
            call()
        msg = str(info.value)
        assert f"{url}/x" in msg and "does not exist" in msg and "Create the bucket" in msg
    assert time.monotonic() - t0 < 10  # permanent: not retried


@pytest.mark.gcs
@pytest.mark.timeout(60)
def test_gcs_missing_bucket_is_storage_error(fake_gcs_server: dict[str, Any]) -> None:
    from servers import gcs_options

    url = f"gs://no-such-bucket-{uuid.uuid4().hex[:8]}/run"
    b = open_storage(url, **gcs_options(fake_gcs_server["endpoint_url"]))
    for call in (lambda: b.write_bytes("x", b"1"), lambda: b.create_bytes("x", b"1")):
        with pytest.raises(StorageError, match="does not exist") as info:
            call()
        assert f"{url}/x" in str(info.value)


@pytest.mark.s3
@pytest.mark.timeout(60)
def test_unreachable_endpoint_gives_up_with_storage_error() -> None:
    from servers import free_port, s3_options

    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    b = open_storage("s3://bucket/run", **s3_options(dead), retry_attempts=3,
                     retry_base_delay=0.01)
    with pytest.raises(StorageError, match="after 3 attempts") as info:
        b.write_bytes("x", b"1")
    assert "s3://bucket/run/x" in str(info.value)


# ---- the retry classifier ------------------------------------------------------------------
def _client_error(code: str, status: int, op: str = "PutObject") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, op)


def _translated(code: str, status: int) -> Exception:
    """The exception s3fs raises for a ClientError (builtin OSError, ClientError as cause)."""
    from s3fs.errors import translate_boto_error

    err = translate_boto_error(_client_error(code, status))
    assert err.__cause__ is not None
    return err


def _flaky(failures: list[Exception]) -> Any:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return "done"

    return fn, calls


@pytest.mark.parametrize("make", [
    lambda: _translated("SlowDown", 503),
    lambda: _translated("ServiceUnavailable", 503),
    lambda: _translated("InternalError", 500),
    lambda: _translated("ConditionalRequestConflict", 409),
    lambda: ConnectionResetError(104, "reset"),
    lambda: TimeoutError("timed out"),
], ids=["slowdown", "503", "500", "409-conflict", "reset", "timeout"])
def test_retrying_retries_transient_errors(make: Any) -> None:
    pytest.importorskip("s3fs")
    from distlog.storage.retry import retrying

    fn, calls = _flaky([make(), make()])
    assert retrying(fn, attempts=3, base_delay=0.001) == "done"
    assert calls["n"] == 3


@pytest.mark.parametrize("make,words", [
    (lambda: _translated("AccessDenied", 403), "access denied"),
    (lambda: _translated("InvalidAccessKeyId", 403), "access denied"),
    (lambda: _translated("NoSuchBucket", 404), "does not exist"),
    (lambda: __import__("botocore.exceptions").exceptions.NoCredentialsError(), "credentials"),
    (lambda: OSError("Forbidden: b/o\nno access"), "access denied"),  # gcsfs 403
], ids=["403", "bad-key", "no-bucket", "no-credentials", "gcs-403"])
def test_retrying_turns_permanent_errors_into_storage_error(make: Any, words: str) -> None:
    pytest.importorskip("s3fs")
    from distlog.storage.retry import retrying

    fn, calls = _flaky([make()])
    with pytest.raises(StorageError, match=words) as info:
        retrying(fn, attempts=5, base_delay=0.001, url="s3://b/p/x", op="write")
    assert "s3://b/p/x" in str(info.value)
    assert calls["n"] == 1  # not retried


@pytest.mark.parametrize("exc", [FileNotFoundError("k"), FileExistsError("k"), ValueError("v")])
def test_retrying_passes_answers_through(exc: Exception) -> None:
    from distlog.storage.retry import retrying

    fn, calls = _flaky([exc])
    with pytest.raises(type(exc)) as info:
        retrying(fn, attempts=5, base_delay=0.001)
    assert not isinstance(info.value, StorageError) and calls["n"] == 1


def test_retrying_gives_up_after_attempts() -> None:
    from distlog.storage.retry import retrying

    fn, calls = _flaky([ConnectionRefusedError(111, "refused")] * 5)
    with pytest.raises(StorageError, match="after 3 attempts"):
        retrying(fn, attempts=3, base_delay=0.001, url="gs://b/x")
    assert calls["n"] == 3


def test_unknown_scheme_lists_object_stores() -> None:
    from distlog.storage import known_schemes

    assert {"memory", "s3", "s3a", "gs", "gcs"} <= set(known_schemes())
