"""``ToolAdapter``: lists the tools of the enabled servers and formats them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .mcp_client import MCPClient
from .sdk_compat import tool_input_schema
from .server_registry import ServerRegistry
from .types import FormattedTool

logger = logging.getLogger(__name__)


class ToolAdapter:
    """Shared by every session (built once, in the default context).

    Each listing opens one short-lived :class:`MCPClient` per enabled server,
    concurrently, and closes it when the list is read: the server subprocess
    starts and exits again, as upstream does.

    Args:
        server_registery: the registry to start servers from.
    """

    def __init__(self, server_registery: ServerRegistry | None = None) -> None:
        self.server_registery = server_registery or ServerRegistry()

    async def get_server_and_tool_info(
        self, enabled_servers: list[str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, FormattedTool]]:
        """Ask each enabled server for its tools.

        Returns:
            ``(server name -> tool name -> description/parameters/required,
            tool name -> FormattedTool)``; a server that fails has no tools.
        """
        servers_info: dict[str, dict[str, Any]] = {}
        formatted: dict[str, FormattedTool] = {}
        jobs = []
        for name in enabled_servers:
            if name not in self.server_registery.servers:
                logger.warning("MC: Enabled server '%s' not found in Server Manager. Skipping.", name)
                continue
            jobs.append(self._fetch_server_tool_info(name))
        for name, tools, tools_formatted in await asyncio.gather(*jobs):
            servers_info[name] = tools
            formatted.update(tools_formatted)
        return servers_info, formatted

    async def _fetch_server_tool_info(
        self, server_name: str
    ) -> tuple[str, dict[str, dict[str, Any]], dict[str, FormattedTool]]:
        tools_info: dict[str, dict[str, Any]] = {}
        formatted: dict[str, FormattedTool] = {}
        try:
            async with MCPClient(self.server_registery) as client:
                for tool in await client.list_tools(server_name):
                    schema = tool_input_schema(tool)
                    tools_info[tool.name] = {
                        "description": tool.description,
                        "parameters": schema.get("properties", {}),
                        "required": schema.get("required", []),
                    }
                    formatted[tool.name] = FormattedTool(
                        input_schema=schema, related_server=server_name,
                        description=tool.description or "No description available.",
                    )
        except Exception as exc:
            logger.error("MC: Failed to get info for server '%s': %r", server_name, exc)
        return server_name, tools_info, formatted

    def construct_mcp_prompt_string(self, servers_info: dict[str, dict[str, Any]]) -> str:
        """A text description of the servers and tools (for prompt-mode LLMs)."""
        parts = []
        for server_name, tools in servers_info.items():
            if not tools:
                continue
            lines = [f"Server: {server_name}", "    Tools:"]
            for tool_name, info in tools.items():
                lines.append(f"        {tool_name}:")
                lines.append(f"            Description: {info.get('description') or 'No description available.'}")
                for param, spec in (info.get("parameters") or {}).items():
                    lines.append(f"                {param}: {spec.get('type', 'string')}")
            parts.append("\n".join(lines))
        return "\n\n".join(parts)

    def format_tools_for_api(
        self, formatted_tools: dict[str, FormattedTool]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(OpenAI tools, Claude tools)`` for the given tools."""
        openai_tools, claude_tools = [], []
        for name, tool in formatted_tools.items():
            properties = tool.input_schema.get("properties", {})
            required = tool.input_schema.get("required", [])
            params = {
                pname: {"type": spec.get("type", "string"),
                        "description": spec.get("description") or spec.get("title", "No description provided.")}
                for pname, spec in properties.items()
            }
            openai_tools.append({"type": "function", "function": {
                "name": name, "description": tool.description,
                "parameters": {"type": "object", "properties": params, "required": required,
                               "additionalProperties": False},
            }})
            claude_tools.append({"name": name, "description": tool.description,
                                 "input_schema": {"type": "object", "properties": properties, "required": required}})
        return openai_tools, claude_tools

    async def get_tools(self, enabled_servers: list[str]) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        """List and format the tools of ``enabled_servers``.

        Returns:
            ``(mcp prompt string, OpenAI tools, Claude tools)``.
        """
        servers_info, formatted = await self.get_server_and_tool_info(enabled_servers)
        openai_tools, claude_tools = self.format_tools_for_api(formatted)
        return self.construct_mcp_prompt_string(servers_info), openai_tools, claude_tools
