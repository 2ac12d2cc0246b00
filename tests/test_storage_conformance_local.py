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
