"""Attach your own backend: a target file, or the ``olv`` profile.

Besides the ``reference`` preset and a bare ``pkg.module:factory`` (see
:mod:`leaklab.target`), two ways to say what to run and what to watch:

* a **target file** (TOML or YAML) naming the ASGI app or factory, the
  WebSocket path, the watched types, the long-lived roots, the resource
  dirs, the lifecycle methods to count and the methods to time
  (``data/targets/reference.toml`` is the reference backend written that way);
* the **olv profile**: an Open-LLM-VTuber-style app directory, built the way
  it builds itself (``WebSocketServer(config)``, ``await initialize()``,
  paths relative to its folder), with its LLM and TTS pointed at leaklab's
  fake OpenAI-compatible server on 127.0.0.1. The user's files are never
  written: the app runs in a temporary working folder holding a patched copy
  of ``conf.yaml`` and ``characters/``, fresh ``cache/`` and
  ``chat_history/``, and links to everything else.

:func:`load_target` is the one entry point (CLI, notebooks,
:mod:`leaklab.testing`); it returns a plain :class:`~leaklab.target.Target`.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import logging
import os
import re
import shutil
import sys
import tempfile
import traceback
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .target import Target, UnknownTargetError, import_object

logger = logging.getLogger(__name__)

__all__ = [
    "OLV_PROFILE",
    "TARGET_FILE_KEYS",
    "AttachError",
    "OlvAttachment",
    "find_ws_handler",
    "is_target_file",
    "load_target",
    "olv_roots",
    "olv_target",
    "patch_olv_config",
    "startup_error",
    "target_from_file",
]

OLV_PROFILE = "olv"
TARGET_FILE_SUFFIXES = (".toml", ".yaml", ".yml")

#: Keys a target file may have (``app`` is required).
TARGET_FILE_KEYS = (
    "app", "app_dir", "ws_path", "proxy_path", "characters", "expected_growth", "uvicorn_options",
    "faults", "options", "watch", "roots", "resources", "lifecycle", "timed",
)


class AttachError(UnknownTargetError):
    """A backend that cannot be attached: the message names the missing path,
    module, class or key. A ``ValueError`` (through ``UnknownTargetError``),
    so the CLI reports it as a usage error."""


def is_target_file(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names a target file (by its suffix; it may not exist)."""
    return str(spec).lower().endswith(TARGET_FILE_SUFFIXES)


def load_target(
    spec: str | os.PathLike[str],
    *,
    app_dir: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
) -> Target:
    """The target for the ``olv`` profile or a target file.

    Args:
        spec: ``"olv"`` or the path of a ``.toml`` / ``.yaml`` / ``.yml`` file.
        app_dir: the app folder (required for ``olv``; for a target file it
            overrides the file's ``app_dir``).
        faults: fault ids, passed to a target file's factory when it takes
            ``faults``; the ``olv`` profile takes none.
        options: for a target file, merged over its ``[options]`` and passed
            to the factory; for ``olv``, the profile's options (see
            :func:`olv_target`).
        watch: more types to count, ``{name: "module:Qualname" or "ClassName"}``.

    Returns:
        A :class:`~leaklab.target.Target`.

    Raises:
        AttachError: naming what is missing (folder, file, module, class, key).
    """
    text = os.fspath(spec)
    if text == OLV_PROFILE:
        return olv_target(app_dir, faults=faults, options=options, watch=watch)
    if is_target_file(text):
        return target_from_file(text, app_dir=app_dir, faults=faults, options=options, watch=watch)
    raise AttachError(
        f"{text!r} is neither the {OLV_PROFILE!r} profile nor a target file ({', '.join(TARGET_FILE_SUFFIXES)})"
    )


# -- shared helpers -------------------------------------------------------------


def _fault_set(faults: Any) -> frozenset[str]:
    items = faults.split(",") if isinstance(faults, str) else [str(f) for f in faults or ()]
    return frozenset(f.strip() for f in items if f.strip()) - {"none"}


def _existing_dir(path: str | os.PathLike[str] | None, what: str) -> Path:
    if path is None or os.fspath(path) == "":
        raise AttachError(f"{what}: no app dir given (--app-dir PATH)")
    p = Path(path).expanduser()
    if not p.exists():
        raise AttachError(f"{what}: app dir {p} does not exist")
    if not p.is_dir():
        raise AttachError(f"{what}: app dir {p} is not a directory")
    return p.resolve()


