"""The content-addressed store: hashing while writing, exclusive creates as dedup hits,
one upload when many writers race for the same large blob, lease takeover, freshening."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
import time
from collections import Counter

import numpy as np
import pytest

from distlog import cas
from distlog.cas import ContentStore, blob_path, fresh_path, hash_file, lease_path, stage
from distlog.storage.local import LocalBackend


class CountingBackend(LocalBackend):
    """A local backend that counts exclusive creates and bytes per path."""

    def __init__(self, root: str, **kw) -> None:
        super().__init__(root, **kw)
        self.creates: Counter[str] = Counter()
        self.bytes_sent = 0
        self._lock = threading.Lock()

    def create_file(self, path: str, local_path: str) -> bool:
        with self._lock:
            self.creates[path] += 1
            self.bytes_sent += os.path.getsize(local_path)
        time.sleep(0.05)  # an upload takes a while: let racers pile up
        return super().create_file(path, local_path)

    def create_bytes(self, path: str, data: bytes) -> bool:
        with self._lock:
            self.creates[path] += 1
            if not path.startswith(cas.LEASE_DIR):
                self.bytes_sent += len(data)
        return super().create_bytes(path, data)


def test_stage_hashes_what_is_written(tmp_path):
    with stage() as st:
        pickle.dump({"a": np.arange(1000)}, st.writer)
        np.save(st.writer, np.ones(10))
        digest, size = st.finish()
        with open(st.path, "rb") as f:
            data = f.read()
        assert hashlib.sha256(data).hexdigest() == digest and size == len(data)
        assert hash_file(st.path) == (digest, size)
        path = st.path
    assert not os.path.exists(path)  # the temp file goes with the block


def test_npz_streams_through_the_hashing_writer():
    with stage() as st:
        np.savez(st.writer, a=np.arange(5), b=np.eye(2))
        digest, size = st.finish()
        with np.load(st.path) as z:
            assert z["a"].tolist() == [0, 1, 2, 3, 4]
    assert size > 0 and len(digest) == 64


def test_identical_bytes_are_one_blob(tmp_path):
    store = ContentStore(LocalBackend(str(tmp_path)))
    first = store.put_bytes(b"hello")
    second = store.put_bytes(b"hello")
    other = store.put_bytes(b"world")
    assert first.uploaded and not second.uploaded and other.uploaded
    assert first.sha256 == second.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert store.read_bytes(first.sha256) == b"hello"
    assert (tmp_path / blob_path(first.sha256)).is_file()
    p = tmp_path / "f.bin"
    p.write_bytes(b"hello")
    assert not store.put_file(str(p)).uploaded  # same bytes from a file: a hit
    with store.open(other.sha256) as f:
        assert f.read() == b"world"


@pytest.mark.timeout(60)
def test_racing_writers_upload_a_large_blob_once(tmp_path):
    backend = CountingBackend(str(tmp_path / "root"))
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 << 20))
    digest, size = hash_file(str(src))
    barrier = threading.Barrier(8)
    results = []

    def save():
        store = ContentStore(backend, lease_min_bytes=1 << 20)
        barrier.wait()
        results.append(store.put_file(str(src)))

    threads = [threading.Thread(target=save) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.uploaded for r in results) == 1
    assert backend.creates[blob_path(digest)] == 1
    assert backend.bytes_sent == size
    assert not backend.exists(lease_path(digest))  # released
    assert hash_file(str(tmp_path / "root" / blob_path(digest))) == (digest, size)


@pytest.mark.timeout(60)
def test_small_blobs_skip_the_lease(tmp_path):
    backend = CountingBackend(str(tmp_path))
    ContentStore(backend).put_bytes(b"x" * 100)
    assert not any(p.startswith(cas.LEASE_DIR) for p in backend.creates)


@pytest.mark.timeout(60)
def test_a_stale_lease_is_taken_over(tmp_path):
    backend = LocalBackend(str(tmp_path))
    data = os.urandom(2 << 20)
    digest = hashlib.sha256(data).hexdigest()
    # a holder that died long ago left its lease behind
    backend.write_bytes(lease_path(digest), json.dumps({"host": "gone", "pid": 1,
                                                         "time": time.time() - 3600}).encode())
    store = ContentStore(backend, lease_min_bytes=1 << 20, lease_stale=5)
    t0 = time.monotonic()
    assert store.put_bytes(data).uploaded
    assert time.monotonic() - t0 < 5
    assert store.read_bytes(digest) == data and not backend.exists(lease_path(digest))


@pytest.mark.timeout(60)
def test_a_lease_whose_holder_was_killed_on_this_host_is_taken_over_at_once(tmp_path):
    """A process killed (kill -9) while it uploaded left a fresh lease: the script rerun at
    once waited until the lease was ``lease_stale`` (60 s) old to save the same bytes. Its
    holder is a process of this host that is gone (pid and start): taken over at once. A live
    holder's lease (this very process) is still waited on."""
    import socket
    import subprocess
    import sys

    from distlog.processes import process_start

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = process_start(child.pid)
    child.kill()
    child.wait()
    backend = LocalBackend(str(tmp_path))
    data = os.urandom(2 << 20)
    digest = hashlib.sha256(data).hexdigest()
    backend.write_bytes(lease_path(digest), json.dumps({
        "host": socket.gethostname(), "pid": child.pid, "pid_start": started, "time": time.time()}).encode())
    store = ContentStore(backend, lease_min_bytes=1 << 20, lease_stale=60, poll_max=0.05)
    t0 = time.monotonic()
    assert store.put_bytes(data).uploaded
    assert time.monotonic() - t0 < 5
    assert store.read_bytes(digest) == data and not backend.exists(lease_path(digest))
    assert cas._holder_gone(json.dumps({"host": socket.gethostname(), "pid": child.pid,
                                        "pid_start": started}).encode())
    assert not cas._holder_gone(cas.owner_body())  # this process: alive
    assert not cas._holder_gone(json.dumps({"host": "another-host", "pid": child.pid,
                                            "pid_start": started}).encode())
    assert not cas._holder_gone(json.dumps({"host": socket.gethostname(), "pid": child.pid}).encode())


