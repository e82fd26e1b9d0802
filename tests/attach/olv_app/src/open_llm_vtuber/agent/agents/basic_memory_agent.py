"""``BasicMemoryAgent``: keeps the conversation, streams sentences from the LLM."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from ..stateless_llm.openai_compatible_llm import AsyncLLM

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class BasicMemoryAgent:
    def __init__(self, llm: AsyncLLM, system: str, memory_limit: int = 20) -> None:
        self._llm = llm
        self._system = system
        self._memory: list[dict[str, Any]] = []
        self._memory_limit = memory_limit

    def set_memory_from_history(self, conf_uid: str, history_uid: str) -> None:
        """Start from the stored conversation (a new history is empty)."""
        self._memory = []

    async def chat(self, user_input: str) -> AsyncIterator[str]:
        """The reply, one sentence at a time."""
        self._memory.append({"role": "user", "content": user_input})
        buffer, reply = "", []
        async for token in self._llm.chat_completion(self._memory, self._system):
            buffer += token
            *done, buffer = _SENTENCE_END.split(buffer)
            for sentence in done:
                reply.append(sentence)
                yield sentence
        if buffer.strip():
            reply.append(buffer.strip())
            yield buffer.strip()
        self._memory.append({"role": "assistant", "content": " ".join(reply)})
        del self._memory[: -self._memory_limit]
