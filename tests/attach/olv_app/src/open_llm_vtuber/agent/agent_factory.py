"""``AgentFactory``: the agent named by ``conversation_agent_choice``."""

from __future__ import annotations

from typing import Any

from ..mcpp.tool_executor import ToolExecutor
from ..mcpp.tool_manager import ToolManager
from .agents.basic_memory_agent import BasicMemoryAgent
from .stateless_llm_factory import LLMFactory


class AgentFactory:
    """Builds conversation agents by name."""

    @staticmethod
    def create_agent(conversation_agent_choice: str, agent_settings: dict[str, Any], llm_configs: dict[str, Any],
                     system_prompt: str, tool_manager: ToolManager | None = None,
                     tool_executor: ToolExecutor | None = None, mcp_prompt_string: str = "",
                     **_: Any) -> BasicMemoryAgent:
        """The agent, its LLM built from ``llm_configs[llm_provider]``.

        Raises:
            ValueError: an agent or LLM provider this app does not have.
        """
        if conversation_agent_choice != "basic_memory_agent":
            raise ValueError(f"Unsupported agent type: {conversation_agent_choice}")
        settings = agent_settings.get("basic_memory_agent", {})
        provider = settings.get("llm_provider", "openai_compatible_llm")
        if provider not in llm_configs:
            raise ValueError(f"No llm_configs entry for llm_provider {provider!r}")
        llm = LLMFactory.create_llm(provider, **llm_configs[provider])
        return BasicMemoryAgent(
            llm, system_prompt,
            use_mcpp=bool(settings.get("use_mcpp", False)),
            tool_manager=tool_manager, tool_executor=tool_executor, mcp_prompt_string=mcp_prompt_string,
        )
