"""The storage conformance suite (``support.conformance``) against the local and memory backends."""

from __future__ import annotations

import urllib.request
import uuid
from typing import Any

import pytest

from distlog.storage import StorageBackend, open_storage
from support.conformance import StorageConformance


class TestLocal(StorageConformance):
    segmented = False

    @pytest.fixture
    def spec(self, tmp_path: Any) -> dict[str, Any]:
        return {"url": str(tmp_path / "root"), "storage_options": {}, "env": {}}

    def check_url(self, backend: StorageBackend, url: str, spec: dict[str, Any]) -> None:
        assert url.startswith("file:///") and url.endswith("share/plot.png")
        with urllib.request.urlopen(url) as r:  # file:// only
            assert r.read() == b"PNG..."

    def test_every_kind_of_write_gets_the_usual_permissions(self, backend: StorageBackend, tmp_path: Any) -> None:
        """Files distlog writes itself (replaced, put, created exclusively, copied in) get 0666
        less the umask, as zarr's chunk files do: a shared run folder is readable alike."""
        import os

        src = tmp_path / "src.bin"
        src.write_bytes(b"blob")
        old = os.umask(0o022)
        try:
            backend.write_bytes("a/run.json", b"{}")
            backend.put_object("a/t.zarr/k/c/0/0", b"chunk")
            assert backend.create_bytes("a/lock", b"me")
            assert backend.create_file("a/blobs/x", str(src))
        finally:
            os.umask(old)
        for path in ("a/run.json", "a/t.zarr/k/c/0/0", "a/lock", "a/blobs/x"):
            assert os.stat(backend.local_path(path)).st_mode & 0o777 == 0o644, path
        assert not [n for n in os.listdir(backend.local_path("a")) if n.startswith(".tmp-")]


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


def _temporaries(folder: Any) -> list[str]:
    import os

    return [n for n in os.listdir(folder) if n.startswith(".tmp-")] if os.path.isdir(folder) else []


def test_a_failed_create_file_leaves_no_temporary(tmp_path: Any) -> None:
    """create_file made its hidden temporary, then the copy failed (the local file gone): the
    temporary stayed next to the target forever (listings hide it; gc cleans only the blob
    store), and the error named only the local path."""
    backend = open_storage(str(tmp_path / "root"))
    with pytest.raises(FileNotFoundError, match=r"no local file to upload as file://.*a/blob"):
        backend.create_file("a/blob", str(tmp_path / "gone.bin"))
    assert not backend.exists("a/blob")
    assert _temporaries(backend.local_path("a")) == []


@pytest.mark.timeout(60)
def test_a_create_that_fails_mid_write_leaves_no_temporary(tmp_path: Any) -> None:
    """A real short write: a child process under a file size limit (RLIMIT_FSIZE, SIGXFSZ
    ignored) creates objects larger than the limit; each create fails with EFBIG, and neither
    the target nor a temporary is left."""
    import subprocess
    import sys

    root = tmp_path / "root"
    src = tmp_path / "big.bin"
    src.write_bytes(b"x" * (1 << 20))
    code = f"""
import errno, resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
from distlog.storage import open_storage
b = open_storage({str(root)!r})
for name, call in (("bytes", lambda: b.create_bytes("a/bytes", b"y" * (1 << 20))),
                   ("file", lambda: b.create_file("a/file", {str(src)!r}))):
    try:
        call()
    except OSError as e:
        assert e.errno == errno.EFBIG, e
        print(name, "failed")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["bytes failed", "file failed"], proc.stdout
    backend = open_storage(str(root))
    assert not backend.exists("a/bytes") and not backend.exists("a/file")
    assert _temporaries(root / "a") == []
