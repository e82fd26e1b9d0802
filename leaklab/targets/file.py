"""Target files: a TOML or YAML file naming the app, what to watch and where.

``data/targets/reference.toml`` is the reference backend written that way.
Nothing in a target file is evaluated as Python code: expressions are
attribute chains (``app.state.handler``) or import paths.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._compat import chdir, tomllib
from .base import AttachError, Roles, Target, UnknownTargetError, import_object, is_asgi_app
from .importing import (
    check_methods,
    existing_dir,
    fault_set,
    import_module,
    prepend_sys_path,
    resolve_watch,
)

TARGET_FILE_SUFFIXES = (".toml", ".yaml", ".yml")

#: Keys a target file may have (``app`` is required).
TARGET_FILE_KEYS = (
    "app", "app_dir", "ws_path", "proxy_path", "characters", "expected_growth", "uvicorn_options",
    "faults", "options", "watch", "roots", "resources", "lifecycle", "timed", "roles", "page_dir",
)


def is_target_file(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names a target file (by its suffix; it may not exist)."""
    return str(spec).lower().endswith(TARGET_FILE_SUFFIXES)


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


def read_target_file(path: Path) -> dict[str, Any]:
    """A target file's table, checked: it parses, its keys are known, ``app``
    is an import path; an :class:`AttachError` that says what is wrong otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AttachError(f"cannot read target file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
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
        page_dir = "frontend"              # the folder its web page is served from
                                           # (--client browser checks it first)
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
        [roles]     session_type = "ServiceContext"                 # see leaklab.targets.Roles
                    connections = "handler.client_connections"
                    history = ["sqlite", "history_db"]

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
    data = read_target_file(file)
    what = f"target file {file}"

    folder: Path | None = None
    if app_dir is not None:
        folder = existing_dir(app_dir, what)
    elif data.get("app_dir") is not None:
        if not isinstance(data["app_dir"], str):
            raise AttachError(f"{what}: 'app_dir' must be a string")
        folder = existing_dir(file.parent / data["app_dir"], what)
    base_dir = folder or file.parent
    if folder is not None:
        prepend_sys_path(folder)

    app_path = data["app"]
    module_name = app_path.partition(":")[0]
    with chdir(folder) if folder else contextlib.nullcontext():
        import_module(module_name, base_dir, f"{what}: app {app_path!r}")
        try:
            app_obj = import_object(app_path)
        except UnknownTargetError as exc:
            raise AttachError(f"{what}: app {app_path!r}: {exc}") from None
    package = module_name.split(".")[0]

    wanted_faults = fault_set(data.get("faults")) if faults is None else fault_set(faults)
    opts = {**_table(data, "options", file), **dict(options or {})}
    wants: set[str] = set()
    if callable(app_obj) and not is_asgi_app(app_obj):
        try:
            wants = set(inspect.signature(app_obj).parameters)
        except (TypeError, ValueError):
            wants = set()
    if wanted_faults and "faults" not in wants:
        raise AttachError(f"{what}: app {app_path!r} takes no 'faults' argument, but faults {sorted(wanted_faults)} were given")
    if opts and "options" not in wants:
        raise AttachError(f"{what}: app {app_path!r} takes no 'options' argument, but options {sorted(opts)} were given")

    def make_app() -> Any:
        if not callable(app_obj) or is_asgi_app(app_obj):
            return app_obj
        kwargs: dict[str, Any] = {}
        if "faults" in wants:
            kwargs["faults"] = sorted(wanted_faults)
        if "options" in wants:
            kwargs["options"] = dict(opts)
        # Only the build runs in app_dir: paths the app opens later, at run
        # time, resolve against the caller's current directory.
        with chdir(folder) if folder else contextlib.nullcontext():
            return app_obj(**kwargs)

    watched = resolve_watch({**(_table(data, "watch", file) or {"ServiceContext": "ServiceContext"}), **dict(watch or {})},
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
    check_methods(lifecycle, what, "lifecycle")
    timed = {str(k): str(v) for k, v in _table(data, "timed", file).items()}
    check_methods(timed, what, "timed")

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
    page_dir = data.get("page_dir")
    if page_dir is not None and not isinstance(page_dir, str):
        raise AttachError(f"{what}: 'page_dir' must be a folder (a string), relative to the app's folder")

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
        faults=wanted_faults,
        roles=Roles.from_mapping(_table(data, "roles", file), f"{what}: roles"),
        page_dir=base_dir / page_dir if page_dir is not None else None,
    )


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
