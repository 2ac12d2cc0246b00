"""``distlog gc`` against layouts that older versions (or people) wrote: it marks every
manifest anywhere under the root, and refuses (exit status 2, with the reason) a layout it
does not understand instead of deleting on a guess. Issue 10: an experiment named
``run.json`` made gc take the whole root for one run and delete every blob of every run."""

from __future__ import annotations

import os
import shutil
import time

import pytest

import distlog
from distlog.cas import BLOB_DIR
from distlog.errors import LayoutError
from distlog.gc import collect_garbage
from distlog.layout import MANIFEST_DIR, RUN_FILE, STORE_DIR, manifest_path
from support.hostile_names import gc

OLD = time.time() - 7 * 86400


def _blobs(root) -> list[str]:
    out = []
    for folder, _d, files in os.walk(os.path.join(root, BLOB_DIR)):
        out.extend(files)
    return sorted(out)


def _two_runs(tmp_path) -> str:
    """Runs x/r1 and y/r2, one artifact each, every blob a week old (fair game for gc)."""
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    for e, r in (("x", "r1"), ("y", "r2")):
        with exp.experiment(e), exp.run(r):
            exp.files.save(f"bytes of {e}/{r}".encode(), "a.bin")
    for folder, _d, files in os.walk(os.path.join(root, STORE_DIR)):
        for f in files:
            os.utime(os.path.join(folder, f), (OLD, OLD))
    assert len(_blobs(root)) == 2
    return root


def _move(root, src, dst):
    os.makedirs(os.path.dirname(os.path.join(root, dst)) or root, exist_ok=True)
    os.rename(os.path.join(root, src), os.path.join(root, dst))


@pytest.mark.parametrize("change,reason", [
    (lambda r: _move(r, "x", RUN_FILE), f"folder named {RUN_FILE}"),
    (lambda r: _move(r, "x", ".hidden"), "sits in a folder named '.hidden'"),
    (lambda r: _move(r, "x", "e/.hidden"), "sits in a folder named '.hidden'"),
    (lambda r: _move(r, "x", "x.seg"), "sits in a folder named 'x.seg'"),
    (lambda r: _move(r, "y/r2", "x/r1/nested"), "is inside another run ('x/r1')"),
    (lambda r: shutil.copy(os.path.join(r, "x/r1", manifest_path(0)),
                           os.path.join(r, "x", os.path.basename(manifest_path(0)))),
     f"is not in a run's {MANIFEST_DIR}/ folder"),
    (lambda r: os.makedirs(os.path.join(r, ".cache/sub")) or open(
        os.path.join(r, ".cache/sub/f"), "w").close(), "hidden folder that distlog does not write"),
])
def test_a_layout_gc_does_not_understand_is_refused_and_nothing_deleted(tmp_path, change, reason):
    root = _two_runs(tmp_path)
    change(root)
    before = _blobs(root)
    with pytest.raises(LayoutError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        collect_garbage(root, grace_seconds=0)
    code, text = gc(root)
    assert code == 2 and "error:" in text and "run gc again" in text, text
    assert _blobs(root) == before


def test_a_run_folder_given_as_the_root_is_refused(tmp_path):
    root = _two_runs(tmp_path)
    code, text = gc(os.path.join(root, "x", "r1"))
    assert code == 2 and "it is a run folder, not a root" in text, text
    assert len(_blobs(root)) == 2


def test_a_hidden_file_at_the_top_is_harmless(tmp_path):
    root = _two_runs(tmp_path)
    open(os.path.join(root, ".DS_Store"), "wb").close()
    rep = collect_garbage(root, grace_seconds=0)
    assert (rep.blobs_total, rep.referenced, rep.removed, rep.runs_scanned) == (2, 2, 0, 2)


def test_every_manifest_counts_not_only_the_runs_a_reader_lists(tmp_path):
    """A run 9 levels deep is past what readers scan, but its blob stays."""
    root = _two_runs(tmp_path)
    _move(root, "y", "/".join("abcdefgh") + "/y")
    assert {r.info.run_id for r in distlog.open_root(root).runs()} == {"r1"}
    rep = collect_garbage(root, grace_seconds=0)
    assert (rep.referenced, rep.removed, rep.runs_scanned) == (2, 0, 2)
    assert len(_blobs(root)) == 2


def test_ls_says_which_hidden_folders_it_did_not_scan(tmp_path):
    root = _two_runs(tmp_path)
    _move(root, "x", ".hidden")  # as older versions wrote an experiment named ".hidden"
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from distlog.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["ls", root, "--format", "csv"]) == 0
    assert "r2" in out.getvalue() and "r1" not in out.getvalue()
    assert "hidden folders hold runs not listed: '.hidden' (" in err.getvalue()
    assert STORE_DIR not in err.getvalue()


