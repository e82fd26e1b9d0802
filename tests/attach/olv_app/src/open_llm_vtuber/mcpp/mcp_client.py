"""``MCPClient``: one per session; this small app opens no real MCP server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


class MCPClient:
    def __init__(self, enabled_servers: list[str], send_text: Callable[[str], Awaitable[None]] | None = None,
                 client_uid: str | None = None) -> None:
        self.enabled_servers = list(enabled_servers)
        self.send_text = send_text
        self.client_uid = client_uid
        self.active_sessions: dict[str, Any] = {}

    async def aclose(self) -> None:
        self.active_sessions.clear()
        self.send_text = None
