"""Whether the browser client's tests can run here: Playwright and a
browser already on the machine (they skip, saying why, without them)."""

from __future__ import annotations

import functools
import importlib.util

import pytest

from leaklab.driver.browser import BrowserMissing, find_browser


@functools.cache
def why_no_browser() -> str | None:
    """Why the browser client cannot run here; ``None`` when it can."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install 'leaklab[browser]')"
    try:
        find_browser()
    except BrowserMissing as exc:
        return str(exc)
    return None


#: Skips a test, saying why, where the browser client cannot run.
needs_browser = pytest.mark.skipif(why_no_browser() is not None, reason=str(why_no_browser()))
