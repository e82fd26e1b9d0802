"""``AgentConfig``: the ``agent_config`` section of a character."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class BasicMemoryAgentConfig(BaseModel):
    """``agent_settings.basic_memory_agent``."""

    model_config = ConfigDict(extra="allow")

    llm_provider: str = "openai_compatible_llm"
    faster_first_response: bool = True
    segment_method: str = "pysbd"
    use_mcpp: bool = False
    mcp_enabled_servers: list[str] = Field(default_factory=list)


class AgentSettings(BaseModel):
    """``agent_settings``: one block per agent type (others kept as they are)."""

    model_config = ConfigDict(extra="allow")

    basic_memory_agent: BasicMemoryAgentConfig = Field(default_factory=BasicMemoryAgentConfig)


class AgentConfig(BaseModel):
    """Which agent runs the conversation, and the pool of LLM settings."""

    model_config = ConfigDict(extra="allow")

    conversation_agent_choice: str = "basic_memory_agent"
    agent_settings: AgentSettings = Field(default_factory=AgentSettings)
    llm_configs: dict[str, dict[str, Any]] = Field(default_factory=dict)
