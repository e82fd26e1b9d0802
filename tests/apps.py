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


def _greeting() -> tuple[dict, ...]:
    """The five frames ``/client-ws`` greets a client with (PROTOCOL.md)."""
    import uuid

    return ({"type": "group-update", "members": [], "is_owner": False},
            {"type": "full-text", "text": "Connection established"},
            {"type": "set-model-and-conf", "model_info": {}, "conf_name": "x", "conf_uid": "x",
             "client_uid": str(uuid.uuid4())},
            {"type": "group-update", "members": [], "is_owner": False},
            {"type": "control", "text": "start-mic"})


def slow_greeting(delay_s: float = 1.0) -> FastAPI:
    """Greets like the client protocol, but only ``delay_s`` after accepting
    (a backend that starts its MCP servers on every connection)."""
    import json

    app = FastAPI()

    @app.websocket("/client-ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await asyncio.sleep(delay_s)
        for frame in _greeting():
            await websocket.send_text(json.dumps(frame))
        with contextlib.suppress(Exception):
            while True:
                await websocket.receive_text()

    return app


def _greet_and_wait(on_open, on_close):
    """A ``/client-ws`` endpoint that greets like the client protocol, calls
    ``on_open()`` (its result goes to ``on_close``) and waits for the close."""
    import json

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        state = on_open()
        for frame in _greeting():
            await websocket.send_text(json.dumps(frame))
        try:
            with contextlib.suppress(Exception):
                while True:
                    # what the page asks on open gets an (empty) answer, as upstream gives
                    kind = json.loads(await websocket.receive_text()).get("type")
                    if kind in PAGE_REPLIES:
                        await websocket.send_text(json.dumps({"type": PAGE_REPLIES[kind]}))
        finally:
            on_close(state)

    return ws


#: The page's requests on open and their replies' types.
PAGE_REPLIES = {"fetch-backgrounds": "background-files", "fetch-configs": "config-files",
                "fetch-history-list": "history-list", "create-new-history": "new-history-created"}


class ServiceContext:
    """The per-session object of the apps below (found by name)."""


def cyclic_garbage() -> FastAPI:
    """Each session's context is in a reference cycle with 512 KiB: freed
    only when a gc pass runs, never leaked."""
    app = FastAPI()

    def on_open():
        ctx = ServiceContext()
        ctx.me = ctx  # type: ignore[attr-defined]
        ctx.payload = bytes(512 * 1024)  # type: ignore[attr-defined]
        return None  # dropped: only the cycle holds it

    app.add_api_websocket_route("/client-ws", _greet_and_wait(on_open, lambda state: None))
    return app


def leaks_contexts() -> FastAPI:
    """Each session's context is kept in a module list: a leak."""
    app = FastAPI()
    kept = app.state.kept = []

    def on_open():
        ctx = ServiceContext()
        ctx.payload = bytes(64 * 1024)  # type: ignore[attr-defined]
        kept.append(ctx)

    app.add_api_websocket_route("/client-ws", _greet_and_wait(on_open, lambda state: None))
    return app


def holds_freed_heap() -> FastAPI:
    """Each session allocates more small buffers than the last (20 MB more),
    pins one byte string after them, and frees the rest: RSS grows, no
    object does, and the allocator holds the freed pages (glibc gives them
    back on malloc_trim)."""
    app = FastAPI()
    pins: list[bytes] = []  # 1 KB a session, out of the census's sight

    def on_open():
        n = 20_000 * (len(pins) + 1)
        buffers = [bytes(1000) for _ in range(n)]
        pins.append(bytes(1000))  # after them on the heap: the heap can't shrink below it
        del buffers

    app.add_api_websocket_route("/client-ws", _greet_and_wait(on_open, lambda state: None))
    return app


def blocks_page_load() -> FastAPI:
    """Each page load reads every stored history synchronously, on the loop:
    one more per session (30 ms, then 15 ms more each session)."""
    import time

    app = FastAPI()
    stored = app.state.stored = []

    def read_every_history() -> None:
        time.sleep(0.03 + 0.015 * len(stored))  # the loop held: the line a stall points at

    def on_open():
        read_every_history()
        stored.append("history")

    app.add_api_websocket_route("/client-ws", _greet_and_wait(on_open, lambda state: None))
    return app