def _prepend_sys_path(*entries: Path) -> None:
    for entry in reversed(entries):
        text = str(entry)
        if text in sys.path:
            sys.path.remove(text)
        sys.path.insert(0, text)
    importlib.invalidate_caches()


def _is_under(path: str | None, folder: Path) -> bool:
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def _purge_package(top: str) -> None:
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def _describe_error(exc: BaseException, folder: Path) -> str:
    """``Type: message (at file:line)``, the place being the deepest frame in ``folder``."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}"
    else:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if _is_under(frame.filename, folder):
                where = f"{frame.filename}:{frame.lineno}"
                break
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    text = f"{type(exc).__name__}: {exc}"
    if missing and repr(missing) not in text:
        text += f" (module {missing!r})"
    return text + (f" (at {where})" if where else "")


@contextlib.contextmanager
def _no_bytecode() -> Iterator[None]:
    # Importing must not write __pycache__ folders into the user's tree.
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = old


def _import_module(name: str, folder: Path, what: str) -> types.ModuleType:
    try:
        with _no_bytecode():
            return importlib.import_module(name)
    except Exception as exc:  # an app's import can fail with anything
        raise AttachError(f"{what}: cannot import {name!r} from {folder}: {_describe_error(exc, folder)}") from exc


def _find_class_in(package: str, name: str) -> str | None:
    """``module:Name`` of a class called ``name`` defined in ``package`` (loaded modules)."""
    for module_name, module in sorted(sys.modules.items()):
        if module is None or not (module_name == package or module_name.startswith(package + ".")):
            continue
        obj = vars(module).get(name)
        if isinstance(obj, type) and obj.__module__ == module_name:
            return f"{module_name}:{name}"
    return None


def _resolve_watch(watch: Mapping[str, str] | None, package: str, what: str) -> dict[str, str]:
    """Full ``module:Qualname`` paths where they can be found now; bare names
    that are not loaded yet are kept (the session looks again at start)."""
    out: dict[str, str] = {}
    for name, path in (watch or {}).items():
        if ":" in path:
            try:
                obj = import_object(path)
            except UnknownTargetError as exc:
                raise AttachError(f"{what}: watched type {name!r}: {exc}") from None
            if not isinstance(obj, type):
                raise AttachError(f"{what}: watched type {name!r}: {path!r} is not a class")
            out[name] = path
        else:
            # Only in the app's own package: a class of the same name elsewhere
            # (leaklab's reference backend has a ServiceContext too) is not it.
            found = _find_class_in(package, path) if package else None
            if found is None:
                logger.warning(
                    "%s: no class %r loaded in package %r yet; it is looked up again at session start "
                    "(give 'module:Qualname' to be sure)", what, path, package,
                )
            out[name] = found or path
    return out


def _check_methods(methods: Mapping[str, str], what: str, kind: str) -> None:
    for label, path in methods.items():
        owner_path, _, method = path.rpartition(".")
        if ":" not in owner_path or not method:
            raise AttachError(f"{what}: {kind} {label!r}: {path!r} is not of the form 'package.module:Class.method'")
        try:
            owner = import_object(owner_path)
        except UnknownTargetError as exc:
            raise AttachError(f"{what}: {kind} {label!r}: {exc}") from None
        if not callable(getattr(owner, method, None)):
            raise AttachError(f"{what}: {kind} {label!r}: {owner_path} has no method {method!r}")


# -- target files ---------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _dotted(text: str) -> bool:
    return bool(text) and all(_IDENT.match(part) for part in text.split("."))


def _compile_expr(expr: Any, where: str) -> Callable[[Any], Any]:
    """``app.state.handler`` (attributes of the app), ``package.module:attr.chain``
    or ``package.module`` (the module) -> ``app -> object``. Nothing is evaluated
    as Python code."""
    if not isinstance(expr, str) or not expr.strip():
        raise AttachError(f"{where}: expected an expression string like 'app.state.handler', got {expr!r}")
    expr = expr.strip()
    if expr == "app" or expr.startswith("app."):
        parts = expr.split(".")[1:]
        if not all(_IDENT.match(p) for p in parts):
            raise AttachError(f"{where}: {expr!r} is not an attribute chain like 'app.state.handler'")

        def from_app(app: Any) -> Any:
            obj = app
            for part in parts:
                try:
                    obj = getattr(obj, part)
                except AttributeError:
                    raise AttachError(f"{where}: {expr!r}: {type(obj).__name__} has no attribute {part!r}") from None
            return obj

        return from_app
    module_name, sep, qualname = expr.partition(":")
    if not _dotted(module_name) or (sep and not _dotted(qualname)):
        raise AttachError(f"{where}: {expr!r} is not 'app.attr...', 'package.module:attr' or 'package.module'")

    def from_import(app: Any) -> Any:
        try:
            return import_object(expr) if sep else importlib.import_module(module_name)
        except (UnknownTargetError, ImportError) as exc:
            raise AttachError(f"{where}: {exc}") from None

    return from_import


def _read_target_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AttachError(f"cannot read target file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(raw.decode("utf-8"))
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as exc:  # TOMLDecodeError, YAMLError, UnicodeDecodeError
        raise AttachError(f"target file {path} does not parse: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise AttachError(f"target file {path}: expected a table/mapping at the top level")
    unknown = sorted(set(data) - set(TARGET_FILE_KEYS))
    if unknown:
        raise AttachError(f"target file {path}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(TARGET_FILE_KEYS)}")
    if not isinstance(data.get("app"), str) or ":" not in data["app"]:
        raise AttachError(f"target file {path}: 'app' must be an import path 'package.module:app_or_factory'")
    return data


def _table(data: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise AttachError(f"target file {path}: [{key}] must be a table/mapping")
    return dict(value)


def _str_list(data: Mapping[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AttachError(f"target file {path}: {key!r} must be a list of strings")
    return tuple(value)


def target_from_file(
    path: str | os.PathLike[str],
    *,
    app_dir: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
) -> Target:
    """A target described by a TOML or YAML file.

    Keys (only ``app`` is required)::

        app = "pkg.module:create_app"      # an ASGI app, or a factory called with
                                           # faults= / options= when it takes them
        app_dir = "."                      # put on sys.path; the current directory
                                           # while the app is imported and built
        ws_path = "/client-ws"
        proxy_path = "/proxy-ws"
        characters = ["a.yaml", "b.yaml"]  # what switch-config names, in turn
        expected_growth = ["db_rows"]      # metrics that grow by design
        uvicorn_options = "app.state.uvicorn_options"   # or a table
        faults = "C8"                      # defaults, overridden by the caller
        [options]   heavy_init_s = 2
        [watch]     ServiceContext = "pkg.ctx:ServiceContext"   # or "ServiceContext"
        [roots]     handler = "app.state.handler"               # or "pkg.mod:obj", "pkg.mod"
        [resources] cache_dir = "app.state.cache_dir"           # or { path = "cache" }
                    history_db = "app.state.history_db"
        [lifecycle] "ServiceContext.close" = "pkg.ctx:ServiceContext.close"
        [timed]     llm = "pkg.agent:Agent._call_llm"

    ``lifecycle`` may also be a list of ``"Class.method"`` whose class is a
    ``[watch]`` name. Expressions are attribute chains, never evaluated as code.

    Raises:
        AttachError: the file is missing or malformed, or names a module,
            class, method or folder that does not exist.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise AttachError(f"target file {file} does not exist")
    file = file.resolve()
    data = _read_target_file(file)
    what = f"target file {file}"

    folder: Path | None = None
    if app_dir is not None:
        folder = _existing_dir(app_dir, what)
    elif data.get("app_dir") is not None:
        if not isinstance(data["app_dir"], str):
            raise AttachError(f"{what}: 'app_dir' must be a string")
        folder = _existing_dir(file.parent / data["app_dir"], what)
    base_dir = folder or file.parent
    if folder is not None:
        _prepend_sys_path(folder)

    app_path = data["app"]
    module_name = app_path.partition(":")[0]
    with contextlib.chdir(folder) if folder else contextlib.nullcontext():
        _import_module(module_name, base_dir, f"{what}: app {app_path!r}")
        try:
            app_obj = import_object(app_path)
        except UnknownTargetError as exc:
            raise AttachError(f"{what}: app {app_path!r}: {exc}") from None
    package = module_name.split(".")[0]

    fault_set = _fault_set(data.get("faults")) if faults is None else _fault_set(faults)
    opts = {**_table(data, "options", file), **dict(options or {})}
    wants: set[str] = set()
    if callable(app_obj) and not _is_asgi_app(app_obj):
        try:
            wants = set(inspect.signature(app_obj).parameters)
        except (TypeError, ValueError):
            wants = set()
    if fault_set and "faults" not in wants:
        raise AttachError(f"{what}: app {app_path!r} takes no 'faults' argument, but faults {sorted(fault_set)} were given")
    if opts and "options" not in wants:
        raise AttachError(f"{what}: app {app_path!r} takes no 'options' argument, but options {sorted(opts)} were given")

    def make_app() -> Any:
        if not callable(app_obj) or _is_asgi_app(app_obj):
            return app_obj
        kwargs: dict[str, Any] = {}
        if "faults" in wants:
            kwargs["faults"] = sorted(fault_set)
        if "options" in wants:
            kwargs["options"] = dict(opts)
        # Only the build runs in app_dir: paths the app opens later, at run
        # time, resolve against the caller's current directory.
        with contextlib.chdir(folder) if folder else contextlib.nullcontext():
            return app_obj(**kwargs)

    watched = _resolve_watch({**(_table(data, "watch", file) or {"ServiceContext": "ServiceContext"}), **dict(watch or {})},
                             package, what)

    roots_src = _table(data, "roots", file)
    root_getters = {name: _compile_expr(expr, f"{what}: roots.{name}") for name, expr in roots_src.items()}
    for name, expr in roots_src.items():
        if ":" in expr or not (expr == "app" or expr.startswith("app.")):
            root_getters[name](None)  # imports now, so a typo fails here and not mid-run

    def roots(app: Any) -> dict[str, Any]:
        return {name: get(app) for name, get in root_getters.items()}

    res_getters: dict[str, Callable[[Any], Any]] = {}
    for name, spec in _table(data, "resources", file).items():
        if isinstance(spec, dict) and set(spec) == {"path"} and isinstance(spec["path"], str):
            fixed = (base_dir / spec["path"]).resolve()
            res_getters[name] = lambda app, fixed=fixed: fixed
        else:
            res_getters[name] = _compile_expr(spec, f"{what}: resources.{name}")

    def resources(app: Any) -> dict[str, Path | None]:
        out: dict[str, Path | None] = {}
        for name, get in res_getters.items():
            value = get(app)
            out[name] = Path(value) if value is not None else None
        return out

    lifecycle = _lifecycle_from(data.get("lifecycle", {}), watched, what)
    _check_methods(lifecycle, what, "lifecycle")
    timed = {str(k): str(v) for k, v in _table(data, "timed", file).items()}
    _check_methods(timed, what, "timed")

    uv = data.get("uvicorn_options", {})
    if isinstance(uv, dict):
        uv_fixed = dict(uv)
        uvicorn_options: Callable[[Any], dict[str, Any]] = lambda app: dict(uv_fixed)
    else:
        uv_get = _compile_expr(uv, f"{what}: uvicorn_options")
        uvicorn_options = lambda app: dict(uv_get(app) or {})

    for key in ("ws_path", "proxy_path"):
        if data.get(key) is not None and not (isinstance(data[key], str) and data[key].startswith("/")):
            raise AttachError(f"{what}: {key!r} must be a path starting with '/'")

    return Target(
        name=app_path,
        make_app=make_app,
        ws_path=data.get("ws_path", "/client-ws"),
        proxy_path=data.get("proxy_path"),
        watched_types=watched,
        roots=roots,
        resources=resources,
        lifecycle=lifecycle,
        timed=timed,
        uvicorn_options=uvicorn_options,
        expected_growth=_str_list(data, "expected_growth", file),
        characters=_str_list(data, "characters", file),
        options=opts,
        faults=fault_set,
    )


