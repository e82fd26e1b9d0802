"""``TTSConfig``: the ``tts_config`` section of a character."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TTSConfig(BaseModel):
    """``tts_model`` names the engine; its settings are the block of that name."""

    model_config = ConfigDict(extra="allow")

    tts_model: str = "edge_tts"
