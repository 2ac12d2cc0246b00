"""Version claims (``files.versions/<h>/<v>``) cost one store request for a save of bytes the
run already records as the path's newest version.

Every rank saving one checkpoint, or a config saved unchanged each epoch, makes such saves;
each tried the exclusive create again, which the store refuses (on S3: the PUT, a HEAD for the
create's marker, then a GET of the claim and a HEAD of the next one: 4 requests per rank per
save, where the manifests alone had cost none). Measured at the backend's calls on a local
root, with the versions each save records against the rule (same bytes: same version)."""

from __future__ import annotations

import distlog
from distlog.files.index import VERSIONS_DIR
from distlog.storage.local import LocalBackend


def _counting(monkeypatch) -> list[tuple[str, str]]:
    calls: list[tuple[str, str]] = []
    for name in ("create_bytes", "read_bytes", "exists"):
        real = getattr(LocalBackend, name)

        def wrapped(self, path, *a, _real=real, _name=name, **k):
            if path.startswith(f"{VERSIONS_DIR}/"):
                calls.append((_name, path.rsplit("/", 1)[1]))
            return _real(self, path, *a, **k)

        monkeypatch.setattr(LocalBackend, name, wrapped)
    return calls


def test_a_save_of_the_newest_versions_bytes_costs_one_request(tmp_path, monkeypatch) -> None:
    calls = _counting(monkeypatch)
    exp = distlog.get_logger(tmp_path)
    with exp.experiment("e"), exp.run("r"):
        f = exp.files("c")
        assert f.save(b"A" * 10, "m.bin", step=1).version == 1
        assert calls == [("create_bytes", "1")]  # a new version: its claim
        del calls[:]
        versions = [f.save(b"A" * 10, "m.bin", step=s).version for s in (2, 3, 4)]
        assert versions == [1, 1, 1]
        assert calls == [("exists", "2")] * 3  # no newer claim: still the newest
        del calls[:]
        assert f.save(b"B" * 10, "m.bin", step=5).version == 2
        assert f.save(b"A" * 10, "m.bin", step=6).version == 3  # A again after B: a new version
        assert f.save(b"A" * 10, "m.bin", step=7).version == 3
        assert calls == [("create_bytes", "2"), ("create_bytes", "3"), ("exists", "4")]
        assert f.load("m.bin") == b"A" * 10


def test_a_newer_claim_than_the_records_show_is_honoured(tmp_path) -> None:
    # another rank claimed version 2 for other bytes and has not recorded it yet: a save of
    # version 1's bytes is no longer the newest version (3), as without the shortcut
    from distlog.files.index import version_claim_path

    exp = distlog.get_logger(tmp_path)
    with exp.experiment("e"), exp.run("r"):
        f = exp.files("c")
        assert f.save(b"A" * 10, "m.bin", step=1).version == 1
        exp.current_run.storage.create_bytes(version_claim_path("c/m.bin", 2),
                                             b'{"path": "c/m.bin", "sha256": "0" }')
        assert f.save(b"A" * 10, "m.bin", step=2).version == 3
