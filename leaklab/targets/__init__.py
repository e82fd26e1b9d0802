"""Targets: how to start a backend in-process, and what to watch in it.

    base        the Target record, import helpers, errors
    reference   the embedded reference backend (``leaklab/backend``)
    importpath  any ``pkg.module:factory``
    file        a target file (TOML/YAML) naming app, roots, resources...
    olv/        an Open-LLM-VTuber-style app folder, built as it builds itself

:func:`resolve_target` is the one way every entry point (``LeakSession``,
the checklist, the guard, the CLI, the notebooks, the report) gets a target.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from .base import AttachError, Target, UnknownTargetError, find_class, import_object
from .file import TARGET_FILE_KEYS, is_target_file, target_from_file
from .importpath import generic_target
from .reference import reference_target

__all__ = [
    "PRESETS",
    "TARGET_FILE_KEYS",
    "AttachError",
    "Target",
    "UnknownTargetError",
    "find_class",
    "import_object",
    "is_target_file",
    "resolve_target",
]

#: Target names that are not import paths or files.
PRESETS = ("reference", "olv")


def resolve_target(
    target: Target | str | os.PathLike[str] | None = "reference",
    *,
    app_dir: str | os.PathLike[str] | None = None,
    target_file: str | os.PathLike[str] | None = None,
    faults: Any = None,
    options: Mapping[str, Any] | None = None,
    watch: Mapping[str, str] | None = None,
) -> Target:
    """The target named by ``target`` (or ``target_file``), ready to start.

    Args:
        target: a :class:`Target` (returned as is, with ``watch`` added),
            ``"reference"``, ``"olv"`` (needs ``app_dir``), the path of a
            target file (``.toml``/``.yaml``/``.yml``), or an import path
            ``"package.module:factory"``.
        app_dir: the app folder for ``"olv"``; for a target file it overrides
            the file's ``app_dir``.
        target_file: a target file; same as passing it as ``target``.
        faults: fault ids (the reference backend, or a factory that takes
            ``faults=``).
        options: backend options (the reference's, a factory's ``options=``,
            or the olv profile's).
        watch: more types to count, ``{name: "module:Qualname" or "ClassName"}``.

    Raises:
        UnknownTargetError: an unknown name, listing the valid ones.
        AttachError: (a subclass) a folder, file, module, class or key that
            is missing, naming it.
    """
    if target_file is not None:
        if target not in (None, "reference") and os.fspath(target) != os.fspath(target_file):
            raise UnknownTargetError(f"give a target or a target file, not both ({target!r} and {os.fspath(target_file)!r})")
        target = target_file
    if target is None:
        target = "reference"
    if isinstance(target, Target):
        if app_dir is not None:
            raise UnknownTargetError("app_dir goes with the target name 'olv' or a target file, not a Target")
        return _with_watch(target, watch)
    name = os.fspath(target)
    made = _resolve_name(name, app_dir=app_dir, faults=faults, options=options, watch=watch)
    spec = {
        "target": name if not is_target_file(name) else None,
        "target_file": str(Path(name).expanduser().resolve()) if is_target_file(name) else None,
        "app_dir": str(Path(app_dir).expanduser().resolve()) if app_dir is not None else None,
        "faults": sorted(made.faults), "options": _plain(options), "watch": dict(watch or {}),
    }
    return dataclasses.replace(made, spec=spec)


def _plain(options: Mapping[str, Any] | None) -> dict[str, Any]:
    out = {}
    for key, value in (options or {}).items():
        out[str(key)] = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
    return out


def _resolve_name(name: str, *, app_dir: Any, faults: Any, options: Any, watch: Any) -> Target:
    if name == "olv":
        from .olv import olv_target

        return olv_target(app_dir, faults=faults, options=options, watch=watch)
    if is_target_file(name):
        return target_from_file(name, app_dir=app_dir, faults=faults, options=options, watch=watch)
    if app_dir is not None:
        raise UnknownTargetError(f"app_dir goes with --target olv or a target file, not with {name!r}")
    if name == "reference":
        return _with_watch(reference_target(faults, options), watch)
    if ":" in name:
        return generic_target(name, faults, options, watch)
    raise UnknownTargetError(
        f"unknown target {name!r}; valid: reference, olv (with an app dir), a target file (.toml/.yaml), "
        "or an import path 'package.module:factory'"
    )


def _with_watch(target: Target, watch: Mapping[str, str] | None) -> Target:
    missing = {k: v for k, v in (watch or {}).items() if k not in target.watched_types}
    if not missing:
        return target
    spec = {**target.spec, "watch": {**(target.spec.get("watch") or {}), **missing}} if target.spec else None
    return dataclasses.replace(target, watched_types={**target.watched_types, **missing}, spec=spec)
