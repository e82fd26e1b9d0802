"""Any ASGI app or factory by import path ``pkg.module:factory``."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from .base import Roles, Target, import_object, is_asgi_app
from .importing import fault_set
from .routes import discover_roots


def generic_target(
    path: str,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
) -> Target:
    """Any ASGI app or factory by import path ``pkg.module:factory``.

    Watched types default to ``ServiceContext``, found by name among the
    loaded modules; the roots whose containers are watched are found through
    the app (:func:`~leaklab.targets.routes.discover_roots`); ``watch`` adds ``{display name: "module:Qualname" or "Name"}``.

    The factory is called with ``faults=`` and ``options=`` keywords when it
    accepts them, with no argument otherwise; a non-callable is the app.
    """
    obj = import_object(path)

    def make_app() -> Any:
        if not callable(obj) or is_asgi_app(obj):
            return obj
        params = inspect.signature(obj).parameters
        kwargs: dict[str, Any] = {}
        if "faults" in params:
            kwargs["faults"] = faults
        if "options" in params:
            kwargs["options"] = dict(options or {})
        return obj(**kwargs)

    return Target(
        name=path,
        make_app=make_app,
        watched_types={"ServiceContext": "ServiceContext", **dict(watch or {})},
        # Nothing is declared: the roots are what the WebSocket endpoint
        # reaches and app.state holds; the per-session type is guessed by
        # name. The checklist guesses the other roles from what it measures.
        roots=lambda app: discover_roots(app, ("/client-ws", "/proxy-ws")),
        roles=Roles(session_type="ServiceContext", guessed=("session_type",)),
        options=dict(options or {}),
        faults=fault_set(faults),
    )


def _is_asgi_app(obj: Any) -> bool:
    # FastAPI/Starlette apps are callables too; they have a router.
    return hasattr(obj, "router") or hasattr(obj, "routes")
