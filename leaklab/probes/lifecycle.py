"""Call counts and cumulative time of lifecycle methods, by wrapping them on the class.

:class:`CallCounter` can also count per instance (``per_instance=``): which
objects a ``close()`` ran on, when it first ran on each, and how often,
through weak references only (an instance's record outlives the instance
until it is read once with :meth:`CallCounter.take_instances`).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import time
import weakref
from collections.abc import Callable, Collection, Mapping
from types import TracebackType
from typing import Any

__all__ = ["CallCounter", "InstanceCalls", "TimedMethod"]


class _MethodPatch:
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

    Per instance (``per_instance``): for each label named there (or every
    label with ``True``) whose method is a plain instance method, the calls
    are also counted per object, keyed by ``id()`` and guarded by a weak
    reference, so the counter never keeps an object alive and a reused id is
    never mistaken for the old object. Each record keeps the time of the
    first call (``clock``, ``time.monotonic``), the call count and the
    object's creation time as ``created_at(obj)`` tells it (e.g.
    :meth:`InstanceTracker.created_at`; ``None`` without it). When the
    object is freed its record is kept until the next
    :meth:`take_instances` of the label, which returns it once and forgets
    it: call it regularly, or dead objects' records pile up. Calls on
    objects that cannot be weakly referenced are counted in
    :meth:`untracked_calls` only.

    Example::

        with CallCounter({"close": (ServiceContext, "close")}) as calls:
            before = calls.snapshot()
            ...
            calls.delta(before)  # {"close": 1}
    """

    def __init__(
        self,
        targets: Mapping[str, tuple[type, str]],
        *,
        per_instance: bool | Collection[str] = False,
        created_at: Callable[[Any], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for label, target in targets.items():
            if not (isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], type) and isinstance(target[1], str)):
                raise TypeError(f"CallCounter target {label!r} must be (class, method_name), got {target!r}")
        self._targets = dict(targets)
        self._counts: dict[str, int] = {label: 0 for label in self._targets}
        self._patches: list[_MethodPatch] = []
        wanted = set(self._targets) if per_instance is True else set(per_instance or ())
        unknown = wanted - set(self._targets)
        if unknown:
            raise KeyError(f"per_instance names labels that are not targets: {sorted(unknown)}")
        self._ledgers: dict[str, _InstanceLedger] = {
            label: _InstanceLedger(created_at, clock) for label in self._targets if label in wanted
        }

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
                patch = _MethodPatch(
                    owner, name,
                    functools.partial(_counting_wrapper, counts=self._counts, label=label, ledger=self._ledgers.get(label)),
                    pass_binds=True,
                )
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

    def per_instance_labels(self) -> tuple[str, ...]:
        """The labels counted per instance, in target order (a static or
        class method is counted in calls only, even when asked for)."""
        return tuple(label for label in self._ledgers if _binds(self._targets[label]))

    def take_instances(self, label: str) -> list[InstanceCalls]:
        """One record per object the method of ``label`` ran on: every object
        still alive, and every one freed since the previous call (returned
        this once, then forgotten). Holds no reference to any object.

        Raises:
            KeyError: ``label`` is not counted per instance.
        """
        return self._ledgers[label].take()

    def untracked_calls(self, label: str) -> int:
        """Calls of ``label`` on objects that could not be weakly referenced
        (counted in :meth:`snapshot`, in no :meth:`take_instances` record)."""
        ledger = self._ledgers.get(label)
        return ledger.untracked if ledger is not None else 0


def _binds(target: tuple[type, str]) -> bool:
    owner, name = target
    for klass in owner.__mro__:
        if name in klass.__dict__:
            raw = klass.__dict__[name]
            return not isinstance(raw, (staticmethod, classmethod)) and hasattr(type(raw), "__get__")
    return False


@dataclasses.dataclass(frozen=True)
class InstanceCalls:
    """What one object's method saw: ``created_at`` (``None`` if unknown),
    ``first_at`` (clock time of the first call), ``calls``, and whether the
    object was still ``alive`` when the record was taken."""

    created_at: float | None
    first_at: float
    calls: int
    alive: bool


