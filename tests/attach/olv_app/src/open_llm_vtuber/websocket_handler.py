"""``WebSocketHandler``: the process-wide owner of every client session."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from . import chat_history_manager
from .asr.asr_interface import ASRInterface
from .conversations.single_conversation import process_single_conversation
from .faults import fault_on
from .message_handler import message_handler
from .service_context import ServiceContext

logger = logging.getLogger(__name__)


class ChatGroupManager:
    """Which group each client is in (``""``: none)."""

    def __init__(self) -> None:
        self.client_group_map: dict[str, str] = {}

    def remove_client(self, client_uid: str) -> None:
        self.client_group_map.pop(client_uid, None)


class WebSocketHandler:
    """Routes every client's messages; one per app (in ``init_client_ws_route``).

    Args:
        default_context_cache: the context built from ``conf.yaml``, whose
            engines and agent every new session shares.
    """

    def __init__(self, default_context_cache: ServiceContext) -> None:
        self.default_context_cache = default_context_cache
        self.client_connections: dict[str, WebSocket] = {}
        self.client_contexts: dict[str, ServiceContext] = {}
        self.chat_group_manager = ChatGroupManager()
        self.current_conversation_tasks: dict[str, asyncio.Task[None] | None] = {}
        self.received_data_buffers: dict[str, np.ndarray] = {}

    async def handle_new_connection(self, websocket: WebSocket, client_uid: str) -> None:
        """Build the session's context, then send the connect frames."""
        context = await self._init_service_context(websocket.send_text, client_uid)
        self.client_connections[client_uid] = websocket
        self.client_contexts[client_uid] = context
        self.received_data_buffers[client_uid] = np.array([], dtype=np.float32)
        self.chat_group_manager.client_group_map[client_uid] = ""
        asr = self.default_context_cache.asr_engine
        if isinstance(asr, ASRInterface):
            asr.start_client_buffer(client_uid)
        await self._send(websocket, {"type": "group-update", "members": [], "is_owner": False})
        await self._send(websocket, {"type": "full-text", "text": "Connection established"})
        await self._send_model_and_conf(websocket, context, client_uid)
        await self._send(websocket, {"type": "group-update", "members": [], "is_owner": False})
        await self._send(websocket, {"type": "control", "text": "start-mic"})

    async def _send_model_and_conf(self, websocket: WebSocket, context: ServiceContext, client_uid: str) -> None:
        await self._send(websocket, {
            "type": "set-model-and-conf", "model_info": context.live2d_model.model_info if context.live2d_model else {},
            "conf_name": context.character_config.conf_name if context.character_config else "",
            "conf_uid": context.character_config.conf_uid if context.character_config else "",
            "client_uid": client_uid,
        })

    async def _init_service_context(self, send_text: Callable[[str], Awaitable[None]], client_uid: str) -> ServiceContext:
        """A new session's context: copies of the default's configs, its
        engines and agent by reference (upstream's ``load_cache`` call)."""
        default = self.default_context_cache
        assert default.config is not None and default.system_config is not None and default.character_config is not None
        context = ServiceContext()
        await context.load_cache(
            config=default.config.model_copy(deep=True),
            system_config=default.system_config.model_copy(deep=True),
            character_config=default.character_config.model_copy(deep=True),
            live2d_model=default.live2d_model,
            asr_engine=default.asr_engine,
            tts_engine=default.tts_engine,
            vad_engine=default.vad_engine,
            agent_engine=default.agent_engine,
            mcp_server_registery=default.mcp_server_registery,
            tool_adapter=default.tool_adapter,
            send_text=send_text,
            client_uid=client_uid,
        )
        # As upstream: no history yet; the page's create-new-history makes one.
        return context

    async def handle_websocket_communication(self, websocket: WebSocket, client_uid: str) -> None:
        """Read and route messages until the client disconnects.

        Raises:
            WebSocketDisconnect: the client went away.
        """
        while True:
            raw = await websocket.receive_text()
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                await self._send(websocket, {"type": "error", "message": "Invalid JSON format"})
                continue
            try:
                message_handler.handle_message(client_uid, data)
                await self._route_message(websocket, client_uid, data)
            except WebSocketDisconnect:
                raise
            except Exception as exc:
                # As upstream: a failing message is reported and the session goes on.
                logger.error("Error processing message: %s", exc)
                await self._send(websocket, {"type": "error", "message": str(exc)})

    async def _route_message(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        kind = data.get("type")
        context = self.client_contexts[client_uid]
        if kind == "heartbeat":
            await self._send(websocket, {"type": "heartbeat-ack"})
        elif kind == "request-init-config":
            # What the proxy asks for each client that joins it (upstream's reply).
            await self._send_model_and_conf(websocket, context, client_uid)
        elif kind == "fetch-configs":
            assert context.system_config is not None
            alts = context.system_config.config_alts_dir
            files = sorted(f for f in os.listdir(alts) if f.endswith((".yaml", ".yml")))
            await self._send(websocket, {"type": "config-files", "configs": [
                {"filename": "conf.yaml", "name": context.character_config.conf_name if context.character_config else ""},
                *({"filename": f, "name": f.rsplit(".", 1)[0]} for f in files),
            ]})
        elif kind == "switch-config":
            await context.handle_config_switch(websocket, str(data.get("file", "")))
        elif kind == "text-input":
            self._start_conversation(websocket, client_uid, context, str(data.get("text", "")))
        elif kind == "mic-audio-data":
            audio = np.asarray(data.get("audio") or [], dtype=np.float32)
            self.received_data_buffers[client_uid] = np.append(self.received_data_buffers[client_uid], audio)
        elif kind == "mic-audio-end":
            audio = self.received_data_buffers[client_uid]
            self.received_data_buffers[client_uid] = np.array([], dtype=np.float32)
            self._start_conversation(websocket, client_uid, context, audio)
        elif kind == "fetch-backgrounds":
            await self._send(websocket, {"type": "background-files", "files": _background_files()})
        elif kind == "fetch-history-list":
            assert context.character_config is not None
            histories = chat_history_manager.get_history_list(context.character_config.conf_uid)
            await self._send(websocket, {"type": "history-list", "histories": histories})
        elif kind == "create-new-history":
            assert context.character_config is not None
            conf_uid = context.character_config.conf_uid
            history_uid = chat_history_manager.create_new_history(conf_uid)
            if history_uid:
                context.history_uid = history_uid
                if context.agent_engine is not None:
                    context.agent_engine.set_memory_from_history(conf_uid, history_uid)
                await self._send(websocket, {"type": "new-history-created", "history_uid": history_uid})
        elif kind == "fetch-and-set-history":
            history_uid = data.get("history_uid")
            if history_uid and context.character_config is not None:
                conf_uid = context.character_config.conf_uid
                context.history_uid = history_uid
                if context.agent_engine is not None:
                    context.agent_engine.set_memory_from_history(conf_uid, history_uid)
                messages = [m for m in chat_history_manager.get_history(conf_uid, history_uid) if m.get("role") != "system"]
                await self._send(websocket, {"type": "history-data", "messages": messages})
        elif kind == "delete-history":
            history_uid = data.get("history_uid")
            if history_uid and context.character_config is not None:
                success = chat_history_manager.delete_history(context.character_config.conf_uid, history_uid)
                await self._send(websocket, {"type": "history-deleted", "success": success, "history_uid": history_uid})
                if history_uid == context.history_uid:
                    context.history_uid = ""
        elif kind == "interrupt-signal":
            task = self.current_conversation_tasks.get(client_uid)
            if task is not None and not task.done():
                task.cancel()
        elif kind != "frontend-playback-complete":  # that one is message_handler's
            logger.debug("ignored message type %r", kind)

    def _start_conversation(self, websocket: WebSocket, client_uid: str, context: ServiceContext,
                            user_input: str | np.ndarray) -> None:
        """A new turn replaces the running one (tracked per client)."""
        old = self.current_conversation_tasks.get(client_uid)
        if old is not None and not old.done():
            old.cancel()
        self.current_conversation_tasks[client_uid] = asyncio.create_task(
            process_single_conversation(context, websocket.send_text, client_uid, user_input)
        )

    async def handle_disconnect(self, client_uid: str, clean: bool = True) -> None:
        """Cancel the turn, forget the client, close its context.

        Args:
            client_uid: the client that left.
            clean: it sent a close frame with code 1000 or 1001 (``False``: the
                connection dropped, the ping timed out, or an error ended it).
        """
        task = self.current_conversation_tasks.pop(client_uid, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=5)
        context: ServiceContext | None = None
        if fault_on("C9"):
            # PLANTED FAULT C9 (upstream's order): the context is forgotten here,
            # then looked up below to be closed: the lookup finds nothing, so
            # close() never runs (MCP client and agent never closed).
            self.client_contexts.pop(client_uid, None)
        else:
            context = self.client_contexts.pop(client_uid, None)
        if fault_on("C7"):
            # PLANTED FAULT C7: only a clean close forgets the connection; one
            # that ended abnormally (no close frame, ping timeout, an error)
            # stays in client_connections for good.
            if clean:
                self.client_connections.pop(client_uid, None)
        else:
            self.client_connections.pop(client_uid, None)
        self.received_data_buffers.pop(client_uid, None)
        self.chat_group_manager.remove_client(client_uid)
        asr = self.default_context_cache.asr_engine
        if isinstance(asr, ASRInterface) and not fault_on("C6"):
            # PLANTED FAULT C6 when skipped: the shared engine keeps one buffer per client ever seen.
            asr.remove_client_buffer(client_uid)
        message_handler.cleanup_client(client_uid)
        if fault_on("C9"):
            context = self.client_contexts.get(client_uid)
        if context is not None:
            await context.close()

    @staticmethod
    async def _send(websocket: WebSocket, frame: dict[str, Any]) -> None:
        await websocket.send_text(json.dumps(frame))


def _background_files(folder: str = "backgrounds") -> list[str]:
    """The images in ``backgrounds/`` (relative, as upstream's ``get_bg_files``)."""
    if not os.path.isdir(folder):
        return []
    return [f for f in os.listdir(folder) if f.endswith((".jpg", ".jpeg", ".png", ".gif"))]
