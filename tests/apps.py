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


def slow_greeting(delay_s: float = 1.0) -> FastAPI:
    """Greets like the client protocol, but only ``delay_s`` after accepting
    (a backend that starts its MCP servers on every connection)."""
    import json
    import uuid

    app = FastAPI()

    @app.websocket("/client-ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await asyncio.sleep(delay_s)
        for frame in ({"type": "group-update", "members": [], "is_owner": False},
                      {"type": "full-text", "text": "Connection established"},
                      {"type": "set-model-and-conf", "model_info": {}, "conf_name": "x", "conf_uid": "x",
                       "client_uid": str(uuid.uuid4())},
                      {"type": "group-update", "members": [], "is_owner": False},
                      {"type": "control", "text": "start-mic"}):
            await websocket.send_text(json.dumps(frame))
        with contextlib.suppress(Exception):
            while True:
                await websocket.receive_text()

    return app
