"""What an app's routes reach: the long-lived objects behind its endpoints.

A WebSocket endpoint usually closes over (or names as a global) the object
that owns every session: the handler whose dicts hold connections, contexts
and tasks. For a target that declares no roots, these (and ``app.state``) are
the roots whose containers the census watches.
"""

from __future__ import annotations

import contextlib
import inspect
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["closure_and_globals", "discover_roots", "iter_routes", "proxy_mounted"]

_SKIP = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, type, str, bytes,
         int, float, bool, type(None))


def closure_and_globals(fn: Any) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of what a function closes over and the globals it names."""
    fn = inspect.unwrap(fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    for name, cell in zip(code.co_freevars, fn.__closure__ or (), strict=False):
        with contextlib.suppress(ValueError):  # an empty cell
            yield name, cell.cell_contents
    globs = getattr(fn, "__globals__", {})
    for name in code.co_names:
        if name in globs:
            yield name, globs[name]


def iter_routes(app: Any, limit: int = 500) -> Iterator[Any]:
    """Every route of an ASGI app, mounts and included routers included."""
    todo = list(getattr(app, "routes", None) or [])
    seen = 0
    while todo and seen < limit:
        route = todo.pop(0)
        seen += 1
        yield route
        # A Mount's routes (a property over its app); a router included by
        # FastAPI >= 0.116 stays whole behind ``original_router``.
        with contextlib.suppress(Exception):
            todo.extend(getattr(route, "routes", None) or [])
        with contextlib.suppress(Exception):
            todo.extend(getattr(getattr(route, "original_router", None), "routes", None) or [])


def discover_roots(app: Any, ws_paths: tuple[str, ...] = ("/client-ws",)) -> dict[str, Any]:
    """Long-lived objects of an app: ``app.state``'s values, and the objects
    the WebSocket endpoints at ``ws_paths`` close over or name as globals
    (not modules, functions, classes or plain values). Names are the
    attribute or variable names (``state.handler``, ``ws_handler``)."""
    out: dict[str, Any] = {}
    state = getattr(getattr(app, "state", None), "_state", None)
    if isinstance(state, dict):
        for name, value in state.items():
            if not isinstance(value, _SKIP) and not str(name).startswith("leaklab"):
                out[f"state.{name}"] = value
    for route in iter_routes(app):
        if getattr(route, "path", None) not in ws_paths:
            continue
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None:
            continue
        for name, value in closure_and_globals(endpoint):
            if not isinstance(value, _SKIP) and not callable(value) and name not in out:
                out[name] = value
    return out


def proxy_mounted(app: Any, proxy_path: str | None, ws_path: str) -> tuple[bool | None, str]:
    """Whether a running app mounts its proxy route: ``True``, ``False``
    (measured: no proxy here) or ``None`` (cannot tell: the target declares
    no ``proxy_path`` but the app has other WebSocket routes); and why."""
    paths = {getattr(r, "path", None) for r in iter_routes(app)}
    if proxy_path is None:
        ws = sorted(p for r in iter_routes(app) if type(r).__name__ in ("APIWebSocketRoute", "WebSocketRoute")
                    for p in [getattr(r, "path", None)] if p and p != ws_path)
        if ws:
            return None, (f"cannot tell: the app has WebSocket routes {', '.join(ws)} besides {ws_path}, "
                          "but the target declares no proxy_path")
        return False, f"the app has no WebSocket route besides {ws_path}: no proxy to test"
    if proxy_path in paths:
        return True, f"{proxy_path} is mounted"
    return False, f"no route at {proxy_path}: the proxy is off in this backend's config"
