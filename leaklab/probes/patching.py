"""A method replaced on its class by a wrapper, restorable exactly (what the
lifecycle and latency probes wrap)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MethodPatch", "restore_all"]


class MethodPatch:
    """``owner.<name>`` replaced by a wrapper; restorable exactly.

    Plain functions, ``staticmethod`` and ``classmethod`` are supported: the
    wrapper is re-wrapped in the same descriptor. A method the class inherits
    gets the wrapper in its own ``__dict__`` (removed again on restore), and
    calls the inherited function directly.
    """

    __slots__ = ("owner", "name", "had_own", "original", "wrapper", "binds")

    def __init__(
        self, owner: type, name: str, make_wrapper: Callable[..., Callable[..., Any]], *, pass_binds: bool = False
    ) -> None:
        if not isinstance(owner, type):
            raise TypeError(f"{owner!r} is not a class")
        raw = None
        for klass in owner.__mro__:
            if name in klass.__dict__:
                raw = klass.__dict__[name]
                break
        else:
            raise AttributeError(f"{owner.__qualname__} has no attribute {name!r}")
        if isinstance(raw, property):
            raise TypeError(f"{owner.__qualname__}.{name} is a property")
        descriptor = type(raw) if isinstance(raw, (staticmethod, classmethod)) else None
        func = raw.__func__ if descriptor is not None else raw
        if not callable(func):
            raise TypeError(f"{owner.__qualname__}.{name} is not a method: {raw!r}")
        if descriptor is None and not hasattr(type(raw), "__get__"):
            descriptor = staticmethod  # a non-binding callable (builtin, partial): keep it non-binding
        self.owner = owner
        self.name = name
        self.had_own = name in owner.__dict__
        self.original = owner.__dict__.get(name)
        #: the wrapper's first argument is the instance (a plain method)
        self.binds = descriptor is None
        wrapper = make_wrapper(func, binds=self.binds) if pass_binds else make_wrapper(func)
        self.wrapper = descriptor(wrapper) if descriptor is not None else wrapper

    def apply(self) -> None:
        type.__setattr__(self.owner, self.name, self.wrapper)

    def in_place(self) -> bool:
        return self.owner.__dict__.get(self.name) is self.wrapper

    def restore(self) -> None:
        if self.had_own:
            type.__setattr__(self.owner, self.name, self.original)
        else:
            type.__delattr__(self.owner, self.name)


def restore_all(patches: list[MethodPatch]) -> None:
    """Restore in reverse order, after checking that the outermost wrapper of
    each method is still ours (two labels may wrap the same method)."""
    outermost = {(id(p.owner), p.name): p for p in patches}
    displaced = [f"{p.owner.__qualname__}.{p.name}" for p in outermost.values() if not p.in_place()]
    if displaced:
        raise RuntimeError(f"{displaced} were replaced after install(); uninstall that tool first")
    for patch in reversed(patches):
        patch.restore()


