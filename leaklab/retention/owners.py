"""Whose code holds a chain's hop: yours, a library's, or Python's own.

A chain whose root is inside a third-party package (an installed
distribution: anyio, mcp, uvicorn, websockets...) is a **library leak**:
something the user can't fix in their code, only work around or report —
what LeakCanary labels apart on the JVM. Its *trigger* is the first hop in
the user's code below that root: what their code did that the library kept.

A module's owner is decided by where its file is: the standard library's
folders, an installed distribution (``importlib.metadata``, with its
version), or anything else — the user's code (an app folder, an editable
checkout; leaklab's reference backend is the user's code here).
"""

from __future__ import annotations

import asyncio
import os
import sys
import types
from typing import Any

from ..owners import Owner, owner_of

__all__ = ["Owner", "module_of", "owner_of_module"]

def owner_of_module(module: str) -> Owner:
    """The owner of a module, by where its file is; a library with its
    distribution and version (``Owner("library", "anyio 4.12.0")``):
    :func:`leaklab.owners.owner_of`."""
    return owner_of(module)


def module_of(obj: Any, module_dicts: dict[int, str] | None = None) -> str | None:
    """The module whose code holds ``obj``'s references: a module dict's
    module, a frame's or coroutine's globals, a task's coroutine, a
    function's or class's module, else its type's module."""
    tp = type(obj)
    if tp is dict and module_dicts and id(obj) in module_dicts:
        return module_dicts[id(obj)]
    if isinstance(obj, types.ModuleType):
        return getattr(obj, "__name__", None)
    if tp is types.FrameType:
        return obj.f_globals.get("__name__")
    if tp in (types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType):
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None) or getattr(obj, "ag_frame", None)
        if frame is not None:
            return frame.f_globals.get("__name__")
        code = getattr(obj, "cr_code", None) or getattr(obj, "gi_code", None) or getattr(obj, "ag_code", None)
        return _module_of_file(code.co_filename) if code is not None else None
    if isinstance(obj, asyncio.Task):
        try:
            return module_of(obj.get_coro(), module_dicts)
        except Exception:
            return None
    if tp is types.FunctionType or isinstance(obj, type):
        return getattr(obj, "__module__", None)
    return getattr(tp, "__module__", None)


def _module_of_file(filename: str) -> str | None:
    real = os.path.realpath(filename)
    for name, mod in list(sys.modules.items()):
        if getattr(mod, "__file__", None) and os.path.realpath(mod.__file__) == real:
            return name
    return None