def _is_asgi_app(obj: Any) -> bool:
    return hasattr(obj, "router") or hasattr(obj, "routes")


def _lifecycle_from(spec: Any, watched: Mapping[str, str], what: str) -> dict[str, str]:
    if isinstance(spec, dict):
        return {str(k): str(v) for k, v in spec.items()}
    if not isinstance(spec, list):
        raise AttachError(f"{what}: 'lifecycle' must be a table or a list of 'Class.method'")
    out = {}
    for item in spec:
        if not isinstance(item, str) or "." not in item:
            raise AttachError(f"{what}: lifecycle entry {item!r} is not 'Class.method' or 'package.module:Class.method'")
        if ":" in item:
            out[item.partition(":")[2]] = item
            continue
        cls, _, method = item.rpartition(".")
        if cls not in watched or ":" not in watched[cls]:
            raise AttachError(f"{what}: lifecycle {item!r}: {cls!r} is not a [watch] type that could be found")
        out[item] = f"{watched[cls]}.{method}"
    return out


# -- the olv profile ------------------------------------------------------------

OLV_PACKAGE = "open_llm_vtuber"
#: Types the profile watches, found by class name in the app's package.
OLV_WATCH = ("ServiceContext", "BasicMemoryAgent", "MCPClient")
#: Lifecycle methods counted against ended sessions: class name -> method.
OLV_LIFECYCLE = (("ServiceContext", "close"), ("MCPClient", "aclose"), ("MessageHandler", "cleanup_client"))
#: Modules imported up front (when their file exists) so the classes are loaded.
OLV_MODULES = (
    "server", "routes", "websocket_handler", "service_context", "message_handler", "config_manager",
    "agent.agents.basic_memory_agent", "mcpp.mcp_client",
)
#: Folders a run writes into: fresh and empty in the temporary working folder.
OLV_WRITABLE = ("cache", "chat_history", "logs")
_OLV_SKIP = {".git", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_OLV_OPTIONS: dict[str, Any] = {
    "cwd": "session",
    "package": None,
    "conf": "conf.yaml",
    "fake_sentences": 2,
    "fake_latency_per_kchar_s": 0.02,
}
FAKE_API_KEY = "leaklab-fake-key"
FAKE_TTS = {"model": "fake-tts", "voice": "alloy", "file_extension": "wav"}
_URL_KEYS = ("base_url", "api_base")
_KEY_KEYS = ("api_key", "llm_api_key")


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
    if out["package"] in ("", "none", "None"):
        out["package"] = None
    return out


def _olv_layout(app_dir: Path, package: str | None) -> tuple[Path, str]:
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


def _import_olv_package(app_dir: Path, entry: Path, package: str) -> types.ModuleType:
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
        with contextlib.chdir(app_dir):
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


def _set_fake(d: dict[str, Any], base_url: str) -> None:
    for key in _URL_KEYS:
        if key in d:
            d[key] = base_url
    for key in _KEY_KEYS:
        if key in d:
            d[key] = FAKE_API_KEY


def _walk_dicts(obj: Any) -> Iterator[dict[str, Any]]:
    if isinstance(obj, dict):
        yield obj
        for value in obj.values():
            yield from _walk_dicts(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _walk_dicts(value)


def _patch_character(character: dict[str, Any], base_url: str, *, complete: bool) -> None:
    from .backend.fake_openai import FAKE_MODEL_ID

    # Every endpoint and key under the character goes to the fake first, so
    # no engine left as configured can reach a paid service with a real key.
    for d in _walk_dicts(character):
        _set_fake(d, base_url)
    agent = character.setdefault("agent_config", {}) if complete else character.get("agent_config")
    if isinstance(agent, dict):
        if complete or "conversation_agent_choice" in agent:
            agent["conversation_agent_choice"] = "basic_memory_agent"
        settings = agent.get("agent_settings")
        if complete:
            settings = agent.setdefault("agent_settings", {})
        if isinstance(settings, dict):
            basic = settings.setdefault("basic_memory_agent", {}) if complete else settings.get("basic_memory_agent")
            if isinstance(basic, dict) and (complete or "llm_provider" in basic):
                basic["llm_provider"] = "openai_compatible_llm"
        if complete:
            llms = agent.setdefault("llm_configs", {})
            llm = llms.get("openai_compatible_llm") if isinstance(llms.get("openai_compatible_llm"), dict) else {}
            llms["openai_compatible_llm"] = {
                **llm, "base_url": base_url, "llm_api_key": FAKE_API_KEY, "model": FAKE_MODEL_ID,
                "temperature": llm.get("temperature", 1.0),
            }
    tts = character.setdefault("tts_config", {}) if complete else character.get("tts_config")
    if isinstance(tts, dict):
        if complete or "tts_model" in tts:
            tts["tts_model"] = "openai_tts"
        if complete or isinstance(tts.get("openai_tts"), dict):
            old = tts.get("openai_tts") if isinstance(tts.get("openai_tts"), dict) else {}
            tts["openai_tts"] = {**old, **FAKE_TTS, "api_key": FAKE_API_KEY, "base_url": base_url}


def patch_olv_config(conf: Mapping[str, Any], base_url: str, *, character_only: bool = False) -> dict[str, Any]:
    """A copy of an Open-LLM-VTuber config whose LLM and TTS use ``base_url``.

    The agent becomes ``basic_memory_agent`` on ``openai_compatible_llm``
    (model ``fake-llm``), TTS becomes ``openai_tts``; every ``base_url`` /
    ``api_base`` under ``character_config`` is ``base_url`` and every
    ``api_key`` / ``llm_api_key`` a dummy. ASR and the rest are untouched.

    Args:
        conf: the parsed ``conf.yaml`` (or a character file).
        base_url: the fake's ``http://127.0.0.1:PORT/v1``.
        character_only: for a ``characters/*.yaml`` file, merged over
            ``conf.yaml`` on switch: only what it sets is redirected.
    """
    out = copy.deepcopy(dict(conf))
    character = out.get("character_config")
    if not isinstance(character, dict):
        if character_only:
            return out
        character = out["character_config"] = {}
    _patch_character(character, base_url, complete=not character_only)
    return out


def _dump_yaml(data: Any, path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _alts_dir(conf: Mapping[str, Any]) -> str:
    system = conf.get("system_config") if isinstance(conf.get("system_config"), dict) else {}
    return str(system.get("config_alts_dir") or "characters")


class OlvAttachment:
    """What the olv profile set up for one build of the app: the fake
    OpenAI-compatible server and the temporary working folder. Found on
    ``app.state.leaklab_olv``; :meth:`close` (idempotent) runs at the app's
    shutdown, or when the app is collected, or at interpreter exit.

    Attributes:
        app_dir: the user's folder (read, never written).
        workdir: the temporary working folder (``None`` before :meth:`prepare`).
        conf_path: the patched copy of ``conf.yaml``.
        base_url: the fake's ``http://127.0.0.1:PORT/v1``.
        fake: the :class:`~leaklab.backend.fake_openai.FakeOpenAIServer`.
    """

    def __init__(self, app_dir: Path, options: Mapping[str, Any]) -> None:
        from .backend.fake_openai import FakeOpenAIServer

        self.app_dir = app_dir
        self.cwd_mode: str = options["cwd"]
        self.conf_name: str = options["conf"]
        self.fake = FakeOpenAIServer(
            sentences=options["fake_sentences"], latency_per_kchar_s=options["fake_latency_per_kchar_s"]
        )
        self.workdir: Path | None = None
        self.conf_path: Path | None = None
        self.base_url: str | None = None
        self.closed = False
        self._saved_cwd: str | None = None
        self._saved_bytecode: bool | None = None

    @property
    def requests_served(self) -> int:
        """HTTP requests the fake LLM/TTS server received."""
        return self.fake.requests_served

    def prepare(self, conf: Mapping[str, Any]) -> Path:
        """Start the fake; build the working folder with the patched config.

        Returns:
            The patched ``conf.yaml``.
        """
        try:
            self.base_url = self.fake.start()
        except RuntimeError as exc:
            raise AttachError(f"olv profile: the fake OpenAI server did not start: {exc}") from None
        self.workdir = Path(tempfile.mkdtemp(prefix="leaklab-olv-"))
        conf = dict(conf)
        alts_src = (self.app_dir / _alts_dir(conf)).resolve()
        if alts_src.parent == self.app_dir:
            alts_name = alts_src.name
        else:
            # Not a plain sub-folder: the patched copy goes to a sub-folder of
            # the working folder, and the temporary config says so.
            alts_name = "leaklab-characters"
            conf["system_config"] = {**(conf.get("system_config") or {}), "config_alts_dir": alts_name}
        for entry in sorted(self.app_dir.iterdir()):
            if entry.name in _OLV_SKIP or entry.name in OLV_WRITABLE or entry.name == self.conf_name:
                continue
            if entry.name == alts_name:
                continue
            # Links, not copies: live2d-models can weigh hundreds of MB. The app
            # only reads these (a write through a link would reach the user's file).
            os.symlink(entry, self.workdir / entry.name, target_is_directory=entry.is_dir())
        for name in OLV_WRITABLE:
            (self.workdir / name).mkdir()
        self._copy_characters(alts_src, self.workdir / alts_name)
        self.conf_path = self.workdir / self.conf_name
        _dump_yaml(patch_olv_config(conf, self.base_url), self.conf_path)
        return self.conf_path

    def _copy_characters(self, src: Path, dst: Path) -> None:
        import yaml

        assert self.base_url is not None
        dst.mkdir(parents=True, exist_ok=True)
        if not src.is_dir():
            return
        for path in sorted(src.rglob("*")):
            target = dst / path.relative_to(src)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if path.suffix.lower() in (".yaml", ".yml"):
                try:
                    data = yaml.safe_load(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, yaml.YAMLError):
                    data = None
                if isinstance(data, dict):
                    _dump_yaml(patch_olv_config(data, self.base_url, character_only=True), target)
                    continue
            shutil.copyfile(path, target)

    def enter(self) -> None:
        """With ``cwd="session"``: make the working folder the current directory
        until :meth:`close` (the app opens ``cache/``, ``chat_history/``,
        ``model_dict.json`` ... relative to it at run time, as upstream does)."""
        if self.cwd_mode == "session" and self._saved_cwd is None and self.workdir is not None:
            self._saved_cwd = os.getcwd()
            os.chdir(self.workdir)
            # A module the app imports lazily must not leave __pycache__ in its tree.
            self._saved_bytecode = sys.dont_write_bytecode
            sys.dont_write_bytecode = True

    def build_dir(self) -> contextlib.AbstractContextManager[Any]:
        """The current directory for construction and ``initialize()``."""
        assert self.workdir is not None
        return contextlib.chdir(self.workdir)

    def close(self) -> None:
        """Restore the current directory, stop the fake, remove the working folder."""
        if self.closed:
            return
        self.closed = True
        if self._saved_bytecode is not None:
            sys.dont_write_bytecode, self._saved_bytecode = self._saved_bytecode, None
        if self._saved_cwd is not None:
            saved, self._saved_cwd = self._saved_cwd, None
            try:
                here = os.getcwd()
            except FileNotFoundError:
                here = None
            if here is None or (self.workdir is not None and Path(here) == self.workdir):
                os.chdir(saved)
            else:
                logger.warning("olv profile: the current directory moved to %s during the session; left there", here)
        try:
            self.fake.stop()
        finally:
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)


def _closure_and_globals(fn: Any) -> Iterator[tuple[str, Any]]:
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


def _iter_routes(app: Any, limit: int = 500) -> Iterator[Any]:
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


def find_ws_handler(app: Any, ws_path: str = "/client-ws") -> Any:
    """The ``WebSocketHandler`` of an upstream-style app, found in the closure or
    globals of its WebSocket endpoint (the route at ``ws_path`` first); ``None``
    if there is none."""
    routes = list(_iter_routes(app))
    routes.sort(key=lambda r: getattr(r, "path", None) != ws_path)
    for route in routes:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is None:
            continue
        for _, value in _closure_and_globals(endpoint):
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


def _read_conf(conf_file: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(conf_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AttachError(f"olv profile: cannot read {conf_file}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("character_config"), dict):
        raise AttachError(f"olv profile: {conf_file} has no character_config mapping")
    return data


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
            ``package`` (default ``open_llm_vtuber``), ``conf`` (default
            ``conf.yaml``), ``fake_sentences``, ``fake_latency_per_kchar_s``.
        watch: more types to count (``ClassName`` looked up in the app's
            package first, or ``module:Qualname``).

    Raises:
        AttachError: no such folder, no ``conf.yaml``, no package, an import
            error (naming the module and where it failed), no
            ``WebSocketServer``, no ``ServiceContext``; from ``make_app``: a
            ``WebSocketServer(config)`` that fails.
    """
    folder = _existing_dir(app_dir, "olv profile")
    what = f"olv profile ({folder})"
    if _fault_set(faults):
        raise AttachError(f"{what}: faults apply to the reference backend; your app runs as it is (got {sorted(_fault_set(faults))})")
    opts = _olv_options(options)
    conf_file = folder / opts["conf"]
    if not conf_file.is_file():
        raise AttachError(f"{what}: no {opts['conf']} in {folder}")
    conf = _read_conf(conf_file)
    entry, package = _olv_layout(folder, opts["package"])
    server_module = _import_olv_package(folder, entry, package)
    server_cls = getattr(server_module, "WebSocketServer", None)
    if not isinstance(server_cls, type):
        raise AttachError(f"{what}: {package}.server has no class WebSocketServer")
    config_manager = sys.modules.get(f"{package}.config_manager")
    read_yaml = getattr(config_manager, "read_yaml", None)
    validate_config = getattr(config_manager, "validate_config", None)

    watched: dict[str, str] = {}
    for name in OLV_WATCH:
        found = _find_class_in(package, name)
        if found is not None:
            watched[name] = found
        elif name == "ServiceContext":
            raise AttachError(f"{what}: no class ServiceContext in package {package}")
        else:
            logger.info("%s: no class %s in %s; not watched", what, name, package)
    watched.update(_resolve_watch(watch, package, what))

    system = conf.get("system_config") if isinstance(conf.get("system_config"), dict) else {}
    basic = (conf["character_config"].get("agent_config") or {}).get("agent_settings", {}).get("basic_memory_agent", {})
    lifecycle: dict[str, str] = {}
    for cls_name, method in OLV_LIFECYCLE:
        if cls_name == "MCPClient" and not (isinstance(basic, dict) and basic.get("use_mcpp")):
            continue  # no MCP client per session: nothing to close
        found = _find_class_in(package, cls_name)
        if found is not None and callable(getattr(import_object(found), method, None)):
            lifecycle[f"{cls_name}.{method}"] = f"{found}.{method}"

    alts = folder / _alts_dir(conf)
    characters = tuple(sorted(p.name for p in alts.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))) if alts.is_dir() else ()
    proxy_path = "/proxy-ws" if system.get("enable_proxy") else None
    ws_path = "/client-ws"

    def make_app() -> Any:
        attachment = OlvAttachment(folder, opts)
        try:
            conf_path = attachment.prepare(conf)
            with attachment.build_dir(), _no_bytecode():
                if callable(read_yaml) and callable(validate_config):
                    config = validate_config(read_yaml(str(conf_path)))
                else:
                    config = _read_conf(conf_path)
                server = server_cls(config)
        except AttachError:
            attachment.close()
            raise
        except Exception as exc:
            attachment.close()
            raise AttachError(
                f"{what}: WebSocketServer(config) failed: {_describe_error(exc, folder)}"
            ) from exc
        app = getattr(server, "app", None)
        router = getattr(app, "router", None)
        inner = getattr(router, "lifespan_context", None)
        if inner is None:
            attachment.close()
            raise AttachError(f"{what}: WebSocketServer.app is not a FastAPI/Starlette app (no router lifespan)")

        @contextlib.asynccontextmanager
        async def lifespan(asgi_app: Any) -> Any:
            try:
                attachment.enter()
                try:
                    with attachment.build_dir(), _no_bytecode():
                        await server.initialize()
                except Exception as exc:
                    error = AttachError(f"{what}: await WebSocketServer.initialize() failed: {_describe_error(exc, folder)}")
                    app.state.leaklab_startup_error = error
                    logger.error("%s", error)
                    raise error from exc
                if find_ws_handler(app, ws_path) is None:
                    logger.warning("%s: no WebSocketHandler found through the app's routes; its dicts are not watched", what)
                async with inner(asgi_app) as state:
                    yield state
            finally:
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
        uvicorn_options=lambda app: {},
        # One history file per session, by design (when the session measures
        # the chat_history_dir resource).
        expected_growth=("chat_history_files", "chat_history_bytes"),
        characters=characters,
        options={**opts, "app_dir": str(folder)},
        faults=frozenset(),
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

