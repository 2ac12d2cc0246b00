"""Standard-library logging into a run's log (``exp.logs.handler()``, ``capture_logging()``):
each record once, in the run that was open when it was logged."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import distlog


def _messages(root: str, run: str) -> list[str]:
    return [r.message for r in distlog.open_run(f"{root}/e/{run}").logs.query(source="text")]


ROOT_CAPTURE = r"""
import logging, sys
import distlog
exp = distlog.get_logger(sys.argv[1], heartbeat_interval=0, telemetry=False)
with exp.experiment("e"), exp.run("r"):
    exp.logs.capture_logging()  # the root logger
    exp.warning("disk almost full")
    logging.getLogger("app").warning("from the application")
"""


@pytest.mark.timeout(60)
def test_capturing_the_root_logger_stores_a_warning_once(root):
    """distlog echoes a WARNING on stderr through the logger ``distlog.echo``, which reaches
    the root logger: captured there it came back as a record, was echoed again, and so on
    until a RecursionError (about 124 records for one warning). In a script of its own:
    pytest's logging plugin changes what reaches the root logger."""
    subprocess.run([sys.executable, "-c", ROOT_CAPTURE, root], check=True, timeout=50, capture_output=True)
    messages = _messages(root, "r")
    assert sum("disk almost full" in m for m in messages) == 1, messages[:5]
    assert sum("from the application" in m for m in messages) == 1, messages[:5]


@pytest.mark.timeout(60)
def test_a_handler_kept_past_its_run_stores_nothing_in_the_ended_run(root, caplog):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    lg = logging.getLogger("kept-handler-test")
    lg.propagate = False
    lg.setLevel(logging.INFO)
    with exp.experiment("e"):
        with exp.run("first"):
            handler = exp.logs.handler()
            lg.addHandler(handler)
            lg.info("during first")
        try:
            with exp.run("second"):
                lg.info("during second")
        finally:
            lg.removeHandler(handler)
    first = _messages(root, "first")
    assert "during first" in first and "during second" not in first, first
    assert first[-1] == "run ended: completed"
    assert any("after its run ended was dropped" in r.getMessage() for r in caplog.records)  # said once
