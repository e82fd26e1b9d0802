"""``MCPClient``: persistent connections to the MCP servers of one owner."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from ..faults import fault_on
from .sdk_compat import read_timeout, result_is_error
from .server_connection import ServerConnection
from .server_registry import ServerRegistry
from .types import MCPServer

logger = logging.getLogger(__name__)

# The stdio transports entered by hand (planted fault C3) and not exited yet:
# test-app convenience, so that the app's shutdown can still stop the
# servers a failed close left running (:func:`reap_leftover_servers`).
_open_transports: set[Any] = set()


async def reap_leftover_servers() -> None:
    """Stop every stdio server a failed :meth:`MCPClient.aclose` left running
    (at the app's shutdown; planted fault C3 only)."""
    while _open_transports:
        transport = _open_transports.pop()
        try:
            await transport.__aexit__(None, None, None)
        except Exception as exc:  # the same cross-task error; the process is gone by now
            logger.debug("MCPC: leftover server stopped (%r)", exc)


class MCPClient:
    """Starts a registry's servers on first use and keeps them until
    :meth:`aclose`. One per session (``ServiceContext.mcp_client``); the
    :class:`~.tool_adapter.ToolAdapter` opens short-lived ones to list tools.

    Args:
        server_registery: where servers are looked up (upstream's spelling).
        send_text: the session's ``websocket.send_text`` (kept, as upstream).
        client_uid: the session's id.

    Raises:
        TypeError: ``server_registery`` is not a :class:`ServerRegistry`.
    """

    def __init__(self, server_registery: ServerRegistry, send_text: Callable[[str], Awaitable[None]] | None = None,
                 client_uid: str | None = None) -> None:
        if not isinstance(server_registery, ServerRegistry):
            raise TypeError("MCPC: Invalid server manager. Must be an instance of ServerRegistry.")
        self.server_registery = server_registery
        self.exit_stack = AsyncExitStack()
        self.active_sessions: dict[str, ClientSession] = {}
        # Planted fault C3 only: the stdio transports, entered by hand.
        self._transports: dict[str, Any] = {}
        self._list_tools_cache: dict[str, list[Any]] = {}
        self._send_text = send_text
        self._client_uid = client_uid
        self._closed = False
        logger.info("MCPC: Initialized MCPClient instance.")

    async def _ensure_server_running_and_get_session(self, server_name: str) -> ClientSession:
        """The session of ``server_name``, starting the server if needed.

        Raises:
            ValueError: no such server in the registry.
            RuntimeError: the server did not start, or this client is closed.
        """
        if server_name in self.active_sessions:
            return self.active_sessions[server_name]
        if self._closed:
            # Upstream resets the stack in aclose(), so a closed client starts
            # servers again: a task that outlives close() (the planted warm-up)
            # would start a subprocess nobody stops. Here a closed client stays
            # closed, so the planted leak keeps Python objects only.
            raise RuntimeError(f"MCPC: client is closed; not starting server '{server_name}'.")
        server = self.server_registery.get_server(server_name)
        if server is None:
            raise ValueError(f"MCPC: Server '{server_name}' not found in available servers.")
        logger.info("MCPC: Starting and connecting to server '%s'...", server_name)
        try:
            if fault_on("C3"):
                session = await self._connect_in_this_task(server)
            else:
                session = await self.exit_stack.enter_async_context(
                    ServerConnection(server, on_exit=self._server_exited)
                )
        except Exception as exc:
            logger.error("MCPC: Failed to connect to server '%s': %r", server_name, exc)
            raise RuntimeError(f"MCPC: Failed to connect to server '{server_name}'.") from exc
        if self._closed:  # aclose() ran while this server was starting
            await self.aclose()
            raise RuntimeError(f"MCPC: client closed while server '{server_name}' was starting.")
        self.active_sessions[server_name] = session
        logger.info("MCPC: Successfully connected to server '%s'.", server_name)
        return session

    async def _connect_in_this_task(self, server: MCPServer) -> ClientSession:
        """PLANTED FAULT C3 (upstream's way): the transport and the session
        are entered in the task that first needs the server (a conversation
        turn, a warm-up), and left by :meth:`aclose`, in the disconnect task.
        The SDK's anyio cancel scopes must be left by the task that entered
        them: the session's exit raises "Attempted to exit cancel scope in a
        different task than it was entered in", :meth:`aclose` logs and
        swallows it, and the transport after it is never exited: the
        subprocess keeps running."""
        params = StdioServerParameters(command=server.command, args=server.args, env=server.env, cwd=server.cwd)
        # The transport is kept apart from the sessions' stack, so that a
        # server can be stopped on its own.
        transport = stdio_client(params)
        read, write = await transport.__aenter__()
        self._transports[server.name] = transport
        _open_transports.add(transport)
        session = await self.exit_stack.enter_async_context(
            ClientSession(read, write, read_timeout_seconds=read_timeout(server.timeout))
        )
        await session.initialize()
        return session

    def _server_exited(self, server_name: str) -> None:
        """A server's task ended (stopped, or the server exited on its own): the
        next call starts it again. As the server task's callback, this also
        keeps the client alive while one of its servers runs, so that a client
        nobody closed can still be found and closed."""
        self.active_sessions.pop(server_name, None)
        self._list_tools_cache.pop(server_name, None)

    async def list_tools(self, server_name: str) -> list[Any]:
        """The tools of ``server_name`` (cached for this client's life)."""
        if server_name not in self._list_tools_cache:
            session = await self._ensure_server_running_and_get_session(server_name)
            self._list_tools_cache[server_name] = list((await session.list_tools()).tools)
        return self._list_tools_cache[server_name]

    async def call_tool(self, server_name: str, tool_name: str, tool_args: dict[str, Any]) -> dict[str, Any]:
        """Run one tool.

        Returns:
            ``{"metadata": ..., "content_items": [{"type": ..., "text": ...}]}``;
            a tool error is one item of type ``"error"``.
        """
        session = await self._ensure_server_running_and_get_session(server_name)
        logger.info("MCPC: Calling tool '%s' on server '%s'...", tool_name, server_name)
        response = await session.call_tool(tool_name, tool_args)
        metadata = getattr(response, "meta", None) or {}
        content = list(getattr(response, "content", None) or [])
        if result_is_error(response):
            text = getattr(content[0], "text", None) if content else None
            return {"metadata": metadata, "content_items": [{"type": "error", "text": text or "Unknown server error"}]}
        items = []
        for item in content:
            entry = {"type": getattr(item, "type", "text")}
            for attr in ("text", "data", "mimeType", "mime_type", "url"):
                value = getattr(item, attr, None)
                if value is not None:
                    entry[attr] = value
            items.append(entry)
        return {"metadata": metadata, "content_items": items or [{"type": "text", "text": ""}]}

    async def aclose(self) -> None:
        """Stop every server this client started (their subprocesses exit);
        the client starts none afterwards."""
        logger.info("MCPC: Closing client instance and %d active connections...", len(self.active_sessions))
        self._closed = True
        if self._transports:  # planted fault C3
            transports, self._transports = self._transports, {}
            try:
                await self.exit_stack.aclose()  # the sessions first
                for transport in transports.values():
                    await transport.__aexit__(None, None, None)
                    _open_transports.discard(transport)
            except RuntimeError as exc:
                # Swallowed so that the disconnect goes on: the transports
                # after the failing exit stay entered, their servers running.
                logger.error("MCPC: Error while closing the client: %s", exc)
        else:
            await self.exit_stack.aclose()
        self.active_sessions.clear()
        self._list_tools_cache.clear()
        logger.info("MCPC: Client instance closed.")

    async def __aenter__(self) -> MCPClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()
