"""OpenAI-compatible TTS (``/v1/audio/speech``): one file per sentence in ``cache/``."""

from __future__ import annotations

import uuid
from typing import Any

from ..agent.stateless_llm.openai_compatible_llm import shared_client
from .tts_interface import TTSInterface


class TTSEngine(TTSInterface):
    """TTS through the ``openai`` SDK, against any compatible server.

    Args:
        model: the server's model name.
        voice: the server's voice name.
        api_key: the key, if the server needs one.
        base_url: e.g. ``http://localhost:8880/v1``.
        file_extension: ``"mp3"`` or ``"wav"``.
    """

    def __init__(self, model: str = "tts-1", voice: str = "alloy", api_key: str = "z",
                 base_url: str = "http://localhost:8880/v1", file_extension: str = "mp3", **_: Any) -> None:
        self.model = model
        self.voice = voice
        self.file_extension = file_extension
        self.client = shared_client(base_url, api_key)

    async def async_generate_audio(self, text: str, file_name_no_ext: str | None = None) -> str:
        # The async client: no thread needed (generate_audio is for callers
        # without a loop).
        path = self.generate_cache_file_name(file_name_no_ext or uuid.uuid4().hex, self.file_extension)
        response = await self.client.audio.speech.create(model=self.model, voice=self.voice, input=text)
        with open(path, "wb") as fh:
            fh.write(response.content)
        return path

    def generate_audio(self, text: str, file_name_no_ext: str | None = None) -> str:
        raise NotImplementedError("openai_tts is async only in this app: use async_generate_audio")
