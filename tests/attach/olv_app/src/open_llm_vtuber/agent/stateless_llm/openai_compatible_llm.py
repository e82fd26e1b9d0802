"""``AsyncLLM``: a streaming chat completion client for OpenAI-compatible APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from openai import AsyncOpenAI

# One HTTP client per endpoint for the whole process, closed at shutdown
# (``close_clients``): agents come and go with every switch-config.
_clients: dict[tuple[str, str], AsyncOpenAI] = {}


def shared_client(base_url: str, api_key: str) -> AsyncOpenAI:
    key = (base_url, api_key)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30.0)
    return client


async def close_clients() -> None:
    clients = list(_clients.values())
    _clients.clear()
    for client in clients:
        await client.close()


class AsyncLLM:
    def __init__(self, model: str, base_url: str, llm_api_key: str = "z", temperature: float = 1.0, **_: Any) -> None:
        self.model = model
        self.temperature = temperature
        self.client = shared_client(base_url, llm_api_key)

    async def chat_completion(self, messages: list[dict[str, Any]], system: str | None = None) -> AsyncIterator[str]:
        if system:
            messages = [{"role": "system", "content": system}, *messages]
        stream = await self.client.chat.completions.create(
            model=self.model, messages=messages, stream=True, temperature=self.temperature
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content
