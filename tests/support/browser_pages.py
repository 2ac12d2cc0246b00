"""A page of a dashboard served for one browser test."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


@contextlib.contextmanager
def served(browser: Any, root: str, fragment: str, height: int = 860) -> Iterator[Any]:
    """``distlog.serve(root)`` and a page at ``fragment`` (1280 px wide); the page's uncaught
    errors are collected and must be none at the end; page and server are closed whatever
    happens."""
    import distlog

    url = distlog.serve(root)
    ctx = browser.new_context(viewport={"width": 1280, "height": height})
    try:
        pg = ctx.new_page()
        pg.set_default_timeout(20_000)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(url + fragment)
        yield pg
        assert not errors, errors
    finally:
        ctx.close()
        url.stop()
