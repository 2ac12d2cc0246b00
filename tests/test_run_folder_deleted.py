"""A run whose folder is deleted while it is open is recorded failed, and says so.

Before: the close wrote a fresh ``run.json`` with no attempts and status ``completed``, exit 0
and no word, while the logs, params and files stored before the deletion (and the log lines
and files after it, on local disk: written to unlinked files) were gone — and ``distlog gc``
counted the run's blobs as unreferenced."""

from __future__ import annotations

import json
import logging
import shutil

import distlog
from distlog.layout import RUN_FILE


def test_a_run_whose_folder_was_deleted_while_open_ends_failed_and_says_why(tmp_path, caplog):
    root = tmp_path / "root"
    exp = distlog.get_logger(str(root), heartbeat_interval=0, commit_interval=3600)
    with caplog.at_level(logging.WARNING, logger="distlog"):
        with exp.run("r", params={"lr": 0.1}):
            for step in range(5):
                exp.metrics.log(step=step, loss=1.0 / (step + 1))
            exp.info("before the deletion")
            exp.files.save(b"weights", "ckpt.bin")
            shutil.rmtree(root / "default" / "r")  # a clean-up script, an rm -rf by mistake
            for step in range(5, 10):
                exp.metrics.log(step=step, loss=1.0 / (step + 1))
    meta = json.loads((root / "default" / "r" / RUN_FILE).read_text())
    assert meta["status"] == "failed" and meta["error"]["type"] == "RunFolderDeleted"
    assert "was deleted while the run was open" in meta["error"]["message"]
    assert [a["attempt"] for a in meta["attempts"]] == [0]  # this attempt's record, as written at its start
    assert meta["attempts"][0]["status"] == "failed" and meta["started"]
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("was deleted while the run was open" in m for m in said), said
    run = distlog.open_run(root / "default" / "r")
    assert run.info.status == "failed"
    assert run.metrics.read("loss").step.tolist() == list(range(10))  # (none committed before)
