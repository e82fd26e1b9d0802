"""``BasicMemoryAgent``: an LLM agent with conversation memory and MCP tools."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from openai import AsyncOpenAI

from .history import ChatHistory
from .mcp_client import MCPClient, MCPToolError

ToolStatusSender = Callable[[dict[str, Any]], Awaitable[None]]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class BasicMemoryAgent:
    """Builds the prompt (persona, recalled history, memory, user text), streams
    the reply through the ``openai`` SDK, runs at most one round of tool calls
    through MCP, and yields the reply sentence by sentence.

    Args:
        client: the SDK client (shared by every session).
        model: model name.
        persona: the system prompt.
        history: the shared history store.
        conf_uid: the character, for recall.
        memory_limit: messages kept in memory (C2 off).
        history_limit: history rows recalled per turn (C5 off).
        unbounded_memory: fault C2: memory is never trimmed...
        memory: ...and is the list passed here, shared with the default agent.
    """

    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        persona: str,
        history: ChatHistory,
        conf_uid: str,
        memory_limit: int = 20,
        history_limit: int = 20,
        unbounded_memory: bool = False,
        memory: list[dict[str, Any]] | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.persona = persona
        self.history = history
        self.conf_uid = conf_uid
        self.memory_limit = memory_limit
        self.history_limit = history_limit
        self.unbounded_memory = unbounded_memory
        self.memory: list[dict[str, Any]] = memory if memory is not None else []
        self.warm_state: bytearray | None = None
        self.last_llm_s = 0.0

    def fork(self, *, persona: str | None = None, conf_uid: str | None = None) -> BasicMemoryAgent:
        """The agent of a new session. With C2 it shares this agent's memory list."""
        return BasicMemoryAgent(
            self.client,
            model=self.model,
            persona=persona if persona is not None else self.persona,
            history=self.history,
            conf_uid=conf_uid or self.conf_uid,
            memory_limit=self.memory_limit,
            history_limit=self.history_limit,
            unbounded_memory=self.unbounded_memory,
            memory=self.memory if self.unbounded_memory else None,
        )

    def _remember(self, message: dict[str, Any]) -> None:
        self.memory.append(message)
        if not self.unbounded_memory and len(self.memory) > self.memory_limit:
            del self.memory[: len(self.memory) - self.memory_limit]

    def _build_messages(self, text: str) -> list[dict[str, Any]]:
        recalled = self.history.recall(self.conf_uid, self.history_limit)
        system = self.persona
        if recalled:
            lines = "\n".join(f"{m['role']}: {m['content']}" for m in recalled)
            system = f"{system}\nEarlier conversations:\n{lines}"
        return [{"role": "system", "content": system}, *self.memory, {"role": "user", "content": text}]

    async def _call_llm(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> tuple[str, list[dict[str, Any]]]:
        """One streamed completion. Returns the text and the tool calls."""
        started = time.perf_counter()
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
        if tools:
            kwargs["tools"] = tools
        stream = await self.client.chat.completions.create(**kwargs)
        text_parts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        try:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    text_parts.append(delta.content)
                for tc in delta.tool_calls or ():
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    if tc.id:
                        slot["id"] = tc.id
                    if tc.function is not None:
                        slot["name"] += tc.function.name or ""
                        slot["arguments"] += tc.function.arguments or ""
        finally:
            await stream.close()
            self.last_llm_s = time.perf_counter() - started
        return "".join(text_parts), [calls[i] for i in sorted(calls)]

    async def chat(
        self,
        text: str,
        *,
        mcp_client: MCPClient | None,
        send_tool_status: ToolStatusSender,
    ) -> AsyncIterator[str]:
        """Answer ``text``; yields sentences. Tool status frames go through ``send_tool_status``."""
        messages = self._build_messages(text)
        self._remember({"role": "user", "content": text})
        tools = await mcp_client.list_tools() if mcp_client is not None else None
        reply, calls = await self._call_llm(messages, tools)
        if calls and mcp_client is not None:
            assistant = {
                "role": "assistant",
                "content": reply or None,
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls
                ],
            }
            messages.append(assistant)
            self._remember(assistant)
            for call in calls:
                result = await self._run_tool(call, mcp_client, send_tool_status)
                tool_msg = {"role": "tool", "tool_call_id": call["id"], "content": result}
                messages.append(tool_msg)
                self._remember(tool_msg)
            reply, _ = await self._call_llm(messages, None)
        self._remember({"role": "assistant", "content": reply})
        for sentence in _SENTENCE_END.split(reply.strip()):
            if sentence:
                yield sentence

    async def _run_tool(self, call: dict[str, Any], mcp_client: MCPClient, send: ToolStatusSender) -> str:
        base = {"type": "tool_call_status", "tool_id": call["id"], "tool_name": call["name"], "name": call["name"]}
        await send({**base, "status": "running", "content": "", "timestamp": _now()})
        try:
            args = json.loads(call["arguments"] or "{}")
            result = await mcp_client.call_tool(call["name"], args)
        except (MCPToolError, ValueError) as exc:
            await send({**base, "status": "error", "content": str(exc), "timestamp": _now()})
            return f"error: {exc}"
        await send({**base, "status": "completed", "content": result, "timestamp": _now()})
        return result

    async def close(self) -> None:
        """Release the agent. Its own memory is cleared; a shared one (C2) is not its to clear."""
        if not self.unbounded_memory:
            self.memory.clear()
        self.warm_state = None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
