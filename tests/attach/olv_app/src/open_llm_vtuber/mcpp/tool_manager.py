"""``ToolManager``: the tools of a session, formatted for each LLM API."""

from __future__ import annotations

import logging
from typing import Any, Literal

from .types import FormattedTool

logger = logging.getLogger(__name__)


class ToolManager:
    """Holds the tool lists built by :class:`~.tool_adapter.ToolAdapter`.

    Args:
        formatted_tools_openai: ``tools`` for the OpenAI chat API.
        formatted_tools_claude: ``tools`` for the Anthropic API.
        initial_tools_dict: tool name -> :class:`FormattedTool`.
    """

    def __init__(self, formatted_tools_openai: list[dict[str, Any]] | None = None,
                 formatted_tools_claude: list[dict[str, Any]] | None = None,
                 initial_tools_dict: dict[str, FormattedTool] | None = None) -> None:
        self.tools: dict[str, FormattedTool] = initial_tools_dict or {}
        self._formatted_tools_openai = formatted_tools_openai or []
        self._formatted_tools_claude = formatted_tools_claude or []
        logger.info("ToolManager initialized with %d OpenAI tools and %d Claude tools.",
                    len(self._formatted_tools_openai), len(self._formatted_tools_claude))

    def get_tool(self, tool_name: str) -> FormattedTool | None:
        """The raw entry of one tool, or ``None``."""
        return self.tools.get(tool_name)

    def get_formatted_tools(self, mode: Literal["OpenAI", "Claude"]) -> list[dict[str, Any]]:
        """The tool list for one API."""
        return self._formatted_tools_openai if mode == "OpenAI" else self._formatted_tools_claude
