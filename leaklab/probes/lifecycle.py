"""Call counts and cumulative time of lifecycle methods, by wrapping them on the class."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

__all__ = ["CallCounter", "TimedMethod"]


class _MethodPatch:
    """``owner.<name>`` replaced by a wrapper; restorable exactly.

    Plain functions, ``staticmethod`` and ``classmethod`` are supported: the
    wrapper is re-wrapped in the same descriptor. A method the class inherits
    gets the wrapper in its own ``__dict__`` (removed again on restore), and
    calls the inherited function directly.
    """

    __slots__ = ("owner", "name", "had_own", "original", "wrapper")

    def __init__(self, owner: type, name: str, make_wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
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
        wrapper = make_wrapper(func)
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


def _restore_all(patches: list[_MethodPatch]) -> None:
    """Restore in reverse order, after checking that the outermost wrapper of
    each method is still ours (two labels may wrap the same method)."""
    outermost = {(id(p.owner), p.name): p for p in patches}
    displaced = [f"{p.owner.__qualname__}.{p.name}" for p in outermost.values() if not p.in_place()]
    if displaced:
        raise RuntimeError(f"{displaced} were replaced after install(); uninstall that tool first")
    for patch in reversed(patches):
        patch.restore()


class CallCounter:
    """Counts calls of methods, by wrapping them on their class.

    Args:
        targets: label -> ``(owner_class, method_name)``.

    Sync and ``async def`` methods are supported (and static/class methods);
    the wrapper keeps ``functools.wraps`` metadata and stays an ``async def``
    for coroutine functions (``inspect.iscoroutinefunction`` is unchanged).
    Calls through an instance, a bound method taken after :meth:`install`,
    ``super().method()`` or ``Owner.method(obj)`` are counted. A coroutine
    call is counted when it starts running (a coroutine never awaited is not
    counted). Generator and async-generator functions are wrapped by a plain
    function that counts the call and returns the generator.

    Not counted: bound methods captured before :meth:`install` (e.g. stored in
    a dispatch dict in ``__init__``) still point to the original function.

    Example::

        with CallCounter({"close": (ServiceContext, "close")}) as calls:
            before = calls.snapshot()
            ...
            calls.delta(before)  # {"close": 1}
    """

    def __init__(self, targets: Mapping[str, tuple[type, str]]) -> None:
        for label, target in targets.items():
            if not (isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], type) and isinstance(target[1], str)):
                raise TypeError(f"CallCounter target {label!r} must be (class, method_name), got {target!r}")
        self._targets = dict(targets)
        self._counts: dict[str, int] = {label: 0 for label in self._targets}
        self._patches: list[_MethodPatch] = []

    @property
    def installed(self) -> bool:
        """Whether the wrappers are in place."""
        return bool(self._patches)

    def install(self) -> CallCounter:
        """Wrap every target (idempotent). All or nothing.

        Raises:
            AttributeError: a class has no such method.
            TypeError: the attribute is not a method (e.g. a property).
        """
        if self._patches:
            return self
        patches: list[_MethodPatch] = []
        try:
            for label, (owner, name) in self._targets.items():
                # Applied one by one: a second label on the same method wraps the first wrapper.
                patch = _MethodPatch(owner, name, functools.partial(_counting_wrapper, counts=self._counts, label=label))
                patch.apply()
                patches.append(patch)
        except BaseException:
            for patch in reversed(patches):
                patch.restore()
            raise
        self._patches = patches
        return self

    def uninstall(self) -> None:
        """Restore every wrapped method exactly (idempotent). Counts are kept.

        Raises:
            RuntimeError: a wrapped method was replaced after :meth:`install`;
                nothing is restored in that case.
        """
        if self._patches:
            _restore_all(self._patches)
            self._patches = []

    def __enter__(self) -> CallCounter:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def snapshot(self) -> dict[str, int]:
        """Cumulative calls per label since construction."""
        return dict(self._counts)

    def delta(self, prev: Mapping[str, int]) -> dict[str, int]:
        """Calls per label since ``prev`` (an earlier :meth:`snapshot`)."""
        return {label: count - prev.get(label, 0) for label, count in self._counts.items()}


def _counting_wrapper(func: Callable[..., Any], *, counts: dict[str, int], label: str) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[label] += 1
            return await func(*args, **kwargs)

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counts[label] += 1
        return func(*args, **kwargs)

    return wrapper


class TimedMethod:
    """Cumulative wall time spent inside a method (e.g. an agent's ``_call_llm``).

    Each call is timed from its start to its end (for ``async def``, from
    the first step of the coroutine to its return or exception, awaits
    included). Overlapping calls each add their own duration, so the total
    can exceed elapsed time. A call still running at :meth:`take` is added
    when it ends.

    Args:
        owner: the class.
        method_name: a sync or ``async def`` method (not a generator).
        clock: the time source (``time.perf_counter``).
    """

    def __init__(self, owner: type, method_name: str, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._owner = owner
        self._name = method_name
        self._clock = clock
        self._total = 0.0
        self._taken = 0.0
        self._calls = 0
        self._patch: _MethodPatch | None = None

    @property
    def installed(self) -> bool:
        """Whether the wrapper is in place."""
        return self._patch is not None

    @property
    def total(self) -> float:
        """Seconds spent in completed calls since construction."""
        return self._total

    @property
    def calls(self) -> int:
        """Completed calls since construction."""
        return self._calls

    def install(self) -> TimedMethod:
        """Wrap the method (idempotent).

        Raises:
            AttributeError: no such method.
            TypeError: a generator, async generator or property.
        """
        if self._patch is None:
            patch = _MethodPatch(self._owner, self._name, self._timing_wrapper)
            patch.apply()
            self._patch = patch
        return self

    def uninstall(self) -> None:
        """Restore the method exactly (idempotent). Totals are kept.

        Raises:
            RuntimeError: the method was replaced after :meth:`install`.
        """
        if self._patch is not None:
            _restore_all([self._patch])
            self._patch = None

    def __enter__(self) -> TimedMethod:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def take(self) -> float:
        """Seconds spent in calls that completed since the previous ``take()``."""
        spent = self._total - self._taken
        self._taken = self._total
        return spent

    def _add(self, seconds: float) -> None:
        self._total += seconds
        self._calls += 1

    def _timing_wrapper(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
            raise TypeError(f"TimedMethod cannot time generator {func.__qualname__}")
        clock = self._clock
        add = self._add
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = clock()
                try:
                    return await func(*args, **kwargs)
                finally:
                    add(clock() - start)

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return func(*args, **kwargs)
            finally:
                add(clock() - start)

        return wrapper
