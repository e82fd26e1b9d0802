"""``VADConfig``: the ``vad_config`` section of a character."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class VADConfig(BaseModel):
    """``vad_model: null`` (upstream's default) means no voice activity detection."""

    model_config = ConfigDict(extra="allow")

    vad_model: str | None = None
