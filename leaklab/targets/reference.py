"""The embedded reference backend (``leaklab/backend``) as a target."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .base import Roles, Target

#: The reference backend's parts, by role (``data/targets/reference.toml``
#: declares the same).
REFERENCE_ROLES = Roles(
    session_type="ServiceContext",
    agent_type="BasicMemoryAgent",
    mcp_client_type="MCPClient",
    connections="handler.client_connections",
    session_tasks="handler.current_conversation_tasks",
    shared_memory=("default_context.agent_engine.memory",),
    session_memory="agent_engine.memory",
    open_sessions="handler.client_contexts",
    shared_engines=("default_context.asr_engine", "default_context.tts_engine"),
    tts_cache="cache_dir",
    history=("sqlite", "history_db"),
    session_close="ServiceContext.close",
    mcp_close="MCPClient.aclose",
)

_REF = "leaklab.backend"


def reference_target(faults: Any = None, options: Mapping[str, Any] | None = None) -> Target:
    """The embedded reference backend, with faults and options."""
    from ..backend import BackendOptions, create_app, parse_faults
    from ..backend.server import FRONTEND_DIR

    fault_set = parse_faults(faults)
    opts = BackendOptions.from_mapping(options)

    def roots(app: Any) -> dict[str, Any]:
        from .. import backend

        return {
            "handler": app.state.handler,
            "default_context": app.state.default_context,
            "proxy": app.state.proxy,
            "backend": backend,  # module globals of the backend package
        }

    return Target(
        name="reference",
        make_app=lambda: create_app(fault_set, opts),
        ws_path="/client-ws",
        proxy_path="/proxy-ws",
        watched_types={
            "ServiceContext": f"{_REF}.service_context:ServiceContext",
            "BasicMemoryAgent": f"{_REF}.agent:BasicMemoryAgent",
            "MCPClient": f"{_REF}.mcp_client:MCPClient",
        },
        roots=roots,
        resources=lambda app: {"cache_dir": app.state.cache_dir, "history_db": app.state.history_db},
        lifecycle={
            "ServiceContext.close": f"{_REF}.service_context:ServiceContext.close",
            "MCPClient.aclose": f"{_REF}.mcp_client:MCPClient.aclose",
            "FakeASR.cleanup_client": f"{_REF}.engines:FakeASR.cleanup_client",
            "MessageHandler.cleanup_client": f"{_REF}.message_handler:MessageHandler.cleanup_client",
        },
        timed={"llm": f"{_REF}.agent:BasicMemoryAgent._call_llm"},
        uvicorn_options=lambda app: dict(app.state.uvicorn_options),
        expected_growth=("db_rows", "db_bytes"),
        characters=("shizuku.yaml", "natori.yaml"),
        options=opts.as_dict(),
        faults=fault_set,
        roles=REFERENCE_ROLES,
        release_s=_finite(opts.as_dict().get("heavy_init_s")),
        page_dir=FRONTEND_DIR,
    )


def _finite(value: Any) -> float:
    """The heavy init's seconds: the reference holds a switched session's
    context that long by design; 0 for an init that never ends (nothing is
    released by waiting)."""
    try:
        x = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) else 0.0
