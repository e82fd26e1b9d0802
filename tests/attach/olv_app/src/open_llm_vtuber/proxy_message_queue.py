"""``ProxyMessageQueue``: the proxy's ``text-input`` queue, forwarded one turn
at a time (upstream's producer-consumer, aware of the conversation state)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .faults import fault_on

logger = logging.getLogger(__name__)


class ProxyMessageQueue:
    """Queues the proxied clients' ``text-input`` frames; a consumer task
    forwards the next one when no conversation is active.

    The forward function sends a message upstream and returns when its turn
    has ended (``conversation-chain-end``).
    """

    def __init__(self) -> None:
        self.message_queue: deque[dict[str, Any]] = deque()
        self._conversation_active = False
        self._active_sender: str | None = None
        self._consumer_task: asyncio.Task[None] | None = None
        self._forward_func: Callable[[dict[str, Any], str | None], Awaitable[None]] | None = None
        self._running = False
        #: the forwards in flight, by sender (the fault-C1 form keeps none)
        self.forward_tasks: dict[asyncio.Task[None], str | None] = {}

    def initialize(self, forward_func: Callable[[dict[str, Any], str | None], Awaitable[None]]) -> None:
        """Set the function that forwards one message and waits for its turn."""
        self._forward_func = forward_func

    def queue_message(self, message: dict[str, Any], sender_id: str | None = None) -> None:
        """Add a message; start the consumer if needed."""
        self.message_queue.append({"message": message, "sender_id": sender_id})
        self._ensure_consumer_running()

    @property
    def conversation_active(self) -> bool:
        return self._conversation_active

    @conversation_active.setter
    def conversation_active(self, active: bool) -> None:
        self._conversation_active = active
        if not active:
            self._active_sender = None

    def has_pending_messages(self) -> bool:
        return bool(self.message_queue)

    def _ensure_consumer_running(self) -> None:
        if self._forward_func is None:
            logger.warning("Cannot start consumer: no forward function provided")
            return
        if self._consumer_task is None or self._consumer_task.done():
            self._running = True
            self._consumer_task = asyncio.create_task(self._consume_loop())

    async def _consume_loop(self) -> None:
        """Forward the next message whenever no conversation is active."""
        while self._running:
            await asyncio.sleep(0.1)
            if self._conversation_active or not self.message_queue:
                continue
            item = self.message_queue.popleft()
            message, sender_id = item["message"], item["sender_id"]
            # Set active before forwarding to prevent races.
            self.conversation_active = True
            self._active_sender = sender_id
            if fault_on("C1"):
                # PLANTED FAULT C1 (upstream proxy_message_queue.py line 114): a
                # fire-and-forget task nobody keeps; it waits for its turn's end,
                # which never comes when the client left before playback.
                asyncio.create_task(self._forward_message(message, sender_id))
            else:
                task = asyncio.create_task(self._forward_message(message, sender_id))
                self.forward_tasks[task] = sender_id
                task.add_done_callback(self._forget_forward)

    def _forget_forward(self, task: asyncio.Task[None]) -> None:
        self.forward_tasks.pop(task, None)

    async def _forward_message(self, message: dict[str, Any], sender_id: str | None = None) -> None:
        """Forward one message and wait for its turn to end."""
        try:
            if self._forward_func is not None:
                await self._forward_func(message, sender_id)
        except Exception as exc:
            logger.error("Error forwarding message: %r", exc)
        finally:
            if self._active_sender == sender_id:
                self.conversation_active = False

    async def sender_left(self, sender_id: str) -> bool:
        """A client left: the queue stops waiting for its turn; its forwards in
        flight are cancelled. ``True`` if one was in flight."""
        if self._active_sender == sender_id:
            self.conversation_active = False
        tasks = [t for t, s in self.forward_tasks.items() if s == sender_id and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        return bool(tasks)

    async def stop(self) -> None:
        """Stop the consumer and every forward it keeps."""
        self._running = False
        tasks = [t for t in (self._consumer_task, *self.forward_tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._consumer_task = None

    def clear(self) -> None:
        self.message_queue.clear()
