"""The process-wide ``message_handler``: lets a turn wait for a client's reply frame."""

from __future__ import annotations

import asyncio
from typing import Any


class MessageHandler:
    def __init__(self) -> None:
        self._response_events: dict[str, dict[str, asyncio.Event]] = {}
        self._response_data: dict[str, dict[str, dict[str, Any]]] = {}

    async def wait_for_response(self, client_uid: str, response_type: str) -> dict[str, Any] | None:
        event = self._response_events.setdefault(client_uid, {}).setdefault(response_type, asyncio.Event())
        event.clear()
        await event.wait()
        return self._response_data.get(client_uid, {}).pop(response_type, None)

    def handle_message(self, client_uid: str, message: dict[str, Any]) -> None:
        kind = message.get("type")
        event = self._response_events.get(client_uid, {}).get(kind) if isinstance(kind, str) else None
        if event is not None:
            self._response_data.setdefault(client_uid, {})[kind] = message
            event.set()

    def cleanup_client(self, client_uid: str) -> None:
        self._response_events.pop(client_uid, None)
        self._response_data.pop(client_uid, None)


message_handler = MessageHandler()
