"""``ServiceContext``: one session's services (config, agent, TTS, MCP client)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket

from .agent.agent_factory import AgentFactory
from .agent.agents.basic_memory_agent import BasicMemoryAgent
from .config_manager import CharacterConfig, Config, SystemConfig, read_yaml, validate_config
from .live2d_model import Live2dModel
from .mcpp.mcp_client import MCPClient
from .tts.tts_factory import TTSFactory

logger = logging.getLogger(__name__)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


class ServiceContext:
    """Initialised once from ``conf.yaml`` (the default context cache); each
    connection gets a copy that shares its engines (``load_cache``)."""

    def __init__(self) -> None:
        self.config: Config | None = None
        self.system_config: SystemConfig | None = None
        self.character_config: CharacterConfig | None = None
        self.live2d_model: Live2dModel | None = None
        self.agent_engine: BasicMemoryAgent | None = None
        self.tts_engine: Any = None
        self.mcp_client: MCPClient | None = None
        self.send_text: Callable[[str], Awaitable[None]] | None = None
        self.client_uid: str | None = None
        self.history_uid: str = ""
        self.first_turn = asyncio.Event()

    # -- construction -------------------------------------------------------
    async def load_from_config(self, config: Config) -> None:
        self.config = config
        self.system_config = config.system_config
        self.character_config = config.character_config
        self.live2d_model = Live2dModel(config.character_config.live2d_model_name)
        tts = config.character_config.tts_config
        self.tts_engine = TTSFactory.get_tts_engine(tts.get("tts_model", ""), **tts.get(tts.get("tts_model", ""), {}))
        agent = config.character_config.agent_config
        self.agent_engine = AgentFactory.create_agent(
            agent.get("conversation_agent_choice", "basic_memory_agent"),
            agent.get("agent_settings", {}),
            agent.get("llm_configs", {}),
            config.character_config.persona_prompt,
        )
        logger.info("service context ready: %s", config.character_config.conf_name)

    async def load_cache(self, config: Config, system_config: SystemConfig, character_config: CharacterConfig,
                         live2d_model: Live2dModel, agent_engine: BasicMemoryAgent, tts_engine: Any,
                         send_text: Callable[[str], Awaitable[None]], client_uid: str) -> None:
        self.config = config
        self.system_config = system_config
        self.character_config = character_config
        self.live2d_model = live2d_model
        self.agent_engine = agent_engine
        self.tts_engine = tts_engine
        self.send_text = send_text
        self.client_uid = client_uid
        settings = character_config.agent_config.get("agent_settings", {}).get("basic_memory_agent", {})
        if settings.get("use_mcpp"):
            self.mcp_client = MCPClient(settings.get("mcp_enabled_servers", []), send_text, client_uid)

    # -- switch-config --------------------------------------------------------
    async def handle_config_switch(self, websocket: WebSocket, config_file_name: str) -> None:
        try:
            assert self.config is not None and self.system_config is not None
            alts = os.path.realpath(self.system_config.config_alts_dir)
            path = os.path.realpath(os.path.join(alts, config_file_name))
            if os.path.dirname(path) != alts or not path.endswith((".yaml", ".yml")):
                raise ValueError(f"refusing config path outside {self.system_config.config_alts_dir}/")
            alt = read_yaml(path).get("character_config", {})
            merged = deep_merge(self.config.character_config.model_dump(), alt)
            new_config = validate_config({"system_config": self.system_config.model_dump(), "character_config": merged})
            await self.load_from_config(new_config)
            # PLANTED LEAK: the new agent is warmed up in the background, and the
            # task polls until the user's first turn to hand it over. It is not
            # kept anywhere and close() does not cancel it: a tab closed before
            # its first turn leaves this task (and through it this context) alive.
            asyncio.create_task(self._warm_up_agent())
            await websocket.send_text(json.dumps({
                "type": "set-model-and-conf",
                "model_info": self.live2d_model.model_info if self.live2d_model else {},
                "conf_name": self.character_config.conf_name if self.character_config else "",
                "conf_uid": self.character_config.conf_uid if self.character_config else "",
            }))
            await websocket.send_text(json.dumps({"type": "config-switched",
                                                  "message": f"Switched to config: {config_file_name}"}))
        except Exception as exc:
            await websocket.send_text(json.dumps({"type": "error", "message": f"Error switching configuration: {exc}"}))

    async def _warm_up_agent(self) -> None:
        assert self.agent_engine is not None
        async for _ in self.agent_engine.chat("Say hello."):
            pass
        # Hand the warmed-up agent over at the user's first turn.
        while not self.first_turn.is_set():
            await asyncio.sleep(0.2)

    # -- teardown -------------------------------------------------------------
    async def close(self) -> None:
        logger.info("closing service context %s", self.client_uid)
        if self.mcp_client is not None:
            await self.mcp_client.aclose()
            self.mcp_client = None
