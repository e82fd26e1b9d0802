"""The app factory: ``create_app(faults, options)`` builds the FastAPI app.

Start-up (the lifespan) does what upstream's ``WebSocketServer.initialize()``
does: load ``conf.yaml``, build the default context and its engines, open
the history store, and start the shipped fake OpenAI-compatible server when
no LLM URL is given. Like upstream (which serves ``frontend/``), the app
serves a web page of its own at ``/`` (:data:`FRONTEND_DIR`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from fastapi.staticfiles import StaticFiles
from openai import AsyncOpenAI
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketClose

from .config import load_conf
from .engines import FakeASR, OpenAITTS
from ..fakes.openai import FakeOpenAIServer
from .faults import BackendOptions, parse_faults
from .history import ChatHistory
from .proxy import ProxyHandler
from .service_context import ServiceContext
from .websocket_handler import WebSocketHandler

logger = logging.getLogger(__name__)

#: The page the app serves at ``/``: it does on open, on switch, on a text
#: turn and on close what upstream's web page does (PROTOCOL.md).
FRONTEND_DIR = Path(__file__).resolve().parent / "frontend"


class PageFiles(StaticFiles):
    """The page's folder at ``/``; a WebSocket to a path no route has is
    refused (closed), not an error of the static files."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await WebSocketClose()(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(
    faults: str | Iterable[str] | None = None,
    options: BackendOptions | Mapping[str, object] | None = None,
) -> FastAPI:
    """Build the reference backend.

    Args:
        faults: fault ids (``"C8,C9"``, ``"all"``, an iterable); none by default.
        options: :class:`BackendOptions` or a mapping of option names to values.

    Returns:
        The app. After start-up, ``app.state`` holds ``handler``,
        ``default_context``, ``history``, ``cache_dir``, ``history_db``,
        ``proxy`` (or ``None``), ``llm_base_url``; ``app.state.uvicorn_options``
        holds the WebSocket ping settings the server must run with.

    Raises:
        UnknownFaultError: for an unknown fault id.
        UnknownOptionError: for an unknown option.
    """
    fault_set = parse_faults(faults)
    opts = options if isinstance(options, BackendOptions) else BackendOptions.from_mapping(options)
    conf = load_conf(opts.conf_dir)
    enable_proxy = opts.enable_proxy
    if enable_proxy is None:
        enable_proxy = bool(conf.get("system_config", {}).get("enable_proxy", False))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await _start(app, stack, conf, fault_set, opts, enable_proxy)
            yield

    app = FastAPI(title="leaklab reference backend", lifespan=lifespan)
    app.state.faults = fault_set
    app.state.options = opts
    app.state.enable_proxy = enable_proxy
    app.state.handler = None
    # C7: without a ping, a client that finished the handshake and went
    # silent is never noticed. The server that runs the app reads these.
    app.state.uvicorn_options = (
        {"ws_ping_interval": None, "ws_ping_timeout": None}
        if "C7" in fault_set
        else {"ws_ping_interval": opts.ping_interval_s, "ws_ping_timeout": opts.ping_timeout_s}
    )

    @app.websocket("/client-ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        ws_handler: WebSocketHandler = app.state.handler
        await websocket.accept()
        client_uid = str(uuid.uuid4())
        try:
            await ws_handler.handle_new_connection(websocket, client_uid)
            await ws_handler.handle_websocket_communication(websocket, client_uid)
        except WebSocketDisconnect:
            pass
        finally:
            await ws_handler.handle_disconnect(client_uid)

    if enable_proxy:

        @app.websocket("/proxy-ws")
        async def proxy_endpoint(websocket: WebSocket) -> None:
            await websocket.accept()
            with contextlib.suppress(WebSocketDisconnect):
                await app.state.proxy.handle_client(websocket)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        handler: WebSocketHandler | None = app.state.handler
        return {"status": "ok", "clients": len(handler.client_connections) if handler else 0}

    # Last: every path no route above has is the page's.
    app.mount("/", PageFiles(directory=FRONTEND_DIR, html=True), name="frontend")
    return app


async def _start(
    app: FastAPI,
    stack: contextlib.AsyncExitStack,
    conf: dict[str, Any],
    faults: frozenset[str],
    opts: BackendOptions,
    enable_proxy: bool,
) -> None:
    tmp: Path | None = None
    if opts.cache_dir is None or opts.history_db is None:
        tmp = Path(tempfile.mkdtemp(prefix="leaklab-ref-"))
        stack.callback(shutil.rmtree, tmp, True)
    cache_dir = Path(opts.cache_dir) if opts.cache_dir is not None else tmp / "cache"  # type: ignore[operator]
    cache_dir.mkdir(parents=True, exist_ok=True)
    history_db = Path(opts.history_db) if opts.history_db is not None else tmp / "chat_history" / "history.sqlite3"  # type: ignore[operator]

    base_url = opts.llm_base_url
    if base_url is None:
        fake = FakeOpenAIServer(latency_per_kchar_s=opts.llm_latency_per_kchar_s)
        base_url = fake.start()
        stack.callback(fake.stop)
    llm_conf = conf["character_config"]["agent_config"]["llm_configs"]["openai_compatible_llm"]
    client = AsyncOpenAI(api_key=llm_conf.get("llm_api_key") or "none", base_url=base_url, timeout=30.0, max_retries=0)
    stack.push_async_callback(client.close)

    history = ChatHistory(history_db, read_whole_table="C5" in faults)
    stack.callback(history.close)

    tts_conf = conf["character_config"].get("tts_config", {}).get("openai_tts", {})
    default = ServiceContext(faults=faults, options=opts, history=history, llm_client=client, conf_dir=opts.conf_dir)
    default.load_from_config(
        conf,
        OpenAITTS(client, cache_dir, model=tts_conf.get("model", "fake-tts"), voice=tts_conf.get("voice", "alloy")),
        FakeASR(opts.asr_state_kb),
    )
    stack.push_async_callback(default.close)
    handler = WebSocketHandler(default, faults)
    stack.push_async_callback(handler.close_all)
    proxy = ProxyHandler(faults) if enable_proxy else None
    if proxy is not None:
        stack.push_async_callback(proxy.close)

    app.state.handler = handler
    app.state.default_context = default
    app.state.history = history
    app.state.cache_dir = cache_dir
    app.state.history_db = history_db
    app.state.proxy = proxy
    app.state.llm_base_url = base_url
    logger.info("reference backend ready (faults: %s)", ",".join(sorted(faults)) or "none")
