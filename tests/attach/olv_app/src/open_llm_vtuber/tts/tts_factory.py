"""``TTSFactory``: the engine named by ``tts_model``."""

from __future__ import annotations

from typing import Any

from .tts_interface import TTSInterface


class TTSFactory:
    """Builds TTS engines by name; each engine's module is imported only when
    chosen (a missing package fails only for the engine that needs it)."""

    @staticmethod
    def get_tts_engine(engine_type: str, **kwargs: Any) -> TTSInterface:
        """The engine ``engine_type``, built from its settings block.

        Raises:
            ModuleNotFoundError: the engine's package is not installed.
            ValueError: an unknown engine.
        """
        if engine_type == "edge_tts":
            from .edge_tts import TTSEngine as EdgeTTSEngine

            return EdgeTTSEngine(kwargs.get("voice", "en-US-AvaMultilingualNeural"))
        if engine_type == "openai_tts":
            from .openai_tts import TTSEngine as OpenAITTSEngine

            return OpenAITTSEngine(**kwargs)
        raise ValueError(f"Unknown TTS engine type: {engine_type}")
