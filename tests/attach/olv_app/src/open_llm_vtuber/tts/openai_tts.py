"""OpenAI-compatible TTS: writes each sentence to ``cache/`` (relative, like upstream)."""

from __future__ import annotations

import os
import uuid

from ..agent.stateless_llm.openai_compatible_llm import shared_client


class TTSEngine:
    def __init__(self, model: str = "tts-1", voice: str = "alloy", api_key: str = "z",
                 base_url: str = "http://localhost:8880/v1", file_extension: str = "mp3") -> None:
        self.model = model
        self.voice = voice
        self.file_extension = file_extension
        self.client = shared_client(base_url, api_key)

    def generate_cache_file_name(self, file_name_no_ext: str | None = None) -> str:
        cache_dir = "cache"
        if not os.path.exists(cache_dir):
            os.makedirs(cache_dir)
        return os.path.join(cache_dir, f"{file_name_no_ext or uuid.uuid4().hex}.{self.file_extension}")

    async def async_generate_audio(self, text: str, file_name_no_ext: str | None = None) -> str:
        path = self.generate_cache_file_name(file_name_no_ext)
        response = await self.client.audio.speech.create(model=self.model, voice=self.voice, input=text)
        with open(path, "wb") as fh:
            fh.write(response.content)
        return path

    @staticmethod
    def remove_file(path: str) -> None:
        if os.path.exists(path):
            os.remove(path)
