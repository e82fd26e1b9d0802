"""``ServerConnection``: one stdio MCP server and its ``ClientSession``.

The SDK's ``stdio_client`` and ``ClientSession`` hold anyio cancel scopes,
which must be left by the task that entered them. Upstream enters them in
whichever task first calls a tool (a conversation, a warm-up) and leaves them
in the task that calls ``aclose()`` (the disconnect handler): anyio then
raises "Attempted to exit cancel scope in a different task than it was
entered in" and cancels the entering task (planted fault C3 does that, in
``MCPClient._connect_in_this_task``). Here one task per server enters and
leaves them, so ``MCPClient.aclose()`` works from any task and cancels
nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from .sdk_compat import read_timeout
from .types import MCPServer

logger = logging.getLogger(__name__)

# asyncio keeps only weak references to tasks: a server task whose
# connection was dropped mid-start must still run to its end.
_running: dict[asyncio.Task[None], ServerConnection] = {}


async def stop_all_servers(timeout_s: float = 10.0) -> None:
    """Stop every server still running (at the app's shutdown: a session
    whose close was never reached leaves its servers to this). Test-app
    convenience: upstream leaves them to the end of the process."""
    connections = list(_running.values())
    for connection in connections:
        connection._stop.set()
    tasks = [t for t in _running if not t.done()]
    if tasks:
        await asyncio.wait(tasks, timeout=timeout_s)


def _forget_task(task: asyncio.Task[None]) -> None:
    _running.pop(task, None)


class ServerConnection:
    """An async context manager: enter starts the server, exit stops it.

    Args:
        server: the registry entry to run.
        on_exit: called with the server's name when its task ends.

    Entering returns the initialised :class:`mcp.ClientSession`; it raises
    what starting the server raised.
    """

    def __init__(self, server: MCPServer, on_exit: Callable[[str], None] | None = None) -> None:
        self.server = server
        self.on_exit = on_exit
        self._ready: asyncio.Future[ClientSession] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ClientSession:
        self._ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"mcp-server:{self.server.name}")
        _running[self._task] = self
        self._task.add_done_callback(_forget_task)
        try:
            # shield: a cancelled caller must not cancel the shared future.
            return await asyncio.shield(self._ready)
        except BaseException:
            # Not on the caller's exit stack yet: stop the server here, and
            # consume a late start error so asyncio does not report it.
            self._stop.set()
            self._ready.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise

    async def __aexit__(self, *exc_info: Any) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                # shield: a cancelled caller must not cut the shutdown short.
                await asyncio.shield(self._task)

    async def _run(self) -> None:
        """Start the subprocess, initialise the session, wait for stop, close."""
        assert self._ready is not None
        params = StdioServerParameters(
            command=self.server.command, args=self.server.args, env=self.server.env, cwd=self.server.cwd
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(stdio_client(params))
                session = await stack.enter_async_context(
                    ClientSession(read, write, read_timeout_seconds=read_timeout(self.server.timeout))
                )
                await session.initialize()
                if not self._ready.done():
                    self._ready.set_result(session)
                await self._stop.wait()
        except Exception as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            else:
                logger.warning("MCPC: server '%s' ended with an error: %r", self.server.name, exc)
        finally:
            if not self._ready.done():  # this task was cancelled while starting
                self._ready.set_exception(RuntimeError(f"MCPC: server '{self.server.name}' task was cancelled"))
            if self.on_exit is not None:
                self.on_exit(self.server.name)
