"""``ProxyHandler``: several clients through one connection to ``/client-ws``
(proxy mode, ``system_config.enable_proxy``), as upstream's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import deque
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from .faults import fault_on
from .proxy_message_queue import ProxyMessageQueue

logger = logging.getLogger(__name__)


class ProxyHandler:
    """Serves ``/proxy-ws``: one upstream session shared by every proxy client.

    ``text-input`` goes through the :class:`ProxyMessageQueue`, every other
    frame straight upstream; every upstream frame is broadcast to the clients.

    Args:
        server_url: the ``/client-ws`` endpoint of this same server, built by
            the server from ``system_config.host``/``port`` of ``conf.yaml``
            (``ws://localhost:12393/client-ws`` by default), as upstream.
    """

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.server_ws: ClientConnection | None = None
        self.clients: dict[str, WebSocket] = {}
        self.connected = False
        self.server_task: asyncio.Task[None] | None = None
        self.lock = asyncio.Lock()
        self.message_queue = ProxyMessageQueue()
        # One future per forwarded turn, resolved by its conversation-chain-end
        # (turns end in the order they were forwarded).
        self._turn_waiters: deque[asyncio.Future[None]] = deque()

    async def connect_to_server(self, websocket: WebSocket) -> None:
        """Open the upstream connection (once)."""
        async with self.lock:
            if self.connected:
                return
            url = self.server_url
            self.server_ws = await connect(url, open_timeout=10, close_timeout=2, max_size=None)
            self.connected = True
            logger.info("Proxy connected to server at %s", url)
            self.message_queue.initialize(self.forward_turn)
            self.server_task = asyncio.create_task(self.forward_server_messages())

    async def handle_client_connection(self, websocket: WebSocket) -> None:
        """Serve one proxy client until it leaves."""
        await websocket.accept()
        client_id = str(uuid.uuid4())
        self.clients[client_id] = websocket
        try:
            try:
                await self.connect_to_server(websocket)
                await self.forward_to_server({"type": "request-init-config"})
            except (OSError, WebSocketException, asyncio.TimeoutError) as exc:
                await websocket.send_text(json.dumps({"type": "error", "message": f"proxy: no server: {exc}"}))
                return
            while True:
                message = await websocket.receive_json()
                if not isinstance(message, dict):
                    continue
                if message.get("type") == "text-input":
                    self.message_queue.queue_message(message, client_id)
                elif message.get("type") == "interrupt-signal":
                    self.message_queue.conversation_active = False
                    await self.forward_to_server(message)
                else:
                    await self.forward_to_server(message)
        except WebSocketDisconnect:
            pass
        finally:
            await self.handle_client_disconnect(client_id)

    async def handle_client_disconnect(self, client_id: str) -> None:
        """Forget a client; stop the turn it was waiting for."""
        self.clients.pop(client_id, None)
        in_flight = await self.message_queue.sender_left(client_id)
        if in_flight and not fault_on("C1") and self.connected:
            # The upstream turn would wait forever for this client's playback.
            with contextlib.suppress(Exception):
                await self.forward_to_server({"type": "interrupt-signal", "text": ""})

    async def forward_to_server(self, message: dict[str, Any]) -> None:
        if self.server_ws is None:
            raise ConnectionError("proxy is not connected to the server")
        await self.server_ws.send(json.dumps(message))

    async def forward_turn(self, message: dict[str, Any], sender_id: str | None = None) -> None:
        """The queue's forward: send ``message``, return at its turn's end."""
        turn_end: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turn_waiters.append(turn_end)
        try:
            await self.forward_to_server(message)
            await turn_end
        finally:
            with contextlib.suppress(ValueError):
                self._turn_waiters.remove(turn_end)

    async def forward_server_messages(self) -> None:
        """Broadcast every upstream frame; resolve turn ends."""
        assert self.server_ws is not None
        try:
            async for raw in self.server_ws:
                text = raw if isinstance(raw, str) else raw.decode()
                with contextlib.suppress(ValueError):
                    data = json.loads(text)
                    if data.get("type") == "control" and data.get("text") == "conversation-chain-end":
                        self._end_oldest_turn()
                for websocket in list(self.clients.values()):
                    with contextlib.suppress(Exception):
                        await websocket.send_text(text)
        except WebSocketException:
            pass
        finally:
            self.connected = False
            self.server_ws = None

    def _end_oldest_turn(self) -> None:
        while self._turn_waiters:
            turn_end = self._turn_waiters.popleft()
            if not turn_end.done():
                turn_end.set_result(None)
                return

    async def disconnect(self) -> None:
        """Close the upstream connection and stop the queue (app shutdown)."""
        await self.message_queue.stop()
        self.message_queue.clear()
        for turn_end in self._turn_waiters:
            turn_end.cancel()
        self._turn_waiters.clear()
        server_ws, self.server_ws = self.server_ws, None
        if server_ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server_ws.close(), 3)
        if self.server_task is not None:
            self.server_task.cancel()
            await asyncio.wait([self.server_task], timeout=3)
            self.server_task = None
        self.connected = False
