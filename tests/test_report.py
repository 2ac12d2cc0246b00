"""distlog's own warnings (``distlog.report``): one prefix, rate-limited, through the stdlib
logger ``"distlog"``: visible on stderr by default, silenced or routed like any logger."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from distlog import report


@pytest.fixture(autouse=True)
def _fresh_limiter():
    report.reset()
    yield
    report.reset()


def test_prefix_and_logger(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="distlog"):
        assert report.warn("the store is down")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("distlog", logging.WARNING, "distlog: the store is down")]


def test_repeats_are_held_back_then_counted(caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(report.time, "monotonic", lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="distlog"):
        assert report.warn("write failed (1)", key="w", interval=60)
        assert not report.warn("write failed (2)", key="w", interval=60)
        assert not report.warn("write failed (3)", key="w", interval=60)
        assert report.warn("another kind", key="other", interval=60)  # keys are separate
        clock[0] += 61
        assert report.warn("write failed (4)", key="w", interval=60)
    assert [r.getMessage() for r in caplog.records] == [
        "distlog: write failed (1)",
        "distlog: another kind",
        "distlog: write failed (4) (2 more like this in the last 60 s not shown)",
    ]


def test_silenced_by_the_logger_level(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("distlog")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with caplog.at_level(logging.DEBUG):
            report.warn("not shown")
            report.echo(0, "WARNING", logging.WARNING, "nor this")
    finally:
        logger.setLevel(old)
    assert [r for r in caplog.records if r.name.startswith("distlog")] == []


def test_stderr_by_default_without_logging_configuration() -> None:
    code = ("from distlog import report; report.warn('could not write run.json'); "
            "report.echo(3, 'ERROR', 40, 'nan in grad')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["distlog: could not write run.json",
                                        "[distlog r3] ERROR nan in grad"]
    assert proc.stdout == ""
