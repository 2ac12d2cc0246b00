"""A seeded hostile-name campaign: every name in every place either raises ``ValueError`` at
the call, or gives a run that writes, lists (``open_root().runs()``, ``distlog ls``), reads
back and survives ``distlog gc --grace 0`` intact; nothing is written outside the root."""

from __future__ import annotations

import os

import pytest

from support.hostile_names import PLACES, all_names, exercise, verify

NAMES = all_names()


def _outside(tmp_path, root) -> list[str]:
    inside = os.path.abspath(root)
    out = []
    for folder, dirs, files in os.walk(tmp_path):
        dirs[:] = [d for d in dirs if os.path.join(os.path.abspath(folder), d) != inside]
        out.extend(os.path.join(folder, n) for n in dirs + files)
    return sorted(out)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("i", range(len(NAMES)))
def test_hostile_name_in_every_place(tmp_path, monkeypatch, i):
    name = NAMES[i]
    root = tmp_path / "root"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a name resolved against the working directory would land here
    before = _outside(tmp_path, root)
    acc = exercise(str(root), name)
    assert _outside(tmp_path, root) == before, f"written outside the root for {name!r}"
    verify(str(root), acc)
    for place, message in acc.rejected.items():
        assert place in PLACES
        assert any(w in message for w in ("name", "id", "key", "namespace")), message
