"""``Config``: the whole validated ``conf.yaml`` (pydantic, like upstream)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .character import CharacterConfig
from .system import SystemConfig


class Config(BaseModel):
    """``system_config`` and ``character_config``; other top-level sections
    (``live_config``) are kept as they are."""

    model_config = ConfigDict(extra="allow")

    system_config: SystemConfig
    character_config: CharacterConfig
