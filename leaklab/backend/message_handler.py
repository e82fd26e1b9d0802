"""The process-wide ``message_handler`` singleton: lets a conversation wait for
a client's reply frame (``frontend-playback-complete``), as upstream does."""

from __future__ import annotations

import asyncio
from typing import Any


class MessageHandler:
    """Per-client waiters for response frames, keyed by ``client_uid``."""

    def __init__(self) -> None:
        self._response_events: dict[str, dict[str, asyncio.Event]] = {}
        self._response_data: dict[str, dict[str, dict[str, Any]]] = {}

    async def wait_for_response(self, client_uid: str, response_type: str, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait for the next ``response_type`` frame from a client.

        Upstream waits with no timeout; so does the reference backend unless
        asked. Returns the frame, or ``None`` on timeout.
        """
        event = self._response_events.setdefault(client_uid, {}).setdefault(response_type, asyncio.Event())
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            return None
        return self._response_data.get(client_uid, {}).pop(response_type, None)

    def handle_message(self, client_uid: str, message: dict[str, Any]) -> bool:
        """Deliver a frame to a waiter; ``True`` when one was waiting."""
        kind = message.get("type")
        event = self._response_events.get(client_uid, {}).get(kind) if isinstance(kind, str) else None
        if event is None:
            return False
        self._response_data.setdefault(client_uid, {})[kind] = message
        event.set()
        return True

    def cleanup_client(self, client_uid: str) -> None:
        """Drop a client's waiters and data."""
        self._response_events.pop(client_uid, None)
        self._response_data.pop(client_uid, None)


message_handler = MessageHandler()
