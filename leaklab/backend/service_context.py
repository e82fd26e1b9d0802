"""``ServiceContext``: everything one session uses (config, agent, engines, MCP client)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from .agent import BasicMemoryAgent
from .config import load_character
from .engines import FakeASR, OpenAITTS
from .faults import BackendOptions
from .history import ChatHistory
from .mcp_client import MCPClient
from .mcp_servers import SERVER_SCRIPTS

logger = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]


class ServiceContext:
    """One session's services. The default context is built once at start-up;
    each connection gets a clone that shares its engines by reference.

    Args:
        faults: active fault ids.
        options: backend options.
        history: the shared history store.
        llm_client: the shared ``AsyncOpenAI`` client.
        conf_dir: folder of ``conf.yaml`` and ``characters/``.
    """

    def __init__(
        self,
        *,
        faults: frozenset[str],
        options: BackendOptions,
        history: ChatHistory,
        llm_client: AsyncOpenAI,
        conf_dir: Path | None,
    ) -> None:
        self.faults = faults
        self.options = options
        self.history = history
        self.llm_client = llm_client
        self.conf_dir = conf_dir
        self.config: dict[str, Any] = {}
        self.system_config: dict[str, Any] = {}
        self.character_config: dict[str, Any] = {}
        self.agent_engine: BasicMemoryAgent | None = None
        self.tts_engine: OpenAITTS | None = None
        self.asr_engine: FakeASR | None = None
        self.mcp_client: MCPClient | None = None
        self.history_uid = ""
        self.send_text: SendText | None = None
        self.client_uid: str | None = None
        # C8-proposed keeps a list as CHECKLIST.md proposes; the full fix a set
        # that forgets finished tasks.
        self._background_tasks: list[asyncio.Task[None]] | set[asyncio.Task[None]] = (
            [] if "C8-proposed" in faults else set()
        )
        self.closed = False

    # -- construction -----------------------------------------------------
    def load_from_config(self, config: dict[str, Any], tts_engine: OpenAITTS, asr_engine: FakeASR) -> None:
        """Initialise the default context from a full config."""
        self.config = config
        self.system_config = config.get("system_config", {})
        self.character_config = config["character_config"]
        self.tts_engine = tts_engine
        self.asr_engine = asr_engine
        self.agent_engine = self._make_agent(self.character_config)

    def load_cache(self, default: ServiceContext, *, send_text: SendText, client_uid: str) -> None:
        """Clone the default context for a session, sharing its engines."""
        self.config = default.config
        self.system_config = default.system_config
        self.character_config = default.character_config
        self.tts_engine = default.tts_engine
        self.asr_engine = default.asr_engine
        assert default.agent_engine is not None
        self.agent_engine = default.agent_engine.fork()
        self.mcp_client = self._make_mcp_client(self.character_config)
        self.send_text = send_text
        self.client_uid = client_uid
        self.history_uid = self.history.create_history(self.character_config.get("conf_uid", ""))

    def _make_agent(self, character: dict[str, Any]) -> BasicMemoryAgent:
        llm = _llm_settings(character)
        return BasicMemoryAgent(
            self.llm_client,
            model=llm.get("model", "fake-llm"),
            persona=character.get("persona_prompt", ""),
            history=self.history,
            conf_uid=character.get("conf_uid", ""),
            memory_limit=self.options.memory_limit,
            history_limit=self.options.history_limit,
            unbounded_memory="C2" in self.faults,
        )

    def _make_mcp_client(self, character: dict[str, Any]) -> MCPClient | None:
        settings = character.get("agent_config", {}).get("agent_settings", {}).get("basic_memory_agent", {})
        if not settings.get("use_mcpp"):
            return None
        import sys

        names = [n for n in settings.get("mcp_enabled_servers", []) if n in SERVER_SCRIPTS]
        servers = {n: [sys.executable, str(SERVER_SCRIPTS[n])] for n in names}
        return MCPClient(servers, leave_sessions_open="C3" in self.faults) if servers else None

    # -- switching --------------------------------------------------------
    async def handle_config_switch(self, filename: str) -> dict[str, Any]:
        """Switch character. The config applies at once; the agent is rebuilt by
        a heavy background init (``heavy_init_s``).

        Returns:
            The new character config.

        Raises:
            ConfigError: for a bad file name.
        """
        config = load_character(self.config, filename, self.conf_dir)
        self.config = config
        self.character_config = config["character_config"]
        if "C8" in self.faults:
            # The users' code: untracked, and the coroutine holds self until it ends.
            asyncio.create_task(self._finish_heavy_init(self.character_config))
        elif "C8-proposed" in self.faults:
            # Exactly CHECKLIST.md's proposed fix: cancel and await earlier ones,
            # then keep the new one; close() cancels them all.
            for task in self._background_tasks:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            task = asyncio.create_task(self._finish_heavy_init(self.character_config))
            self._background_tasks.append(task)  # type: ignore[union-attr]
        else:
            await self._cancel_background_tasks()
            task = asyncio.create_task(_heavy_init_detached(weakref.ref(self), self.character_config))
            tasks = self._background_tasks
            tasks.add(task)  # type: ignore[union-attr]
            task.add_done_callback(tasks.discard)  # type: ignore[union-attr]
        return self.character_config

    async def _finish_heavy_init(self, character: dict[str, Any]) -> None:
        """Build the new agent (slow). Runs as a task that refers to ``self``."""
        agent = self._make_agent(character)
        agent.warm_state = _warm_up(self.options.heavy_init_mb)
        await _sleep(self.options.heavy_init_s)
        old, self.agent_engine = self.agent_engine, agent
        if old is not None:
            await old.close()

    async def _cancel_background_tasks(self) -> None:
        tasks = [t for t in self._background_tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    # -- teardown -----------------------------------------------------------
    async def close(self) -> None:
        """Stop background work, close the MCP client and the agent (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if "C8" not in self.faults:
            await self._cancel_background_tasks()
        logger.info("Closing service context %s", self.client_uid)
        if self.mcp_client is not None:
            await self.mcp_client.aclose()
        if self.agent_engine is not None:
            await self.agent_engine.close()


async def _heavy_init_detached(ref: weakref.ref[ServiceContext], character: dict[str, Any]) -> None:
    """The full fix's init: holds the context only weakly while it waits, so a
    context whose ``close()`` is never reached (C9) can still be collected."""
    ctx = ref()
    if ctx is None:
        return
    agent = ctx._make_agent(character)
    heavy_s, heavy_mb = ctx.options.heavy_init_s, ctx.options.heavy_init_mb
    del ctx
    agent.warm_state = _warm_up(heavy_mb)
    try:
        await _sleep(heavy_s)
    except asyncio.CancelledError:
        await agent.close()
        raise
    ctx = ref()
    if ctx is None or ctx.closed:
        await agent.close()
        return
    old, ctx.agent_engine = ctx.agent_engine, agent
    if old is not None:
        await old.close()


def _warm_up(mb: float) -> bytearray:
    # Loading a model is what makes the init heavy: the memory is held from
    # the start of the init, not only after it.
    return bytearray(int(mb * 1024 * 1024))


async def _sleep(seconds: float) -> None:
    # An init that never finishes still sits on a timer, as a hung network
    # call sits on a socket: the loop keeps the task (and what it holds) alive.
    if math.isinf(seconds):
        while True:
            await asyncio.sleep(3600)
    await asyncio.sleep(seconds)


def _llm_settings(character: dict[str, Any]) -> dict[str, Any]:
    agent_conf = character.get("agent_config", {})
    return agent_conf.get("llm_configs", {}).get("openai_compatible_llm", {})
