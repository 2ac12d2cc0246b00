"""``exp.readme``: notes appended from several threads are all kept, and a kept readme logger
refuses to rewrite the notes of a run that ended, as the other loggers refuse."""

from __future__ import annotations

import threading

import pytest

import distlog
from distlog.errors import RunStateError


@pytest.mark.timeout(60)
def test_appends_from_several_threads_keep_every_paragraph(root):
    """``append`` reads the notes, adds, writes them back: 4 threads × 20 appends kept 20-22."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        readme = exp.readme

        def add(t: int) -> None:
            for i in range(20):
                readme.append(f"note {t}.{i}")

        threads = [threading.Thread(target=add, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    text = distlog.open_run(f"{root}/e/r").readme
    paragraphs = text.split("\n\n")
    assert sorted(paragraphs) == sorted(f"note {t}.{i}" for t in range(4) for i in range(20))


@pytest.mark.timeout(60)
def test_a_kept_readme_logger_refuses_after_its_run_ended(root):
    """A kept ``exp.readme`` rewrote the finished run's notes with no word (its "final
    results" gone); a kept ``exp.files`` raised ``RunStateError``."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        kept = exp.readme
        kept.write("# final results")
    for call in (lambda: kept.write("scratch"), lambda: kept.append("more")):
        with pytest.raises(RunStateError, match="has ended.*take exp.readme again"):
            call()
    assert distlog.open_run(f"{root}/e/r").readme == "# final results"
    with exp.experiment("e"), exp.run("next"):
        exp.readme.write("next run")  # the next run's own logger works
    assert distlog.open_run(f"{root}/e/next").readme == "next run"
