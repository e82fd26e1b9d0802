"""Proxy mode: ``/proxy-ws`` clients share one upstream ``/client-ws`` session.

``text-input`` frames are queued in a :class:`ProxyMessageQueue` and forwarded
one at a time; every other frame goes straight upstream; every upstream frame
is broadcast to the proxy clients.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import uuid
from typing import Any

from fastapi import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

logger = logging.getLogger(__name__)


class ProxyMessageQueue:
    """Queue of proxied ``text-input`` frames.

    Args:
        proxy: the owning handler (sends upstream, reports turn ends).
        fire_and_forget: fault C1: each forward is an untracked task and the
            queue does not wait for it.
        forward_timeout_s: the correct form's bound on one forwarded turn.
    """

    def __init__(self, proxy: ProxyHandler, *, fire_and_forget: bool, forward_timeout_s: float = 60.0) -> None:
        self.proxy = proxy
        self.fire_and_forget = fire_and_forget
        self.forward_timeout_s = forward_timeout_s
        self.queue: asyncio.Queue[tuple[dict[str, Any], str]] = asyncio.Queue()
        self.forward_tasks: dict[asyncio.Task[None], str] = {}
        self._processor: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._processor is None:
            self._processor = asyncio.create_task(self._process_queue(), name="ProxyMessageQueue._process_queue")

    async def add_message(self, message: dict[str, Any], sender_id: str) -> None:
        await self.queue.put((message, sender_id))

    async def _process_queue(self) -> None:
        while True:
            message, sender_id = await self.queue.get()
            if sender_id not in self.proxy.clients:
                continue
            if self.fire_and_forget:
                # upstream proxy_message_queue.py line 114
                asyncio.create_task(self._forward_message(message, sender_id))
                continue
            task = asyncio.create_task(self._forward_message(message, sender_id))
            self.forward_tasks[task] = sender_id
            task.add_done_callback(self._forget)
            await asyncio.wait([task])

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.forward_tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("proxy forward failed: %r", task.exception())

    async def _forward_message(self, message: dict[str, Any], sender_id: str) -> None:
        """Send one turn upstream and wait for its ``conversation-chain-end``."""
        turn_end = self.proxy.expect_turn_end()
        try:
            await self.proxy.send_upstream(message)
            if self.fire_and_forget:
                await turn_end
            else:
                await asyncio.wait_for(turn_end, self.forward_timeout_s)
        finally:
            if not self.fire_and_forget:
                self.proxy.drop_waiter(turn_end)

    async def cancel_sender(self, sender_id: str) -> bool:
        """Cancel the forwards of a client that left; ``True`` if one was in flight."""
        tasks = [t for t, s in self.forward_tasks.items() if s == sender_id and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        return bool(tasks)

    async def close(self) -> None:
        """Stop the processor and every tracked forward."""
        tasks = [t for t in (self._processor, *self.forward_tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._processor = None


class ProxyHandler:
    """Serves ``/proxy-ws``.

    Args:
        faults: active fault ids.
        upstream_path: the client endpoint to forward to.
    """

    def __init__(self, faults: frozenset[str], upstream_path: str = "/client-ws") -> None:
        self.upstream_path = upstream_path
        self.clients: dict[str, WebSocket] = {}
        self.message_queue = ProxyMessageQueue(self, fire_and_forget="C1" in faults)
        self._upstream: ClientConnection | None = None
        self._upstream_lock = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._turn_waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    # -- upstream -----------------------------------------------------------
    async def _ensure_upstream(self, websocket: WebSocket) -> None:
        async with self._upstream_lock:
            if self._upstream is not None:
                return
            host, port = websocket.scope.get("server") or ("127.0.0.1", 80)
            url = f"ws://{host}:{port}{self.upstream_path}"
            upstream = await connect(url, open_timeout=10, close_timeout=2, max_size=None)
            try:
                await asyncio.wait_for(self._read_greeting(upstream), 10)
            except BaseException:
                await upstream.close()
                raise
            self._upstream = upstream
            self._reader = asyncio.create_task(self._read_upstream(self._upstream), name="ProxyHandler._read_upstream")
            self.message_queue.start()

    @staticmethod
    async def _read_greeting(upstream: ClientConnection) -> None:
        # The upstream session's greeting is the proxy's own, not its clients'.
        while True:
            frame = json.loads(await upstream.recv())
            if frame.get("type") == "control" and frame.get("text") == "start-mic":
                return

    async def _read_upstream(self, upstream: ClientConnection) -> None:
        try:
            async for raw in upstream:
                with contextlib.suppress(ValueError, TypeError):
                    frame = json.loads(raw)
                    if frame.get("type") == "control" and frame.get("text") == "conversation-chain-end":
                        self._resolve_oldest_waiter()
                for client in list(self.clients.values()):
                    with contextlib.suppress(Exception):
                        await client.send_text(raw if isinstance(raw, str) else raw.decode())
        except WebSocketException:
            pass
        finally:
            self._upstream = None

    async def send_upstream(self, message: dict[str, Any]) -> None:
        if self._upstream is None:
            raise ConnectionError("proxy has no upstream connection")
        await self._upstream.send(json.dumps(message))

    def expect_turn_end(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turn_waiters.append(fut)
        return fut

    def drop_waiter(self, fut: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._turn_waiters.remove(fut)

    def _resolve_oldest_waiter(self) -> None:
        while self._turn_waiters:
            fut = self._turn_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    # -- clients ------------------------------------------------------------
    async def handle_client(self, websocket: WebSocket) -> None:
        """Serve one proxy client until it leaves."""
        sender_id = str(uuid.uuid4())
        try:
            await self._ensure_upstream(websocket)
        except (OSError, WebSocketException, asyncio.TimeoutError) as exc:
            await websocket.send_text(json.dumps({"type": "error", "message": f"proxy upstream unavailable: {exc}"}))
            await websocket.close(code=1011)
            return
        self.clients[sender_id] = websocket
        try:
            await websocket.send_text(json.dumps({"type": "full-text", "text": "Connected to proxy"}))
            while True:
                raw = await websocket.receive_text()
                try:
                    frame = json.loads(raw)
                except ValueError:
                    frame = None
                if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
                    await websocket.send_text(json.dumps({"type": "error", "message": "invalid frame"}))
                    continue
                if frame["type"] == "text-input":
                    await self.message_queue.add_message(frame, sender_id)
                else:
                    await self.send_upstream(frame)
        finally:
            self.clients.pop(sender_id, None)
            if not self.message_queue.fire_and_forget:
                in_flight = await self.message_queue.cancel_sender(sender_id)
                if in_flight and self._upstream is not None:
                    # The upstream turn would wait forever for this client's playback.
                    with contextlib.suppress(Exception):
                        await self.send_upstream({"type": "interrupt-signal", "text": ""})

    async def close(self) -> None:
        """Shut the proxy down: queue, forwards, upstream connection."""
        await self.message_queue.close()
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(upstream.close(), 3)
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader], timeout=3)
            self._reader = None
        for fut in self._turn_waiters:
            fut.cancel()
        self._turn_waiters.clear()
