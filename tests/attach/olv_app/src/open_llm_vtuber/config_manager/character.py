"""``CharacterConfig``: the ``character_config`` section."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .agent import AgentConfig
from .asr import ASRConfig
from .tts import TTSConfig
from .vad import VADConfig


class CharacterConfig(BaseModel):
    """One character: persona, Live2D model, and its engines."""

    model_config = ConfigDict(extra="allow")

    conf_name: str
    conf_uid: str
    live2d_model_name: str
    character_name: str = ""
    avatar: str = ""
    human_name: str = "Human"
    persona_prompt: str = ""
    agent_config: AgentConfig = Field(default_factory=AgentConfig)
    asr_config: ASRConfig = Field(default_factory=ASRConfig)
    tts_config: TTSConfig = Field(default_factory=TTSConfig)
    vad_config: VADConfig = Field(default_factory=VADConfig)
    tts_preprocessor_config: dict[str, Any] = Field(default_factory=dict)
