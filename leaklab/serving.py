"""Run an ASGI app on uvicorn, bound to 127.0.0.1, on the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import uvicorn

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


class ServerStartError(RuntimeError):
    """The backend did not start (its start-up failed or timed out)."""


class _InProcessServer(uvicorn.Server):
    # The kit, not uvicorn, owns Ctrl-C: a KeyboardInterrupt must reach the
    # caller (a notebook cell, the CLI) so it can shut down and keep its data.
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """Where a started server listens."""

    host: str
    port: int
    #: the WebSocket keep-alive in force (uvicorn's ``ws_ping_interval`` /
    #: ``ws_ping_timeout``, seconds; ``None``: no ping is sent)
    ping_interval_s: float | None = None
    ping_timeout_s: float | None = None

    def url(self, path: str = "", scheme: str = "ws") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"


@contextlib.asynccontextmanager
async def serve(
    app: Any,
    *,
    port: int = 0,
    uvicorn_options: Mapping[str, Any] | None = None,
    startup_timeout_s: float = 30.0,
    shutdown_timeout_s: float = 10.0,
) -> AsyncIterator[RunningServer]:
    """Serve ``app`` on 127.0.0.1 for the duration of the ``async with`` block.

    Args:
        app: an ASGI app.
        port: 0 picks a free port.
        uvicorn_options: extra ``uvicorn.Config`` keywords (ping settings...);
            a ``port`` in them is the port to bind (an app that must know its
            own address chose it); a ``host`` is ignored: 127.0.0.1 only.
        startup_timeout_s: bound on the app's start-up.
        shutdown_timeout_s: bound on graceful shutdown; then it is forced.

    Yields:
        host and port.

    Raises:
        ServerStartError: start-up failed or did not finish in time.
    """
    options = dict(uvicorn_options or {})
    options.pop("host", None)
    port = int(options.pop("port", None) or port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=HOST,
        port=bound_port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ws="websockets-sansio",
        timeout_graceful_shutdown=max(1, int(shutdown_timeout_s / 2)),
        **options,
    )
    server = _InProcessServer(config)
    task = asyncio.create_task(_serve(server, sock), name="leaklab-uvicorn")
    try:
        await _wait_started(server, task, startup_timeout_s)
        yield RunningServer(HOST, bound_port, _seconds(config.ws_ping_interval), _seconds(config.ws_ping_timeout))
    finally:
        await _shutdown(server, task, shutdown_timeout_s)
        sock.close()


def _seconds(value: Any) -> float | None:
    return None if value is None or value <= 0 else float(value)


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn exits the process when the app's start-up fails; here that
        # must be an ordinary error for the caller.
        raise ServerStartError(f"backend start-up failed (uvicorn exit {exc.code}); see the log above") from None


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not server.started:
        if task.done():
            exc = task.exception() if not task.cancelled() else None
            if isinstance(exc, ServerStartError):
                raise exc
            raise ServerStartError(f"backend stopped during start-up: {exc!r}")
        if loop.time() > deadline:
            raise ServerStartError(f"backend did not start within {timeout:.0f} s")
        await asyncio.sleep(0.01)


async def _shutdown(server: uvicorn.Server, task: asyncio.Task[None], timeout: float) -> None:
    server.should_exit = True
    if task.done():
        if not task.cancelled():
            task.exception()  # retrieved: reported by _wait_started already
        return
    done, _ = await asyncio.wait([task], timeout=timeout)
    if not done:
        logger.warning("backend did not shut down within %.0f s; forcing", timeout)
        server.force_exit = True
        done, _ = await asyncio.wait([task], timeout=2)
    if not done:
        task.cancel()
        await asyncio.wait([task], timeout=2)
    if task.done() and not task.cancelled():
        exc = task.exception()
        if exc is not None:
            logger.warning("backend shutdown raised %r", exc)
