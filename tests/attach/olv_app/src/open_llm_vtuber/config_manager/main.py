"""The validated configuration (pydantic, like upstream)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SystemConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    conf_version: str = ""
    host: str = "localhost"
    port: int = 12393
    config_alts_dir: str = "characters"
    enable_proxy: bool = False


class CharacterConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    conf_name: str
    conf_uid: str
    live2d_model_name: str
    character_name: str = ""
    avatar: str = ""
    human_name: str = "Human"
    persona_prompt: str = ""
    agent_config: dict[str, Any] = Field(default_factory=dict)
    asr_config: dict[str, Any] = Field(default_factory=dict)
    tts_config: dict[str, Any] = Field(default_factory=dict)


class Config(BaseModel):
    system_config: SystemConfig
    character_config: CharacterConfig