@pytest.mark.timeout(60)
def test_a_dead_lease_written_by_a_clock_ahead_of_ours_is_taken_over_after_lease_stale(tmp_path):
    """The holder's node clock ran 10 minutes ahead: its lease says it is from the future. It
    is taken over once unchanged for lease_stale seconds of our clock, not 10 minutes later."""
    backend = LocalBackend(str(tmp_path))
    data = os.urandom(2 << 20)
    digest = hashlib.sha256(data).hexdigest()
    backend.write_bytes(lease_path(digest), json.dumps({"host": "ahead", "pid": 1,
                                                         "time": time.time() + 600}).encode())
    store = ContentStore(backend, lease_min_bytes=1 << 20, lease_stale=1, poll_max=0.05)
    t0 = time.monotonic()
    assert store.put_bytes(data).uploaded
    assert 1 <= time.monotonic() - t0 < 10
    assert store.read_bytes(digest) == data and not backend.exists(lease_path(digest))


@pytest.mark.timeout(60)
def test_a_waiter_returns_when_the_holder_finishes(tmp_path):
    backend = LocalBackend(str(tmp_path))
    data = os.urandom(2 << 20)
    digest = hashlib.sha256(data).hexdigest()
    backend.write_bytes(lease_path(digest), json.dumps({"host": "h", "pid": 1,
                                                         "time": time.time()}).encode())
    store = ContentStore(backend, lease_min_bytes=1 << 20, poll_max=0.05)

    def holder_finishes():
        time.sleep(0.3)
        backend.create_bytes(blob_path(digest), data)
        backend.delete(lease_path(digest))

    t = threading.Thread(target=holder_finishes)
    t.start()
    res = store.put_bytes(data)
    t.join()
    assert not res.uploaded and store.read_bytes(digest) == data


def test_reusing_an_old_blob_writes_a_freshness_marker(tmp_path):
    backend = LocalBackend(str(tmp_path))
    store = ContentStore(backend)
    d = store.put_bytes(b"payload").sha256
    assert not store.put_bytes(b"payload").reused_old  # young: nothing to do
    assert not backend.exists(fresh_path(d))
    old = time.time() - 10 * cas.FRESHEN_AFTER
    os.utime(tmp_path / blob_path(d), (old, old))
    res = store.put_bytes(b"payload")
    assert res.reused_old and not res.uploaded and backend.exists(fresh_path(d))
    assert not store.put_bytes(b"payload").reused_old  # the marker is recent now
