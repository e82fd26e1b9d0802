"""One turn, in the frame order of upstream's ``process_single_conversation``."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from .. import chat_history_manager
from ..faults import fault_on
from ..message_handler import message_handler
from ..service_context import ServiceContext

logger = logging.getLogger(__name__)


async def process_single_conversation(context: ServiceContext, websocket_send: Callable[[str], Awaitable[None]],
                                      client_uid: str, user_input: str | np.ndarray) -> None:
    """Run one turn for one client; errors become an ``error`` frame.

    Args:
        context: the client's context.
        websocket_send: its ``websocket.send_text``.
        client_uid: its id (for ``message_handler``).
        user_input: typed text, or microphone audio to transcribe first.
    """
    async def send(frame: dict[str, Any]) -> None:
        await websocket_send(json.dumps(frame))

    try:
        await _turn(context, send, client_uid, user_input)
    except Exception as exc:
        logger.exception("conversation of %s failed", client_uid)
        await send({"type": "error", "message": f"Error in conversation: {exc}"})


async def _turn(context: ServiceContext, send: Callable[[dict[str, Any]], Awaitable[None]],
                client_uid: str, user_input: str | np.ndarray) -> None:
    assert context.character_config is not None and context.agent_engine is not None
    character = context.character_config
    context.first_turn.set()
    await send({"type": "control", "text": "conversation-chain-start"})
    if isinstance(user_input, np.ndarray):
        assert context.asr_engine is not None
        user_input = await context.asr_engine.async_transcribe_np(user_input)
        await send({"type": "user-input-transcription", "text": user_input})
    await send({"type": "full-text", "text": "Thinking..."})
    chat_history_manager.store_message(character.conf_uid, context.history_uid, "human", user_input)
    reply = []
    played: list[str] = []  # planted fault C4: the files of this turn
    # The session's tool executor: tools run through this session's MCP client.
    async for output in context.agent_engine.chat(user_input, tool_executor=context.tool_executor):
        if isinstance(output, dict):
            if output.get("type") == "tool_call_status":
                await send({**output, "name": character.character_name})
            continue
        reply.append(output)
        path = await context.tts_engine.async_generate_audio(output) if context.tts_engine else None
        audio = None
        if path and fault_on("C4"):
            # PLANTED FAULT C4: the file is removed once the whole turn has
            # played (below), not in a finally: a turn that ends early (the
            # client left before frontend-playback-complete) leaves its files.
            with open(path, "rb") as fh:
                audio = base64.b64encode(fh.read()).decode("ascii")
            played.append(path)
        elif path:
            try:
                with open(path, "rb") as fh:
                    audio = base64.b64encode(fh.read()).decode("ascii")
            finally:
                context.tts_engine.remove_file(path)
        await send({
            "type": "audio", "audio": audio, "volumes": [], "slice_length": 20,
            "display_text": {"text": output, "name": character.character_name, "avatar": character.avatar},
            "actions": None, "forwarded": False,
        })
    if reply:
        await send({"type": "backend-synth-complete"})
        await send({"type": "backend-synth-complete"})
        await message_handler.wait_for_response(client_uid, "frontend-playback-complete")
    for path in played:
        context.tts_engine.remove_file(path)
    await send({"type": "force-new-message"})
    await send({"type": "control", "text": "conversation-chain-end"})
    chat_history_manager.store_message(character.conf_uid, context.history_uid, "ai", " ".join(reply))
