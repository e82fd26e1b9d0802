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

__all__ = ["HISTORY_KINDS", "AttachError", "Roles", "Target", "UnknownTargetError", "find_class", "import_object", "is_asgi_app"]


class UnknownTargetError(ValueError):
    """A target that is neither a preset nor an importable ``module:factory``."""


class AttachError(UnknownTargetError):
    """A backend that cannot be attached: the message names the missing path,
    module, class or key. A ``ValueError`` (through ``UnknownTargetError``),
    so the CLI reports it as a usage error."""


#: The history store kinds a ``Roles.history`` may name.
HISTORY_KINDS = ("sqlite", "json_dir")


@dataclasses.dataclass(frozen=True)
class Roles:
    """What the checklist's rules need to know about a backend, by role.

    A rule reads roles, never a backend's own names; a role left ``None``
    makes the rules that need it say ``inconclusive``, naming the role. Paths
    are the census's names: a watched type's display name, a container's
    access path from a root (``handler.client_connections``), a resource
    name, a lifecycle label.

    Attributes:
        session_type: the per-connection object (a watched type).
        agent_type: the agent a session talks through (a watched type).
        mcp_client_type: the MCP client a session owns (a watched type).
        connections: the registry of open connections (container path).
        session_tasks: the registry of per-session conversation tasks.
        shared_memory: agent memory on objects every session shares
            (container paths, ``default_context.agent_engine.memory``).
        session_memory: agent memory of one session, as an attribute chain
            from a session object (``agent_engine.memory``).
        open_sessions: the registry of open sessions (a container path
            whose values are ``session_type`` objects,
            ``handler.client_contexts``): the memory of sessions still
            registered there is not counted as left behind.
        shared_engines: engines shared by every session (container path
            prefixes, ``default_context.asr_engine``).
        tts_cache: the folder TTS audio files are written to (a resource).
        history: ``(kind, resource)``: ``("sqlite", "history_db")`` or
            ``("json_dir", "chat_history_dir")``.
        session_close: the per-session close method (a lifecycle label).
        mcp_close: the MCP client's close method (a lifecycle label).
        guessed: the roles discovery filled in rather than the target
            declaring them (said in the verdicts that use them).
    """

    session_type: str | None = None
    agent_type: str | None = None
    mcp_client_type: str | None = None
    connections: str | None = None
    session_tasks: str | None = None
    shared_memory: tuple[str, ...] = ()
    session_memory: str | None = None
    open_sessions: str | None = None
    shared_engines: tuple[str, ...] = ()
    tts_cache: str | None = None
    history: tuple[str, str] | None = None
    session_close: str | None = None
    mcp_close: str | None = None
    guessed: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "roles") -> Roles:
        """From a target file's ``[roles]`` table (lists for the tuples,
        ``history = ["sqlite", "history_db"]``).

        Raises:
            AttachError: an unknown role or a value of the wrong shape.
        """
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "guessed"}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise AttachError(f"{where}: unknown role(s) {', '.join(unknown)}; valid: {', '.join(fields)}")
        out: dict[str, Any] = {}
        for name, value in data.items():
            if name in ("shared_memory", "shared_engines"):
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise AttachError(f"{where}.{name}: expected a list of strings, got {value!r}")
                out[name] = tuple(value)
            elif name == "history":
                if (not isinstance(value, list) or len(value) != 2 or value[0] not in HISTORY_KINDS
                        or not isinstance(value[1], str)):
                    raise AttachError(f"{where}.history: expected [kind, resource] with kind one of "
                                      f"{', '.join(HISTORY_KINDS)}, got {value!r}")
                out[name] = (value[0], value[1])
            else:
                if not isinstance(value, str):
                    raise AttachError(f"{where}.{name}: expected a string, got {value!r}")
                out[name] = value
        return cls(**out)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}



def session_memory_path(session_type: str, session_memory: str) -> str:
    """The container path under which the live sessions' own agent memory
    is counted (``roles.session_memory`` summed over the live
    ``roles.session_type``, less the shared memory): ``Type[*].attr.path``."""
    return f"{session_type}[*].{session_memory}"


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
        roles: what the checklist's rules need, by role (:class:`Roles`).
        release_s: seconds the backend may go on holding an ended session's
            objects by design (a warm-up that ends on its own): timelines
            wait this long, beside the server's own ping timeout. ``0``:
            nothing is released late by design; ``None``: unknown (the
            checklist waits its own ``RELEASE_TIMELINE_S``).
        page_dir: the folder the backend serves its own web page from (its
            ``index.html``), checked before a browser opens it; ``None``:
            not known.
        page_hint: what to tell a user whose page folder is missing or
            empty (how the backend's project ships it).
        spec: how :func:`~leaklab.targets.resolve_target` made it (JSON-ready
            arguments), so another process can make it again; ``None`` for a
            target made by hand.
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
    roles: Roles = Roles()
    release_s: float | None = None
    page_dir: Path | None = None
    page_hint: str = ""
    spec: Mapping[str, Any] | None = None

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
