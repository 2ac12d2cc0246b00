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


@pytest.mark.timeout(60)
def test_capture_logging_twice_stores_each_record_once_and_puts_the_level_back(root):
    """A notebook cell run twice called ``capture_logging()`` twice: two handlers, every
    record stored twice; and the logger stayed lowered to INFO after the run closed (a later
    ``basicConfig()`` printed every library's INFO lines)."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    lg = logging.getLogger("capture-twice-test")
    lg.propagate = False
    lg.setLevel(logging.WARNING)
    try:
        with exp.experiment("e"), exp.run("r"):
            first = exp.logs.capture_logging("capture-twice-test")
            again = exp.logs.capture_logging("capture-twice-test", level="DEBUG")
            assert again is first and first.level == logging.DEBUG
            assert lg.level == logging.DEBUG
            lg.info("logged once")
            lg.debug("debug too")
        assert lg.level == logging.WARNING  # as before the run
        assert first not in lg.handlers
    finally:
        lg.handlers.clear()
    messages = _messages(root, "r")
    assert messages.count("logged once") == 1 and messages.count("debug too") == 1, messages


@pytest.mark.timeout(60)
def test_capture_logging_keeps_a_level_the_program_set_meanwhile(root):
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    lg = logging.getLogger("capture-level-test")
    lg.propagate = False
    try:
        with exp.experiment("e"), exp.run("r"):
            exp.logs.capture_logging("capture-level-test")
            assert lg.level == logging.INFO
            lg.setLevel(logging.ERROR)  # the program's own choice stays
        assert lg.level == logging.ERROR
    finally:
        lg.handlers.clear()
        lg.setLevel(logging.NOTSET)


@pytest.mark.timeout(60)
def test_fields_named_level_and_message_are_fields(root):
    """``exp.info("...", level=3)`` raised "TextLogger.log() got multiple values for
    argument 'level'" (and ``message=`` alike) from inside distlog; the message is
    positional-only now, so every name is a field."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    with exp.experiment("e"), exp.run("r"):
        exp.info("curriculum advanced", level=3, message="harder")
        exp.logs.warning("w", level="x")
        exp.log("ERROR", "e", level=1)
        try:
            raise KeyError("k")
        except KeyError:
            exp.exception("failed", message="m")
    recs = {r.message: r for r in distlog.open_run(f"{root}/e/r").logs.query(source="text")}
    assert recs["curriculum advanced"].fields == {"level": 3, "message": "harder"}
    assert recs["curriculum advanced"].level == "INFO"
    assert recs["w"].fields == {"level": "x"} and recs["w"].level == "WARNING"
    assert recs["e"].fields == {"level": 1} and recs["e"].level == "ERROR"
    failed = recs["failed: KeyError: 'k'"]
    assert failed.fields["message"] == "m" and "KeyError" in failed.fields["traceback"]


ROOT_AND_CHILD = r"""
import logging, sys
import distlog
exp = distlog.get_logger(sys.argv[1], heartbeat_interval=0, telemetry=False)
with exp.experiment("e"), exp.run("r"):
    exp.logs.capture_logging()        # the root logger
    exp.logs.capture_logging("user")  # and a child of it: a record reaches both bridges
    exp.warning("WARN-FROM-EXP")
    logging.getLogger("user").warning("WARN-FROM-LOGGING")
    logging.getLogger("user").info("INFO-FROM-LOGGING")
"""


@pytest.mark.timeout(60)
def test_root_capture_stores_each_record_once_and_keeps_warnings_on_the_console(root):
    """Captured on the root logger and on a child, a record was stored twice; and with no
    logging configured, the bridge on the root logger counted as a handler, so Python no
    longer printed WARNINGs (its last resort) and distlog's echo of every WARNING was gone
    from the console."""
    done = subprocess.run([sys.executable, "-c", ROOT_AND_CHILD, root], check=True, timeout=50,
                          capture_output=True, text=True)
    messages = _messages(root, "r")
    for m in ("WARN-FROM-EXP", "WARN-FROM-LOGGING", "INFO-FROM-LOGGING"):
        assert messages.count(m) == 1, (m, messages)
    err = done.stderr.splitlines()
    assert err.count("[distlog r0] WARNING WARN-FROM-EXP") == 1, err
    assert err.count("[distlog r0] WARNING WARN-FROM-LOGGING") == 1, err
    assert not any("INFO-FROM-LOGGING" in line for line in err), err


def test_what_a_logging_call_passes_as_extra_is_kept_as_fields(root):
    """``logger.info("...", extra={"epoch": 3, "lr": 0.1})`` was stored with only the logger's
    name; ``stack_info=True`` lost its stack."""
    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False)
    lg = logging.getLogger("train.extra")
    with exp.experiment("e"), exp.run("x"):
        exp.logs.capture_logging("train.extra")
        lg.setLevel(logging.INFO)
        lg.info("epoch done", extra={"epoch": 3, "lr": 0.1, "note": object.__name__})
        lg.info("with a step", extra={"step": 7})
        lg.warning("where", stack_info=True)
        lg.info("plain")
    recs = {r.message: r for r in distlog.open_run(f"{root}/e/x").logs.query(source="text")}
    assert recs["epoch done"].fields == {"logger": "train.extra", "epoch": 3, "lr": 0.1, "note": "object"}
    assert recs["with a step"].step == 7
    assert "Stack (most recent call last)" in recs["where"].fields["stack"]
    assert "test_what_a_logging_call_passes_as_extra" in recs["where"].fields["stack"]
    assert recs["plain"].fields == {"logger": "train.extra"}
