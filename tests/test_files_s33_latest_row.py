"""``run.files.table(latest=True)`` (and ``distlog files RUN``) shows, per path, the newest
version as it was last saved: that content's most recent record (its step, time, rank, host,
attempt), not the record of the first save of that content."""

from __future__ import annotations

import hashlib
import io
import json
from contextlib import redirect_stdout

import distlog
from distlog.cli import main as cli


def test_latest_row_is_the_newest_versions_last_save(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.run("r"):
        url = exp.run_url
        f = exp.files("cfg")
        first = f.save(b"lr: 0.1\n", "config.yaml.txt", step=1)
        f.save(b"old\n", "other.txt", step=1)
        again = f.save(b"lr: 0.1\n", "config.yaml.txt", step=7)  # the same bytes, saved later
        assert again.version == first.version == 1 and again.time > first.time
    run = distlog.open_run(url)
    df = run.files.table(latest=True)
    row = df[df["path"] == "cfg/config.yaml.txt"].iloc[0]
    assert row["version"] == 1
    assert row["sha256"] == hashlib.sha256(b"lr: 0.1\n").hexdigest()
    assert row["step"] == 7 and row["time"] == again.time, row.to_dict()
    # every version's saves are still there in the full table
    full = run.files.table()
    assert sorted(full[full["path"] == "cfg/config.yaml.txt"]["step"].tolist()) == [1, 7]

    out = io.StringIO()
    with redirect_stdout(out):
        assert cli(["files", url, "--format", "json"]) == 0
    rows = {r["path"]: r for r in json.loads(out.getvalue())}
    assert rows["cfg/config.yaml.txt"]["step"] == 7 and rows["cfg/config.yaml.txt"]["version"] == 1
    assert rows["cfg/other.txt"]["step"] == 1


def test_latest_row_after_a_newer_version_is_that_versions_last_save(tmp_path):
    root = str(tmp_path / "root")
    exp = distlog.get_logger(root)
    with exp.run("r"):
        url = exp.run_url
        exp.files.save(b"a", "m.bin", step=1)
        exp.files.save(b"b", "m.bin", step=2)
        exp.files.save(b"b", "m.bin", step=3)
        exp.files.save(b"a", "m.bin", step=4)  # back to the first bytes: version 3
        exp.files.save(b"a", "m.bin", step=5)
    row = distlog.open_run(url).files.table(latest=True).iloc[0]
    assert (row["version"], row["step"]) == (3, 5)
    assert row["sha256"] == hashlib.sha256(b"a").hexdigest()
