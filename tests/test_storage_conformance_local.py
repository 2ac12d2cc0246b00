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
