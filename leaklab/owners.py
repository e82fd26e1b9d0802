"""Whose code a module or file is: yours, a library's (with its version),
Python's own, or leaklab's.

The one rule both the retention chains (a chain's root and its trigger) and
the loop sampler (a function's time, a stall's code) use. A module's owner is
decided by where its file is: the standard library's folders, an installed
distribution (``importlib.metadata``, with its version), leaklab's own
folder, or anything else: the user's code (an app folder, an editable
checkout). leaklab's reference backend is the user's code here, installed
from a wheel or not.

    owner_of   a module name or a file -> Owner(kind, name)
    label_of   the same as one label: "yours" | "library <dist> <version>" |
               "stdlib" | "leaklab" | "unknown"
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
import sysconfig

__all__ = ["KINDS", "Owner", "label_of", "owner_of"]

#: Every owner kind.
KINDS = ("yours", "library", "stdlib", "leaklab", "unknown")

_STDLIB = tuple(os.path.normcase(os.path.realpath(p)) + os.sep for p in {
    sysconfig.get_paths().get("stdlib", ""), sysconfig.get_paths().get("platstdlib", "")} if p)
_SITE = tuple(os.path.normcase(os.path.realpath(p)) + os.sep for p in {
    sysconfig.get_paths().get("purelib", ""), sysconfig.get_paths().get("platlib", "")} if p)
_LEAKLAB = os.path.normcase(os.path.realpath(os.path.dirname(__file__))) + os.sep
#: leaklab's folders that are the user's code here (the reference backend)
_LEAKLAB_YOURS = tuple(_LEAKLAB + d + os.sep for d in ("backend",))
_YOURS_MODULES = ("leaklab.backend",)


class Owner(tuple):
    """``(kind, name)``: kind one of :data:`KINDS`; name the module (yours,
    leaklab), the top package (stdlib) or ``"<dist> <version>"`` (library)."""

    __slots__ = ()

    def __new__(cls, kind: str, name: str = "") -> Owner:
        return super().__new__(cls, (kind, name))

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def name(self) -> str:
        return self[1]

    @property
    def label(self) -> str:
        """``"library anyio 4.12.0"`` for a library, else the kind."""
        return f"library {self.name}" if self.kind == "library" and self.name else self.kind


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    try:
        return dict(importlib.metadata.packages_distributions())
    except Exception:
        return {}


@functools.lru_cache(maxsize=256)
def _dist_version(top: str) -> str:
    """``"anyio 4.12.0"``: the distribution that installs package ``top``."""
    dist = (_distributions().get(top) or [top])[0]
    try:
        return f"{dist} {importlib.metadata.version(dist)}"
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return f"{dist} ?"


def _is_module_name(text: str) -> bool:
    return not (text.endswith((".py", ".pyc", ".pyw", ">")) or os.sep in text or "/" in text)


@functools.lru_cache(maxsize=4096)
def owner_of(module_or_file: str) -> Owner:
    """The owner of a module (``"anyio._core"``) or a file (a frame's
    ``co_filename``)."""
    if not module_or_file:
        return Owner("unknown")
    path = module_or_file
    top = ""
    if _is_module_name(module_or_file):
        module = module_or_file
        top = module.split(".")[0]
        if top == "leaklab":
            yours = any(module == m or module.startswith(m + ".") for m in _YOURS_MODULES)
            return Owner("yours" if yours else "leaklab", module)
        if top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ()):
            return Owner("stdlib", top)
        mod = sys.modules.get(module) or sys.modules.get(top)
        path = getattr(mod, "__file__", None) or ""
    if path.startswith("<frozen"):
        return Owner("stdlib", top or path)
    if not path or path.startswith("<"):
        return Owner("unknown", module_or_file)
    real = os.path.normcase(os.path.realpath(path))
    if real.startswith(_LEAKLAB):
        return Owner("yours" if real.startswith(_LEAKLAB_YOURS) else "leaklab", module_or_file)
    if real.startswith(_SITE):
        if not top:
            top = real[len(next(s for s in _SITE if real.startswith(s))):].split(os.sep)[0].removesuffix(".py")
        return Owner("library", _dist_version(top))
    if real.startswith(_STDLIB):
        return Owner("stdlib", top or os.path.basename(real).removesuffix(".py"))
    return Owner("yours", module_or_file)


def label_of(module_or_file: str) -> str:
    """:func:`owner_of` as one label (:attr:`Owner.label`)."""
    return owner_of(module_or_file).label
