"""Small misbehaving backends, attached by import path (``tests.apps:NAME``)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import FastAPI, WebSocket


def crash_on_connect() -> FastAPI:
    """Every WebSocket handler crashes before accepting."""
    app = FastAPI()

    @app.websocket("/client-ws")
    async def ws(websocket: WebSocket) -> None:
        raise RuntimeError("backend crashed on connect")

    return app


def crash_on_startup() -> FastAPI:
    """Start-up fails."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        raise RuntimeError("cannot load conf.yaml")
        yield

    return FastAPI(lifespan=lifespan)


def hang_on_connect() -> FastAPI:
    """The handler never accepts: the handshake never completes."""
    app = FastAPI()

    @app.websocket("/client-ws")
    async def ws(websocket: WebSocket) -> None:
        await asyncio.sleep(3600)

    return app
