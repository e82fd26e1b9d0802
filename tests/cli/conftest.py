from __future__ import annotations

import signal

import pytest


@pytest.fixture(autouse=True)
def own_signal_handlers():
    """``main()`` installs its SIGINT/SIGTERM handlers: put pytest's back after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)
