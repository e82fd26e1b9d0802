"""The ``olv`` profile: an Open-LLM-VTuber-style app folder, built the way it
builds itself (``WebSocketServer(config)``, ``await initialize()``, paths
relative to its folder), with its LLM and TTS pointed at leaklab's fake
OpenAI-compatible server on 127.0.0.1. The user's files are never written.

Split along its seams: :mod:`.config` patches a copy of the config,
:mod:`.workdir` builds the temporary app folder and runs the fake,
:mod:`.discovery` imports the package and finds the handler and roots.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..base import AttachError, Roles, Target, import_object
from ..importing import (
    describe_error,
    existing_dir,
    fault_set,
    find_class_in,
    no_bytecode,
    resolve_watch,
)
from .config import alts_dir, missing_module_hint, read_conf
from .discovery import find_ws_handler, import_olv_package, olv_layout, olv_roots
from .engines import EngineStandIns, mcp_notes
from .workdir import OlvAttachment

logger = logging.getLogger("leaklab.targets.olv")

__all__ = ["OLV_PROFILE", "OlvAttachment", "find_ws_handler", "olv_roots", "olv_target", "startup_error"]

OLV_PROFILE = "olv"
#: Types the profile watches, found by class name in the app's package.
OLV_WATCH = ("ServiceContext", "BasicMemoryAgent", "MCPClient")
#: Lifecycle methods counted against ended sessions: class name -> method.
OLV_LIFECYCLE = (("ServiceContext", "close"), ("MCPClient", "aclose"), ("MessageHandler", "cleanup_client"))
_OLV_OPTIONS: dict[str, Any] = {
    "cwd": "session",
    "package": None,
    "conf": "conf.yaml",
    "data": "copy",
    "data_limit_mb": 512,
    "fake_sentences": 2,
    "fake_latency_per_kchar_s": 0.02,
}


def _olv_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(_OLV_OPTIONS)
    for key, value in (options or {}).items():
        if key not in out:
            raise AttachError(f"olv profile: unknown option {key!r}; valid: {', '.join(_OLV_OPTIONS)}")
        out[key] = value
    if out["cwd"] not in ("session", "build"):
        raise AttachError(f"olv profile: option cwd must be 'session' or 'build', not {out['cwd']!r}")
    try:
        out["fake_sentences"] = int(out["fake_sentences"])
        out["fake_latency_per_kchar_s"] = float(out["fake_latency_per_kchar_s"])
    except (TypeError, ValueError):
        raise AttachError("olv profile: fake_sentences must be an integer, fake_latency_per_kchar_s a number") from None
    if out["data"] not in ("copy", "empty"):
        raise AttachError(f"olv profile: option data must be 'copy' (your chat_history/ and cache/) or 'empty', "
                          f"not {out['data']!r}")
    try:
        out["data_limit_mb"] = int(out["data_limit_mb"])
    except (TypeError, ValueError):
        raise AttachError("olv profile: option data_limit_mb must be a whole number of MiB") from None
    if out["package"] in ("", "none", "None"):
        out["package"] = None
    return out


def olv_target(
    app_dir: str | os.PathLike[str] | None,
    *,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
) -> Target:
    """An Open-LLM-VTuber-style app folder, built as it builds itself.

    At load (here): the folder and its ``conf.yaml`` are checked, its package
    is imported (``src/open_llm_vtuber`` or ``open_llm_vtuber``; the folder and
    ``src`` are put on ``sys.path``) and the watched classes found by name.
    At each session start (``Target.make_app``): the fake OpenAI-compatible
    server starts, a temporary working folder gets a patched copy of the
    config (see :func:`patch_olv_config`) and of the characters, and
    ``WebSocketServer(config)`` is built there. At the app's start-up,
    ``await server.initialize()`` runs there too; at its shutdown the fake
    is stopped, the working folder removed and the directory restored.

    Args:
        app_dir: the app folder.
        faults: must be empty: the app runs as it is.
        options: ``cwd`` (``"session"``, default: the working folder is the
            current directory from start-up to shutdown, as the app expects at
            run time; ``"build"``: only while it is built and initialized, so
            paths it opens later resolve against the caller's directory),
            ``package`` (default: the one upstream-style server package
            found under ``src/`` or the folder, ``open_llm_vtuber`` or a
            fork's renamed one), ``conf`` (default ``conf.yaml``), ``data``
            (``"copy"``, default: the app's ``chat_history/`` and ``cache/``
            copied into the working folder, newest first, up to
            ``data_limit_mb``, default 512; ``"empty"``: a clean start),
            ``fake_sentences``, ``fake_latency_per_kchar_s``.
        watch: more types to count (``ClassName`` looked up in the app's
            package first, or ``module:Qualname``).

    Raises:
        AttachError: no such folder, no ``conf.yaml``, no package, an import
            error (naming the module and where it failed), no
            ``WebSocketServer``, no ``ServiceContext``; from ``make_app``: a
            ``WebSocketServer(config)`` that fails.
    """
    folder = existing_dir(app_dir, "olv profile")
    what = f"olv profile ({folder})"
    if fault_set(faults):
        raise AttachError(f"{what}: faults apply to the reference backend; your app runs as it is (got {sorted(fault_set(faults))})")
    opts = _olv_options(options)
    conf_file = folder / opts["conf"]
    if not conf_file.is_file():
        raise AttachError(f"{what}: no {opts['conf']} in {folder}")
    conf = read_conf(conf_file)
    entry, package, found_note = olv_layout(folder, opts["package"])
    server_module = import_olv_package(folder, entry, package)
    server_cls = getattr(server_module, "WebSocketServer", None)
    if not isinstance(server_cls, type):
        raise AttachError(f"{what}: {package}.server has no class WebSocketServer")
    config_manager = sys.modules.get(f"{package}.config_manager")
    read_yaml = getattr(config_manager, "read_yaml", None)
    validate_config = getattr(config_manager, "validate_config", None)

    watched: dict[str, str] = {}
    for name in OLV_WATCH:
        found = find_class_in(package, name)
        if found is not None:
            watched[name] = found
        elif name == "ServiceContext":
            raise AttachError(f"{what}: no class ServiceContext in package {package}")
        else:
            logger.info("%s: no class %s in %s; not watched", what, name, package)
    watched.update(resolve_watch(watch, package, what))

    basic = (conf["character_config"].get("agent_config") or {}).get("agent_settings", {}).get("basic_memory_agent", {})
    lifecycle: dict[str, str] = {}
    for cls_name, method in OLV_LIFECYCLE:
        if cls_name == "MCPClient" and not (isinstance(basic, dict) and basic.get("use_mcpp")):
            continue  # no MCP client per session: nothing to close
        found = find_class_in(package, cls_name)
        if found is not None and callable(getattr(import_object(found), method, None)):
            lifecycle[f"{cls_name}.{method}"] = f"{found}.{method}"

    alts = folder / alts_dir(conf)
    characters = tuple(sorted(p.name for p in alts.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))) if alts.is_dir() else ()
    # Declared either way: whether the route is mounted is measured on the
    # running app (the config's enable_proxy decides it, as upstream).
    proxy_path = "/proxy-ws"
    ws_path = "/client-ws"

    def make_app() -> Any:
        attachment = OlvAttachment(folder, opts)
        try:
            conf_path = attachment.prepare(conf)
            with attachment.build_dir(), no_bytecode():
                if callable(read_yaml) and callable(validate_config):
                    config = validate_config(read_yaml(str(conf_path)))
                else:
                    config = read_conf(conf_path)
                server = server_cls(config)
        except AttachError:
            attachment.close()
            raise
        except Exception as exc:
            attachment.close()
            raise AttachError(
                f"{what}: WebSocketServer(config) failed: {describe_error(exc, folder)}"
            ) from exc
        app = getattr(server, "app", None)
        router = getattr(app, "router", None)
        inner = getattr(router, "lifespan_context", None)
        if inner is None:
            attachment.close()
            raise AttachError(f"{what}: WebSocketServer.app is not a FastAPI/Starlette app (no router lifespan)")

        attachment.notes.extend(mcp_notes(folder, attachment.patched_conf))
        stand_ins = EngineStandIns(package, attachment.patched_conf, attachment.notes)

        @contextlib.asynccontextmanager
        async def lifespan(asgi_app: Any) -> Any:
            try:
                attachment.enter()
                stand_ins.install()
                try:
                    with attachment.build_dir(), no_bytecode():
                        await server.initialize()
                except Exception as exc:
                    hint = missing_module_hint(attachment.patched_conf, getattr(exc, "name", None)
                                               if isinstance(exc, ImportError) else None, opts["conf"])
                    error = AttachError(f"{what}: await WebSocketServer.initialize() failed: "
                                        f"{describe_error(exc, folder)}" + (f". {hint}" if hint else ""))
                    app.state.leaklab_startup_error = error
                    logger.error("%s", error)
                    raise error from exc
                if find_ws_handler(app, ws_path) is None:
                    logger.warning("%s: no WebSocketHandler found through the app's routes; its dicts are not watched", what)
                async with inner(asgi_app) as state:
                    yield state
                # The app shut down; what it left running is ended before
                # its working folder goes (the session's hook, when it runs one).
                before_close = getattr(app.state, "leaklab_before_close", None)
                if before_close is not None:
                    await before_close()
            finally:
                stand_ins.uninstall()
                attachment.close()

        router.lifespan_context = lifespan
        app.state.leaklab_olv = attachment
        # If the app is never started (or never shut down), the fake and the
        # folder still go when the app is collected, or at exit.
        weakref.finalize(app, attachment.close)
        return app

    return Target(
        name=f"{OLV_PROFILE}:{folder}",
        make_app=make_app,
        ws_path=ws_path,
        proxy_path=proxy_path,
        watched_types=watched,
        roots=lambda app: olv_roots(app, ws_path, package),
        resources=lambda app: _olv_resources(app),
        lifecycle=lifecycle,
        timed={},
        uvicorn_options=lambda app: getattr(getattr(app.state, "leaklab_olv", None), "uvicorn_options", dict)(),
        # One history file per session, by design (when the session measures
        # the chat_history_dir resource).
        expected_growth=("chat_history_files", "chat_history_bytes"),
        characters=characters,
        options={**opts, "app_dir": str(folder)},
        faults=frozenset(),
        # upstream serves frontend/ (a git submodule, Open-LLM-VTuber-Web) at /
        page_dir=folder / "frontend",
        page_hint="upstream ships frontend/ as a git submodule: run `git submodule update --init` in the app's folder",
        notes=lambda app: [*([found_note] if found_note else []),
                           *getattr(getattr(app.state, "leaklab_olv", None), "notes", [])],
        roles=Roles(
            session_type="ServiceContext",
            agent_type="BasicMemoryAgent" if "BasicMemoryAgent" in watched else None,
            mcp_client_type="MCPClient" if "MCPClient" in watched and "MCPClient.aclose" in lifecycle else None,
            connections="handler.client_connections",
            session_tasks="handler.current_conversation_tasks",
            shared_memory=("default_context.agent_engine._memory",),
            session_memory="agent_engine._memory",
            open_sessions="handler.client_contexts",
            shared_engines=("default_context.asr_engine", "default_context.tts_engine", "default_context.vad_engine"),
            tts_cache="cache_dir",
            history=("json_dir", "chat_history_dir"),
            session_close="ServiceContext.close" if "ServiceContext.close" in lifecycle else None,
            mcp_close="MCPClient.aclose" if "MCPClient.aclose" in lifecycle else None,
        ),
    )


def _olv_resources(app: Any) -> dict[str, Path | None]:
    attachment = getattr(getattr(app, "state", None), "leaklab_olv", None)
    workdir = getattr(attachment, "workdir", None)
    if workdir is None:
        return {}
    return {"cache_dir": workdir / "cache", "chat_history_dir": workdir / "chat_history"}


def startup_error(app: Any) -> AttachError | None:
    """The :class:`AttachError` an olv app's start-up failed with, if any
    (uvicorn reports a failed start-up only as an exit)."""
    return getattr(getattr(app, "state", None), "leaklab_startup_error", None)

