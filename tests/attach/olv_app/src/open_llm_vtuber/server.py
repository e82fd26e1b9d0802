"""``WebSocketServer``: builds the FastAPI app; ``initialize()`` loads the default context."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from .agent.stateless_llm.openai_compatible_llm import close_clients
from .config_manager import Config
from .routes import init_client_ws_route
from .service_context import ServiceContext


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await close_clients()


class WebSocketServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.app = FastAPI(title="Open-LLM-VTuber Server", lifespan=lifespan)
        self.app.add_middleware(
            CORSMiddleware, allow_origins=["*"], allow_credentials=True, allow_methods=["*"], allow_headers=["*"]
        )
        self.default_context_cache = ServiceContext()
        self.app.include_router(init_client_ws_route(default_context_cache=self.default_context_cache))
        # Static folders, relative to the current directory as upstream does.
        if not os.path.exists("cache"):
            os.makedirs("cache")
        self.app.mount("/cache", StaticFiles(directory="cache"), name="cache")
        self.app.mount("/live2d-models", StaticFiles(directory="live2d-models"), name="live2d-models")
        self.app.mount("/bg", StaticFiles(directory="backgrounds"), name="backgrounds")
        self.app.mount("/avatars", StaticFiles(directory="avatars"), name="avatars")
        self.app.mount("/", StaticFiles(directory="frontend", html=True), name="frontend")

    async def initialize(self) -> None:
        await self.default_context_cache.load_from_config(self.config)

    @staticmethod
    def clean_cache() -> None:
        if os.path.exists("cache"):
            shutil.rmtree("cache")
        os.makedirs("cache")
