"""``WebSocketHandler``: the process-wide owner of every client session."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from fastapi import WebSocket

from . import chat_history_manager
from .conversations.single_conversation import process_single_conversation
from .message_handler import message_handler
from .service_context import ServiceContext

logger = logging.getLogger(__name__)


class ChatGroupManager:
    def __init__(self) -> None:
        self.client_group_map: dict[str, str] = {}

    def remove_client(self, client_uid: str) -> None:
        self.client_group_map.pop(client_uid, None)


class WebSocketHandler:
    def __init__(self, default_context_cache: ServiceContext) -> None:
        self.default_context_cache = default_context_cache
        self.client_connections: dict[str, WebSocket] = {}
        self.client_contexts: dict[str, ServiceContext] = {}
        self.chat_group_manager = ChatGroupManager()
        self.current_conversation_tasks: dict[str, asyncio.Task[None] | None] = {}
        self.received_data_buffers: dict[str, list[float]] = {}

    async def handle_new_connection(self, websocket: WebSocket, client_uid: str) -> None:
        context = await self._init_service_context(websocket.send_text, client_uid)
        self.client_connections[client_uid] = websocket
        self.client_contexts[client_uid] = context
        self.received_data_buffers[client_uid] = []
        await self._send(websocket, {"type": "group-update", "members": [], "is_owner": False})
        await self._send(websocket, {"type": "full-text", "text": "Connection established"})
        await self._send(websocket, {
            "type": "set-model-and-conf", "model_info": context.live2d_model.model_info if context.live2d_model else {},
            "conf_name": context.character_config.conf_name if context.character_config else "",
            "conf_uid": context.character_config.conf_uid if context.character_config else "",
            "client_uid": client_uid,
        })
        await self._send(websocket, {"type": "group-update", "members": [], "is_owner": False})
        await self._send(websocket, {"type": "control", "text": "start-mic"})

    async def _init_service_context(self, send_text: Any, client_uid: str) -> ServiceContext:
        default = self.default_context_cache
        context = ServiceContext()
        await context.load_cache(
            config=default.config, system_config=default.system_config, character_config=default.character_config,
            live2d_model=default.live2d_model, agent_engine=default.agent_engine, tts_engine=default.tts_engine,
            send_text=send_text, client_uid=client_uid,
        )
        assert context.character_config is not None
        context.history_uid = chat_history_manager.create_new_history(context.character_config.conf_uid)
        if context.agent_engine is not None:
            context.agent_engine.set_memory_from_history(context.character_config.conf_uid, context.history_uid)
        return context

    async def handle_websocket_communication(self, websocket: WebSocket, client_uid: str) -> None:
        while True:
            raw = await websocket.receive_text()
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                await self._send(websocket, {"type": "error", "message": "Invalid JSON format"})
                continue
            await self._route_message(websocket, client_uid, data)

    async def _route_message(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        kind = data.get("type")
        context = self.client_contexts[client_uid]
        if kind == "heartbeat":
            await self._send(websocket, {"type": "heartbeat-ack"})
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
            old = self.current_conversation_tasks.get(client_uid)
            if old is not None and not old.done():
                old.cancel()
            self.current_conversation_tasks[client_uid] = asyncio.create_task(
                process_single_conversation(context, websocket.send_text, client_uid, str(data.get("text", "")))
            )
        elif kind == "interrupt-signal":
            task = self.current_conversation_tasks.get(client_uid)
            if task is not None and not task.done():
                task.cancel()
        elif kind == "frontend-playback-complete":
            message_handler.handle_message(client_uid, data)
        else:
            logger.debug("ignored message type %r", kind)

    async def handle_disconnect(self, client_uid: str) -> None:
        task = self.current_conversation_tasks.pop(client_uid, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=5)
        context = self.client_contexts.pop(client_uid, None)
        self.client_connections.pop(client_uid, None)
        self.received_data_buffers.pop(client_uid, None)
        self.chat_group_manager.remove_client(client_uid)
        message_handler.cleanup_client(client_uid)
        if context is not None:
            await context.close()

    @staticmethod
    async def _send(websocket: WebSocket, frame: dict[str, Any]) -> None:
        await websocket.send_text(json.dumps(frame))
