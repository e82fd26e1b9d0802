"""``init_client_ws_route``: the ``/client-ws`` endpoint, its handler in the
closure; ``init_proxy_route``: ``/proxy-ws`` (proxy mode only)."""

from __future__ import annotations

import logging
from uuid import uuid4

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from .proxy_handler import ProxyHandler
from .service_context import ServiceContext
from .websocket_handler import WebSocketHandler

logger = logging.getLogger(__name__)

#: Close codes of a client that said goodbye (normal closure, going away).
CLEAN_CLOSE_CODES = (1000, 1001)


def init_client_ws_route(default_context_cache: ServiceContext) -> APIRouter:
    router = APIRouter()
    ws_handler = WebSocketHandler(default_context_cache)

    @router.websocket("/client-ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        client_uid = str(uuid4())
        try:
            await ws_handler.handle_new_connection(websocket, client_uid)
            await ws_handler.handle_websocket_communication(websocket, client_uid)
        except WebSocketDisconnect as exc:
            await ws_handler.handle_disconnect(client_uid, clean=exc.code in CLEAN_CLOSE_CODES)
        except Exception:
            logger.exception("error in WebSocket connection %s", client_uid)
            await ws_handler.handle_disconnect(client_uid, clean=False)
            raise

    return router


def init_proxy_route(proxy_handler: ProxyHandler) -> APIRouter:
    """``/proxy-ws``: clients that share one upstream ``/client-ws`` session."""
    router = APIRouter()

    @router.websocket("/proxy-ws")
    async def proxy_endpoint(websocket: WebSocket) -> None:
        try:
            await proxy_handler.handle_client_connection(websocket)
        except Exception:
            logger.exception("error in proxy connection")
            raise

    return router
