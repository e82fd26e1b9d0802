"""One text turn: chain start, agent reply with tools, TTS audio, playback wait, chain end."""

from __future__ import annotations

import array
import asyncio
import base64
import io
import json
import logging
import wave
from pathlib import Path
from typing import Any

from .engines import OpenAITTS, TTSError
from .message_handler import message_handler
from .service_context import ServiceContext

logger = logging.getLogger(__name__)


class TTSTaskManager:
    """Synthesises sentences concurrently (tasks in ``task_list``) and sends
    their audio in order. Audio files stay in the cache until the turn ends,
    because the client may still ask for them while it plays.

    Args:
        engine: the shared TTS engine.
        send: sends one frame (a dict).
        character: for ``display_text``.
        cleanup_in_finally: the correct form. With fault C4 the files are
            removed only after a turn that completes: a failed synthesis or a
            turn cancelled mid-way (client gone while it plays) leaves them.
    """

    def __init__(self, engine: OpenAITTS, send: Any, character: dict[str, Any], *, cleanup_in_finally: bool) -> None:
        self.engine = engine
        self.send = send
        self.character = character
        self.cleanup_in_finally = cleanup_in_finally
        self.task_list: list[asyncio.Task[Path | None]] = []
        self.files: list[Path] = []

    def speak(self, sentence: str) -> None:
        """Start synthesising one sentence."""
        self.task_list.append(asyncio.create_task(self._synthesize(sentence)))

    async def _synthesize(self, sentence: str) -> Path | None:
        if self.cleanup_in_finally:
            path = self.engine.new_path()
            self.files.append(path)
            try:
                return await self.engine.synthesize(sentence, path)
            except TTSError as exc:
                logger.warning("%s", exc)
                return None
        # C4: the path is known only once synthesis returns.
        try:
            path = await self.engine.synthesize(sentence, self.engine.new_path())
        except TTSError as exc:
            logger.warning("%s", exc)
            return None
        self.files.append(path)
        return path

    async def send_all(self, sentences: list[str]) -> None:
        """Await the synthesis tasks and send one ``audio`` frame per sentence, in order."""
        try:
            results = await asyncio.gather(*self.task_list)
        except BaseException:
            for task in self.task_list:
                task.cancel()
            # Let them finish unwinding so no file is opened after clean-up.
            await asyncio.wait(self.task_list, timeout=5)
            raise
        for sentence, path in zip(sentences, results, strict=True):
            await self.send(_audio_payload(path, sentence, self.character))

    def remove_files(self) -> None:
        """Remove this turn's audio files."""
        for path in self.files:
            self.engine.remove_file(path)
        self.files.clear()


def _audio_payload(path: Path | None, text: str, character: dict[str, Any]) -> dict[str, Any]:
    audio_b64 = None
    volumes: list[float] = []
    if path is not None and path.exists():
        data = path.read_bytes()
        audio_b64 = base64.b64encode(data).decode("ascii")
        volumes = _volumes(data)
    return {
        "type": "audio",
        "audio": audio_b64,
        "volumes": volumes,
        "slice_length": 20,
        "display_text": {
            "text": text,
            "name": character.get("character_name", ""),
            "avatar": character.get("avatar", ""),
        },
        "actions": None,
        "forwarded": False,
    }


def _volumes(wav_bytes: bytes, slice_ms: int = 20) -> list[float]:
    try:
        with wave.open(io.BytesIO(wav_bytes)) as wf:
            rate, width = wf.getframerate(), wf.getsampwidth()
            frames = wf.readframes(wf.getnframes())
    except (wave.Error, EOFError):
        return []
    if width != 2 or not frames:
        return []
    samples = array.array("h", frames)
    step = max(1, rate * slice_ms // 1000)
    out = []
    for i in range(0, len(samples), step):
        chunk = samples[i : i + step]
        out.append(round(max(abs(s) for s in chunk) / 32768, 4) if chunk else 0.0)
    return out


async def process_single_conversation(context: ServiceContext, client_uid: str, user_input: str) -> None:
    """Run one turn for a session, as ``conversation_handler`` does upstream."""
    assert context.send_text is not None and context.agent_engine is not None and context.tts_engine is not None
    send_text = context.send_text

    async def send(frame: dict[str, Any]) -> None:
        await send_text(json.dumps(frame))

    character = context.character_config
    conf_uid = character.get("conf_uid", "")
    tts = TTSTaskManager(
        context.tts_engine, send, character, cleanup_in_finally="C4" not in context.faults
    )
    try:
        await send({"type": "control", "text": "conversation-chain-start"})
        await send({"type": "full-text", "text": "Thinking..."})
        context.history.store_message(conf_uid, context.history_uid, "human", user_input)
        sentences: list[str] = []
        async for sentence in context.agent_engine.chat(
            user_input, mcp_client=context.mcp_client, send_tool_status=send
        ):
            sentences.append(sentence)
            tts.speak(sentence)
        await tts.send_all(sentences)
        if sentences:
            await send({"type": "backend-synth-complete"})
            await send({"type": "backend-synth-complete"})
            # Upstream waits with no timeout for the client to finish playing.
            await message_handler.wait_for_response(client_uid, "frontend-playback-complete")
        await send({"type": "force-new-message"})
        await send({"type": "control", "text": "conversation-chain-end"})
        context.history.store_message(conf_uid, context.history_uid, "ai", " ".join(sentences))
        if not tts.cleanup_in_finally:
            tts.remove_files()
    finally:
        if tts.cleanup_in_finally:
            tts.remove_files()
