"""``LLMFactory``: the stateless LLM named by ``llm_provider``."""

from __future__ import annotations

from typing import Any

from .stateless_llm.openai_compatible_llm import AsyncLLM

# Providers this small app speaks, all through the OpenAI-compatible API
# (upstream has dedicated clients for Claude, llama.cpp, ...).
OPENAI_COMPATIBLE = ("openai_compatible_llm", "ollama_llm", "lmstudio_llm", "openai_llm")


class LLMFactory:
    """Builds LLM clients by provider name."""

    @staticmethod
    def create_llm(llm_provider: str, **kwargs: Any) -> AsyncLLM:
        """The client for ``llm_provider`` with its ``llm_configs`` block.

        Raises:
            ValueError: a provider this app does not speak.
        """
        if llm_provider not in OPENAI_COMPATIBLE:
            raise ValueError(f"Unsupported LLM provider: {llm_provider}")
        return AsyncLLM(**kwargs)