def test_ls_says_nothing_of_hidden_folders_that_hold_no_run(tmp_path):
    """The README's sweep keeps its checkpoints in ``<root>/demo/.checkpoints``: every
    ``distlog ls`` then said "hidden entries not scanned: 'demo/.checkpoints' ... rename them
    to list their runs", as it would for a notebook's ``.ipynb_checkpoints`` or a ``.git``."""
    root = _two_runs(tmp_path)
    for folder, name in ((".checkpoints", "r1.pt"), (".ipynb_checkpoints", "nb.ipynb"),
                         (".git/objects", "ab"), ("y/.checkpoints", "r2.pt")):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        with open(os.path.join(root, folder, name), "w") as f:
            f.write("x")
    with open(os.path.join(root, ".DS_Store"), "w") as f:
        f.write("x")
    _move(root, "x", ".old")  # a hidden folder that does hold a run (one folder down)
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from distlog.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["ls", root, "--format", "csv"]) == 0
    assert "r2" in out.getvalue()
    assert "note: hidden folders hold runs not listed: '.old' (" in err.getvalue()
    assert "checkpoints" not in err.getvalue() and ".git" not in err.getvalue(), err.getvalue()
    assert "DS_Store" not in err.getvalue()


def test_runs_under_a_linked_experiment_or_run_folder_keep_their_blobs(tmp_path):
    """Readers follow folder links (an experiment moved to a bigger disk), so gc does too;
    a link back up the tree is listed once, not looped through."""
    root = _two_runs(tmp_path)
    moved = str(tmp_path / "bigdisk")
    os.makedirs(moved)
    os.rename(os.path.join(root, "x"), os.path.join(moved, "x"))
    os.symlink(os.path.join(moved, "x"), os.path.join(root, "x"))
    os.rename(os.path.join(root, "y", "r2"), os.path.join(moved, "r2"))
    os.symlink(os.path.join(moved, "r2"), os.path.join(root, "y", "r2"))
    os.symlink(root, os.path.join(root, "y", "loop"))
    rep = collect_garbage(root, grace_seconds=0)
    assert (rep.referenced, rep.removed, rep.runs_scanned) == (2, 0, 2)
    assert len(_blobs(root)) == 2


def test_a_folder_gc_cannot_list_aborts_it_and_nothing_is_deleted(tmp_path, monkeypatch):
    """Another user's private experiment (mode 700): a partial mark would delete its blobs."""
    root = _two_runs(tmp_path)
    private, scandir = os.path.join(root, "x"), os.scandir

    def refuse(path="."):
        if os.fspath(path) == private:
            raise PermissionError(13, "Permission denied", private)
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    with pytest.raises(LayoutError, match="Permission denied: '.*/x'.*nothing was deleted"):
        collect_garbage(root, grace_seconds=0)
    code, text = gc(root)
    assert code == 2 and "Run gc as a user who can read every folder" in text, text
    assert len(_blobs(root)) == 2


def test_foreign_lines_in_a_manifest_are_skipped_and_a_blob_they_name_is_kept(tmp_path):
    """A manifest line that is JSON but no record (a list) crashed gc and every reader with
    AttributeError, and a record lacking its time (`{}`) made sorting fail with TypeError. A
    line that names a blob keeps it referenced, whatever else it lacks."""
    root = _two_runs(tmp_path)
    manifest = os.path.join(root, "x", "r1", manifest_path(0))
    named = distlog.open_run(f"{root}/y/r2").files.find("a.bin").sha256
    with open(manifest, "a") as f:
        f.write('[1]\n{}\n"text"\n' + '{"sha256": "%s"}\n' % named)
    os.remove(os.path.join(root, "y", "r2", manifest_path(0)))  # only the partial line names it now
    run = distlog.open_run(f"{root}/x/r1")
    assert run.files.paths() == ["a.bin"]
    assert run.files.read_bytes("a.bin") == b"bytes of x/r1"
    rep = collect_garbage(root, grace_seconds=0)
    assert (rep.referenced, rep.removed) == (2, 0)


def test_a_link_to_a_run_or_experiment_beside_it_changes_nothing(tmp_path):
    """A `.latest -> x/r1` link (and a link to an experiment) lists nothing twice and nothing
    under the link's path, whatever the listing order: gc sees the layout it always did."""
    root = _two_runs(tmp_path)
    os.symlink(os.path.join(root, "x", "r1"), os.path.join(root, ".latest"))
    os.symlink(os.path.join(root, "y"), os.path.join(root, "a-link"))
    rep = collect_garbage(root, grace_seconds=0)
    assert (rep.referenced, rep.removed, rep.runs_scanned) == (2, 0, 2)
