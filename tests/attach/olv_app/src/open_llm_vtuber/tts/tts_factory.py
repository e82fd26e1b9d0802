"""``TTSFactory``: the engine named by ``tts_model``."""

from __future__ import annotations

from typing import Any


class TTSFactory:
    @staticmethod
    def get_tts_engine(engine_type: str, **kwargs: Any) -> Any:
        if engine_type == "openai_tts":
            from .openai_tts import TTSEngine

            return TTSEngine(**kwargs)
        raise ValueError(f"Unknown or offline-unavailable TTS engine type: {engine_type}")
