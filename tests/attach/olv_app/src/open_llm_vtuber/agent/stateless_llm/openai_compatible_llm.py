"""``AsyncLLM``: a streaming chat completion client for OpenAI-compatible APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from openai import AsyncOpenAI

from ...mcpp.types import ToolCallFunctionObject, ToolCallObject

# One HTTP client per endpoint for the whole process, closed at shutdown
# (``close_clients``): agents come and go with every switch-config.
_clients: dict[tuple[str, str], AsyncOpenAI] = {}


def shared_client(base_url: str, api_key: str) -> AsyncOpenAI:
    """The process-wide client for ``(base_url, api_key)``."""
    key = (base_url, api_key)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30.0)
    return client


async def close_clients() -> None:
    """Close every shared client (at the app's shutdown)."""
    clients = list(_clients.values())
    _clients.clear()
    for client in clients:
        await client.close()


class AsyncLLM:
    """A stateless LLM: messages in, a token stream out.

    Args:
        model: the model name.
        base_url: the API's base URL (``.../v1``).
        llm_api_key: the key (any string for local servers).
        temperature: sampling temperature.
    """

    def __init__(self, model: str, base_url: str, llm_api_key: str = "z", temperature: float = 1.0, **_: Any) -> None:
        self.model = model
        self.temperature = temperature
        self.client = shared_client(base_url, llm_api_key)

    async def chat_completion(self, messages: list[dict[str, Any]], system: str | None = None,
                              tools: list[dict[str, Any]] | None = None) -> AsyncIterator[str | list[ToolCallObject]]:
        """Stream one completion.

        Yields:
            Text tokens; when the model asks for tools, last the list of
            :class:`ToolCallObject` assembled from the streamed deltas.
        """
        if system:
            messages = [{"role": "system", "content": system}, *messages]
        extra: dict[str, Any] = {"tools": tools} if tools else {}
        stream = await self.client.chat.completions.create(
            model=self.model, messages=messages, stream=True, temperature=self.temperature, **extra
        )
        calls: dict[int, ToolCallObject] = {}
        async for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta.content:
                yield delta.content
            for part in delta.tool_calls or []:
                call = calls.setdefault(part.index, ToolCallObject(index=part.index, function=ToolCallFunctionObject()))
                call.id = part.id or call.id
                if part.function is not None:
                    call.function.name += part.function.name or ""
                    call.function.arguments += part.function.arguments or ""
        if calls:
            yield [calls[i] for i in sorted(calls)]
