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
from ..importing import import_module, is_under, prepend_sys_path, purge_package

logger = logging.getLogger("leaklab.targets.olv")

OLV_PACKAGE = "open_llm_vtuber"
#: Modules imported up front (when their file exists) so the classes are loaded.
OLV_MODULES = (
    "server", "routes", "websocket_handler", "service_context", "message_handler", "config_manager",
    "agent.agents.basic_memory_agent", "mcpp.mcp_client",
)


#: Folders never searched for the app's package.
_NOT_PACKAGES = {"__pycache__", "node_modules", "frontend", "live2d-models", "tests", "test", "docs"}


def is_olv_package(folder: Path) -> bool:
    """Whether ``folder`` is an upstream-style server package: a
    ``server.py`` that defines a class, a ``websocket_handler.py`` beside it,
    and the ``/client-ws`` route mounted by one of its modules (read as text,
    nothing imported)."""
    server = folder / "server.py"
    if not (server.is_file() and (folder / "websocket_handler.py").is_file()):
        return False
    try:
        if "class " not in server.read_text(encoding="utf-8", errors="replace"):
            return False
        return any("/client-ws" in path.read_text(encoding="utf-8", errors="replace")
                   for path in folder.glob("*.py"))
    except OSError:
        return False


def find_olv_packages(app_dir: Path) -> list[tuple[Path, str]]:
    """Every upstream-style server package under ``src/`` or the app folder
    (top-level packages, and one level below them): ``(sys.path entry, dotted name)``."""
    out: list[tuple[Path, str]] = []
    for entry in (app_dir / "src", app_dir):
        if not entry.is_dir():
            continue
        for top in sorted(p for p in entry.iterdir() if p.is_dir() and p.name not in _NOT_PACKAGES
                          and not p.name.startswith(".") and p.name.isidentifier()):
            if entry == app_dir and top.name == "src":
                continue
            if is_olv_package(top):
                out.append((entry, top.name))
            elif (top / "__init__.py").is_file():
                out.extend((entry, f"{top.name}.{sub.name}") for sub in sorted(top.iterdir())
                           if sub.is_dir() and sub.name.isidentifier() and is_olv_package(sub))
    return out


def olv_layout(app_dir: Path, package: str | None) -> tuple[Path, str, str | None]:
    """``(sys.path entry, package name, note)``: the package named, else the
    one upstream-style server package found under ``src/`` or the folder
    (a fork may rename ``open_llm_vtuber``); the note says which was found.

    Raises:
        AttachError: the named package has no ``server.py``; none found
            (saying what was looked for); several found (listing them and
            the option that picks one).
    """
    if package:
        rel = Path(*package.split("."))
        for entry in (app_dir / "src", app_dir):
            if (entry / rel / "server.py").is_file():
                return entry, package, None
        raise AttachError(
            f"olv profile: no {package} package with a server.py in {app_dir} "
            f"(looked for src/{rel}/server.py and {rel}/server.py)"
        )
    found = find_olv_packages(app_dir)
    if len(found) == 1:
        entry, name = found[0]
        where = f"{entry.name}/{name.replace('.', '/')}" if entry != app_dir else name.replace(".", "/")
        note = None if name == OLV_PACKAGE else f"the app's package: {name} ({where}/, found by its server.py and /client-ws route)"
        return entry, name, note
    if found:
        names = ", ".join(name for _, name in found)
        raise AttachError(
            f"olv profile: several server packages in {app_dir}: {names}; pick one with "
            f"--option package=NAME (options={{'package': NAME}} in Python)"
        )
    raise AttachError(
        f"olv profile: no {OLV_PACKAGE} package (nor a renamed one) in {app_dir}: looked under src/ and the folder "
        f"for a package with a server.py defining the server class, a websocket_handler.py beside it and a module "
        f"mounting /client-ws (upstream: src/{OLV_PACKAGE}/server.py); name it with --option package=NAME"
    )


def import_olv_package(app_dir: Path, entry: Path, package: str) -> types.ModuleType:
    top = package.split(".")[0]
    loaded = sys.modules.get(top)
    if loaded is not None and not is_under(getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", [])), None), entry):
        # Another app of the same package name was attached before in this
        # process: its modules would shadow this one's.
        logger.info("olv profile: %s was imported from elsewhere; re-importing it from %s", top, entry)
        purge_package(top)
    paths = [entry] if entry == app_dir else [entry, app_dir]
    prepend_sys_path(*paths)
    what = f"olv profile ({app_dir})"
    try:
        with chdir(app_dir):
            server = import_module(f"{package}.server", app_dir, what)
            base = entry / Path(*package.split("."))
            for rel in OLV_MODULES[1:]:
                as_path = base / Path(*rel.split("."))
                if as_path.with_suffix(".py").is_file() or (as_path / "__init__.py").is_file():
                    import_module(f"{package}.{rel}", app_dir, what)
    except AttachError:
        purge_package(top)  # no half-imported package left behind
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


