"""``BasicMemoryAgent``: keeps the conversation, streams sentences from the
LLM and, with MCP on, runs the tools the LLM asks for."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from ...chat_history_manager import get_all_messages, get_history
from ...faults import fault_on
from ...mcpp.tool_executor import ToolExecutor
from ...mcpp.tool_manager import ToolManager
from ...mcpp.types import ToolCallObject
from ..stateless_llm.openai_compatible_llm import AsyncLLM

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A model that asks for tools again and again must not hold the turn forever.
_MAX_TOOL_ROUNDS = 5


class BasicMemoryAgent:
    """One agent, shared by every session that did not switch character.

    Args:
        llm: the stateless LLM.
        system: the system prompt.
        use_mcpp: offer the MCP tools to the LLM (OpenAI tool calling).
        tool_manager: the tool table (``None``: no tools).
        tool_executor: runs the calls, through its context's MCPClient.
        mcp_prompt_string: the tools as text (kept, as upstream, for
            prompt-mode LLMs; unused with native tool calling).
        memory_limit: messages kept in memory.
    """

    def __init__(self, llm: AsyncLLM, system: str, *, use_mcpp: bool = False, tool_manager: ToolManager | None = None,
                 tool_executor: ToolExecutor | None = None, mcp_prompt_string: str = "", memory_limit: int = 20) -> None:
        self._llm = llm
        self._system = system
        self._memory: list[dict[str, Any]] = []
        self._memory_limit = memory_limit
        self._use_mcpp = use_mcpp
        self._tool_manager = tool_manager
        self._tool_executor = tool_executor
        self._mcp_prompt_string = mcp_prompt_string
        self._formatted_tools_openai = tool_manager.get_formatted_tools("OpenAI") if tool_manager else []
        self._conf_uid: str | None = None

    @staticmethod
    def _as_llm_messages(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"role": "user" if m["role"] == "human" else "assistant", "content": m["content"]}
                for m in stored if m.get("role") in ("human", "ai")]

    def set_memory_from_history(self, conf_uid: str, history_uid: str) -> None:
        """Start from the stored conversation (a new history is empty)."""
        self._conf_uid = conf_uid
        stored = self._as_llm_messages(get_history(conf_uid, history_uid))
        if fault_on("C2"):
            # PLANTED FAULT C2: the stored conversation is added to what is in
            # memory instead of replacing it. A new session's history is empty,
            # so the shared agent keeps every earlier session's messages.
            self._memory.extend(stored)
        else:
            self._memory = stored

    def _recall_earlier_conversations(self) -> list[dict[str, Any]]:
        """PLANTED FAULT C5: every message of every stored conversation of
        this character, read from ``chat_history/<conf_uid>/`` at each turn."""
        if self._conf_uid is None:
            return []
        return self._as_llm_messages(get_all_messages(self._conf_uid))

    async def chat(self, user_input: str, tool_executor: ToolExecutor | None = None) -> AsyncIterator[str | dict[str, Any]]:
        """The reply, one sentence at a time, with ``tool_call_status``
        dicts in between when tools run.

        Args:
            user_input: the user's text.
            tool_executor: runs the tool calls (the session's, through its own
                MCP client); default: the one the agent was built with.
        """
        tool_executor = tool_executor or self._tool_executor
        self._memory.append({"role": "user", "content": user_input})
        messages = list(self._memory)
        if fault_on("C5"):
            messages = [*self._recall_earlier_conversations(), *messages]
        tools = self._formatted_tools_openai if self._use_mcpp else []
        reply: list[str] = []
        for _ in range(_MAX_TOOL_ROUNDS):
            calls: list[ToolCallObject] = []
            buffer, text = "", ""
            async for event in self._llm.chat_completion(messages, self._system, tools=tools or None):
                if isinstance(event, list):
                    calls = event
                    continue
                buffer += event
                text += event
                *done, buffer = _SENTENCE_END.split(buffer)
                for sentence in done:
                    reply.append(sentence)
                    yield sentence
            if buffer.strip():
                reply.append(buffer.strip())
                yield buffer.strip()
            if not calls:
                break
            if tool_executor is None:
                yield "[Error: ToolExecutor not configured]"
                break
            messages.append({"role": "assistant", "content": text or None, "tool_calls": [
                {"id": c.id, "type": c.type, "function": {"name": c.function.name, "arguments": c.function.arguments}}
                for c in calls
            ]})
            async for update in tool_executor.execute_tools(calls, caller_mode="OpenAI"):
                if update.get("type") == "final_tool_results":
                    messages.extend(update["results"])
                else:
                    yield update
        self._memory.append({"role": "assistant", "content": " ".join(reply)})
        if not fault_on("C2"):  # PLANTED FAULT C2: no limit
            del self._memory[: -self._memory_limit]
