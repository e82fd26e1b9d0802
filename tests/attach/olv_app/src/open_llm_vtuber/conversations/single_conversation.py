"""One text turn, in the frame order of upstream's ``process_single_conversation``."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .. import chat_history_manager
from ..message_handler import message_handler
from ..service_context import ServiceContext

logger = logging.getLogger(__name__)


async def process_single_conversation(context: ServiceContext, websocket_send: Callable[[str], Awaitable[None]],
                                      client_uid: str, user_input: str) -> None:
    async def send(frame: dict[str, Any]) -> None:
        await websocket_send(json.dumps(frame))

    try:
        await _turn(context, send, client_uid, user_input)
    except Exception as exc:
        logger.exception("conversation of %s failed", client_uid)
        await send({"type": "error", "message": f"Error in conversation: {exc}"})


async def _turn(context: ServiceContext, send: Callable[[dict[str, Any]], Awaitable[None]],
                client_uid: str, user_input: str) -> None:
    assert context.character_config is not None and context.agent_engine is not None
    character = context.character_config
    context.first_turn.set()
    await send({"type": "control", "text": "conversation-chain-start"})
    await send({"type": "full-text", "text": "Thinking..."})
    chat_history_manager.store_message(character.conf_uid, context.history_uid, "human", user_input)
    reply = []
    async for sentence in context.agent_engine.chat(user_input):
        reply.append(sentence)
        path = await context.tts_engine.async_generate_audio(sentence)
        try:
            with open(path, "rb") as fh:
                audio = base64.b64encode(fh.read()).decode("ascii")
        finally:
            context.tts_engine.remove_file(path)
        await send({
            "type": "audio", "audio": audio, "volumes": [], "slice_length": 20,
            "display_text": {"text": sentence, "name": character.character_name, "avatar": character.avatar},
            "actions": None, "forwarded": False,
        })
    if reply:
        await send({"type": "backend-synth-complete"})
        await send({"type": "backend-synth-complete"})
        await message_handler.wait_for_response(client_uid, "frontend-playback-complete")
    await send({"type": "force-new-message"})
    await send({"type": "control", "text": "conversation-chain-end"})
    chat_history_manager.store_message(character.conf_uid, context.history_uid, "ai", " ".join(reply))
