"""``AgentFactory``: the agent named by ``conversation_agent_choice``."""

from __future__ import annotations

from typing import Any

from .agents.basic_memory_agent import BasicMemoryAgent
from .stateless_llm.openai_compatible_llm import AsyncLLM

# Providers this small app speaks: all OpenAI-compatible.
OPENAI_COMPATIBLE = ("openai_compatible_llm", "ollama_llm", "lmstudio_llm", "openai_llm")


class AgentFactory:
    @staticmethod
    def create_agent(conversation_agent_choice: str, agent_settings: dict[str, Any],
                     llm_configs: dict[str, Any], system_prompt: str) -> BasicMemoryAgent:
        if conversation_agent_choice != "basic_memory_agent":
            raise ValueError(f"Unsupported agent type: {conversation_agent_choice}")
        settings = agent_settings.get("basic_memory_agent", {})
        provider = settings.get("llm_provider", "openai_compatible_llm")
        if provider not in OPENAI_COMPATIBLE:
            raise ValueError(f"Unsupported LLM provider: {provider}")
        llm = AsyncLLM(**llm_configs[provider])
        return BasicMemoryAgent(llm, system_prompt)
