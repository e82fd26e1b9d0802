"""What a target is: how to start a backend in-process, and what to watch in it.

A :class:`Target` names an ASGI app factory, its WebSocket paths, the watched
types, the long-lived roots whose containers may grow, resource locations,
lifecycle methods to count and methods to time. The modules beside this one
build targets (the reference backend, an import path, a target file, the olv
profile); :func:`leaklab.targets.resolve_target` is the one way to get one.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["AttachError", "Target", "UnknownTargetError", "find_class", "import_object", "is_asgi_app"]


class UnknownTargetError(ValueError):
    """A target that is neither a preset nor an importable ``module:factory``."""


class AttachError(UnknownTargetError):
    """A backend that cannot be attached: the message names the missing path,
    module, class or key. A ``ValueError`` (through ``UnknownTargetError``),
    so the CLI reports it as a usage error."""


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
        notes: ``app -> [str]``, after start-up: what leaklab changed or
            decided to run the backend here (engines pointed at the fake,
            MCP servers skipped...), for the run's metadata and the report.
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
    notes: Callable[[Any], list[str]] = lambda app: []

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


def is_asgi_app(obj: Any) -> bool:
    """Whether ``obj`` is an app rather than a factory (FastAPI/Starlette apps
    are callables too; they have a router)."""
    return hasattr(obj, "router") or hasattr(obj, "routes")
