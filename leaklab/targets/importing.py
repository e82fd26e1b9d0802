"""Helpers to import a user's app without touching its tree: sys.path,
bytecode off, errors that name the module and the line that failed."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import traceback
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .base import AttachError, UnknownTargetError, import_object

logger = logging.getLogger("leaklab.targets")


def fault_set(faults: Any) -> frozenset[str]:
    items = faults.split(",") if isinstance(faults, str) else [str(f) for f in faults or ()]
    return frozenset(f.strip() for f in items if f.strip()) - {"none"}


def existing_dir(path: str | os.PathLike[str] | None, what: str) -> Path:
    if path is None or os.fspath(path) == "":
        raise AttachError(f"{what}: no app dir given (--app-dir DIR on the command line, app_dir= in Python)")
    p = Path(path).expanduser()
    if not p.exists():
        raise AttachError(f"{what}: app dir {p} does not exist")
    if not p.is_dir():
        raise AttachError(f"{what}: app dir {p} is not a directory")
    return p.resolve()


def prepend_sys_path(*entries: Path) -> None:
    for entry in reversed(entries):
        text = str(entry)
        if text in sys.path:
            sys.path.remove(text)
        sys.path.insert(0, text)
    importlib.invalidate_caches()


def is_under(path: str | None, folder: Path) -> bool:
    if not path:
        return False
    try:
        Path(path).resolve().relative_to(folder)
    except ValueError:
        return False
    return True


def purge_package(top: str) -> None:
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def describe_error(exc: BaseException, folder: Path) -> str:
    """``Type: message (at file:line)``, the place being the deepest frame in ``folder``."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}"
    else:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if is_under(frame.filename, folder):
                where = f"{frame.filename}:{frame.lineno}"
                break
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    text = f"{type(exc).__name__}: {exc}"
    if missing and repr(missing) not in text:
        text += f" (module {missing!r})"
    return text + (f" (at {where})" if where else "")


@contextlib.contextmanager
def no_bytecode() -> Iterator[None]:
    # Importing must not write __pycache__ folders into the user's tree.
    old = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = old


def import_module(name: str, folder: Path, what: str) -> types.ModuleType:
    try:
        with no_bytecode():
            return importlib.import_module(name)
    except Exception as exc:  # an app's import can fail with anything
        raise AttachError(f"{what}: cannot import {name!r} from {folder}: {describe_error(exc, folder)}") from exc


def find_class_in(package: str, name: str) -> str | None:
    """``module:Name`` of a class called ``name`` defined in ``package`` (loaded modules)."""
    for module_name, module in sorted(sys.modules.items()):
        if module is None or not (module_name == package or module_name.startswith(package + ".")):
            continue
        obj = vars(module).get(name)
        if isinstance(obj, type) and obj.__module__ == module_name:
            return f"{module_name}:{name}"
    return None


def resolve_watch(watch: Mapping[str, str] | None, package: str, what: str) -> dict[str, str]:
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
            found = find_class_in(package, path) if package else None
            if found is None:
                logger.warning(
                    "%s: no class %r loaded in package %r yet; it is looked up again at session start "
                    "(give 'module:Qualname' to be sure)", what, path, package,
                )
            out[name] = found or path
    return out


def check_methods(methods: Mapping[str, str], what: str, kind: str) -> None:
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
