"""The storage conformance suite and its helpers (``tests/test_storage_conformance_*.py``).

``StorageConformance`` holds the behaviour every backend owes the rest of distlog; each
``Test<Backend>`` subclass in a test module only says how to make a fresh root (``spec``).
The helpers (process and thread races, a loopback-only guard, big test files) are importable
by spawned processes.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import pickle
import threading
import time
import uuid
from typing import Any

import pytest

from distlog.errors import StorageError
from distlog.storage import StorageBackend, open_storage
from distlog.storage.base import SEGMENT_SUFFIX


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

    def test_put_object_replaces_whole_object_and_zarr_sees_it(self, backend: StorageBackend) -> None:
        """``put_object`` (chunks and array metadata, written by the table writers themselves
        where ``cheap_puts``) replaces an object whole, in new folders too, and a Zarr store
        of the same backend reads what it put."""
        backend.put_object("t.zarr/a/c/0/0", b"a much longer first version")
        backend.put_object("t.zarr/a/c/0/0", b"short")
        assert backend.read_bytes("t.zarr/a/c/0/0") == b"short"
        assert backend.list_dir("t.zarr/a/c/0") == ["0"]
        from distlog.storage.aio import gather
        from zarr.core.buffer import default_buffer_prototype

        got = gather([backend.zarr_store("t.zarr").get("a/c/0/0", default_buffer_prototype())])[0]
        assert got is not None and got.to_bytes() == b"short"

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
