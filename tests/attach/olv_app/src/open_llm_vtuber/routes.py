"""``init_client_ws_route``: the ``/client-ws`` endpoint, its handler in the closure."""

from __future__ import annotations

import logging
from uuid import uuid4

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from .service_context import ServiceContext
from .websocket_handler import WebSocketHandler

logger = logging.getLogger(__name__)


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
        except WebSocketDisconnect:
            await ws_handler.handle_disconnect(client_uid)
        except Exception:
            logger.exception("error in WebSocket connection %s", client_uid)
            await ws_handler.handle_disconnect(client_uid)
            raise

    return router
