"""The browser tests' Chromium (Debian's, driven by Playwright) and a page of a dashboard
served for one test. A test module sets ``pytestmark = MARKS`` and imports ``browser``."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import pytest

CHROMIUM = "/usr/bin/chromium"
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for a test module (skips when Playwright is not installed)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@contextlib.contextmanager
def served(browser: Any, root: str, fragment: str, height: int = 860, console: bool = False) -> Iterator[Any]:
    """``distlog.serve(root)`` and a page at ``fragment`` (1280 px wide); the page's uncaught
    errors (with ``console``: also what it logs with console.error) are collected and must be
    none at the end; page and server are closed whatever happens. ``pg.base``: the
    dashboard's URL; ``pg.errors``: what was collected so far."""
    import distlog

    url = distlog.serve(root)
    try:
        with opened(browser, url, fragment, height, console) as pg:
            yield pg
    finally:
        url.stop()


@contextlib.contextmanager
def opened(browser: Any, url: str, fragment: str, height: int = 860, console: bool = False) -> Iterator[Any]:
    """A page at ``url + fragment`` of a dashboard served elsewhere, as ``served`` gives it."""
    ctx = browser.new_context(viewport={"width": 1280, "height": height})
    try:
        pg = ctx.new_page()
        pg.set_default_timeout(20_000)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        if console:
            pg.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        pg.base, pg.errors = url, errors
        pg.goto(url + fragment)
        yield pg
        assert not errors, errors
    finally:
        ctx.close()


class ServeProcess:
    """``distlog serve ROOT`` in a process of its own, as a person runs it: ``start()`` (port
    0 the first time: a free one; then the same port again) returns its URL; ``kill()`` ends it
    as a crash or a closed terminal would. Use it as a context manager: killed at the end."""

    def __init__(self, root: str) -> None:
        self.root, self.port, self.proc = root, 0, None

    def start(self, timeout: float = 60.0) -> str:
        import subprocess
        import sys
        import time
        import urllib.request

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen([sys.executable, "-m", "distlog.cli", "serve", self.root, "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        line = self.proc.stdout.readline()
        assert "http://127.0.0.1:" in line, line + self.proc.stdout.read()
        url = line.split(" at ", 1)[1].strip()
        self.port = int(url.rsplit(":", 1)[1].strip("/"))
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + timeout
        while True:  # (the URL is printed before uvicorn answers)
            try:
                direct.open(url + "api/meta", timeout=5).close()
                return url
            except OSError:
                assert time.monotonic() < deadline and self.proc.poll() is None, f"distlog serve did not answer at {url}"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def __enter__(self) -> "ServeProcess":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()


@contextlib.contextmanager
def live_run_served(root: str, log: Any, steps: int = 10) -> Iterator[tuple[Any, ServeProcess, str]]:
    """A run ``live/w`` being written (committed every 0.05 s) whose first ``steps`` steps
    ``log(exp.metrics, step)`` logged and committed, and ``distlog serve`` of its root in a
    process of its own (``ServeProcess``): yields ``(exp, server, url)``."""
    import distlog

    exp = distlog.get_logger(root, heartbeat_interval=0, telemetry=False, commit_interval=0.05)
    with exp.experiment("live"), exp.run("w"), ServeProcess(root) as srv:
        for s in range(steps):
            log(exp.metrics, s)
        exp.metrics.commit()
        yield exp, srv, srv.start()


def drag(pg: Any, selector: str, start: float, end: float) -> None:
    """Drag with the mouse across the plot area of the chart card ``selector`` from ``start``
    to ``end`` (fractions of its width), as a person selects a range to zoom into."""
    over = pg.locator(f"{selector} .u-over")
    over.wait_for(state="visible")  # (a chart drawn again, per rank say, has none for a moment)
    box = over.bounding_box()
    y = box["y"] + box["height"] / 2
    pg.mouse.move(box["x"] + box["width"] * start, y)
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] * end, y, steps=8)
    pg.mouse.up()


@pytest.fixture
def shots(tmp_path) -> str:
    """Where a test writes its screenshots: ``DISTLOG_SHOTS_DIR`` (to look at them), else its
    temporary folder."""
    d = os.environ.get("DISTLOG_SHOTS_DIR") or str(tmp_path)
    os.makedirs(d, exist_ok=True)
    return d


def url_zoom(pg: Any) -> str | None:
    """The zoom= value of the page's URL (its #/page?query), or None."""
    from urllib.parse import parse_qs

    query = pg.evaluate("() => location.hash").partition("?")[2]
    return (parse_qs(query).get("zoom") or [None])[0]


def parse_zoom(text: str) -> tuple[float, float]:
    """"100-2500" -> (100.0, 2500.0); "-5--2.5" -> (-5.0, -2.5)"""
    import re

    m = re.fullmatch(r"(-?[\d.]+)-(-?[\d.]+)", text)
    assert m, text
    return float(m[1]), float(m[2])


def rows_read(x0: float, x1: float, n: int) -> list[int]:
    """The steps of a series of ``n`` steps that a zoom on [x0, x1] reads: every one inside,
    and one either side."""
    inside = [s for s in range(n) if x0 <= s <= x1]
    return list(range(max(0, inside[0] - 1), min(n - 1, inside[-1] + 1) + 1))


def drop_asked_failures(pg: Any, *statuses: int) -> None:
    """Forget the console errors Chromium logs for answers with these HTTP statuses ("Failed
    to load resource: ... status of 404"): a test that asks for a refusal expects them (any
    other error the page collected stays, and ``served`` still fails on it)."""
    marks = tuple(f"status of {s} " for s in statuses)
    pg.errors[:] = [e for e in pg.errors if not any(m in e for m in marks)]


def drop_connection_failures(pg: Any) -> None:
    """Forget the console errors Chromium logs for requests no server answered
    ("net::ERR_CONNECTION_REFUSED"): a test that stops the server expects them."""
    pg.errors[:] = [e for e in pg.errors if "net::ERR_CONNECTION_" not in e]
