"""``WebSocketHandler``: the process-wide owner of every session (one per app)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from typing import Any

from fastapi import WebSocket

from .config import DEFAULT_CONF_DIR, ConfigError, list_configs, model_info
from .conversation import process_single_conversation
from .message_handler import message_handler
from .service_context import ServiceContext

logger = logging.getLogger(__name__)

MAX_AUDIO_SAMPLES = 16000 * 60

#: What ``fetch-backgrounds`` lists from the config folder's ``backgrounds/`` (as upstream's ``get_bg_files``).
BACKGROUND_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif")


class ChatGroupManager:
    """Groups of clients that share a conversation."""

    def __init__(self) -> None:
        self.client_group_map: dict[str, str] = {}
        self.groups: dict[str, set[str]] = {}

    def members_of(self, client_uid: str) -> list[str]:
        group = self.client_group_map.get(client_uid)
        return sorted(self.groups.get(group, ())) if group else []

    def add(self, owner: str, invitee: str) -> str:
        group = self.client_group_map.get(owner) or f"group-{owner}"
        self.groups.setdefault(group, set()).update((owner, invitee))
        self.client_group_map[owner] = group
        self.client_group_map[invitee] = group
        return group

    def remove_client(self, client_uid: str) -> None:
        group = self.client_group_map.pop(client_uid, None)
        if group is None:
            return
        members = self.groups.get(group, set())
        members.discard(client_uid)
        if len(members) <= 1:
            for other in members:
                self.client_group_map.pop(other, None)
            self.groups.pop(group, None)


class ProtocolError(ValueError):
    """A frame the handler cannot act on; answered with an ``error`` frame."""


def scan_earlier_sessions(ms: float, work: str = "cpu") -> None:
    """Synchronous work for ``ms`` on the calling thread (the event loop):
    what the ``slow_ms_per_session`` option costs a connection; ``work``
    ``"cpu"`` pure Python, ``"io"`` a blocking wait (the GIL released)."""
    if work == "io":
        time.sleep(ms / 1000)
        return
    end = time.perf_counter() + ms / 1000
    x = 0
    while time.perf_counter() < end:
        for i in range(200):
            x = (x + i * i) % 1_000_003


class WebSocketHandler:
    """Routes client frames and owns the per-client dicts.

    Args:
        default_context_cache: the context every session is cloned from.
        faults: active fault ids.
    """

    def __init__(self, default_context_cache: ServiceContext, faults: frozenset[str]) -> None:
        self.default_context_cache = default_context_cache
        self.faults = faults
        self.client_connections: dict[str, WebSocket] = {}
        self.client_contexts: dict[str, ServiceContext] = {}
        self.chat_group_manager = ChatGroupManager()
        self.current_conversation_tasks: dict[str, asyncio.Task[None] | None] = {}
        self.received_data_buffers: dict[str, list[float]] = {}
        self.sessions_seen = 0
        self._handlers = {
            "heartbeat": self._handle_heartbeat,
            "fetch-configs": self._handle_fetch_configs,
            "switch-config": self._handle_config_switch,
            "request-init-config": self._handle_init_config,
            "text-input": self._handle_text_input,
            "interrupt-signal": self._handle_interrupt,
            "mic-audio-data": self._handle_audio_data,
            "mic-audio-end": self._handle_audio_end,
            "raw-audio-data": self._ignore,
            "ai-speak-signal": self._ignore,
            "audio-play-start": self._ignore,
            "frontend-playback-complete": self._handle_playback_complete,
            "fetch-history-list": self._handle_history_list,
            "fetch-and-set-history": self._handle_set_history,
            "create-new-history": self._handle_new_history,
            "delete-history": self._handle_delete_history,
            "fetch-backgrounds": self._handle_backgrounds,
            "add-client-to-group": self._handle_add_to_group,
            "remove-client-from-group": self._handle_remove_from_group,
            "request-group-info": self._handle_group_info,
        }

    # -- connection lifecycle ---------------------------------------------
    async def handle_new_connection(self, websocket: WebSocket, client_uid: str) -> None:
        """Build the session's context, register it, send the greeting frames."""
        options = self.default_context_cache.options
        if options.slow_ms_per_session > 0:
            scan_earlier_sessions(options.slow_ms_per_session * self.sessions_seen, options.slow_work)
        self.sessions_seen += 1
        context = self._init_service_context(websocket.send_text, client_uid)
        self.client_connections[client_uid] = websocket
        self.client_contexts[client_uid] = context
        self.received_data_buffers[client_uid] = []
        await self._send(websocket, {"type": "group-update", "members": [], "is_owner": False})
        await self._send(websocket, {"type": "full-text", "text": "Connection established"})
        await self._send(websocket, self._model_frame(context, client_uid=client_uid))
        await self._send_group_update(websocket, client_uid)
        await self._send(websocket, {"type": "control", "text": "start-mic"})

    def _init_service_context(self, send_text: Any, client_uid: str) -> ServiceContext:
        default = self.default_context_cache
        context = ServiceContext(
            faults=default.faults,
            options=default.options,
            history=default.history,
            llm_client=default.llm_client,
            conf_dir=default.conf_dir,
        )
        context.load_cache(default, send_text=send_text, client_uid=client_uid)
        assert context.asr_engine is not None
        context.asr_engine.open_stream(client_uid)
        return context

    async def handle_websocket_communication(self, websocket: WebSocket, client_uid: str) -> None:
        """Read frames until the client goes away."""
        while True:
            raw = await websocket.receive_text()
            try:
                data = json.loads(raw)
                if not isinstance(data, dict):
                    raise ProtocolError("a frame must be a JSON object")
                kind = data.get("type")
                if not isinstance(kind, str):
                    raise ProtocolError("a frame needs a string 'type'")
                handler = self._handlers.get(kind)
                if handler is None:
                    raise ProtocolError(f"unknown message type: {kind!r}")
                await handler(websocket, client_uid, data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                await self._send(websocket, {"type": "error", "message": "invalid JSON"})
            except ProtocolError as exc:
                await self._send(websocket, {"type": "error", "message": str(exc)})

    async def handle_disconnect(self, client_uid: str) -> None:
        """Tear a session down: cancel its turn, close its context, drop its entries."""
        task = self.current_conversation_tasks.pop(client_uid, None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=5)
        if "C9" in self.faults:
            # The upstream order: the entry is gone before it is looked up.
            self.client_contexts.pop(client_uid, None)
            context = self.client_contexts.get(client_uid)
        else:
            context = self.client_contexts.pop(client_uid, None)
        if context is not None:
            try:
                await context.close()
            except Exception:
                logger.exception("closing the context of %s failed", client_uid)
        self.client_connections.pop(client_uid, None)
        self.received_data_buffers.pop(client_uid, None)
        self.chat_group_manager.remove_client(client_uid)
        message_handler.cleanup_client(client_uid)
        if "C6" not in self.faults:
            asr = self.default_context_cache.asr_engine
            if asr is not None:
                asr.cleanup_client(client_uid)

    async def close_all(self) -> None:
        """Disconnect every session (server shutdown)."""
        for client_uid in list(self.client_connections):
            await self.handle_disconnect(client_uid)

    # -- frames -------------------------------------------------------------
    @staticmethod
    async def _send(websocket: WebSocket, frame: dict[str, Any]) -> None:
        await websocket.send_text(json.dumps(frame))

    def _model_frame(self, context: ServiceContext, client_uid: str | None = None) -> dict[str, Any]:
        character = context.character_config
        frame = {
            "type": "set-model-and-conf",
            "model_info": model_info(character),
            "conf_name": character.get("conf_name", ""),
            "conf_uid": character.get("conf_uid", ""),
        }
        if client_uid is not None:
            frame["client_uid"] = client_uid
        return frame

    async def _send_group_update(self, websocket: WebSocket, client_uid: str) -> None:
        members = self.chat_group_manager.members_of(client_uid)
        await self._send(websocket, {"type": "group-update", "members": members, "is_owner": bool(members)})

    @staticmethod
    def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...] = str) -> Any:
        value = data.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise ProtocolError(f"{data.get('type')}: missing or invalid field {name!r}")
        return value

    async def _ignore(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        return None

    async def _handle_heartbeat(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        await self._send(websocket, {"type": "heartbeat-ack"})

    async def _handle_fetch_configs(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        context = self.client_contexts[client_uid]
        configs = list_configs(self.default_context_cache.config, context.conf_dir)
        await self._send(websocket, {"type": "config-files", "configs": configs})

    async def _handle_init_config(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        await self._send(websocket, self._model_frame(self.client_contexts[client_uid], client_uid))

    async def _handle_config_switch(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        filename = self._field(data, "file")
        context = self.client_contexts[client_uid]
        try:
            await context.handle_config_switch(filename)
        except ConfigError as exc:
            await self._send(websocket, {"type": "error", "message": f"Error switching configuration: {exc}"})
            return
        await self._send(websocket, self._model_frame(context))
        await self._send(websocket, {"type": "config-switched", "message": f"Switched to config: {filename}"})

    async def _handle_text_input(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        text = self._field(data, "text")
        if not text.strip():
            raise ProtocolError("text-input: empty text")
        self._start_conversation(client_uid, text)

    def _start_conversation(self, client_uid: str, text: str) -> None:
        # A new turn interrupts the old one.
        old = self.current_conversation_tasks.get(client_uid)
        if old is not None and not old.done():
            old.cancel()
        context = self.client_contexts[client_uid]
        task = asyncio.create_task(process_single_conversation(context, client_uid, text))
        task.add_done_callback(_log_turn_error)
        self.current_conversation_tasks[client_uid] = task

    async def _handle_interrupt(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        task = self.current_conversation_tasks.get(client_uid)
        if task is not None and not task.done():
            task.cancel()

    async def _handle_playback_complete(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        message_handler.handle_message(client_uid, data)

    async def _handle_audio_data(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        audio = self._field(data, "audio", list)
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in audio):
            raise ProtocolError("mic-audio-data: audio must be a list of numbers")
        buffer = self.received_data_buffers[client_uid]
        if len(buffer) + len(audio) > MAX_AUDIO_SAMPLES:
            raise ProtocolError("mic-audio-data: utterance too long")
        buffer.extend(float(x) for x in audio)

    async def _handle_audio_end(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        samples = self.received_data_buffers.get(client_uid, [])
        self.received_data_buffers[client_uid] = []
        context = self.client_contexts[client_uid]
        assert context.asr_engine is not None
        text = await context.asr_engine.transcribe(client_uid, samples)
        if not text:
            raise ProtocolError("mic-audio-end: no audio received")
        await self._send(websocket, {"type": "user-input-transcription", "text": text})
        self._start_conversation(client_uid, text)

    async def _handle_history_list(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        context = self.client_contexts[client_uid]
        histories = context.history.list_histories(context.character_config.get("conf_uid", ""))
        await self._send(websocket, {"type": "history-list", "histories": histories})

    async def _handle_set_history(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        uid = self._field(data, "history_uid")
        context = self.client_contexts[client_uid]
        context.history_uid = uid
        await self._send(websocket, {"type": "history-data", "messages": context.history.messages(uid)})

    async def _handle_new_history(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        # As upstream: a new stored history, the session's from now on.
        context = self.client_contexts[client_uid]
        context.history_uid = context.history.new_history(context.character_config.get("conf_uid", ""))
        await self._send(websocket, {"type": "new-history-created", "history_uid": context.history_uid})

    async def _handle_delete_history(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        uid = self._field(data, "history_uid")
        removed = self.client_contexts[client_uid].history.delete_history(uid)
        await self._send(websocket, {"type": "history-deleted", "success": removed > 0, "history_uid": uid})

    async def _handle_backgrounds(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        folder = self.client_contexts[client_uid].conf_dir or DEFAULT_CONF_DIR
        files = background_files(os.path.join(folder, "backgrounds"))
        await self._send(websocket, {"type": "background-files", "files": files})

    async def _handle_add_to_group(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        invitee = self._field(data, "invitee_uid")
        if invitee not in self.client_connections or invitee == client_uid:
            raise ProtocolError(f"add-client-to-group: no such client {invitee!r}")
        self.chat_group_manager.add(client_uid, invitee)
        for uid in self.chat_group_manager.members_of(client_uid):
            await self._send_group_update(self.client_connections[uid], uid)

    async def _handle_remove_from_group(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        target = self._field(data, "target_uid")
        members = self.chat_group_manager.members_of(client_uid)
        if target not in members:
            raise ProtocolError(f"remove-client-from-group: {target!r} is not in your group")
        self.chat_group_manager.remove_client(target)
        await self._send_group_update(websocket, client_uid)

    async def _handle_group_info(self, websocket: WebSocket, client_uid: str, data: dict[str, Any]) -> None:
        await self._send_group_update(websocket, client_uid)


def background_files(folder: str) -> list[str]:
    """Image files in ``folder``, sorted (none if it does not exist)."""
    if not os.path.isdir(folder):
        return []
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(BACKGROUND_SUFFIXES))


def _log_turn_error(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("conversation turn failed", exc_info=task.exception())
