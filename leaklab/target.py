"""How to start a backend in-process, and what to watch in it.

A :class:`Target` names an ASGI app factory, its WebSocket paths, the watched
types, the long-lived roots whose containers may grow, resource locations,
lifecycle methods to count and methods to time. ``reference`` is the
embedded default; any ``pkg.module:factory`` import path works too.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class UnknownTargetError(ValueError):
    """A target that is neither a preset nor an importable ``module:factory``."""


PRESETS = ("reference", "olv")


@dataclasses.dataclass(frozen=True)
class Target:
    """A backend leaklab can run and measure.

    Attributes:
        name: preset name or import path.
        make_app: ``(faults, options) -> ASGI app``; faults are passed only to
            targets that take them.
        ws_path: the client WebSocket path.
        proxy_path: the proxy WebSocket path, if the app has one.
        watched_types: display name -> ``module:Qualname`` of classes whose
            live instances are counted.
        roots: ``app -> {name: object}``, long-lived objects (after start-up)
            whose containers are watched for growth.
        resources: ``app -> {"cache_dir": Path, "history_db": Path}``.
        lifecycle: ``Qualified.method`` -> expected calls per ended session.
        timed: label -> ``module:Qualname.method`` of async methods to time
            (``llm``: time spent in the LLM call).
        uvicorn_options: ``app -> dict`` of uvicorn settings the app needs.
        expected_growth: metrics that grow by design (history rows).
        characters: config files a ``switch-config`` may name, in order.
        options: backend options (already parsed by the target).
        faults: fault ids.
    """

    name: str
    make_app: Callable[[], Any]
    ws_path: str = "/client-ws"
    proxy_path: str | None = None
    watched_types: Mapping[str, str] = dataclasses.field(default_factory=dict)
    roots: Callable[[Any], dict[str, Any]] = lambda app: {}
    resources: Callable[[Any], dict[str, Path | None]] = lambda app: {}
    lifecycle: Mapping[str, str] = dataclasses.field(default_factory=dict)
    timed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    uvicorn_options: Callable[[Any], dict[str, Any]] = lambda app: {}
    expected_growth: tuple[str, ...] = ()
    characters: tuple[str, ...] = ()
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    faults: frozenset[str] = frozenset()

    def resolve_types(self) -> dict[str, type]:
        """Import the watched classes. A bare class name (no ``module:``) is
        looked up among the loaded modules, preferring the target's package;
        one that is not found is skipped."""
        out: dict[str, type] = {}
        for name, path in self.watched_types.items():
            if ":" in path:
                out[name] = import_object(path)
            else:
                found = find_class(path, prefer=self.name.partition(":")[0].split(".")[0])
                if found is not None:
                    out[name] = found
        return out

    def resolve_methods(self, methods: Mapping[str, str]) -> dict[str, tuple[type, str]]:
        """``{label: "module:Class.method"}`` -> ``{label: (Class, "method")}``."""
        out = {}
        for label, path in methods.items():
            owner_path, _, method = path.rpartition(".")
            out[label] = (import_object(owner_path), method)
        return out


def import_object(path: str) -> Any:
    """Import ``package.module:Qualified.name``.

    Raises:
        UnknownTargetError: naming the module or attribute that is missing.
    """
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise UnknownTargetError(f"{path!r} is not of the form 'package.module:name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownTargetError(f"cannot import module {module_name!r} for {path!r}: {exc}") from None
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UnknownTargetError(f"module {module_name!r} has no attribute {qualname!r}") from None
    return obj


def find_class(name: str, prefer: str = "") -> type | None:
    """A loaded class called ``name``; one from package ``prefer`` first."""
    candidates = []
    for module_name, module in list(sys.modules.items()):
        obj = getattr(module, name, None) if module is not None else None
        if isinstance(obj, type) and obj.__module__ == module_name:
            candidates.append(obj)
    candidates.sort(key=lambda c: (not c.__module__.startswith(prefer) if prefer else False, c.__module__))
    return candidates[0] if candidates else None


_REF = "leaklab.backend"


def reference_target(faults: Any = None, options: Mapping[str, Any] | None = None) -> Target:
    """The embedded reference backend, with faults and options."""
    from .backend import BackendOptions, create_app, parse_faults

    fault_set = parse_faults(faults)
    opts = BackendOptions.from_mapping(options)

    def roots(app: Any) -> dict[str, Any]:
        from . import backend

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
    )


def generic_target(
    path: str,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
) -> Target:
    """Any ASGI app or factory by import path ``pkg.module:factory``.

    Watched types default to ``ServiceContext``, found by name among the
    loaded modules; ``watch`` adds ``{display name: "module:Qualname" or "Name"}``.

    The factory is called with ``faults=`` and ``options=`` keywords when it
    accepts them, with no argument otherwise; a non-callable is the app.
    """
    obj = import_object(path)

    def make_app() -> Any:
        if not callable(obj) or _is_asgi_app(obj):
            return obj
        import inspect

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
        options=dict(options or {}),
        faults=frozenset(
            f.strip() for f in (faults.split(",") if isinstance(faults, str) else map(str, faults or ())) if f.strip()
        ) - {"none"},
    )


def _is_asgi_app(obj: Any) -> bool:
    # FastAPI/Starlette apps are callables too; they have a router.
    return hasattr(obj, "router") or hasattr(obj, "routes")


def resolve_target(
    name: str,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
) -> Target:
    """A preset name or an import path.

    Raises:
        UnknownTargetError: listing valid values.
    """
    if name == "reference":
        target = reference_target(faults, options)
        if watch:
            target = dataclasses.replace(target, watched_types={**target.watched_types, **watch})
        return target
    if name == "olv" or name.lower().endswith((".toml", ".yaml", ".yml")):
        from .attach import load_target

        return load_target(name, faults=faults, options=options, watch=watch)
    if ":" in name:
        return generic_target(name, faults, options, watch)
    raise UnknownTargetError(
        f"unknown target {name!r}; valid: {', '.join(PRESETS)} (with --app-dir), a target file (.toml/.yaml), "
        "or an import path 'package.module:factory'"
    )
