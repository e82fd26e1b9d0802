"""``WebSocketServer``: builds the FastAPI app; ``initialize()`` loads the default context."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from .agent.stateless_llm.openai_compatible_llm import close_clients
from .config_manager import Config
from .mcpp.mcp_client import reap_leftover_servers
from .mcpp.server_connection import stop_all_servers
from .proxy_handler import ProxyHandler
from .routes import init_client_ws_route, init_proxy_route
from .service_context import ServiceContext

logger = logging.getLogger(__name__)


class WebSocketServer:
    """The app: routes, static folders, and the default context cache.

    Args:
        config: the validated ``conf.yaml``; :meth:`initialize` builds the
            default context from it.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.app = FastAPI(title="Open-LLM-VTuber Server", lifespan=self._lifespan)
        self.app.add_middleware(
            CORSMiddleware, allow_origins=["*"], allow_credentials=True, allow_methods=["*"], allow_headers=["*"]
        )
        self.default_context_cache = ServiceContext()
        self.app.include_router(init_client_ws_route(default_context_cache=self.default_context_cache))
        self.proxy_handler: ProxyHandler | None = None
        if config.system_config.enable_proxy:
            logger.info("Enabling proxy mode endpoints")
            # As upstream: the proxy dials this server at the address the
            # config gives (not the one the socket was bound to).
            host = config.system_config.host
            port = config.system_config.port
            server_url = f"ws://{host}:{port}/client-ws"
            self.proxy_handler = ProxyHandler(server_url)
            self.app.include_router(init_proxy_route(self.proxy_handler))
        # Static folders, relative to the current directory as upstream does.
        if not os.path.exists("cache"):
            os.makedirs("cache")
        self.app.mount("/cache", StaticFiles(directory="cache"), name="cache")
        self.app.mount("/live2d-models", StaticFiles(directory="live2d-models"), name="live2d-models")
        self.app.mount("/bg", StaticFiles(directory="backgrounds"), name="backgrounds")
        self.app.mount("/avatars", StaticFiles(directory="avatars"), name="avatars")
        self.app.mount("/", StaticFiles(directory="frontend", html=True), name="frontend")

    async def initialize(self) -> None:
        """Build the default context (engines, agent, MCP) from the config."""
        await self.default_context_cache.load_from_config(self.config)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        yield
        # Test-app conveniences (upstream has no shutdown hook): close the
        # proxy's upstream connection; stop the MCP servers the default
        # context started, any a session's failed close left running
        # (planted fault C3) and any of a session never closed (C9), so an
        # in-process run leaves no child process (upstream leaves them to
        # the end of the process).
        if self.proxy_handler is not None:
            await self.proxy_handler.disconnect()
        default = self.default_context_cache
        if default.mcp_client is not None:
            await default.mcp_client.aclose()
        await reap_leftover_servers()
        await stop_all_servers()
        await close_clients()

    @staticmethod
    def clean_cache() -> None:
        if os.path.exists("cache"):
            shutil.rmtree("cache")
        os.makedirs("cache")