class _KeyRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference that remembers the ``id()`` key it is stored under."""

    __slots__ = ("key",)

    def __new__(cls, obj: Any, callback: Callable[[Any], None], key: int) -> _KeyRef:
        self = super().__new__(cls, obj, callback)
        self.key = key
        return self

    def __init__(self, obj: Any, callback: Callable[[Any], None], key: int) -> None:
        super().__init__(obj, callback)


class _Entry:
    __slots__ = ("ref", "created_at", "first_at", "calls")

    def __init__(self, ref: _KeyRef | None, created_at: float | None, first_at: float) -> None:
        self.ref = ref
        self.created_at = created_at
        self.first_at = first_at
        self.calls = 1

    def frozen(self, alive: bool) -> InstanceCalls:
        return InstanceCalls(self.created_at, self.first_at, self.calls, alive)


class _InstanceLedger:
    """Per-object calls of one method, keyed by ``id()``; a weak reference per
    entry moves it to ``_gone`` when the object is freed (before its id can
    be reused). The ledger is never referenced by what it watches: the
    callbacks hold it weakly."""

    __slots__ = ("_live", "_gone", "_remove", "_created_at", "_clock", "untracked", "__weakref__")

    def __init__(self, created_at: Callable[[Any], float | None] | None, clock: Callable[[], float]) -> None:
        self._live: dict[int, _Entry] = {}
        self._gone: list[_Entry] = []
        self._created_at = created_at
        self._clock = clock
        self.untracked = 0
        selfref = weakref.ref(self)

        def _remove(ref: _KeyRef) -> None:
            ledger = selfref()
            if ledger is None:
                return
            entry = ledger._live.get(ref.key)
            if entry is not None and entry.ref is ref:
                del ledger._live[ref.key]
                entry.ref = None
                ledger._gone.append(entry)

        self._remove = _remove

    def record(self, obj: Any) -> None:
        now = self._clock()
        key = id(obj)
        entry = self._live.get(key)
        if entry is not None:
            if entry.ref is not None and entry.ref() is obj:
                entry.calls += 1
                return
            # A freed object whose callback has not run yet: retire it.
            del self._live[key]
            entry.ref = None
            self._gone.append(entry)
        try:
            ref = _KeyRef(obj, self._remove, key)
        except TypeError:  # not weakref-able: an id() alone could be reused
            self.untracked += 1
            return
        created = self._created_at(obj) if self._created_at is not None else None
        self._live[key] = _Entry(ref, created, now)

    def take(self) -> list[InstanceCalls]:
        gone, self._gone = self._gone, []
        while True:
            try:
                live = list(self._live.values())
                break
            except RuntimeError:  # resized by a weakref callback mid-copy
                continue
        # Freed while the live entries were copied: already in ``live``, or not.
        late, self._gone = self._gone, []
        seen = {id(e) for e in live}
        out = [e.frozen(alive=e.ref is not None and e.ref() is not None) for e in live]
        out.extend(e.frozen(alive=False) for e in gone)
        out.extend(e.frozen(alive=False) for e in late if id(e) not in seen)
        return out


def _counting_wrapper(
    func: Callable[..., Any], *, counts: dict[str, int], label: str, ledger: _InstanceLedger | None = None,
    binds: bool = True,
) -> Callable[..., Any]:
    record = ledger.record if ledger is not None and binds else None
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[label] += 1
            if record is not None and args:
                _safe_record(record, args[0])
            return await func(*args, **kwargs)

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counts[label] += 1
        if record is not None and args:
            _safe_record(record, args[0])
        return func(*args, **kwargs)

    return wrapper


def _safe_record(record: Callable[[Any], None], obj: Any) -> None:
    # Measuring must never break the measured method.
    try:
        record(obj)
    except Exception:  # pragma: no cover - defensive
        pass


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
