"""Shared test helpers: run a coroutine on a fresh loop, serve the reference backend."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import psutil
import pytest

from leaklab.backend import create_app
from leaklab.serving import RunningServer, serve


def run_async(coro: Coroutine[Any, Any, Any], *, allow_loop_errors: bool = False) -> Any:
    """Run ``coro`` on a new loop; fail on errors the loop only logs
    ("Task was destroyed but it is pending!", "exception was never retrieved")."""
    errors: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        return await coro

    result = asyncio.run(main())
    if errors and not allow_loop_errors:
        pytest.fail(f"event loop reported: {[e.get('message') for e in errors]}")
    return result


@contextlib.asynccontextmanager
async def reference_backend(faults: Any = None, **options: Any) -> AsyncIterator[tuple[Any, RunningServer]]:
    """Serve the reference backend for the block; yields ``(app, server)``."""
    app = create_app(faults, options)
    async with serve(app, uvicorn_options=app.state.uvicorn_options) as srv:
        yield app, srv


def server_children() -> list[psutil.Process]:
    """Live child processes of the test process (MCP servers...)."""
    out = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
    return out


def kill_children() -> None:
    procs = psutil.Process().children(recursive=True)
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(procs, timeout=5)


@pytest.fixture(autouse=True)
def no_orphans():
    """Every test leaves no child process and no extra thread behind."""
    threads_before = {t.ident for t in threading.enumerate()}
    yield
    leftover = server_children()
    kill_children()
    assert not leftover, f"test left child processes: {[p.cmdline() for p in leftover]}"
    extra = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    assert not extra, f"test left threads: {extra}"
