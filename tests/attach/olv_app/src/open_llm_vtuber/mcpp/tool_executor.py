"""``ToolExecutor``: runs the tool calls an LLM asked for, through an MCPClient."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from .mcp_client import MCPClient
from .tool_manager import ToolManager
from .types import ToolCallObject

logger = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat() + "Z"


class ToolExecutor:
    """Binds a :class:`ToolManager` (which server has which tool) to the
    :class:`MCPClient` that runs them.

    Args:
        mcp_client: the client whose servers run the tools.
        tool_manager: the tool table.
    """

    def __init__(self, mcp_client: MCPClient, tool_manager: ToolManager) -> None:
        self._mcp_client = mcp_client
        self._tool_manager = tool_manager

    async def execute_tools(self, tool_calls: list[ToolCallObject], caller_mode: str = "OpenAI") -> AsyncIterator[dict[str, Any]]:
        """Run each call in turn.

        Yields:
            ``tool_call_status`` frames (``running``, then ``completed`` or
            ``error``) and last ``{"type": "final_tool_results", "results":
            [...]}`` with one OpenAI ``role: tool`` message per call.
        """
        results = []
        for call in tool_calls:
            name, call_id = call.function.name, call.id or f"call_{len(results)}"
            try:
                args = json.loads(call.function.arguments or "{}")
            except json.JSONDecodeError:
                text = f"Error: Invalid arguments format for tool '{name}'."
                yield {"type": "tool_call_status", "tool_id": call_id, "tool_name": name, "status": "error",
                       "content": text, "timestamp": _now()}
                results.append({"role": "tool", "tool_call_id": call_id, "content": text})
                continue
            yield {"type": "tool_call_status", "tool_id": call_id, "tool_name": name, "status": "running",
                   "content": f"Input: {json.dumps(args)}", "timestamp": _now()}
            is_error, text = await self.run_single_tool(name, call_id, args)
            yield {"type": "tool_call_status", "tool_id": call_id, "tool_name": name,
                   "status": "error" if is_error else "completed",
                   "content": f"Error: {text}" if is_error else text, "timestamp": _now()}
            results.append({"role": "tool", "tool_call_id": call_id, "content": text})
        yield {"type": "final_tool_results", "results": results}

    async def run_single_tool(self, tool_name: str, tool_id: str, tool_input: dict[str, Any]) -> tuple[bool, str]:
        """Run one tool.

        Returns:
            ``(is_error, text)``; failures to reach the server are errors too.
        """
        tool = self._tool_manager.get_tool(tool_name)
        if tool is None:
            return True, f"Error: Tool '{tool_name}' is not available."
        try:
            result = await self._mcp_client.call_tool(tool.related_server, tool_name, tool_input)
        except Exception as exc:
            logger.error("Error executing tool '%s': %r", tool_name, exc)
            return True, f"Error executing tool '{tool_name}': {exc}"
        first = (result.get("content_items") or [{}])[0]
        return first.get("type") == "error", str(first.get("text", ""))
