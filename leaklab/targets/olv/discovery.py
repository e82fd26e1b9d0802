"""Finding an upstream-style app's parts: its package folder, its modules
(imported without writing bytecode into the user's tree), the
``WebSocketHandler`` behind the ``/client-ws`` route, and the long-lived roots."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path
from typing import Any

from ..._compat import chdir
from ..base import AttachError
from ..routes import closure_and_globals, iter_routes
from ..importing import _import_module, _is_under, _prepend_sys_path, _purge_package

logger = logging.getLogger("leaklab.targets.olv")

OLV_PACKAGE = "open_llm_vtuber"
#: Modules imported up front (when their file exists) so the classes are loaded.
OLV_MODULES = (
    "server", "routes", "websocket_handler", "service_context", "message_handler", "config_manager",
    "agent.agents.basic_memory_agent", "mcpp.mcp_client",
)


def olv_layout(app_dir: Path, package: str | None) -> tuple[Path, str]:
    """``(sys.path entry, package name)``: src layout first, then flat."""
    name = package or OLV_PACKAGE
    rel = Path(*name.split("."))
    for entry in (app_dir / "src", app_dir):
        if (entry / rel / "server.py").is_file():
            return entry, name
    raise AttachError(
        f"olv profile: no {name} package with a server.py in {app_dir} "
        f"(looked for src/{rel}/server.py and {rel}/server.py); name another with options={{'package': ...}}"
    )


def import_olv_package(app_dir: Path, entry: Path, package: str) -> types.ModuleType:
    top = package.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is not None and not _is_under(getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", [])), None), entry):
        # Another app of the same package name was attached before in this
        # process: its modules would shadow this one's.
        logger.info("olv profile: %s was imported from elsewhere; re-importing it from %s", top, entry)
        _purge_package(top)
    paths = [entry] if entry == app_dir else [entry, app_dir]
    _prepend_sys_path(*paths)
    what = f"olv profile ({app_dir})"
    try:
        with chdir(app_dir):
            server = _import_module(f"{package}.server", app_dir, what)
            base = entry / Path(*package.split("."))
            for rel in OLV_MODULES[1:]:
                as_path = base / Path(*rel.split("."))
                if as_path.with_suffix(".py").is_file() or (as_path / "__init__.py").is_file():
                    _import_module(f"{package}.{rel}", app_dir, what)
    except AttachError:
        _purge_package(top)  # no half-imported package left behind
        raise
    return server


def find_ws_handler(app: Any, ws_path: str = "/client-ws") -> Any:
    """The ``WebSocketHandler`` of an upstream-style app, found in the closure or
    globals of its WebSocket endpoint (the route at ``ws_path`` first); ``None``
    if there is none."""
    routes = list(iter_routes(app))
    routes.sort(key=lambda r: getattr(r, "path", None) != ws_path)
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None:
            continue
        for _, value in closure_and_globals(endpoint):
            if type(value).__name__ == "WebSocketHandler" or (
                hasattr(value, "client_contexts") and hasattr(value, "client_connections")
            ):
                return value
    return None


def olv_roots(app: Any, ws_path: str = "/client-ws", package: str | None = None) -> dict[str, Any]:
    """Long-lived objects of an upstream-style app: ``handler`` (the
    ``WebSocketHandler``), ``default_context`` (its ``default_context_cache``),
    ``message_handler`` (the singleton in the handler's module) and
    ``package`` (the app's top module, for module-level registries)."""
    out: dict[str, Any] = {}
    handler = find_ws_handler(app, ws_path)
    if handler is not None:
        out["handler"] = handler
        default = getattr(handler, "default_context_cache", None)
        if default is not None:
            out["default_context"] = default
        module = sys.modules.get(type(handler).__module__)
        singleton = getattr(module, "message_handler", None) if module is not None else None
        if singleton is None and package is not None:
            singleton = getattr(sys.modules.get(f"{package}.message_handler"), "message_handler", None)
        if singleton is not None:
            out["message_handler"] = singleton
    if package is not None and package in sys.modules:
        out["package"] = sys.modules[package]
    return out


